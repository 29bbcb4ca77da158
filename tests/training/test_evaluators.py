"""Tests of ddsp.training.evaluators on known answers."""
import os
import sys
import types

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp.training import evaluators
from ddsp.training import metrics

sys.path.insert(0, os.path.dirname(__file__))
from eval_testlib import read_events  # noqa: E402

SR = 16000
FRAME_RATE = 250


def _tone(freq=440.0, secs=1.0, amp=0.5):
    t = np.arange(int(secs * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def scalar(value):
    return float(tf.make_ndarray(value.tensor))


def _model(encoder_keys=None):
    """Stand-in for a model: only its encoder's output keys matter."""
    encoder = (None if encoder_keys is None
               else types.SimpleNamespace(output_keys=encoder_keys))
    return types.SimpleNamespace(encoder=encoder)


def test_model_predicts_f0():
    assert not evaluators.model_predicts_f0(_model())
    assert not evaluators.model_predicts_f0(_model(['z']))
    assert evaluators.model_predicts_f0(_model(['f0_hz', 'f0_scaled']))


def test_basic_evaluator_loss_means_and_summaries(tmp_path):
    evaluator = evaluators.BasicEvaluator(SR, FRAME_RATE)
    evaluator.evaluate({}, {}, {'spectral_loss': tf.constant(1.0),
                                'total_loss': tf.constant(3.0)})
    evaluator.evaluate({}, {}, {'spectral_loss': tf.constant(2.0),
                                'total_loss': tf.constant(6.0)})
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        results = evaluator.flush(step=5)
    writer.flush()
    assert results == {'losses/spectral_loss': 1.5, 'losses/total_loss': 4.5}
    tags = read_events(tmp_path)
    assert tags['losses/total_loss'][0][0] == 5
    assert scalar(tags['losses/total_loss'][0][1]) == pytest.approx(4.5)
    # Flush resets the means.
    evaluator.evaluate({}, {}, {'total_loss': 10.0})
    assert evaluator.flush(6)['losses/total_loss'] == 10.0


def test_basic_evaluator_sample_writes_audio_and_images(tmp_path):
    audio = np.stack([_tone(), _tone(220.0)])
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        evaluators.BasicEvaluator(SR, FRAME_RATE).sample(
            {'audio': audio}, {'audio_gen': tf.constant(audio * 0.5)}, step=3)
    writer.flush()
    tags = read_events(tmp_path)
    assert {'audio_generated', 'audio_original', 'waveform',
            'first_125ms/waveform', 'spectrogram'} <= set(tags)
    assert all(step == 3 for entries in tags.values() for step, _ in entries)
    clip = tf.make_ndarray(tags['audio_original'][0][1].tensor)
    assert clip.shape == (2, 2)  # Two encoded clips (wav, label).
    decoded, rate = tf.audio.decode_wav(clip[0, 0])
    assert int(rate) == SR and decoded.shape == (SR, 1)
    np.testing.assert_allclose(decoded[:, 0], audio[0], atol=1e-4)


def test_f0_ld_evaluator_identical_audio_has_zero_loudness_error():
    audio = np.stack([_tone(amp=0.5), _tone(330.0, amp=0.05)])
    evaluator = evaluators.F0LdEvaluator(SR, FRAME_RATE, run_f0_crepe=False)
    evaluator.set_model(_model())
    evaluator.evaluate({'audio': audio}, {'audio_gen': audio}, {})
    assert evaluator.flush(0) == {'metrics/loudness/loudness_db': 0.0}
    # Half the amplitude is 6.02 dB quieter.
    evaluator.evaluate({'audio': audio}, {'audio_gen': audio / 2}, {})
    assert evaluator.flush(1)['metrics/loudness/loudness_db'] == (
        pytest.approx(20 * np.log10(2), abs=0.05))


def test_f0_ld_evaluator_scores_predicted_f0():
    """A model with an f0 encoder: F0Metrics on its f0 output. An octave
    error misses every pitch but no chroma."""
    n_frames = 250
    audio = np.stack([_tone(), _tone()])
    batch = {'audio': audio,
             'f0_hz': np.full((2, n_frames), 440.0, np.float32),
             'f0_confidence': np.ones((2, n_frames), np.float32)}
    evaluator = evaluators.F0LdEvaluator(SR, FRAME_RATE)
    evaluator.set_model(_model(['f0_hz', 'f0_scaled']))
    outputs = {'audio_gen': audio,
               'f0_hz': np.full((2, n_frames, 1), 880.0, np.float32)}
    evaluator.evaluate(batch, outputs, {})
    results = evaluator.flush(0)
    assert results == {
        'metrics/loudness/loudness_db': 0.0,
        'metrics/f0/f0_dist': pytest.approx(12.0, abs=1e-4),
        'metrics/f0/raw_pitch_accuracy': 0.0,
        'metrics/f0/raw_chroma_accuracy': 1.0}
    evaluator.evaluate(batch, dict(outputs, f0_hz=batch['f0_hz']), {})
    results = evaluator.flush(1)
    assert results['metrics/f0/raw_pitch_accuracy'] == 1.0
    assert results['metrics/f0/f0_dist'] == pytest.approx(0.0, abs=1e-6)


def test_f0_ld_evaluator_skips_f0_without_f0_in_the_data(caplog):
    audio = _tone()[None]
    evaluator = evaluators.F0LdEvaluator(SR, FRAME_RATE)
    evaluator.evaluate({'audio': audio}, {'audio_gen': audio}, {})
    assert 'f0 metrics are skipped' in caplog.text
    results = evaluator.flush(0)
    assert results['metrics/loudness/loudness_db'] == 0.0
    assert results['metrics/f0_crepe/f0_dist'] is None


def test_f0_ld_evaluator_runs_crepe_on_the_audio(tmp_path):
    """No f0 encoder: CREPE ('tiny') on the generated audio. Right pitch:
    ~0 semitones; a fifth too high: 7.02 semitones. Batches of one
    example, so that each distance is checked on its own."""
    n_frames = 250  # 'same' framing of 1 s.
    batch = {'audio': _tone(440.0)[None],
             'f0_hz': np.full((1, n_frames), 440.0, np.float32),
             'f0_confidence': np.ones((1, n_frames), np.float32)}
    evaluator = evaluators.F0LdEvaluator(SR, FRAME_RATE,
                                         crepe_model_capacity='tiny')
    evaluator.set_model(_model(['z']))
    evaluator.evaluate(batch, {'audio_gen': batch['audio']}, {})
    results = evaluator.flush(1)
    assert results['metrics/f0_crepe/outlier_ratio'] == 0.0
    assert results['metrics/f0_crepe/f0_dist'] == pytest.approx(0.0,
                                                                abs=0.15)
    fifth = {'audio_gen': _tone(660.0)[None]}
    evaluator.evaluate(batch, fifth, {})
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        evaluator.sample(batch, fifth, step=2)
        results = evaluator.flush(2)
    writer.flush()
    assert results['metrics/f0_crepe/outlier_ratio'] == 0.0
    assert results['metrics/f0_crepe/f0_dist'] == pytest.approx(
        12 * np.log2(1.5), abs=0.15)
    tags = read_events(tmp_path)
    assert 'f0_crepe/f0_summary' in tags
    assert scalar(tags['metrics/f0_crepe/f0_dist'][0][1]) == pytest.approx(
        results['metrics/f0_crepe/f0_dist'], rel=1e-5)


def test_crepe_capacity_and_rates_reach_the_metrics():
    evaluator = evaluators.F0LdEvaluator(48000, 50,
                                         crepe_model_capacity='tiny',
                                         crepe_frame_rate=25)
    # pylint: disable=protected-access
    assert evaluator._f0_crepe_metrics._model_capacity == 'tiny'
    assert evaluator._f0_crepe_metrics._crepe_frame_rate == 25
    assert evaluator._loudness_metrics._sample_rate == 48000
    assert evaluator._f0_metrics._frame_rate == 50
    assert evaluator._f0_crepe_metrics._frame_rate == 50


def test_gin_registration():
    @gin.configurable
    def evaluator_list(classes=()):
        return classes

    try:
        gin.parse_config([
            'import ddsp.training.evaluators',
            'evaluator_list.classes = [@BasicEvaluator, '
            '@evaluators.F0LdEvaluator, @ddsp.training.evaluators.'
            'BaseEvaluator]',
            "F0LdEvaluator.crepe_model_capacity = 'tiny'",
        ])
        basic, f0_ld, base = evaluator_list()
        assert isinstance(basic(SR, FRAME_RATE), evaluators.BasicEvaluator)
        made = f0_ld(SR, FRAME_RATE)
        assert isinstance(made, evaluators.F0LdEvaluator)
        # pylint: disable=protected-access
        assert made._f0_crepe_metrics._model_capacity == 'tiny'
        with pytest.raises(NotImplementedError):
            base(SR, FRAME_RATE).evaluate({}, {}, {})
    finally:
        gin.clear_config()


def test_metrics_f0_of_audio_matches_ground_truth_frames(monkeypatch):
    seen = {}

    def fake_compute_f0(audio, frame_rate, **kwargs):
        seen.update(kwargs)
        n = 251 if kwargs['padding'] == 'center' else 250
        return np.full((len(audio), n), 440.0), np.ones((len(audio), n))

    monkeypatch.setattr(metrics.spectral_ops, 'compute_f0', fake_compute_f0)
    metric = metrics.F0CrepeMetrics(SR, FRAME_RATE, model_capacity='tiny')
    assert metric.f0_of_audio(np.zeros((2, SR)), 250).shape == (2, 250)
    assert seen['padding'] == 'same' and seen['model_capacity'] == 'tiny'
    assert metric.f0_of_audio(np.zeros(SR), 251).shape == (1, 251)
    assert seen['padding'] == 'center'
