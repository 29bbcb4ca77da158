"""Tests of ddsp.losses."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import losses

SR = 16000


def _tone(batch=2, n=8000, f0=330.0, seed=0):
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    audio = 0.5 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal([batch, n])
    return audio.astype(np.float32)


ALL_TERMS = dict(mag_weight=1.0, delta_time_weight=1.0, delta_freq_weight=1.0,
                 cumsum_freq_weight=1.0, logmag_weight=1.0, loudness_weight=1.0)


@pytest.mark.parametrize('loss_type, expected', [
    ('L1', lambda t, v: np.mean(np.abs(t - v))),
    ('L2', lambda t, v: np.mean((t - v) ** 2)),
    ('COSINE', lambda t, v: np.mean(1 - np.sum(t * v, -1) / (
        np.linalg.norm(t, axis=-1) * np.linalg.norm(v, axis=-1)))),
])
def test_mean_difference_matches_numpy(loss_type, expected):
    rng = np.random.default_rng(0)
    t, v = rng.standard_normal([2, 3, 5]), rng.standard_normal([2, 3, 5])
    np.testing.assert_allclose(losses.mean_difference(t, v, loss_type),
                               expected(t, v), rtol=1e-5)


def test_mean_difference_weights_and_bad_type():
    t, v = np.ones([2, 4]), np.zeros([2, 4])
    weights = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(losses.mean_difference(t, v, 'L1', weights), 0.25)
    with pytest.raises(ValueError, match='loss_type'):
        losses.mean_difference(t, v, 'L3')


def test_spectral_loss_zero_for_identical_audio_and_grows_with_distortion():
    loss = losses.SpectralLoss(**ALL_TERMS)
    target = _tone()
    assert float(loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(1)
    values = []
    for level in (0.01, 0.05, 0.2):
        noisy = target + level * rng.standard_normal(target.shape).astype(np.float32)
        values.append(float(loss(target, noisy)))
    assert values[0] < values[1] < values[2]
    # On magnitudes, a different pitch is further than a little noise.
    mag_loss = losses.SpectralLoss()
    slightly_noisy = target + 0.01 * rng.standard_normal(target.shape)
    assert float(mag_loss(target, _tone(f0=440.0))) > 3 * float(
        mag_loss(target, slightly_noisy.astype(np.float32)))


def test_spectral_loss_gradient_is_finite_and_nonzero():
    loss = losses.SpectralLoss(**ALL_TERMS)
    target = tf.constant(_tone())
    audio = tf.constant(_tone(f0=350.0, seed=1))
    with tf.GradientTape() as tape:
        tape.watch(audio)
        value = loss(target, audio)
    grad = tape.gradient(value, audio).numpy()
    assert value.shape == ()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


@pytest.mark.parametrize('loss_type', ['L1', 'L2', 'COSINE'])
def test_spectral_loss_fused_path_equals_op_by_op(monkeypatch, loss_type):
    """Static shapes, no weights: loss and gradient from the XLA kernels,
    equal to the op-by-op path (taken with weights or unknown lengths)."""
    calls = []
    fused = losses._fused_spectrogram_loss
    monkeypatch.setattr(losses, '_fused_spectrogram_loss',
                        lambda *a: calls.append(1) or fused(*a))
    loss = losses.SpectralLoss(fft_sizes=(1024, 256, 64), loss_type=loss_type,
                               **ALL_TERMS)
    target = tf.constant(_tone(n=6000))
    audio = tf.constant(_tone(n=6000, f0=350.0, seed=1))

    def loss_and_grad(weights=None):
        with tf.GradientTape() as tape:
            tape.watch(audio)
            value = loss(target, audio, weights)
        return value, tape.gradient(value, audio)

    value, grad = loss_and_grad()
    assert len(calls) == 1
    expected_value, expected_grad = loss_and_grad(tf.ones([]))
    assert len(calls) == 1
    np.testing.assert_allclose(value, expected_value, rtol=1e-5)
    # L1 terms' gradients jump (sign of a difference) where both spectrograms
    # agree to rounding, which differs between the two FFT implementations:
    # compare the whole gradient.
    assert np.linalg.norm(grad - expected_grad) < 5e-3 * np.linalg.norm(
        expected_grad)
    dynamic = tf.function(lambda t, a: loss(t, a), input_signature=[
        tf.TensorSpec([None, None], tf.float32)] * 2)
    np.testing.assert_allclose(dynamic(target, audio), expected_value,
                               rtol=1e-5)
    assert len(calls) == 1


def test_spectral_loss_validates_arguments():
    with pytest.raises(ValueError, match='loss_type'):
        losses.SpectralLoss(loss_type='L7')
    with pytest.raises(ValueError, match='fft_sizes'):
        losses.SpectralLoss(fft_sizes=())
    with pytest.raises(ValueError, match='target_audio'):
        losses.SpectralLoss()(tf.zeros([2, 100, 1]), tf.zeros([2, 100, 1]))


def test_loss_group_returns_every_named_loss():
    spectral = losses.SpectralLoss(fft_sizes=(256, 64), name='spectral')
    param = losses.ParamLoss(weight=2.0, name='param')
    group = losses.LossGroup(dag=[(spectral, ['audio', 'audio_synth']),
                                  (param, ['f0', 'f0_pred'])])
    outputs = {'audio': _tone(), 'audio_synth': _tone(f0=335.0),
               'f0': tf.ones([2, 10]), 'f0_pred': tf.zeros([2, 10])}
    result = group(outputs)
    assert set(result) == {'spectral', 'param'}
    np.testing.assert_allclose(result['param'], 2.0)
    np.testing.assert_allclose(
        result['spectral'], spectral(outputs['audio'], outputs['audio_synth']),
        rtol=1e-6)


def test_embedding_loss_uses_the_pretrained_model():
    embed = lambda audio: tf.reduce_mean(tf.abs(audio), axis=-1, keepdims=True)
    loss = losses.EmbeddingLoss(weight=3.0, pretrained_model=embed)
    a, b = tf.ones([2, 100]), 0.5 * tf.ones([2, 100])
    np.testing.assert_allclose(loss(a, b), 1.5)
    with pytest.raises(ValueError, match='pretrained_model'):
        losses.EmbeddingLoss()


def test_amp_and_freq_losses():
    np.testing.assert_allclose(
        losses.amp_loss(np.float32([[1.0, 10.0]]), np.float32([[10.0, 10.0]]),
                        log=True), np.log(10.0) / 2, rtol=1e-5)
    # An octave is 12 semitones whatever the register.
    np.testing.assert_allclose(
        losses.freq_loss(np.float32([220.0, 880.0]), np.float32([110.0, 440.0])),
        12.0, rtol=1e-5)


def test_crepe_embedding_loss_is_zero_for_identical_audio_and_differentiable():
    loss = losses.PretrainedCREPEEmbeddingLoss(activation_layer='conv5-maxpool')
    target = tf.constant(_tone(batch=1, n=4096))
    assert float(loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    other = tf.constant(_tone(batch=1, n=4096, f0=500.0))
    with tf.GradientTape() as tape:
        tape.watch(other)
        value = loss(target, other)
    grad = tape.gradient(value, other).numpy()
    assert float(value) > 0
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    embeddings = loss.pretrained_model(target)
    assert embeddings.shape[:2] == (1, 4096 // 1024 + 1)


def test_crepe_embedding_loss_rejects_unknown_layer():
    with pytest.raises(ValueError, match='activation_layer'):
        losses.PretrainedCREPEEmbeddingLoss(activation_layer='conv9')
