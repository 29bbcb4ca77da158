"""Tests of ddsp.training.inference: loading, offline vs streaming synthesis."""
import os
import shutil
import sys

import gin
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from ddsp import core
from ddsp import effects
from ddsp.training import ddsp_run
from ddsp.training import inference
from ddsp.training.inference import model
from ddsp.training.inference import offline
from ddsp.training import models

sys.path.insert(0, os.path.dirname(__file__))
import model_dir_testlib  # noqa: E402  pylint: disable=g-import-not-at-top

TOL = 1e-3


def _room_ir(n, seed=0):
    """A loud decaying room (the 1-step models' IR is ~1e-6)."""
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(n) *
            np.exp(-np.arange(n) / (0.1 * n))).astype(np.float32)


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
    return model_dir_testlib.make_model_dir(
        str(tmp_path_factory.mktemp('tiny')))


def _make_loud(decoder):
    """Raises the amplitude and noise biases: audio of amplitude ~1."""
    shift = {'amps': 2.0, 'noise_magnitudes': 6.0}
    delta = np.concatenate([np.full(n, shift.get(key, 0.0))
                            for key, n in decoder.output_splits])
    bias = decoder.dense_out.bias
    bias.assign(bias.numpy() + delta.astype(np.float32))


@pytest.fixture(scope='module')
def trained(tiny_dir):
    result = inference.load_model(tiny_dir)
    _make_loud(result.model.decoder)
    reverb = model._find_processor(result.model, effects.Reverb)
    reverb.ir.assign(_room_ir(reverb.reverb_length))
    return result


@pytest.fixture(scope='module')
def ae(tmp_path_factory):
    save_dir = model_dir_testlib.make_model_dir(
        str(tmp_path_factory.mktemp('ae')), gin_file='models/ae.gin',
        bindings=['MfccTimeDistributedRnnEncoder.rnn_channels = 16',
                  'MfccTimeDistributedRnnEncoder.z_dims = 4'])
    return inference.load_model(save_dir)


def _features(n_frames, seed=0):
    """Glissandi (one octave per 2 s, repeated) with vibrato, at 250 Hz."""
    t = np.arange(n_frames) / 250.0
    rng = np.random.default_rng(seed)
    f0 = 220.0 * 2**((t % 4) / 2 + 0.1 * np.sin(2 * np.pi * 5 * t))
    loudness = -50.0 + 30.0 * np.minimum(1.0, t) + rng.normal(0, 1, n_frames)
    return f0.astype(np.float32), loudness.astype(np.float32)


def _stream(streamer, f0, loudness, chunks, z=None):
    outputs, start = [], 0
    for size in chunks:
        stop = start + size
        outputs.append(streamer.process(
            f0[start:stop], loudness[start:stop],
            None if z is None else z[start:stop]))
        start = stop
    assert start == len(f0)
    outputs.append(streamer.flush())
    return np.concatenate(outputs)


# Loading ----------------------------------------------------------------------
def test_load_model_reads_rates_statistics_and_checkpoint(trained, tiny_dir):
    assert trained.sample_rate == 16000
    assert trained.hop_size == 64
    assert trained.frame_rate == 250.0
    assert trained.has_reverb and not trained.uses_z
    assert trained.z_dims is None
    assert os.path.basename(trained.checkpoint) == 'ckpt-1'
    assert set(trained.dataset_stats) >= {'mean_pitch', 'quantile_transform'} \
        or 'mean_pitch' in trained.dataset_stats
    assert trained.model_dir == tiny_dir
    assert trained.model.decoder.stateless


def test_load_model_finds_statistics_beside_tfrecords(tiny_dir, tmp_path):
    model_dir = str(tmp_path / 'model')
    shutil.copytree(tiny_dir, model_dir)
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    os.rename(os.path.join(model_dir, 'dataset_statistics.json'),
              data_dir / 'dataset_statistics.json')
    (data_dir / 'train.tfrecord').touch()
    assert inference.load_model(model_dir).dataset_stats is None
    pattern = f"TFRecordProvider.file_pattern = '{data_dir}/train.tfrecord*'"
    found = inference.load_model(model_dir, gin_params=[pattern])
    assert found.dataset_stats is not None


def test_stateless_decoder_equals_stateful_decoder(trained, tiny_dir):
    """Weights of the stateful-trained decoder load into the stateless one,
    and a decoder streamed block by block equals the whole-sequence one."""
    gin.clear_config()
    ddsp_run.parse_gin(tiny_dir)
    stateful = models.get_model()
    gin.clear_config()
    assert not stateful.decoder.stateless
    stateful(model._dummy_features(stateful, 250, 16000), training=False)
    stateful.restore(trained.checkpoint)
    _make_loud(stateful.decoder)
    rng = np.random.default_rng(1)
    conditioning = {k: tf.constant(rng.uniform(0, 1, [1, 90, 1]), tf.float32)
                    for k in ('f0_scaled', 'ld_scaled')}
    expected = stateful.decoder(conditioning, training=False)['amps'].numpy()
    decoder = trained.model.decoder
    whole = decoder(conditioning, training=False)['amps'].numpy()
    np.testing.assert_allclose(whole, expected, atol=1e-5)
    state, blocks = decoder.zero_state(1), []
    for start, stop in [(0, 7), (7, 50), (50, 90)]:
        block = {k: v[:, start:stop] for k, v in conditioning.items()}
        out = decoder({**block, 'state': state}, training=False)
        blocks.append(out['amps'].numpy())
        state = out['state']
    np.testing.assert_allclose(np.concatenate(blocks, axis=1), expected,
                               atol=1e-5)


def test_offline_harmonic_equals_model_call(trained):
    """At the training length the reference is the model's own synthesizer."""
    f0, loudness = _features(250)
    outputs = trained.model({'f0_hz': f0[None], 'loudness_db': loudness[None]},
                            training=False)
    signals = offline._offline(trained, f0, loudness, None, True)
    np.testing.assert_allclose(signals['harmonic'].numpy(),
                               outputs['harmonic']['signal'].numpy(),
                               atol=1e-5)
    reverb = model._find_processor(trained.model, effects.Reverb)
    np.testing.assert_allclose(signals['audio'].numpy(),
                               reverb(signals['dry']).numpy(), atol=1e-6)


# Streaming == offline ---------------------------------------------------------
@pytest.mark.parametrize('block_frames,chunks,use_reverb', [
    (7, [300], True),
    (50, [1, 120, 49, 3, 127], False),
    (250, [100, 100, 100], True),
])
def test_streaming_equals_offline(trained, block_frames, chunks, use_reverb):
    f0, loudness = _features(300)
    expected = inference.synthesize_offline(trained, f0, loudness,
                                            use_reverb=use_reverb)
    streamer = inference.StreamingSynthesizer(trained, use_reverb,
                                              block_frames)
    assert streamer.latency_samples == 64 + 128 // 2
    audio = _stream(streamer, f0, loudness, chunks)
    assert audio.shape == (300 * 64,) and audio.dtype == np.float32
    assert np.abs(expected).max() > 0.5
    assert np.abs(audio - expected).max() < TOL
    # A second stream after flush() starts afresh.
    again = _stream(streamer, f0[:60], loudness[:60], [60])
    expected = inference.synthesize_offline(trained, f0[:60], loudness[:60],
                                            use_reverb=use_reverb)
    assert np.abs(again - expected).max() < TOL


def test_reverb_changes_output_and_dereverberation_is_dry(trained):
    f0, loudness = _features(120)
    wet = inference.synthesize(trained, f0, loudness, block_frames=40)
    dry = inference.synthesize(trained, f0, loudness, use_reverb=False,
                               block_frames=40)
    signals = offline._offline(trained, f0, loudness, None, False)
    assert np.abs(dry - signals['dry'][0].numpy()).max() < TOL
    expected_wet = inference.apply_reverb(trained, signals['dry'][0].numpy())
    assert np.abs(wet - expected_wet).max() < TOL
    assert np.abs(wet - dry).max() > 0.05


def test_step_is_a_fixed_size_pure_function(trained):
    streamer = inference.StreamingSynthesizer(trained, block_frames=10)
    f0, loudness = _features(30)
    state = streamer.initial_state()
    outputs = []
    for i in range(3):
        audio, state = streamer._step(tf.constant(f0[10 * i:10 * i + 10]),
                                      tf.constant(loudness[10 * i:10 * i + 10]),
                                      None, state)
        assert audio.shape == (640,)
        outputs.append(audio.numpy())
    assert int(state['frame_index']) == 30
    streamed = np.concatenate(outputs)[streamer.latency_samples:]
    expected = inference.synthesize_offline(trained, f0, loudness)
    n = len(streamed)
    assert np.abs(streamed - expected[:n]).max() < TOL


def test_step_traced_for_tflite_has_no_float64_or_complex_ops(trained):
    """As ddsp_export traces it: float32 phases, DFTs by matrix products."""
    streamer = inference.StreamingSynthesizer(trained, use_reverb=False,
                                              block_frames=10)
    f0, loudness = (tf.constant(x) for x in _features(30))
    reference = tf.function(streamer.step, autograph=False)
    with core.phase_precision('float32'), core.dft_method('matmul'):
        builtin = tf.function(streamer.step, autograph=False)
        graph = builtin.get_concrete_function(
            f0[:10], loudness[:10], None, streamer.initial_state()).graph
    dtypes = {t.dtype for op in graph.get_operations() for t in op.outputs}
    assert not {tf.float64, tf.complex64, tf.uint32} & dtypes
    state, expected_state = streamer.initial_state(), streamer.initial_state()
    for i in range(0, 30, 10):
        audio, state = builtin(f0[i:i + 10], loudness[i:i + 10], None, state)
        expected, expected_state = reference(f0[i:i + 10], loudness[i:i + 10],
                                             None, expected_state)
        np.testing.assert_allclose(audio, expected, atol=1e-4)
    assert np.abs(expected).max() > 0.1


def test_phase_is_continuous_across_blocks(trained):
    """A steady tone streamed in 7-frame blocks: no jump at block edges."""
    n = 200
    f0 = np.full(n, 441.0, np.float32)
    loudness = np.full(n, -20.0, np.float32)
    audio = inference.synthesize(trained, f0, loudness, use_reverb=False,
                                 block_frames=7)
    expected = inference.synthesize_offline(trained, f0, loudness,
                                            use_reverb=False)
    assert np.abs(audio - expected).max() < TOL
    step = np.abs(np.diff(audio))
    edges = np.arange(7 * 64, len(audio) - 1, 7 * 64) - 128 - 1
    typical = np.percentile(step, 99.9)
    assert step[edges[edges > 0]].max() <= typical


def test_synthesize_30_seconds(trained):
    f0, loudness = _features(30 * 250)
    audio = inference.synthesize(trained, f0, loudness)
    assert audio.shape == (30 * 16000,)
    assert np.all(np.isfinite(audio))
    # A prefix's offline rendering equals the stream up to its last frame.
    expected = inference.synthesize_offline(trained, f0[:1200], loudness[:1200])
    n = 1198 * 64
    assert np.abs(audio[:n] - expected[:n]).max() < TOL


@pytest.mark.slow
def test_synthesize_three_minutes(trained):
    f0, loudness = _features(180 * 250)
    audio = inference.synthesize(trained, f0, loudness, block_frames=500)
    assert audio.shape == (180 * 16000,)
    assert np.all(np.isfinite(audio))
    expected = inference.synthesize_offline(trained, f0, loudness)
    assert np.abs(audio - expected).max() < TOL


def test_synthesize_and_apply_reverb_reuse_cached_state(trained):
    """Inputs of any length share one streamer; apply_reverb one convolver."""
    sizes = []
    for n in (30, 40):
        inference.synthesize(trained, np.full(n, 220.0), np.full(n, -20.0))
        inference.apply_reverb(trained, np.zeros(n, np.float32))
        sizes.append(len(trained._inference_cache))
    assert sizes[0] == sizes[1]


# Reverb -----------------------------------------------------------------------
def test_apply_reverb_equals_scipy(trained):
    ir = inference.get_reverb_ir(trained)
    assert ir.shape == (4000,) and ir[0] == 0.0
    reverb = model._find_processor(trained.model, effects.Reverb)
    np.testing.assert_allclose(ir[1:], reverb.ir.numpy()[1:])
    audio = np.random.default_rng(2).uniform(-1, 1, 40000).astype(np.float32)
    expected = scipy.signal.fftconvolve(audio, ir)[:len(audio)] + audio
    result = inference.apply_reverb(trained, audio)
    assert result.shape == audio.shape
    assert np.abs(result - expected).max() < 1e-4


@pytest.mark.parametrize('ir_size,block_size', [(100, 32), (33, 64),
                                                (1000, 1000)])
def test_partitioned_convolver_equals_linear_convolution(ir_size, block_size):
    rng = np.random.default_rng(ir_size)
    ir = rng.normal(size=ir_size).astype(np.float32)
    x = rng.normal(size=5 * block_size).astype(np.float32)
    convolver = offline._PartitionedConvolver(ir, block_size)
    state, out = convolver.initial_state(), []
    for i in range(5):
        y, state = convolver.step(
            tf.constant(x[None, i * block_size:(i + 1) * block_size]), state)
        out.append(y[0].numpy())
    np.testing.assert_allclose(np.concatenate(out),
                               np.convolve(x, ir)[:len(x)], atol=1e-4)


# Autoencoder (z) --------------------------------------------------------------
def test_autoencoder_z_and_streaming(ae):
    assert ae.uses_z and ae.z_dims == 4 and not ae.has_reverb
    f0, loudness = _features(130)
    audio_in = np.random.default_rng(3).uniform(-0.5, 0.5, 130 * 64)
    z = inference.compute_z(ae, audio_in, 130)
    assert z.shape == (130, 4) and np.all(np.isfinite(z))
    expected = inference.synthesize_offline(ae, f0, loudness, z)
    streamer = inference.StreamingSynthesizer(ae, block_frames=20)
    audio = _stream(streamer, f0, loudness, [33, 97], z=z)
    assert audio.shape == (130 * 64,)
    assert np.abs(audio - expected).max() < TOL
    assert inference.get_reverb_ir(ae) is None
    with pytest.raises(ValueError, match='no reverb'):
        inference.apply_reverb(ae, audio_in)
    with pytest.raises(ValueError, match='z'):
        inference.synthesize(ae, f0, loudness)
    with pytest.raises(ValueError, match=r'z must have shape'):
        inference.synthesize(ae, f0, loudness, z[:, :3])


# Errors -----------------------------------------------------------------------
def test_load_model_errors(tiny_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match='model_dir'):
        inference.load_model(str(tmp_path / 'missing'))
    with pytest.raises(FileNotFoundError, match='operative_config'):
        inference.load_model(str(tmp_path))
    no_ckpt = tmp_path / 'no_ckpt'
    no_ckpt.mkdir()
    for name in os.listdir(tiny_dir):
        if name.startswith('operative_config'):
            shutil.copy(os.path.join(tiny_dir, name), no_ckpt / name)
    with pytest.raises(FileNotFoundError, match='model_dir.*checkpoint'):
        inference.load_model(str(no_ckpt))
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        inference.load_model(tiny_dir, checkpoint=str(tmp_path / 'ckpt-9'))


def test_feature_errors(trained):
    f0, loudness = _features(20)
    with pytest.raises(ValueError, match='same number of frames'):
        inference.synthesize(trained, f0, loudness[:-1])
    with pytest.raises(ValueError, match='f0_hz must be a 1-D'):
        inference.synthesize(trained, f0[None], loudness[None])
    bad = f0.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match='f0_hz contains NaN'):
        inference.synthesize_offline(trained, bad, loudness)
    with pytest.raises(ValueError, match='loudness_db contains NaN'):
        inference.synthesize(trained, f0, np.full(20, np.inf))
    with pytest.raises(ValueError, match='empty'):
        inference.synthesize(trained, f0[:0], loudness[:0])
    with pytest.raises(ValueError, match='no encoder'):
        inference.synthesize(trained, f0, loudness, np.zeros([20, 4]))
    with pytest.raises(ValueError, match='no encoder'):
        inference.compute_z(trained, np.zeros(100), 2)
    with pytest.raises(ValueError, match='block_frames'):
        inference.StreamingSynthesizer(trained, block_frames=0)
    with pytest.raises(ValueError, match='no frames'):
        inference.StreamingSynthesizer(trained, block_frames=5).flush()


@pytest.mark.slow
@pytest.mark.parametrize('gin_file', ['models/harmonic_only.gin',
                                      'models/harmonic_noise.gin'])
def test_other_models_stream(gin_file, tmp_path):
    trained = inference.load_model(model_dir_testlib.make_model_dir(
        str(tmp_path), gin_file=gin_file))
    assert not trained.has_reverb
    f0, loudness = _features(100)
    streamer = inference.StreamingSynthesizer(trained, block_frames=9)
    audio = _stream(streamer, f0, loudness, [40, 60])
    expected = inference.synthesize_offline(trained, f0, loudness)
    assert np.abs(audio - expected).max() < TOL


def test_step_checks_block_size(trained):
    streamer = inference.StreamingSynthesizer(trained, block_frames=10)
    with pytest.raises(ValueError, match='f0_hz must have block_frames'):
        streamer.step(tf.zeros([9]), tf.zeros([10]), None,
                      streamer.initial_state())
    with pytest.raises(ValueError, match='z must be given'):
        streamer.step(tf.zeros([10]), tf.zeros([10]), tf.zeros([10, 4]),
                      streamer.initial_state())
