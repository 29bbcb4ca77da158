"""Tests of ddsp_export: SavedModel / TFLite exports that run without ddsp."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import soxr
import tensorflow as tf

from ddsp import core
from ddsp.training import ddsp_export

sys.path.insert(0, os.path.dirname(__file__))
import model_dir_testlib  # noqa: E402

BLOCK = 10  # Frames per streaming step.
N_FRAMES = 57  # Not a multiple of BLOCK: the offline model pads.


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return model_dir_testlib.make_model_dir(
        str(tmp_path_factory.mktemp('model')))


@pytest.fixture(scope='module')
def exports(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp('exports')
    return {m: ddsp_export.export(model_dir, save_dir=str(root / m),
                                  name='tiny', inference_model=m,
                                  block_frames=BLOCK, tflite=m == 'streaming',
                                  reverb_sample_rate=44100)
            for m in ddsp_export.INFERENCE_MODELS}


@pytest.fixture(scope='module')
def trained(model_dir, exports):
    from ddsp.training import inference
    return inference.load_model(model_dir)


@pytest.fixture(scope='module')
def features():
    f = model_dir_testlib.tone_features(n_examples=1)
    return {'f0_hz': f['f0_hz'][:, :N_FRAMES],
            'loudness_db': f['loudness_db'][:, :N_FRAMES]}


def _run_tf_only(code: str, tmp_path, **arrays) -> dict:
    """Runs code in a fresh Python that imports only TF and numpy.

    The code sees `inputs` (the arrays) and fills the dict `outputs`.
    """
    np.savez(tmp_path / 'in.npz', **arrays)
    script = textwrap.dedent('''
        import sys
        import numpy as np
        import tensorflow as tf
        inputs = dict(np.load(sys.argv[1]))
        outputs = {}
    ''') + textwrap.dedent(code) + textwrap.dedent('''
        assert not [m for m in sys.modules if m.split('.')[0] == 'ddsp']
        np.savez(sys.argv[2], **outputs)
    ''')
    proc = subprocess.run(
        [sys.executable, '-c', script, str(tmp_path / 'in.npz'),
         str(tmp_path / 'out.npz')], capture_output=True, text=True,
        cwd=str(tmp_path), env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(np.load(tmp_path / 'out.npz'))


def test_offline_saved_model_runs_without_ddsp(exports, trained, features,
                                               tmp_path):
    from ddsp.training import inference
    out = _run_tf_only('''
        model = tf.saved_model.load(inputs.pop('path').item())
        serve = model.signatures['serving_default']
        outputs['audio'] = serve(**{k: tf.constant(v)
                                    for k, v in inputs.items()})['audio']
    ''', tmp_path, path=exports['autoencoder'].save_dir, **features)
    audio = out['audio'][0]
    assert audio.shape == (N_FRAMES * trained.hop_size,)
    streamed = inference.synthesize(trained, features['f0_hz'][0],
                                    features['loudness_db'][0],
                                    block_frames=BLOCK)
    np.testing.assert_allclose(audio, streamed, atol=1e-4)
    offline = inference.synthesize_offline(trained, features['f0_hz'][0],
                                           features['loudness_db'][0])
    np.testing.assert_allclose(audio, offline, atol=1e-3)
    assert np.abs(audio).max() > 1e-3  # Not silence.


def _chain_code(runner: str) -> str:
    """Code chaining `step` over blocks; `runner` defines step and state0."""
    return runner + '''
        block = int(inputs.pop('block'))
        state = state0
        chunks = []
        for i in range(0, inputs['f0_hz'].shape[1], block):
            out = step(f0_hz=inputs['f0_hz'][:, i:i + block],
                       loudness_db=inputs['loudness_db'][:, i:i + block],
                       **state)
            chunks.append(np.asarray(out.pop('audio')))
            state = {k: np.asarray(v) for k, v in out.items()}
        outputs['audio'] = np.concatenate(chunks, axis=1)
    '''


def _block_features(features, n_blocks=4):
    n = n_blocks * BLOCK
    return {k: np.pad(v, [(0, 0), (0, max(0, n - v.shape[1]))],
                      mode='edge')[:, :n] for k, v in features.items()}


def test_streaming_saved_model_equals_inference(exports, trained, features,
                                                tmp_path):
    from ddsp.training import inference
    blocks = _block_features(features)
    out = _run_tf_only(_chain_code('''
        model = tf.saved_model.load(inputs.pop('path').item())
        step = model.signatures['step']
        state0 = model.signatures['initial_state']()
    '''), tmp_path, path=exports['streaming'].save_dir, block=BLOCK,
        **blocks)
    audio = out['audio'][0]
    latency = exports['streaming'].metadata['latency_samples']
    n = blocks['f0_hz'].shape[1] * trained.hop_size
    expected = inference.synthesize(trained, blocks['f0_hz'][0],
                                    blocks['loudness_db'][0],
                                    block_frames=BLOCK)
    np.testing.assert_allclose(audio[latency:], expected[:n - latency],
                               atol=1e-3)


def test_tflite_step_runs_in_litert_and_matches_tf(exports, trained,
                                                   features, tmp_path):
    result = exports['streaming']
    assert result.tflite.endswith(os.path.join('tflite', 'tiny.tflite'))
    assert result.metadata['signatures']['tflite']['builtins_only']
    blocks = _block_features(features)
    out = _run_tf_only(_chain_code('''
        from ai_edge_litert.interpreter import Interpreter
        interpreter = Interpreter(model_path=inputs.pop('tflite').item())
        step = interpreter.get_signature_runner('step')
        state0 = interpreter.get_signature_runner('initial_state')()
    '''), tmp_path, tflite=result.tflite, block=BLOCK, **blocks)
    # The same chain in TF (float64 phases), without the reverb as in TFLite.
    module, _, _ = ddsp_export.ExportModule(
        trained, BLOCK, use_reverb=False).build('streaming')
    state = module.initial_state()
    chunks = []
    for i in range(0, blocks['f0_hz'].shape[1], BLOCK):
        step_out = module.step({'f0_hz': blocks['f0_hz'][:, i:i + BLOCK],
                                'loudness_db':
                                    blocks['loudness_db'][:, i:i + BLOCK],
                                **state})
        chunks.append(step_out.pop('audio').numpy())
        state = step_out
    reference = np.concatenate(chunks, axis=1)
    assert np.abs(reference).max() > 1e-3
    np.testing.assert_allclose(out['audio'], reference, atol=1e-3)


def test_reverb_ir_files(exports, trained):
    from ddsp.training import inference
    ir = inference.get_reverb_ir(trained)
    save_dir = exports['autoencoder'].save_dir
    written, sr = sf.read(os.path.join(save_dir, 'reverb_ir.wav'),
                          dtype='float32')
    assert sr == trained.sample_rate
    np.testing.assert_allclose(written, ir, atol=1e-7)
    resampled, sr = sf.read(os.path.join(save_dir, 'reverb_ir_44100_hz.wav'),
                            dtype='float32')
    assert sr == 44100
    expected_length = round(len(ir) * 44100 / trained.sample_rate)
    assert len(resampled) == expected_length
    np.testing.assert_allclose(
        resampled, soxr.resample(ir, trained.sample_rate, 44100,
                                 quality='VHQ'), atol=1e-6)


def test_export_reverb_ir_resamples(tmp_path):
    # A 1 kHz sine at 16 kHz stays a 1 kHz sine at 44.1 kHz.
    t = np.arange(1600) / 16000
    ir = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    paths = ddsp_export.export_reverb_ir(ir, 16000, str(tmp_path), 44100)
    audio, sr = sf.read(paths[1], dtype='float32')
    assert sr == 44100 and len(audio) == 4410
    t = np.arange(4410) / 44100
    np.testing.assert_allclose(audio[200:-200],
                               np.sin(2 * np.pi * 1000 * t)[200:-200],
                               atol=1e-3)


def test_metadata(exports, trained):
    for name, result in exports.items():
        path = os.path.join(result.save_dir, ddsp_export.METADATA_FILE)
        with open(path) as f:
            meta = json.load(f)
        assert meta['inference_model'] == name
        assert meta['sample_rate'] == trained.sample_rate == 16000
        assert meta['frame_rate'] == 250
        assert meta['hop_size'] == meta['frame_size'] == 64
        assert meta['num_harmonics'] == 60
        assert meta['num_noise_amps'] == 65
        assert meta['block_frames'] == BLOCK
        assert meta['block_samples'] == BLOCK * 64
        assert meta['reverb']['has_reverb'] and meta['reverb']['ir_size'] == 4000
        stats = meta['dataset_statistics']
        assert 50 < stats['mean_pitch'] < 80
        assert meta['version'] and meta['export_time']
    streaming = exports['streaming'].metadata['signatures']
    assert streaming['step']['inputs']['f0_hz']['shape'] == [1, BLOCK]
    assert streaming['step']['outputs']['audio']['shape'] == [1, BLOCK * 64]
    assert (streaming['initial_state']['outputs'].keys() ==
            streaming['step']['outputs'].keys() - {'audio'})
    offline = exports['autoencoder'].metadata['signatures']
    assert offline['serving_default']['inputs']['f0_hz']['shape'] == [1, None]


def _cli(argv):
    ddsp_export.parse_flags(['ddsp_export'] + argv)
    return ddsp_export.run()


def test_bad_model_path_is_a_clear_error(tmp_path, capsys):
    assert _cli([f'--model_path={tmp_path}/nothing']) == 1
    err = capsys.readouterr().err
    assert 'nothing' in err and 'neither a model directory' in err


def test_unknown_inference_model_is_a_flag_error(capsys):
    with pytest.raises(SystemExit) as e:
        _cli(['--model_path=x', '--inference_model=vst_synthesize'])
    assert e.value.code == 2
    assert 'inference_model' in capsys.readouterr().err


def test_resolve_model_path(tmp_path):
    model_dir = str(tmp_path)
    (tmp_path / 'ckpt-1.index').write_bytes(b'')
    assert ddsp_export.resolve_model_path(model_dir) == (model_dir, None)
    prefix = os.path.join(model_dir, 'ckpt-1')
    for path in (prefix, prefix + '.index'):
        assert ddsp_export.resolve_model_path(path) == (model_dir, prefix)


def test_phase_precision_float32_graph_has_no_float64():
    rng = np.random.default_rng(0)
    frames, hop = 11, 64
    # Harmonics stay below Nyquist (a harmonic crossing it may switch on one
    # sample earlier or later with the other precision).
    args = (np.linspace(100, 250, frames, dtype=np.float32)[None, :, None],
            rng.uniform(0, 1, [1, frames, 1]).astype(np.float32),
            rng.uniform(0, 1, [1, frames, 30]).astype(np.float32),
            np.full([1, 1, 1], 5.0, np.float32))

    def synth(f0, amps, dist, phase):
        return core.streaming_harmonic_synthesis(
            f0, amps, dist, phase, n_samples=(frames - 1) * hop,
            add_endpoint=False)

    reference = tf.function(synth, autograph=False)(*args)
    with core.phase_precision('float32'):
        assert core.get_phase_dtype() == tf.float32
        low_fn = tf.function(synth, autograph=False)
        graph = low_fn.get_concrete_function(*args).graph
        low = low_fn(*args)
    dtypes = {t.dtype for op in graph.get_operations() for t in op.outputs}
    assert tf.float64 not in dtypes
    np.testing.assert_allclose(low[0], reference[0], atol=1e-4)
    np.testing.assert_allclose(low[1], reference[1], atol=1e-4)
    assert core.get_phase_dtype() == tf.float64  # Restored after the block.
    with pytest.raises(ValueError, match='float32'):
        with core.phase_precision('float16'):
            pass
