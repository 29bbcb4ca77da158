"""Tests of ddsp.training.encoders."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import spectral_ops
from ddsp.training import encoders, preprocessing

B = 2


def audio(n_samples=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 16000.0
    tone = 0.3 * np.sin(2 * np.pi * 330.0 * t)
    return tf.constant(tone + 0.01 * rng.normal(size=[B, n_samples]),
                       tf.float32)


@pytest.mark.parametrize('z_time_steps, fft_size, overlap', [
    (63, 2048, 0.5), (125, 1024, 0.5), (250, 1024, 0.75), (500, 512, 0.75),
    (1000, 256, 0.75)])
def test_mfcc_encoder_z_time_steps_mapping(z_time_steps, fft_size, overlap):
    encoder = encoders.MfccTimeDistributedRnnEncoder(
        rnn_channels=4, z_dims=3, z_time_steps=z_time_steps)
    assert (encoder.fft_size, encoder.overlap) == (fft_size, overlap)
    # 4 s of 16 kHz audio gives z_time_steps MFCC frames.
    mfccs = spectral_ops.compute_mfcc(tf.zeros([1, 64000]), fft_size=fft_size,
                                      overlap=overlap, mel_bins=128,
                                      mfcc_bins=30)
    assert mfccs.shape[1] == z_time_steps


def test_mfcc_encoder_output_shapes():
    encoder = encoders.MfccTimeDistributedRnnEncoder(
        rnn_channels=8, z_dims=5, z_time_steps=125)
    assert encoder.input_keys == ['audio', 'f0_scaled']
    # 1 s of audio: 32 MFCC frames, resampled to the 50 frames of f0_scaled.
    with tf.GradientTape() as tape:
        z = encoder({'audio': audio(), 'f0_scaled': tf.zeros([B, 50, 1])})['z']
        loss = tf.reduce_mean(tf.sin(z))
    assert z.shape == (B, 50, 5)
    grads = tape.gradient(loss, encoder.trainable_variables)
    assert len(grads) == 2 + 3 + 2  # norm, GRU, dense
    assert all(g is not None and np.max(np.abs(g)) > 0 for g in grads)
    # With a fixed number of frames, f0_scaled is not needed.
    fixed = encoders.MfccTimeDistributedRnnEncoder(
        rnn_channels=8, z_dims=5, z_time_steps=125, time_steps=40)
    assert fixed.input_keys == ['audio']
    assert fixed(audio())['z'].shape == (B, 40, 5)
    with pytest.raises(ValueError, match='z_time_steps'):
        encoders.MfccTimeDistributedRnnEncoder(z_time_steps=100)


def test_z_encoder_expands_a_global_z():

    class GlobalEncoder(encoders.ZEncoder):

        def compute_z(self, f0_hz):
            return tf.reduce_mean(f0_hz, axis=1)  # [batch, ch]

    encoder = GlobalEncoder()
    f0 = tf.random.normal([B, 7, 3])
    z = encoder({'f0_hz': f0, 'f0_scaled': tf.zeros([B, 20, 1])})['z']
    assert z.shape == (B, 20, 3)
    np.testing.assert_allclose(z[:, 5], tf.reduce_mean(f0, axis=1), atol=1e-6)


def test_resnet_f0_encoder_outputs_and_gradients():
    encoder = encoders.ResnetF0Encoder(size='small', f0_bins=32,
                                       time_steps=50, mel_bins=64,
                                       hz_min=40.0, hz_max=1000.0)
    x = audio(8000)
    with tf.GradientTape() as tape:
        outputs = encoder({'audio': x})
        loss = tf.reduce_mean(outputs['f0_hz'])
    assert set(outputs) == {'f0_hz', 'f0_scaled'}
    assert outputs['f0_hz'].shape == (B, 50, 1)
    assert outputs['f0_scaled'].shape == (B, 50, 1)
    f0 = outputs['f0_hz'].numpy()
    assert np.all(f0 >= 40.0 - 1e-3) and np.all(f0 <= 1000.0 + 1e-2)
    np.testing.assert_allclose(
        outputs['f0_scaled'], preprocessing.scale_f0_hz(outputs['f0_hz']),
        atol=1e-6)
    grads = tape.gradient(loss, encoder.trainable_variables)
    assert all(g is not None for g in grads)
    # The output layer gets a non-zero gradient.
    assert np.max(np.abs(grads[-2])) > 0
