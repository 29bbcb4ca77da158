"""Tests of ddsp.training.metrics (known answers; CREPE is monkeypatched)."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import spectral_ops
from ddsp.training import metrics

SR = 16000
FRAME_RATE = 250


def _sine(freq=440.0, secs=0.5, amp=0.5):
    t = np.arange(int(secs * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# Helpers and accuracies ---------------------------------------------------------------
def test_helpers():
    assert metrics.squeeze(np.ones((1, 5, 1))).shape == (5,)
    np.testing.assert_array_equal(metrics.l1_distance([1, 2, 3], [[2, 2]]),
                                  [1, 0])
    assert metrics.is_outlier([0.1, 0.84])
    assert not metrics.is_outlier([[0.1, 0.9]])


def test_f0_dist_conf_thresh():
    f0 = np.full(10, 440.0)
    conf = np.full(10, 0.9)
    assert metrics.f0_dist_conf_thresh(f0, f0, conf) == 0.0
    # One semitone sharp on confident frames only.
    gen = f0 * 2**(1 / 12)
    conf[:5] = 0.1
    gen[:5] = 880.0  # Ignored: unconfident.
    assert metrics.f0_dist_conf_thresh(f0, gen, conf) == pytest.approx(
        1.0, abs=1e-4)
    assert metrics.f0_dist_conf_thresh(f0, gen, conf * 0) is None


@pytest.mark.parametrize('est_factor, rpa, rca', [
    (1.0, 1.0, 1.0),          # Identical.
    (2.0, 0.0, 1.0),          # Octave error: wrong pitch, right chroma.
    (450.0 / 440.0, 1.0, 1.0),  # +10 Hz at 440 = 38.9 cents: within 50.
    (660.0 / 440.0, 0.0, 0.0),  # +220 Hz = 702 cents (chroma 498): outside.
])
def test_raw_pitch_and_chroma_accuracy(est_factor, rpa, rca):
    ref = np.full(20, 440.0)
    est = ref * est_factor
    assert metrics.raw_pitch_accuracy(ref, est) == pytest.approx(rpa)
    assert metrics.raw_chroma_accuracy(ref, est) == pytest.approx(rca)


def test_accuracy_voicing_and_tolerance():
    ref = np.array([440.0, 440.0, 440.0, 0.0])
    est = np.array([440.0, 0.0, 880.0, 440.0])
    # Unvoiced reference frames are excluded; unvoiced estimates are wrong.
    assert metrics.raw_pitch_accuracy(ref, est) == pytest.approx(1 / 3)
    assert metrics.raw_chroma_accuracy(ref, est) == pytest.approx(2 / 3)
    voicing = np.array([True, False, False, True])
    assert metrics.raw_pitch_accuracy(ref, est, voicing) == 1.0
    assert metrics.raw_pitch_accuracy(ref, est, np.zeros(4, bool)) is None
    assert metrics.raw_pitch_accuracy([440.0], [450.0],
                                      cent_tolerance=30) == 0.0
    np.testing.assert_allclose(metrics.cents_error([440.0], [880.0]), [1200])
    with pytest.raises(ValueError, match='shape'):
        metrics.raw_pitch_accuracy(ref, est[:2])


def test_mean():
    mean = metrics.Mean('x')
    assert mean.result() is None
    mean.update_state(1.0)
    mean.update_state([2.0, 3.0])
    assert mean.result() == 2.0 and mean.count == 3
    mean.reset_state()
    assert mean.result() is None


# compute_audio_features ---------------------------------------------------------------
def _fake_compute_f0(calls):
    """compute_f0 stand-in: frame count of the real framing, f0 = 440 Hz."""
    def fake(audio, frame_rate, viterbi=True, padding='center',
             model_capacity='full', crepe_frame_rate=None, sample_rate=16000):
        audio = np.asarray(audio)
        calls.append(dict(shape=audio.shape, frame_rate=frame_rate,
                          viterbi=viterbi, padding=padding,
                          model_capacity=model_capacity,
                          crepe_frame_rate=crepe_frame_rate,
                          sample_rate=sample_rate))
        n_frames, _ = spectral_ops.get_framed_lengths(
            audio.shape[-1], 1024, sample_rate / frame_rate, padding)
        shape = audio.shape[:-1] + (n_frames,)
        return (np.full(shape, 440.0, np.float32),
                np.full(shape, 0.9, np.float32))
    return fake


@pytest.mark.parametrize('sample_rate, padding, n_frames', [
    (16000, 'center', 126), (16000, 'same', 125), (48000, 'center', 126)])
def test_compute_audio_features(monkeypatch, sample_rate, padding, n_frames):
    calls = []
    monkeypatch.setattr(spectral_ops, 'compute_f0', _fake_compute_f0(calls))
    t = np.arange(sample_rate // 2) / sample_rate
    audio = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    features = metrics.compute_audio_features(
        audio[None, :], sample_rate=sample_rate, padding=padding,
        model_capacity='tiny', crepe_frame_rate=50)
    assert set(features) == {'audio', 'loudness_db', 'f0_hz', 'f0_confidence'}
    for key in ('loudness_db', 'f0_hz', 'f0_confidence'):
        assert features[key].shape == (n_frames,)
        assert features[key].dtype == np.float32
    assert features['audio'].shape == (sample_rate // 2,)
    # CREPE runs on the 16 kHz version, with the requested settings.
    assert calls == [dict(shape=(8000,), frame_rate=250, viterbi=True,
                          padding=padding, model_capacity='tiny',
                          crepe_frame_rate=50, sample_rate=16000)]
    # Loudness of the same sine is the same at any input rate (16 kHz path).
    reference = spectral_ops.compute_loudness(_sine(), SR, FRAME_RATE,
                                              padding=padding)
    np.testing.assert_allclose(features['loudness_db'][5:-5],
                               np.asarray(reference)[5:-5], atol=0.1)


# Metric classes ----------------------------------------------------------------------
def test_loudness_metrics():
    audio = np.stack([_sine(), _sine(amp=0.1)])
    metric = metrics.LoudnessMetrics(SR, FRAME_RATE)
    metric.update_state({'audio': audio}, audio)
    assert metric.flush(0) == {'loudness_db': 0.0}
    # Half the amplitude: 20 log10(2) = 6.02 dB quieter on every frame except
    # where framing touches the -80 dB floor (none for these sines).
    metric.update_state({'audio': audio}, audio / 2)
    assert metric.result()['loudness_db'] == pytest.approx(6.02, abs=0.05)
    metric.flush(1)
    # From dataset loudness ('same' framing inferred from its length).
    loudness = np.asarray(spectral_ops.compute_loudness(audio, SR, FRAME_RATE,
                                                        padding='same'))
    assert loudness.shape == (2, 125)
    metric.update_state({'loudness_db': loudness}, audio)
    assert metric.flush(2)['loudness_db'] == pytest.approx(0.0, abs=1e-4)
    assert metric.result() == {'loudness_db': None}  # Reset by flush.


def test_flush_writes_summaries(tmp_path):
    metric = metrics.LoudnessMetrics(SR, FRAME_RATE, name='ld')
    metric.update_state({'audio': _sine()}, _sine() / 2)
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        results = metric.flush(step=7)
    writer.flush()
    events = list(tmp_path.glob('events.out.tfevents.*'))
    assert events
    tags = {}
    for record in tf.data.TFRecordDataset([str(e) for e in events]):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            tags[value.tag] = (event.step,
                               float(tf.make_ndarray(value.tensor)))
    assert tags['metrics/ld/loudness_db'][0] == 7
    assert tags['metrics/ld/loudness_db'][1] == pytest.approx(
        results['loudness_db'], rel=1e-6)


def _crepe_batch(n_frames=126):
    return {
        'f0_hz': np.full((3, n_frames), 440.0, np.float32),
        'f0_confidence': np.stack([np.full(n_frames, 0.95),
                                   np.full(n_frames, 0.95),
                                   np.full(n_frames, 0.5)]).astype(np.float32),
    }


def test_f0_crepe_metrics(monkeypatch):
    """Example 0 exact; example 1 one octave off (12 semitones: not above
    the threshold, enters f0_dist), then two octaves off (outlier); example
    2 has an untrackable ground truth (always an outlier)."""
    calls = []
    gen_f0 = {}

    def fake(audio, frame_rate, **kwargs):
        calls.append(dict(shape=np.shape(audio), frame_rate=frame_rate,
                          **kwargs))
        f0 = np.asarray(gen_f0['value'], np.float32)
        return f0, np.ones_like(f0)

    monkeypatch.setattr(spectral_ops, 'compute_f0', fake)
    metric = metrics.F0CrepeMetrics(SR, FRAME_RATE, model_capacity='tiny')
    batch = _crepe_batch()
    audio_gen = np.zeros((3, 8000), np.float32)

    gen_f0['value'] = np.stack([np.full(126, 440.0), np.full(126, 880.0),
                                np.full(126, 440.0)])
    metric.update_state(batch, audio_gen)
    assert calls[0]['padding'] == 'center'  # 126 frames for 0.5 s.
    assert calls[0]['model_capacity'] == 'tiny'
    assert calls[0]['sample_rate'] == SR and calls[0]['viterbi']
    results = metric.flush(0)
    assert results['f0_dist'] == pytest.approx(6.0, abs=1e-3)  # (0 + 12) / 2
    assert results['outlier_ratio'] == pytest.approx(1 / 3)

    gen_f0['value'] = np.stack([np.full(125, 440.0), np.full(125, 1760.0),
                                np.full(125, 440.0)])
    metric.update_state(_crepe_batch(125), audio_gen)
    assert calls[1]['padding'] == 'same'  # 125 frames for 0.5 s.
    results = metric.flush(1)
    assert results['f0_dist'] == pytest.approx(0.0, abs=1e-4)
    assert results['outlier_ratio'] == pytest.approx(2 / 3)


def test_f0_metrics_names_and_values():
    metric = metrics.F0Metrics(SR, FRAME_RATE)
    batch = {'f0_hz': np.full((2, 100), 440.0, np.float32),
             'f0_confidence': np.full((2, 100), 0.9, np.float32)}
    metric.update_state(batch, batch['f0_hz'])
    assert metric.flush(0) == {'f0_dist': 0.0, 'raw_pitch_accuracy': 1.0,
                               'raw_chroma_accuracy': 1.0}
    # Octave errors: RPA 0, RCA 1 (the reference library swapped the names).
    metric.update_state(batch, 2 * batch['f0_hz'][..., None])
    results = metric.flush(1)
    assert results['raw_pitch_accuracy'] == 0.0
    assert results['raw_chroma_accuracy'] == 1.0
    assert results['f0_dist'] == pytest.approx(12.0, abs=1e-3)
    # Shorter predictions are resampled to the ground-truth frames.
    metric.update_state(batch, np.full((2, 25), 450.0))
    results = metric.flush(2)
    assert results['raw_pitch_accuracy'] == 1.0
    assert results['f0_dist'] == pytest.approx(12 * np.log2(450 / 440),
                                               abs=1e-3)
    # Unconfident ground truth: nothing to score.
    metric.update_state(dict(batch, f0_confidence=batch['f0_confidence'] * 0),
                        batch['f0_hz'])
    assert metric.flush(3) == {'f0_dist': None, 'raw_pitch_accuracy': None,
                               'raw_chroma_accuracy': None}


@pytest.mark.slow
def test_f0_crepe_metrics_with_real_crepe():
    audio = np.stack([_sine(440.0), _sine(440.0)])
    features = metrics.compute_audio_features(audio[0],
                                              model_capacity='tiny')
    batch = {'f0_hz': features['f0_hz'][None].repeat(2, 0),
             'f0_confidence': features['f0_confidence'][None].repeat(2, 0)}
    assert np.median(features['f0_hz']) == pytest.approx(440.0, rel=0.01)
    metric = metrics.F0CrepeMetrics(SR, FRAME_RATE, model_capacity='tiny')
    metric.update_state(batch, audio)
    results = metric.flush(0)
    assert results['outlier_ratio'] == 0.0
    assert results['f0_dist'] < 0.1
