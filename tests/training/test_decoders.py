"""Tests of ddsp.training.decoders: shapes, streaming state, gradients,
checkpoints."""
import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp.training import decoders

B, T = 2, 12
SPLITS = (('amps', 1), ('harmonic_distribution', 5), ('noise_magnitudes', 3))


def features(n_frames=T, seed=0):
    rng = np.random.default_rng(seed)
    return {
        'ld_scaled': tf.constant(rng.uniform(size=[B, n_frames, 1]),
                                 tf.float32),
        'f0_scaled': tf.constant(rng.uniform(size=[B, n_frames, 1]),
                                 tf.float32),
        'z': tf.constant(rng.normal(size=[B, n_frames, 4]), tf.float32),
    }


def rnn_fc_decoder(**kwargs):
    args = dict(rnn_channels=8, ch=6, layers_per_stack=2, output_splits=SPLITS)
    args.update(kwargs)
    return decoders.RnnFcDecoder(**args)


def assert_split_shapes(outputs, n_frames=T, splits=SPLITS):
    for key, size in splits:
        assert outputs[key].shape == (B, n_frames, size), key


def test_rnn_fc_decoder_output_shapes():
    decoder = rnn_fc_decoder()
    outputs = decoder(features())
    assert list(outputs) == [k for k, _ in SPLITS]
    assert_split_shapes(outputs)
    # Paper sizes: 3 input stacks, GRU, output stack.
    assert decoder.input_keys == ['ld_scaled', 'f0_scaled', 'z']
    # Without FC layers (tiny_instrument.gin) and with an LSTM.
    assert_split_shapes(rnn_fc_decoder(layers_per_stack=0)(features()))
    assert_split_shapes(rnn_fc_decoder(rnn_type='lstm')(features()))


@pytest.mark.parametrize('rnn_type, state_size', [('gru', 8), ('lstm', 16)])
def test_stateless_decoder_returns_a_new_state(rnn_type, state_size):
    decoder = rnn_fc_decoder(stateless=True, rnn_type=rnn_type)
    feats = features(n_frames=3)
    state = tf.random.normal([B, state_size])
    outputs = decoder({**feats, 'state': state})
    assert_split_shapes(outputs, n_frames=3)
    assert outputs['state'].shape == state.shape
    assert np.max(np.abs(outputs['state'] - state)) > 1e-3
    # The state is an input: a different state gives different outputs.
    other = decoder({**feats, 'state': tf.zeros_like(state)})
    assert np.max(np.abs(other['amps'] - outputs['amps'])) > 1e-6
    # A missing state means zeros.
    np.testing.assert_allclose(decoder(feats)['amps'], other['amps'],
                               atol=1e-6)


@pytest.mark.parametrize('rnn_type', ['gru', 'lstm'])
def test_stateless_blocks_equal_the_whole_sequence(rnn_type):
    feats = features(n_frames=12)
    decoder = rnn_fc_decoder(stateless=True, rnn_type=rnn_type)
    whole = decoder(feats)
    state = decoder.zero_state(B)
    blocks = []
    step = tf.function(decoder)
    for start, stop in [(0, 4), (4, 8), (8, 12)]:
        block = {k: v[:, start:stop] for k, v in feats.items()}
        outputs = step({**block, 'state': state})
        state = outputs['state']
        blocks.append(outputs)
    for key, _ in SPLITS:
        streamed = tf.concat([b[key] for b in blocks], axis=1)
        np.testing.assert_allclose(streamed, whole[key], atol=1e-5)
    np.testing.assert_allclose(state, whole['state'], atol=1e-5)


def test_dilated_conv_decoder_output_shapes():
    feats = features()
    conditioned = decoders.DilatedConvDecoder(
        ch=8, layers_per_stack=2, stacks=2, output_splits=SPLITS)
    assert conditioned.input_keys == ['ld_scaled', 'f0_scaled', 'z']
    assert_split_shapes(conditioned(feats))
    plain = decoders.DilatedConvDecoder(
        ch=8, layers_per_stack=2, stacks=1, conditioning_keys=None,
        output_splits=SPLITS)
    assert plain.input_keys == ['ld_scaled', 'f0_scaled']
    assert_split_shapes(plain(feats))
    upsampled = decoders.DilatedConvDecoder(
        ch=8, layers_per_stack=1, stacks=2, resample_stride=2,
        conditioning_keys=None, output_splits=SPLITS)
    assert_split_shapes(upsampled(feats), n_frames=4 * T)
    # A single conditioning key given as a string is one key.
    keyed = decoders.DilatedConvDecoder(ch=8, layers_per_stack=1, stacks=1,
                                        conditioning_keys='z_long')
    assert keyed.conditioning_keys == ['z_long']


@pytest.mark.parametrize('make', [
    lambda: rnn_fc_decoder(),
    lambda: rnn_fc_decoder(stateless=True),
    lambda: decoders.DilatedConvDecoder(ch=8, layers_per_stack=2, stacks=2,
                                        output_splits=SPLITS),
], ids=['rnn_fc', 'rnn_fc_stateless', 'dilated_conv'])
def test_gradients_reach_every_trainable_weight(make):
    decoder = make()
    feats = features()

    @tf.function
    def grads():
        with tf.GradientTape() as tape:
            outputs = decoder(feats)
            loss = tf.add_n([tf.reduce_mean(tf.sin(3.0 * outputs[k]))
                             for k, _ in SPLITS])
        return tape.gradient(loss, decoder.trainable_variables)

    gradients = grads()
    assert len(gradients) == len(decoder.trainable_variables) > 0
    for variable, gradient in zip(decoder.trainable_variables, gradients):
        assert gradient is not None, variable.path
        assert np.all(np.isfinite(gradient)), variable.path
        assert np.max(np.abs(gradient)) > 0, variable.path


@pytest.mark.parametrize('stateless', [False, True])
def test_checkpoint_round_trip_restores_every_weight(tmp_path, stateless):
    decoder = rnn_fc_decoder(stateless=stateless)
    feats = features()
    decoder(feats)
    optimizer = tf.keras.optimizers.Adam(0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(decoder(feats)['amps'] ** 2)
    optimizer.apply_gradients(zip(
        tape.gradient(loss, decoder.trainable_variables),
        decoder.trainable_variables))
    path = tf.train.Checkpoint(decoder=decoder).write(str(tmp_path / 'ckpt'))

    restored = rnn_fc_decoder(stateless=stateless)
    restored(feats)  # Build, so that every variable exists with new values.
    status = tf.train.Checkpoint(decoder=restored).read(path)
    status.assert_existing_objects_matched()
    assert len(restored.weights) == len(decoder.weights)
    for original, copy in zip(decoder.weights, restored.weights):
        np.testing.assert_array_equal(original.numpy(), copy.numpy(),
                                      err_msg=original.path)
    for key, value in decoder(feats).items():
        np.testing.assert_allclose(restored(feats)[key], value, atol=1e-6)


def test_gin_builds_the_paper_decoder():
    gin.clear_config()
    try:
        gin.parse_config("""
            decoder_test_holder.decoder = @decoders.RnnFcDecoder()
            RnnFcDecoder.rnn_channels = 8
            RnnFcDecoder.ch = 4
            RnnFcDecoder.layers_per_stack = 1
            RnnFcDecoder.input_keys = ('ld_scaled', 'f0_scaled')
            RnnFcDecoder.output_splits = (('amps', 1),
                                          ('harmonic_distribution', 60),
                                          ('noise_magnitudes', 65))
        """)
        decoder = decoder_test_holder()
        outputs = decoder(features())
        assert outputs['harmonic_distribution'].shape == (B, T, 60)
        assert outputs['noise_magnitudes'].shape == (B, T, 65)
    finally:
        gin.clear_config()


@gin.configurable
def decoder_test_holder(decoder=None):
    return decoder


def test_training_call_reaches_the_fused_layers(monkeypatch):
    """`training=True` on the decoder reaches its Fc stacks (fused_fc) and
    its GRU (XLA loops, product precision), in float32 equal to inference."""
    from ddsp.training import nn
    from ddsp.training.nn import dense, recurrent
    fc_calls, gru_calls = [], []
    fused_fc, fused_gru = dense.fused_fc, recurrent.fused_gru
    monkeypatch.setattr(dense, 'fused_fc', lambda *a, **k: fc_calls.append(1)
                        or fused_fc(*a, **k))
    monkeypatch.setattr(recurrent, 'fused_gru',
                        lambda *a, **k: gru_calls.append(k)
                        or fused_gru(*a, **k))
    decoder = rnn_fc_decoder()
    inputs = features()
    with nn.matmul_precision_scope('float32'):
        expected = decoder(inputs)
        assert not fc_calls and gru_calls[-1]['jit'] is False
        outputs = decoder(inputs, training=True)
    assert len(fc_calls) == 4 * 2  # 3 input stacks + out stack, 2 Fc each.
    assert gru_calls[-1]['jit'] is True
    for key in expected:
        np.testing.assert_allclose(outputs[key], expected[key], atol=1e-5)
