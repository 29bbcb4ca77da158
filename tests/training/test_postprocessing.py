"""Tests of ddsp.training.postprocessing (constructed inputs, closed forms)."""
import json

import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from ddsp.training import postprocessing as pp


# smooth / detect_notes ---------------------------------------------------------------
@pytest.mark.parametrize('filter_size', [1, 2, 3, 4, 40, 41])
def test_smooth_equals_numpy_convolution(filter_size):
    x = np.random.randn(3, 137).astype(np.float32)
    expected = np.stack([np.convolve(row, np.ones(filter_size) / filter_size,
                                     mode='same') for row in x])
    np.testing.assert_allclose(pp.smooth(x, filter_size), expected,
                               atol=1e-6)
    assert pp.smooth(x[0], filter_size).shape == (137,)


@pytest.mark.parametrize('bad', [0, -1, 2.5, True])
def test_smooth_rejects_bad_filter_size(bad):
    with pytest.raises(ValueError, match='filter_size'):
        pp.smooth(np.ones(10), bad)


def _notes_curve():
    """Two notes (frames 100-199 and 300-399) at -20 dB, confident, in
    -70 dB unvoiced background."""
    n = 500
    on = np.zeros(n, bool)
    on[100:200] = on[300:400] = True
    loudness = np.where(on, -20.0, -70.0).astype(np.float32)
    confidence = np.where(on, 0.95, 0.05).astype(np.float32)
    return loudness, confidence, on


def test_detect_notes_finds_constructed_notes():
    loudness, confidence, on = _notes_curve()
    mask_on, ratio = pp.detect_notes(loudness, confidence)
    # Closed form of the ratio.
    smoothed = np.convolve(confidence**2, np.ones(40) / 40, mode='same')
    expected = smoothed * (loudness + 80.0) / (
        (loudness.mean() + 80.0) * 0.7**2)
    np.testing.assert_allclose(ratio, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mask_on, ratio >= 1.0)
    # The notes are found up to the smoothing transitions (< 20 frames).
    interior = np.zeros_like(on)
    interior[120:180] = interior[320:380] = True
    assert mask_on[interior].all()
    assert not mask_on[~on].any()
    assert mask_on.sum() > 0.7 * on.sum()
    # A higher threshold finds fewer note-on frames.
    assert pp.detect_notes(loudness, confidence,
                           note_threshold=2.0)[0].sum() < mask_on.sum()


def test_detect_notes_batch_silence_and_validation():
    loudness, confidence, _ = _notes_curve()
    mask_1d, _ = pp.detect_notes(loudness, confidence)
    mask_2d, _ = pp.detect_notes(np.stack([loudness] * 2),
                                 np.stack([confidence] * 2))
    np.testing.assert_array_equal(mask_2d[1], mask_1d)
    silent_mask, silent_ratio = pp.detect_notes(np.full(50, -80.0),
                                                np.ones(50))
    assert not silent_mask.any() and np.all(silent_ratio == 0)
    with pytest.raises(ValueError, match='f0_confidence'):
        pp.detect_notes(loudness, confidence[:-1])


# QuantileTransformer ----------------------------------------------------------------
@pytest.mark.parametrize('n', [300, 5000])
@pytest.mark.parametrize('distribution', ['uniform', 'normal'])
def test_quantile_transformer_round_trip(n, distribution):
    x = np.random.randn(n, 2) * [3.0, 10.0] + [1.0, -40.0]
    qt = pp.QuantileTransformer(output_distribution=distribution).fit(x)
    np.testing.assert_allclose(qt.inverse_transform(qt.transform(x)), x,
                               atol=1e-9)
    assert qt.n_quantiles_ == min(1000, n)


def test_quantile_transformer_maps_known_distribution_to_uniform():
    rng = np.random.default_rng(1)
    samples = rng.exponential(size=100_000)
    qt = pp.QuantileTransformer().fit(samples)
    grid = np.linspace(0.05, 4.0, 40)
    # Exp(1) CDF.
    np.testing.assert_allclose(qt.transform(grid), 1.0 - np.exp(-grid),
                               atol=0.01)
    # Fitted range ends map to 0 and 1; values outside are clipped.
    u = qt.transform(np.array([samples.min(), samples.max(), -1.0, 100.0]))
    np.testing.assert_array_equal(u, [0.0, 1.0, 0.0, 1.0])
    normal = pp.QuantileTransformer(output_distribution='normal').fit(samples)
    np.testing.assert_allclose(
        normal.transform(grid), scipy.special.ndtri(1.0 - np.exp(-grid)),
        atol=0.05)


def test_quantile_transformer_matches_sklearn_with_ties():
    sklearn_preprocessing = pytest.importorskip('sklearn.preprocessing')
    rng = np.random.default_rng(2)
    x = np.round(rng.normal(size=(3000, 2)) * 3.0)  # Many repeated values.
    test = rng.normal(size=(200, 2)) * 5.0
    for distribution in ('uniform', 'normal'):
        ours = pp.QuantileTransformer(
            n_quantiles=100, output_distribution=distribution).fit(x)
        ref = sklearn_preprocessing.QuantileTransformer(
            n_quantiles=100, output_distribution=distribution).fit(x)
        np.testing.assert_allclose(ours.transform(test), ref.transform(test),
                                   atol=1e-8)
        np.testing.assert_allclose(
            ours.inverse_transform(ours.transform(test)),
            ref.inverse_transform(ref.transform(test)), atol=1e-8)


def test_quantile_transformer_json_round_trip_and_subsample():
    x = np.random.randn(20_000)
    qt = pp.QuantileTransformer(subsample=5000).fit(x)
    state = json.loads(json.dumps(qt.to_dict()))
    restored = pp.QuantileTransformer.from_dict(state)
    test = np.linspace(-3, 3, 101)
    np.testing.assert_array_equal(restored.transform(test), qt.transform(test))
    np.testing.assert_array_equal(restored.inverse_transform(test / 7 + 0.5),
                                  qt.inverse_transform(test / 7 + 0.5))
    # Subsampling is seeded: refitting gives the same quantiles.
    again = pp.QuantileTransformer(subsample=5000).fit(x)
    np.testing.assert_array_equal(again.quantiles_, qt.quantiles_)
    assert 'fitted' in repr(qt)


def test_quantile_transformer_validation():
    with pytest.raises(ValueError, match='not fitted'):
        pp.QuantileTransformer().transform(np.ones(3))
    with pytest.raises(ValueError, match='output_distribution'):
        pp.QuantileTransformer(output_distribution='gamma')
    with pytest.raises(ValueError, match='n_quantiles'):
        pp.QuantileTransformer(n_quantiles=0)
    qt = pp.QuantileTransformer().fit(np.random.randn(10, 2))
    with pytest.raises(ValueError, match='feature'):
        qt.transform(np.ones((4, 3)))
    with pytest.raises(ValueError, match='NaN'):
        qt.transform(np.full((4, 2), np.nan))
    with pytest.raises(ValueError, match='quantiles'):
        pp.QuantileTransformer.from_dict({'quantiles': [[2.0], [1.0]]})
    with pytest.raises(ValueError, match='references'):
        pp.QuantileTransformer.from_dict({'quantiles': [1.0, 2.0],
                                          'references': [0.0, 0.5, 1.0]})


def test_quantile_transformer_from_flat_quantiles():
    # The data preparation's format: flat quantiles with their probabilities.
    qt = pp.QuantileTransformer.from_dict(
        {'references': [0.0, 0.5, 1.0], 'quantiles': [-30.0, -20.0, -10.0]})
    np.testing.assert_allclose(qt.transform(np.array([-25.0, -10.0])),
                               [0.25, 1.0])
    np.testing.assert_allclose(qt.inverse_transform(np.array([0.75])),
                               [-15.0])
    assert pp.QuantileTransformer.from_dict({'quantiles': []}).quantiles_ \
        is None


def test_fit_quantile_transform_maps_distributions():
    rng = np.random.default_rng(3)
    # Dataset note-on loudness ~ U(-30, -10); input note-on ~ U(-60, -40).
    dataset = pp.QuantileTransformer().fit(rng.uniform(-30, -10, 50_000))
    # Note-on frames evenly spaced (so their empirical quantiles are exact).
    loudness = np.concatenate([np.full(500, -75.0), rng.permutation(
        np.linspace(-60, -40, 1500))]).astype(np.float32)
    mask_on = np.arange(2000) >= 500
    qt, loudness_norm = pp.fit_quantile_transform(
        loudness, mask_on, inv_quantile=dataset.to_dict())
    assert loudness_norm.shape == (2000, 1)
    # Uniform -> uniform quantile map is the affine map x + 30.
    np.testing.assert_allclose(loudness_norm[mask_on, 0],
                               loudness[mask_on] + 30.0, atol=0.1)
    np.testing.assert_array_equal(loudness_norm[~mask_on, 0], -75.0)
    # The returned transform is fitted on the input's note-on frames.
    np.testing.assert_allclose(qt.transform(np.array([[-50.0]])), [[0.5]],
                               atol=0.03)
    # Without inv_quantile the loudness is unchanged.
    _, same = pp.fit_quantile_transform(loudness, mask_on)
    np.testing.assert_array_equal(same[..., 0], loudness)
    with pytest.raises(ValueError, match='no frame'):
        pp.fit_quantile_transform(loudness, np.zeros(2000, bool))


# Dataset statistics -----------------------------------------------------------------
def test_dataset_statistics_of_constant_pitch():
    n_frames = 300
    f0 = np.full((2, n_frames), 440.0)
    loudness = np.full((2, n_frames), -20.0)
    confidence = np.ones((2, n_frames))
    power = np.full((2, n_frames), -30.0)
    stats = pp.dataset_statistics_from_arrays(f0, confidence, loudness,
                                              power_db=power, frame_rate=250)
    for key in ('mean_pitch', 'max_pitch', 'min_pitch', 'mean_max_pitch',
                'mean_min_pitch', 'mean_pitch_note'):
        assert stats[key] == pytest.approx(69.0, abs=1e-4)
    assert stats['std_pitch'] == pytest.approx(0.0, abs=1e-4)
    assert stats['mean_loudness_note'] == pytest.approx(-20.0)
    assert stats['mean_power'] == pytest.approx(-30.0)
    assert stats['n_examples'] == 2
    assert stats['n_frames'] == 2 * (n_frames - 20)
    assert stats['n_note_frames'] == stats['n_frames']
    assert stats['frame_rate'] == 250.0
    assert stats['format'] == pp.STATS_FORMAT
    json.dumps(stats, allow_nan=False)  # JSON-serialisable as is.


def test_dataset_statistics_note_masks_and_missing_power():
    loudness, confidence, on = _notes_curve()
    # Pitch 57 (220 Hz) during the notes, 0 Hz elsewhere.
    f0 = np.where(on, 220.0, 0.0)
    stats = pp.dataset_statistics_from_arrays(f0, confidence, loudness)
    # Pitch statistics cover voiced frames only (0 Hz is not MIDI 0).
    for key in ('mean_pitch', 'min_pitch', 'max_pitch', 'mean_pitch_note',
                'mean_min_pitch'):
        assert stats[key] == pytest.approx(57.0, abs=1e-4)
    assert stats['mean_power'] is None and stats['std_power_note'] is None
    assert stats['mean_loudness_note'] == pytest.approx(-20.0)
    # Every example without any note-on frame is skipped in mean_max/min.
    two = pp.dataset_statistics_from_arrays(
        np.stack([f0, f0 * 2]), np.stack([confidence, confidence * 0]),
        np.stack([loudness, loudness]))
    assert two['mean_max_pitch_note'] == pytest.approx(57.0, abs=1e-4)
    assert two['mean_max_pitch'] == pytest.approx(63.0, abs=1e-4)
    with pytest.raises(ValueError, match='trim_end'):
        pp.dataset_statistics_from_arrays(f0[:10], confidence[:10],
                                          loudness[:10])


class _FakeProvider:
    """Minimal data provider: centred 250 Hz features of 1 s at 16 kHz."""
    sample_rate = 16000
    frame_rate = 250

    def __init__(self, n_examples=3):
        t = np.arange(16000) / 16000
        self.audio = np.stack([0.1 * (i + 1) * np.sin(2 * np.pi * 440 * t)
                               for i in range(n_examples)]).astype(np.float32)
        self.calls = []

    def get_batch(self, batch_size, shuffle=True, repeats=-1,
                  drop_remainder=True):
        self.calls.append(dict(batch_size=batch_size, shuffle=shuffle,
                               repeats=repeats, drop_remainder=drop_remainder))
        n = len(self.audio)
        features = {
            'audio': self.audio,
            'f0_hz': np.full((n, 251), 440.0, np.float32),
            'f0_confidence': np.ones((n, 251), np.float32),
            'loudness_db': np.full((n, 251), -20.0, np.float32),
        }
        return tf.data.Dataset.from_tensor_slices(features).batch(
            batch_size, drop_remainder=drop_remainder)


def test_compute_dataset_statistics_with_provider():
    provider = _FakeProvider()
    stats = pp.compute_dataset_statistics(provider, batch_size=2)
    assert provider.calls == [dict(batch_size=2, shuffle=False, repeats=1,
                                   drop_remainder=False)]
    assert stats['n_examples'] == 3  # The partial last batch is kept.
    assert stats['mean_pitch'] == pytest.approx(69.0, abs=1e-4)
    # Power of a sine of amplitude a is a**2 / 2 (-> dB), on the same 251
    # frames as loudness (interior frames; the last 20 are trimmed).
    expected_max = 10 * np.log10(0.3**2 / 2)
    assert stats['max_power'] == pytest.approx(expected_max, abs=0.1)
    assert stats['mean_max_power'] == pytest.approx(
        np.mean([10 * np.log10((0.1 * i)**2 / 2) for i in (1, 2, 3)]),
        abs=0.1)
    assert stats['sample_rate'] == 16000.0
    with pytest.raises(ValueError, match='power_frame_rate'):
        pp.compute_dataset_statistics(provider, power_frame_rate=50)


def test_save_and_load_dataset_statistics(tmp_path):
    loudness, confidence, on = _notes_curve()
    stats = pp.dataset_statistics_from_arrays(np.where(on, 440.0, 0.0),
                                              confidence, loudness)
    path = str(tmp_path / 'sub' / pp.DATASET_STATISTICS_FILE)
    assert pp.save_dataset_statistics(stats, path) == path
    loaded = pp.load_dataset_statistics(path)
    assert loaded == stats
    qt = pp.QuantileTransformer.from_dict(loaded['quantile_transform'])
    assert qt.transform(np.array([-20.0])).shape == (1,)
    # numpy values and transformer objects are converted on save.
    pp.save_dataset_statistics({'mean_pitch': np.float32(60.0),
                                'quantile_transform': qt,
                                'bad': np.nan}, path)
    loaded = pp.load_dataset_statistics(path)
    assert loaded['mean_pitch'] == 60.0 and loaded['bad'] is None
    assert loaded['quantile_transform'] == qt.to_dict()
    with pytest.raises(FileNotFoundError):
        pp.load_dataset_statistics(str(tmp_path / 'missing.json'))
    with pytest.raises(ValueError, match='pickle'):
        pp.load_dataset_statistics(str(tmp_path / 'dataset_statistics.pkl'))
    (tmp_path / 'other.json').write_text('{"a": 1}')
    with pytest.raises(ValueError, match='dataset statistics'):
        pp.load_dataset_statistics(str(tmp_path / 'other.json'))


def test_infer_padding():
    assert pp.infer_padding(1001, 64000, 16000, 250) == 'center'
    assert pp.infer_padding(1000, 64000, 16000, 250) == 'same'
    assert pp.infer_padding(1000, 64000, 44100, 250 * 44100 / 16000) == 'same'
    # Ambiguous (length not a multiple of the hop) -> default.
    assert pp.infer_padding(11, 650, 16000, 250, default='same') == 'same'


# Tuning -------------------------------------------------------------------------------
def _detuned_melody(detune=0.3, vibrato=0.05):
    """C major scale, 100 frames per note, detuned and with vibrato."""
    notes = np.repeat([60, 62, 64, 65, 67, 69, 71, 72], 100).astype(float)
    t = np.arange(notes.size)
    return notes + detune + vibrato * np.sin(t / 5.0), notes


@pytest.mark.parametrize('detune', [0.3, -0.2, 0.0])
def test_get_tuning_factor_recovers_detuning(detune):
    f0_midi, _ = _detuned_melody(detune)
    mask_on = np.ones(f0_midi.size, bool)
    factor = pp.get_tuning_factor(f0_midi, np.ones(f0_midi.size), mask_on)
    assert factor == pytest.approx(detune, abs=0.011)
    assert pp.get_tuning_factor(f0_midi, np.ones(f0_midi.size),
                                np.zeros(f0_midi.size, bool)) == 0.0


def test_auto_tune_snaps_to_scale():
    f0_midi, notes = _detuned_melody(0.3, vibrato=0.1)
    mask_on = np.ones(f0_midi.size, bool)
    assert pp.infer_key(f0_midi, 0.3, mask_on) == 0  # C major.
    snapped = pp.auto_tune(f0_midi, 0.3, mask_on, amount=1.0)
    np.testing.assert_allclose(snapped, notes + 0.3, atol=1e-4)
    half = pp.auto_tune(f0_midi, 0.3, mask_on, amount=0.5)
    np.testing.assert_allclose(half, (f0_midi + notes + 0.3) / 2, atol=1e-4)
    np.testing.assert_allclose(pp.auto_tune(f0_midi, 0.3, mask_on), f0_midi,
                               atol=1e-5)
    # Off-scale pitch goes to the nearest scale note (C#+0.4 -> D), while the
    # chromatic grid keeps C#.
    off = np.concatenate([f0_midi, [61.4 + 0.3]])
    mask = np.concatenate([mask_on, [False]])
    assert pp.auto_tune(off, 0.3, mask, amount=1.0)[-1] == pytest.approx(
        62.3, abs=1e-4)
    assert pp.auto_tune(off, 0.3, mask, amount=1.0,
                        chromatic=True)[-1] == pytest.approx(61.3, abs=1e-4)
    # A melody in G major (F#, not F) is recognised.
    g_major = np.repeat([67, 69, 71, 72, 74, 76, 78], 50).astype(float)
    assert pp.KEY_NAMES[pp.infer_key(g_major, 0.0,
                                     np.ones(g_major.size, bool))] == 'G'


# Timbre-transfer adjustments ------------------------------------------------------------
@pytest.mark.parametrize('octaves_off, expected', [
    (1.2, 1), (1.6, 2), (0.4, 0), (-0.6, -1), (-1.4, -1), (0.5, 1)])
def test_shift_f0_to_register_rounds_to_nearest_octave(octaves_off, expected):
    f0 = np.full(100, 220.0, np.float32)  # MIDI 57.
    f0[:10] = 0.0  # Unvoiced frames are ignored and stay 0.
    shifted, octaves = pp.shift_f0_to_register(f0, 57.0 + 12 * octaves_off)
    assert octaves == expected
    np.testing.assert_allclose(shifted[10:], 220.0 * 2.0**expected, rtol=1e-6)
    np.testing.assert_array_equal(shifted[:10], 0.0)


def test_shift_f0_clips_and_handles_silence():
    ceiling = 440.0 * 2**((110 - 69) / 12)
    np.testing.assert_allclose(pp.shift_f0([1000.0, 3000.0], 2.0),
                               [4000.0, ceiling], rtol=1e-5)
    f0, octaves = pp.shift_f0_to_register(np.zeros(10), 60.0)
    assert octaves == 0 and not f0.any()
    mask = np.zeros(4, bool)
    mask[2:] = True
    _, octaves = pp.shift_f0_to_register([110.0, 110.0, 440.0, 440.0], 81.0,
                                         mask_on=mask)
    assert octaves == 1  # Only the note-on frames (MIDI 69) count.


def test_normalize_loudness():
    rng = np.random.default_rng(4)
    dataset = pp.QuantileTransformer().fit(rng.uniform(-30, -10, 50_000))
    stats = {'quantile_transform': dataset.to_dict()}
    loudness = np.linspace(-60, -40, 1000).astype(np.float32)
    mask_on = np.arange(1000) >= 200
    loudness[:200] = -50.0
    ratio = np.linspace(0, 1, 1000).astype(np.float32)
    out = pp.normalize_loudness(loudness, mask_on, stats, quiet=20.0,
                                note_on_ratio=ratio)
    assert out.shape == loudness.shape and out.dtype == np.float32
    # Note-on frames span -56 .. -40 dB: their quantiles map onto -30 .. -10.
    expected = -30.0 + 20.0 * (loudness[mask_on] + 56.0) / 16.0
    np.testing.assert_allclose(out[mask_on], expected, atol=0.1)
    np.testing.assert_allclose(out[:200], -50.0 - 20.0 * (1 - ratio[:200]),
                               atol=1e-5)
    # Without a ratio: full attenuation, floored at -80 dB.
    out = pp.normalize_loudness(loudness, mask_on, dataset, quiet=40.0)
    np.testing.assert_allclose(out[:200], -80.0)
    # Statistics with the data preparation's quantile format work the same.
    prep_stats = {'loudness_note_quantiles': {
        'references': np.linspace(0, 1, 1000).tolist(),
        'quantiles': np.linspace(-30, -10, 1000).tolist()}}
    out = pp.normalize_loudness(loudness, mask_on, prep_stats, quiet=0.0)
    np.testing.assert_allclose(out[mask_on], expected, atol=0.1)
    for bad in ({'quantile_transform': None},
                {'loudness_note_quantiles': {'quantiles': []}}):
        with pytest.raises(ValueError, match='quantiles'):
            pp.normalize_loudness(loudness, mask_on, bad)


def test_adjust_features():
    loudness, confidence, on = _notes_curve()
    f0 = np.where(on, 110.0, 0.0).astype(np.float32)  # MIDI 45.
    rng = np.random.default_rng(5)
    stats = {'mean_pitch': 50.0, 'mean_pitch_note': 69.0,
             'quantile_transform': pp.QuantileTransformer().fit(
                 rng.uniform(-30, -10, 10_000)).to_dict()}
    out = pp.adjust_features(f0, confidence, loudness, stats, autotune=1.0,
                             loudness_shift=-3.0, pitch_shift=-1)
    assert out['octave_shift'] == 2  # Toward mean_pitch_note, not 50.
    assert out['tuning_factor'] == pytest.approx(0.0, abs=0.011)
    mask = out['mask_on']
    np.testing.assert_allclose(out['f0_hz'][mask], 220.0, rtol=1e-4)
    np.testing.assert_array_equal(out['f0_hz'][f0 == 0], 0.0)
    assert np.all(out['loudness_db'][mask] >= -33.0)
    # No statistics: only the manual edits.
    manual = pp.adjust_features(f0, confidence, loudness, None,
                                pitch_shift=1, loudness_shift=2.0)
    np.testing.assert_allclose(manual['f0_hz'], f0 * 2)
    np.testing.assert_allclose(manual['loudness_db'], loudness + 2.0)
    assert manual['octave_shift'] == 0 and manual['tuning_factor'] is None
