"""Tests of ddsp.training.preprocessing."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import core, spectral_ops
from ddsp.training import preprocessing

B, SR, FRAME_RATE = 2, 16000, 250
N_SAMPLES = 8000  # 0.5 s
N_FRAMES = 125  # 'same' framing of 0.5 s at 250 frames / s


def audio():
    t = np.arange(N_SAMPLES) / SR
    amplitude = np.linspace(0.05, 0.5, N_SAMPLES)
    tone = amplitude * np.sin(2 * np.pi * 440.0 * t)
    return tf.constant(np.stack([tone, 0.5 * tone]), tf.float32)


def f0_hz(n_frames=N_FRAMES):
    return tf.fill([B, n_frames], 440.0)


# ---------------------- Scaling -----------------------------------------------
def test_scaling_round_trips():
    db = tf.constant([-80.0, -40.0, -12.5, 0.0])
    np.testing.assert_allclose(preprocessing.scale_db(db),
                               [0.0, 0.5, 1.0 - 12.5 / 80.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(
        preprocessing.inv_scale_db(preprocessing.scale_db(db)), db, atol=1e-5)
    hz = tf.constant([27.5, 110.0, 440.0, 4186.0])
    scaled = preprocessing.scale_f0_hz(hz)
    np.testing.assert_allclose(scaled, core.hz_to_midi(hz) / 127.0, rtol=1e-6)
    assert np.all((scaled > 0) & (scaled < 1))
    np.testing.assert_allclose(preprocessing.inv_scale_f0_hz(scaled), hz,
                               rtol=1e-5)
    f0, ld = preprocessing.F0LoudnessPreprocessor.invert_scaling(
        scaled, preprocessing.scale_db(db))
    np.testing.assert_allclose(f0, hz, rtol=1e-5)
    np.testing.assert_allclose(ld, db, atol=1e-5)


def test_at_least_3d():
    assert preprocessing.at_least_3d(1.0).shape == (1, 1, 1)
    assert preprocessing.at_least_3d(np.zeros([5])).shape == (1, 5, 1)
    assert preprocessing.at_least_3d(tf.zeros([2, 5])).shape == (2, 5, 1)
    assert preprocessing.at_least_3d(tf.zeros([2, 5, 3])).shape == (2, 5, 3)


# ---------------------- F0LoudnessPreprocessor --------------------------------
def test_loudness_is_kept_by_default():
    loudness = tf.linspace(-60.0, -10.0, N_FRAMES)[tf.newaxis] * tf.ones(
        [B, 1])
    preprocessor = preprocessing.F0LoudnessPreprocessor(time_steps=N_FRAMES)
    assert not preprocessor.compute_loudness
    # Audio is present but loudness is not recomputed from it.
    outputs = preprocessor({'loudness_db': loudness, 'f0_hz': f0_hz(),
                            'audio': audio()})
    assert set(outputs) == {'f0_hz', 'loudness_db', 'f0_scaled', 'ld_scaled'}
    np.testing.assert_allclose(outputs['loudness_db'][..., 0], loudness,
                               atol=1e-5)
    np.testing.assert_allclose(outputs['ld_scaled'],
                               preprocessing.scale_db(outputs['loudness_db']))
    np.testing.assert_allclose(outputs['f0_scaled'],
                               preprocessing.scale_f0_hz(outputs['f0_hz']))
    # Positional inputs, as magenta/ddsp: (loudness_db, f0_hz).
    positional = preprocessor(loudness, f0_hz())
    np.testing.assert_allclose(positional['ld_scaled'], outputs['ld_scaled'])


def test_loudness_is_recomputed_when_asked():
    preprocessor = preprocessing.F0LoudnessPreprocessor(
        time_steps=N_FRAMES, compute_loudness=True)
    provided = tf.fill([B, N_FRAMES], -70.0)
    outputs = preprocessor({'loudness_db': provided, 'f0_hz': f0_hz(),
                            'audio': audio()})
    expected = spectral_ops.compute_loudness(audio(), sample_rate=SR,
                                             frame_rate=FRAME_RATE)
    expected = core.resample(expected[..., tf.newaxis], N_FRAMES)
    np.testing.assert_allclose(outputs['loudness_db'], expected, atol=1e-4)
    assert np.max(np.abs(outputs['loudness_db'][..., 0] - provided)) > 10.0
    # The same without a loudness_db input.
    outputs = preprocessor({'f0_hz': f0_hz(), 'audio': audio()})
    np.testing.assert_allclose(outputs['loudness_db'], expected, atol=1e-4)


def test_missing_inputs_raise_clear_errors():
    keep = preprocessing.F0LoudnessPreprocessor(time_steps=N_FRAMES)
    with pytest.raises(ValueError, match='loudness_db.*compute_loudness'):
        keep({'f0_hz': f0_hz(), 'audio': audio()})
    recompute = preprocessing.F0LoudnessPreprocessor(time_steps=N_FRAMES,
                                                     compute_loudness=True)
    with pytest.raises(ValueError, match='audio'):
        recompute({'f0_hz': f0_hz(),
                   'loudness_db': tf.zeros([B, N_FRAMES])})
    with pytest.raises(ValueError, match='f0_hz'):
        keep({'loudness_db': tf.zeros([B, N_FRAMES])})


def test_features_are_resampled_to_time_steps():
    preprocessor = preprocessing.F0LoudnessPreprocessor(time_steps=40)
    outputs = preprocessor({'loudness_db': tf.fill([B, N_FRAMES], -30.0),
                            'f0_hz': f0_hz()})
    for value in outputs.values():
        assert value.shape == (B, 40, 1)
    np.testing.assert_allclose(outputs['f0_hz'], 440.0, rtol=1e-6)
    np.testing.assert_allclose(outputs['loudness_db'], -30.0, rtol=1e-6)
    # 1-D features get a batch dimension.
    outputs = preprocessor({'loudness_db': tf.fill([N_FRAMES], -30.0),
                            'f0_hz': tf.fill([N_FRAMES], 440.0)})
    assert outputs['f0_scaled'].shape == (1, 40, 1)


def test_preprocessor_in_tf_function():
    preprocessor = preprocessing.F0LoudnessPreprocessor(
        time_steps=N_FRAMES, compute_loudness=True)
    features = {'f0_hz': f0_hz(), 'audio': audio()}
    eager = preprocessor(features)
    traced = tf.function(preprocessor)(features)
    for key in eager:
        np.testing.assert_allclose(traced[key], eager[key], atol=1e-5)


# ---------------------- F0PowerPreprocessor -----------------------------------
def expected_power(frame_size=64):
    power = spectral_ops.compute_power(audio(), sample_rate=SR,
                                       frame_rate=FRAME_RATE,
                                       frame_size=frame_size)
    return core.resample(power[..., tf.newaxis], N_FRAMES)


@pytest.mark.parametrize('inputs', ['audio', 'power', 'both'])
def test_f0_power_preprocessor(inputs):
    preprocessor = preprocessing.F0PowerPreprocessor(time_steps=N_FRAMES)
    provided = expected_power() + 1.0  # Distinguishable from the computed.
    features = {'f0_hz': f0_hz()}
    if inputs in ('audio', 'both'):
        features['audio'] = audio()
    if inputs in ('power', 'both'):
        features['power_db'] = provided[..., 0]
    outputs = preprocessor(features)
    assert set(outputs) == {'f0_hz', 'pw_db', 'f0_scaled', 'pw_scaled'}
    for value in outputs.values():
        assert value.shape == (B, N_FRAMES, 1)
    # The power input is used when given, else power is computed.
    expected = expected_power() if inputs == 'audio' else provided
    np.testing.assert_allclose(outputs['pw_db'], expected, atol=1e-4)
    np.testing.assert_allclose(outputs['pw_scaled'],
                               preprocessing.scale_db(expected), atol=1e-5)
    # The power of the tone is well above the -80 dB floor.
    assert np.all(outputs['pw_db'].numpy()[:, 10:-10] > -40.0)


def test_f0_power_preprocessor_needs_power_or_audio():
    preprocessor = preprocessing.F0PowerPreprocessor(time_steps=N_FRAMES)
    with pytest.raises(ValueError, match='power_db'):
        preprocessor({'f0_hz': f0_hz()})


# ---------------------- OnlineF0PowerPreprocessor -----------------------------
def test_online_preprocessor_computes_power_in_graph():
    preprocessor = preprocessing.OnlineF0PowerPreprocessor(
        frame_rate=50, compute_f0=False, crepe_saved_model_path=None)
    n_frames = N_SAMPLES // 320 + 1  # 'center' padding
    features = {'audio': audio(), 'f0_hz': tf.fill([B, n_frames], 220.0)}
    outputs = tf.function(preprocessor)(features)
    for value in outputs.values():
        assert value.shape == (B, n_frames, 1)
    expected = spectral_ops.compute_power(audio(), frame_rate=50,
                                          frame_size=1024)
    np.testing.assert_allclose(outputs['pw_db'][..., 0], expected, atol=1e-4)
    np.testing.assert_allclose(outputs['f0_confidence'], 1.0)
    # No silent resampling: a wrong number of f0 frames is an error.
    with pytest.raises(ValueError, match='frames'):
        preprocessor({'audio': audio(), 'f0_hz': tf.fill([B, 30], 220.0)})
    with pytest.raises(ValueError, match='f0_hz'):
        preprocessor({'audio': audio()})


def test_online_preprocessor_computes_f0_with_crepe():
    preprocessor = preprocessing.OnlineF0PowerPreprocessor(
        frame_rate=50, crepe_saved_model_path='tiny')
    outputs = preprocessor({'audio': audio()})
    assert outputs['f0_hz'].shape == (B, N_SAMPLES // 320 + 1, 1)
    f0 = outputs['f0_hz'].numpy()[:, 3:-3]
    np.testing.assert_allclose(f0, 440.0, rtol=0.03)
