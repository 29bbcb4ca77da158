"""Tests of ddsp.training.generation: z GMM, notes, curves, z sampling."""
import itertools
import json
import os

import mido
import numpy as np
import pytest
import scipy.stats

from ddsp.training import generation
from ddsp.training import postprocessing

REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
FRAME_RATE = 250


def _midi(f0_hz):
    return 12 * np.log2(np.asarray(f0_hz, np.float64) / 440.0) + 69


# GMM ----------------------------------------------------------------------------
def _mixture(n=2000, seed=0):
    """Samples of a known 3-component mixture in 3-D."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 2.0], [0.0, -6.0, 4.0]])
    a = rng.normal(size=(3, 3, 3)) * 0.4
    covs = np.einsum('kij,klj->kil', a, a) + 0.3 * np.eye(3)
    labels = rng.choice(3, size=n, p=weights)
    x = np.stack([rng.multivariate_normal(means[k], covs[k]) for k in labels])
    return x, weights, means, covs


def _match(fitted_means, true_means):
    """Permutation of fitted components closest to the true ones."""
    return min(itertools.permutations(range(len(true_means))),
               key=lambda p: np.sum((fitted_means[list(p)] - true_means)**2))


@pytest.mark.parametrize('criterion', ['bic', 'heldout'])
def test_fit_gmm_recovers_synthetic_mixture(criterion):
    x, weights, means, covs = _mixture()
    gmm = generation.fit_gmm(x, max_components=5, criterion=criterion)
    assert gmm.n_components == 3
    assert gmm.metadata['criterion'] == criterion
    assert set(gmm.metadata['selection']) == {'1', '2', '3', '4', '5'}
    order = list(_match(gmm.means, means))
    np.testing.assert_allclose(gmm.means[order], means, atol=0.2)
    np.testing.assert_allclose(gmm.weights[order], weights, atol=0.05)
    np.testing.assert_allclose(gmm.covariances[order], covs, rtol=0.2,
                               atol=0.1)


def test_fit_gmm_single_gaussian_picks_one_component():
    x = np.random.default_rng(1).normal(size=(400, 4))
    assert generation.fit_gmm(x, max_components=4).n_components == 1


def test_log_prob_matches_scipy():
    _, weights, means, covs = _mixture()
    gmm = generation.ZGaussianMixture(weights, means, covs)
    x = np.random.default_rng(2).normal(size=(7, 3)) * 3
    expected = np.log(sum(w * scipy.stats.multivariate_normal(m, c).pdf(x)
                          for w, m, c in zip(weights, means, covs)))
    np.testing.assert_allclose(gmm.log_prob(x), expected, rtol=1e-9)


def test_sampling_is_deterministic_per_seed_and_follows_the_mixture():
    _, weights, means, covs = _mixture()
    gmm = generation.ZGaussianMixture(weights, means, covs)
    a = gmm.sample(20000, np.random.default_rng(5))
    b = gmm.sample(20000, np.random.default_rng(5))
    c = gmm.sample(20000, np.random.default_rng(6))
    assert a.dtype == np.float32 and a.shape == (20000, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(a.mean(axis=0), weights @ means, atol=0.08)


@pytest.mark.parametrize('ext', ['.npz', '.json'])
def test_gmm_save_load_roundtrip(tmp_path, ext):
    _, weights, means, covs = _mixture()
    gmm = generation.ZGaussianMixture(weights, means, covs,
                                      metadata={'criterion': 'bic', 'n': 3})
    path = gmm.save(str(tmp_path / f'sub/gmm{ext}'))
    loaded = generation.load_gmm(path)
    np.testing.assert_array_equal(loaded.means, means)
    np.testing.assert_array_equal(loaded.covariances, covs)
    np.testing.assert_array_equal(loaded.weights, weights)
    assert loaded.metadata == {'criterion': 'bic', 'n': 3}
    if ext == '.npz':  # Readable without pickle.
        with np.load(path, allow_pickle=False) as npz:
            assert json.loads(str(npz['header']))['format'] == 'ddsp.z_gmm'


def test_gmm_errors(tmp_path):
    with pytest.raises(ValueError, match='positive definite'):
        generation.ZGaussianMixture([1.0], [[0.0, 0.0]], [np.zeros((2, 2))])
    with pytest.raises(ValueError, match='sum to 1'):
        generation.ZGaussianMixture([0.5], [[0.0]], [[[1.0]]])
    gmm = generation.ZGaussianMixture([1.0], [[0.0]], [[[1.0]]])
    with pytest.raises(ValueError, match='.npz or .json'):
        gmm.save(str(tmp_path / 'gmm.pkl'))
    with pytest.raises(FileNotFoundError, match='no.npz'):
        generation.load_gmm(str(tmp_path / 'no.npz'))
    (tmp_path / 'x.json').write_text('{"format": "other"}')
    with pytest.raises(ValueError, match='not a ddsp.z_gmm'):
        generation.load_gmm(str(tmp_path / 'x.json'))
    with pytest.raises(ValueError, match='criterion'):
        generation.fit_gmm(np.zeros((10, 2)), criterion='aic')
    with pytest.raises(ValueError, match='x must be'):
        generation.fit_gmm(np.zeros(10))


def test_fit_gmm_heldout_needs_three_rows():
    x = np.random.default_rng(3).normal(size=(3, 2))
    with pytest.raises(ValueError, match='at least 3 rows'):
        generation.fit_gmm(x[:2], criterion='heldout')
    assert generation.fit_gmm(x, criterion='heldout').n_components == 1
    assert generation.fit_gmm(x[:2]).n_components == 1  # BIC: any n >= 2.


# Notes ----------------------------------------------------------------------------
def test_read_notes_csv_with_and_without_header(tmp_path):
    (tmp_path / 'a.csv').write_text(
        'onset_s,offset_s,midi_pitch,velocity\n1.0,1.5,62,80\n0.0,0.5,60,100\n')
    (tmp_path / 'b.csv').write_text('0.0,0.5,60,100,20\n1.0,1.5,62.5,80\n')
    a = generation.read_notes(str(tmp_path / 'a.csv'))
    assert a == [generation.Note(0.0, 0.5, 60, 100),
                 generation.Note(1.0, 1.5, 62, 80)]
    b = generation.read_notes(str(tmp_path / 'b.csv'))
    assert b[0].vibrato_cents == 20 and b[1].vibrato_cents is None
    assert b[1].pitch == 62.5


def test_read_notes_csv_of_the_example_data():
    notes = generation.read_notes(os.path.join(REPO, 'data',
                                               'violin_01_notes.csv'))
    assert len(notes) > 10
    assert notes[0] == generation.Note(0.3, 1.3, 64, 46, 12.1)
    assert all(a.offset_s <= b.onset_s for a, b in zip(notes, notes[1:]))


def test_read_notes_csv_errors(tmp_path):
    (tmp_path / 'h.csv').write_text('start,end,pitch\n0,1,60\n')
    with pytest.raises(ValueError, match='header lacks'):
        generation.read_notes(str(tmp_path / 'h.csv'))
    (tmp_path / 'v.csv').write_text('0,1,60,0\n')
    with pytest.raises(ValueError, match='row 1.*velocity'):
        generation.read_notes(str(tmp_path / 'v.csv'))
    (tmp_path / 'o.csv').write_text('1,0.5,60,90\n')
    with pytest.raises(ValueError, match='onset_s < offset_s'):
        generation.read_notes(str(tmp_path / 'o.csv'))
    with pytest.raises(FileNotFoundError):
        generation.read_notes(str(tmp_path / 'missing.csv'))


def _write_midi(path):
    """Two tempos: 120 bpm for the first beat, then 60 bpm."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage('set_tempo', tempo=500000, time=0))
    track.append(mido.Message('note_on', note=60, velocity=90, time=0))
    track.append(mido.Message('note_off', note=60, velocity=0, time=480))
    track.append(mido.MetaMessage('set_tempo', tempo=1000000, time=0))
    track.append(mido.Message('note_on', note=64, velocity=70, time=0))
    # Overlapping note: 67 starts half a beat (0.5 s) into 64.
    track.append(mido.Message('note_on', note=67, velocity=50, time=240))
    track.append(mido.Message('note_on', note=64, velocity=0, time=240))
    track.append(mido.Message('note_off', note=67, velocity=0, time=240))
    drums = mido.MidiTrack()
    midi.tracks.append(drums)
    drums.append(mido.Message('note_on', channel=9, note=36, velocity=100))
    drums.append(mido.Message('note_off', channel=9, note=36, time=480))
    midi.save(path)
    return path


def test_read_notes_midi_tempo_and_monophony(tmp_path):
    notes = generation.read_notes(_write_midi(str(tmp_path / 'song.mid')))
    expected = [(0.0, 0.5, 60, 90), (0.5, 1.0, 64, 70), (1.0, 2.0, 67, 50)]
    assert len(notes) == 3
    for note, (on, off, pitch, vel) in zip(notes, expected):
        assert note.onset_s == pytest.approx(on)
        assert note.offset_s == pytest.approx(off)
        assert (note.pitch, note.velocity) == (pitch, vel)


def test_read_notes_midi_errors(tmp_path):
    (tmp_path / 'bad.mid').write_bytes(b'not midi at all')
    with pytest.raises(ValueError, match='not a MIDI file'):
        generation.read_notes(str(tmp_path / 'bad.mid'))
    path = _write_midi(str(tmp_path / 'song.mid'))
    with pytest.raises(ValueError, match='no notes on channel 3'):
        generation.read_notes_midi(path, channel=3)
    assert [n.pitch for n in generation.read_notes_midi(path, channel=9)] == [
        36]


# Curves ----------------------------------------------------------------------------
def _stats():
    rng = np.random.default_rng(0)
    loudness = rng.uniform(-50, -20, size=(4, 500)).astype(np.float32)
    f0 = np.full((4, 500), 440.0, np.float32)
    return postprocessing.dataset_statistics_from_arrays(
        f0, np.ones_like(f0), loudness)


NOTES = [generation.Note(0.1, 0.6, 60, 100),
         generation.Note(0.6, 1.0, 67.5, 40),   # legato
         generation.Note(1.3, 1.8, 55, 127)]


def test_notes_to_curves_f0_exact_in_sustained_frames():
    curves = generation.notes_to_curves(NOTES, FRAME_RATE, _stats())
    f0, index = curves['f0_hz'], curves['note_index']
    sustained = curves['sustained']
    for i, note in enumerate(NOTES):
        frames = sustained & (index == i)
        assert frames.sum() >= 0.8 * (note.offset_s - note.onset_s) * FRAME_RATE
        np.testing.assert_allclose(_midi(f0[frames]), note.pitch,
                                   atol=1e-4)
    # Frame i is at i / frame_rate: note 0 spans frames 25 .. 149.
    assert index[24] == -1 and index[25] == 0 and index[149] == 0
    assert index[150] == 1
    # Releases keep the pitch; before the first note, its pitch.
    assert _midi(f0[260]) == pytest.approx(67.5, abs=1e-4)
    assert _midi(f0[0]) == pytest.approx(60, abs=1e-4)
    assert f0.dtype == np.float32 and curves['loudness_db'].dtype == np.float32


def test_notes_to_curves_loudness_envelope():
    stats = _stats()
    curves = generation.notes_to_curves(NOTES, FRAME_RATE, stats,
                                        attack_s=0.04, release_s=0.2)
    loud, index = curves['loudness_db'], curves['note_index']
    levels = generation.velocity_to_loudness([100, 40, 127], stats)
    for i in range(3):
        np.testing.assert_allclose(loud[curves['sustained'] & (index == i)],
                                   levels[i], atol=1e-4)
    silence = stats['min_loudness']
    assert loud[0] == pytest.approx(silence)
    # Attack: 10 frames rising from silence to the level.
    assert np.all(np.diff(loud[25:35]) > 0)
    # Legato: no dip below either level between notes 0 and 1.
    assert loud[145:160].min() >= min(levels[0], levels[1]) - 1e-4
    # Release after note 1 (frame 250): linear in dB to silence in 50 frames.
    np.testing.assert_allclose(np.diff(loud[250:300]),
                               (silence - levels[1]) / 50, atol=1e-3)
    assert loud[310] == pytest.approx(silence)
    # Tail: release + 0.3 s after the last offset.
    assert len(loud) == int(np.ceil((1.8 + 0.2 + 0.3) * FRAME_RATE)) + 1


def test_notes_to_curves_vibrato():
    notes = [generation.Note(0.0, 2.0, 69, 90),
             generation.Note(2.0, 3.0, 69, 90, vibrato_cents=0.0)]
    curves = generation.notes_to_curves(notes, FRAME_RATE, None,
                                        vibrato_cents=30, vibrato_hz=5.0,
                                        vibrato_delay_s=0.5)
    cents = 100 * (_midi(curves['f0_hz']) - 69)
    assert np.abs(cents[:25]).max() < 15          # Fading in.
    assert np.abs(cents[250:500]).max() == pytest.approx(30, abs=0.5)
    np.testing.assert_allclose(cents[500:750], 0, atol=1e-3)  # Per-note 0.


def test_velocity_to_loudness_maps_into_dataset_quantiles():
    stats = _stats()
    qt = postprocessing.QuantileTransformer.from_dict(
        stats['quantile_transform'])
    loud = generation.velocity_to_loudness([1, 64, 127], stats)
    np.testing.assert_allclose(
        loud, qt.inverse_transform(np.array([[0.05], [0.5], [0.95]]))[:, 0],
        atol=1e-4)
    assert loud[0] < loud[1] < loud[2]
    np.testing.assert_allclose(generation.velocity_to_loudness([1, 127], None),
                               generation.DEFAULT_LOUDNESS_RANGE_DB)


def test_notes_to_curves_errors():
    with pytest.raises(ValueError, match='notes must not be empty'):
        generation.notes_to_curves([], FRAME_RATE)
    with pytest.raises(ValueError, match='attack_s'):
        generation.notes_to_curves(NOTES, FRAME_RATE, attack_s=-1)


# z sampling -------------------------------------------------------------------------
def _gmm():
    _, weights, means, covs = _mixture()
    return generation.ZGaussianMixture(weights, means, covs)


def test_sample_z_holds_per_note_and_crossfades():
    curves = generation.notes_to_curves(NOTES, FRAME_RATE)
    index = curves['note_index']
    z = generation.sample_z(_gmm(), index, seed=3, crossfade_frames=10)
    draws = _gmm().sample(3, np.random.default_rng(3))
    assert z.shape == (len(index), 3)
    # Constant away from the switches (onsets at frames 25, 150, 325).
    np.testing.assert_allclose(z[:140], np.broadcast_to(draws[0], (140, 3)),
                               rtol=1e-5)
    np.testing.assert_allclose(z[160:320], np.broadcast_to(draws[1], (160, 3)),
                               rtol=1e-5)
    np.testing.assert_allclose(z[335:], np.broadcast_to(
        draws[2], (len(z) - 335, 3)), rtol=1e-5)
    # A linear ramp of 10 frames around the onset of note 1.
    ramp = z[145:156, 0]
    assert np.allclose(np.diff(ramp), (draws[1, 0] - draws[0, 0]) / 10,
                       atol=1e-5)
    np.testing.assert_array_equal(
        z, generation.sample_z(_gmm(), index, seed=3, crossfade_frames=10))
    assert not np.array_equal(
        z, generation.sample_z(_gmm(), index, seed=4, crossfade_frames=10))


def test_sample_z_per_frame_flickers():
    index = generation.notes_to_curves(NOTES, FRAME_RATE)['note_index']
    z = generation.sample_z(_gmm(), index, seed=0, per='frame')
    assert np.all(np.abs(np.diff(z, axis=0)).max(axis=1) > 0)
    with pytest.raises(ValueError, match="per must be"):
        generation.sample_z(_gmm(), index, per='segment')
    with pytest.raises(ValueError, match='no note frame'):
        generation.sample_z(_gmm(), np.full(10, -1))


# Measurement ---------------------------------------------------------------------------
def test_spectral_centroid_flicker():
    sr = 16000
    t = np.arange(sr) / sr
    steady = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 9))
    # Every 8 ms frame alternates a dark and a bright spectrum.
    bright = np.repeat(np.arange(len(t) // 64 + 1) % 2, 64)[:len(t)]
    flicker = np.where(bright, steady, np.sin(2 * np.pi * 220 * t))
    inner = np.zeros(251, bool)
    inner[5:-5] = True  # The edge frames see the zero padding.
    steady_cents = generation.spectral_centroid_flicker(steady, sr, 250,
                                                        inner)
    flicker_cents = generation.spectral_centroid_flicker(flicker, sr, 250,
                                                         inner)
    assert steady_cents < 3
    assert flicker_cents > 20 * steady_cents
    mask = np.zeros(251, bool)
    assert np.isnan(generation.spectral_centroid_flicker(steady, sr, 250, mask))
