r"""Exports a trained model for deployment: SavedModel, TFLite, TFJS.

Usage:
================================================================================
ddsp_export --model_path=/path/to/model_dir [--inference_model=streaming] \
[--name=violin] [--save_dir=/path/to/export] [--block_frames=20] \
[--notflite] [--tfjs] [--reverb_sample_rate=44100]
================================================================================

`--model_path` is a `ddsp_run` save_dir (its newest checkpoint is exported) or
one checkpoint in it (`.../ckpt-1000`). Everything goes to `--save_dir`
(default `<model dir>/export`, or `<model dir>/<name>` with `--name`):

  <save_dir>/                   a SavedModel: loads with TensorFlow alone
                                (`tf.saved_model.load`), no ddsp needed
  <save_dir>/metadata.json      rates, sizes, inputs/outputs and their shapes,
                                the state's shapes, dataset statistics
  <save_dir>/reverb_ir.wav      the learned room (models with a reverb), at
                                the model's rate; reverb_ir_<sr>_hz.wav
                                resampled to --reverb_sample_rate
  <save_dir>/tflite/<name or model>.tflite   the streaming step (batch 1)
  <save_dir>/tfjs/              with --tfjs (needs `pip install tensorflowjs`)

Inference models (`--inference_model`):
  autoencoder  signature 'serving_default': f0_hz [1, n_frames], loudness_db
               [1, n_frames] (and z [1, n_frames, z_dims] for models with an
               encoder) at the model's frame rate, any n_frames -> audio
               [1, n_frames * hop_size]. It runs the streaming step over the
               whole sequence inside the graph, so memory does not grow with
               the length.
  streaming    signatures 'step': one block of `block_frames` frames plus the
               state -> audio [1, block_frames * hop_size] plus the new state,
               and 'initial_state': () -> the state to start from
               (metadata.json lists the state's names, 'state_...', and
               shapes). Feed each 'step' the state the previous one
               returned. The audio is
               delayed by metadata['latency_samples'].

The TFLite file always holds the streaming step ('step' signature, batch 1,
fixed block): TFLite needs static shapes. It uses TFLite builtin ops only, so
it runs with `ai_edge_litert` (no TensorFlow) when the model allows it; it
synthesises without the reverb (convolve with reverb_ir.wav in the host; a
3 s convolution per block is the host's job, not a graph's).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import tempfile
from typing import Any, Sequence

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from ddsp.training import cli  # noqa: E402

# Flags of this tool only (ddsp.training.cli): `ddsp_run` (imported to load
# models) defines --save_dir and --gin_param globally with other meanings.
FLAGS = flags.FlagValues()

INFERENCE_MODELS = ('autoencoder', 'streaming')

flags.DEFINE_string('name', '', 'Name of the export: the folder (default '
                    "'export') and the .tflite file (default 'model').",
                    flag_values=FLAGS)
flags.DEFINE_string('model_path', '', 'A ddsp_run model directory (its newest '
                    'checkpoint is used) or one checkpoint prefix in it.',
                    flag_values=FLAGS)
flags.DEFINE_string('save_dir', '', 'Output directory (default: <model '
                    'dir>/export, or <model dir>/<name> with --name).',
                    flag_values=FLAGS)
flags.DEFINE_enum('inference_model', 'autoencoder', list(INFERENCE_MODELS),
                  'autoencoder: whole sequences of any length; streaming: a '
                  'fixed-size block with explicit state.', flag_values=FLAGS)
flags.DEFINE_multi_string('gin_param', [], 'Gin bindings applied after the '
                          "model's operative config, e.g. "
                          "'Harmonic.amp_resample_method=\"linear\"'.",
                          flag_values=FLAGS)
flags.DEFINE_integer('block_frames', 20, 'Frames per streaming step (the '
                     'TFLite model and the streaming SavedModel).',
                     flag_values=FLAGS)
flags.DEFINE_boolean('tflite', True, 'Also write the streaming step as '
                     'TFLite (<save_dir>/tflite/<name or model>.tflite).',
                     flag_values=FLAGS)
flags.DEFINE_boolean('tfjs', False, 'Also convert to TensorFlow.js '
                     '(<save_dir>/tfjs/; needs the tensorflowjs package, '
                     'skipped with a warning without it).', flag_values=FLAGS)
flags.DEFINE_boolean('metadata', True, 'Write <save_dir>/metadata.json.',
                     flag_values=FLAGS)
flags.DEFINE_boolean('reverb', True, "Write the model's reverb impulse "
                     'response as reverb_ir.wav (models with a reverb).',
                     flag_values=FLAGS)
flags.DEFINE_integer('reverb_sample_rate', 44100, 'Also write the reverb IR '
                     'resampled to this rate (reverb_ir_<sr>_hz.wav); 0: no.',
                     flag_values=FLAGS)

_NAME = 'ddsp_export'
METADATA_FILE = 'metadata.json'
REVERB_IR_FILE = 'reverb_ir.wav'
STATE_PREFIX = 'state_'
# Phases in float32 and DFTs without complex numbers: what TFLite builtins
# can run.
_TFLITE_PHASE_DTYPE = 'float32'
_TFLITE_DFT_METHOD = 'matmul'


# Paths ------------------------------------------------------------------------
def resolve_model_path(model_path: str) -> tuple[str, str | None]:
    """(model_dir, checkpoint prefix or None) from --model_path.

    Accepts a model directory or a checkpoint prefix (`.../ckpt-100`, also
    with `.index` or `.data-...` appended).

    Raises:
        FileNotFoundError: naming the path, if it is neither.
    """
    import tensorflow as tf
    if not model_path:
        raise FileNotFoundError('--model_path is required: a ddsp_run model '
                                'directory or a checkpoint in it.')
    path = os.path.expanduser(os.path.expandvars(model_path)).rstrip('/')
    if tf.io.gfile.isdir(path):
        return path, None
    for suffix in ('.index', '.data-'):
        if suffix in os.path.basename(path):
            path = path[:path.rindex(suffix)]
    if tf.io.gfile.exists(path + '.index'):
        return os.path.dirname(path) or '.', path
    raise FileNotFoundError(
        f'--model_path={model_path!r} is neither a model directory nor a '
        'checkpoint (expected a ddsp_run save_dir or a prefix like '
        '<dir>/ckpt-1000).')


def default_save_dir(model_dir: str, name: str = '') -> str:
    """<model_dir>/<name or 'export'>."""
    return os.path.join(model_dir, name or 'export')


# Reverb -----------------------------------------------------------------------
def export_reverb_ir(ir, sample_rate: int, save_dir: str,
                     target_sample_rate: int | None = None) -> list[str]:
    """Writes the impulse response (and a resampled copy) as float WAVs.

    Args:
        ir: Impulse response [ir_size].
        sample_rate: Its sample rate (the model's).
        save_dir: Output directory.
        target_sample_rate: Also write `reverb_ir_<sr>_hz.wav` resampled to
            this rate with soxr (high quality); None or 0: no copy.

    Returns:
        The written paths.
    """
    import numpy as np
    import soundfile as sf
    import soxr
    ir = np.asarray(ir, np.float32).reshape(-1)
    os.makedirs(save_dir, exist_ok=True)
    paths = [os.path.join(save_dir, REVERB_IR_FILE)]
    sf.write(paths[0], ir, int(sample_rate), subtype='FLOAT')
    if target_sample_rate:
        if target_sample_rate < 0:
            raise ValueError('target_sample_rate must be positive, got '
                             f'{target_sample_rate}.')
        resampled = soxr.resample(ir, int(sample_rate),
                                  int(target_sample_rate), quality='VHQ')
        paths.append(os.path.join(
            save_dir, f'reverb_ir_{int(target_sample_rate)}_hz.wav'))
        sf.write(paths[1], resampled.astype(np.float32),
                 int(target_sample_rate), subtype='FLOAT')
    return paths


# The exported module ----------------------------------------------------------
def _spec_dict(specs: dict) -> dict:
    return {k: {'shape': [int(d) if d is not None else None
                          for d in s.shape], 'dtype': s.dtype.name}
            for k, s in specs.items()}


class ExportModule:
    """Builds the tf.Module (signatures) of a trained model for export.

    Args:
        trained: An `inference.TrainedModel`.
        block_frames: Frames per streaming step.
        use_reverb: Include the model's reverb (if any) in the graphs.
    """

    def __init__(self, trained, block_frames: int = 20,
                 use_reverb: bool = True):
        import tensorflow as tf
        from ddsp.training import inference
        if int(block_frames) != block_frames or block_frames < 1:
            raise ValueError('block_frames must be a positive integer, got '
                             f'{block_frames}.')
        self.trained = trained
        self.block_frames = int(block_frames)
        self.use_reverb = bool(use_reverb and trained.has_reverb)
        self.synth = inference.StreamingSynthesizer(
            trained, use_reverb=self.use_reverb,
            block_frames=self.block_frames)
        self.latency_samples = int(self.synth.latency_samples)
        self.hop_size = int(trained.hop_size)
        # Signature names: STATE_PREFIX + the synthesizer's state keys (some
        # of which, e.g. 'f0_hz', are also input names).
        self.state_specs = {
            STATE_PREFIX + k: tf.TensorSpec(v.shape, v.dtype,
                                            name=STATE_PREFIX + k)
            for k, v in self.synth.initial_state().items()}
        self.z_dims = trained.z_dims if trained.uses_z else None

    # Signatures' input specs.
    def frame_specs(self, n_frames: int | None) -> dict:
        import tensorflow as tf
        specs = {'f0_hz': tf.TensorSpec([1, n_frames], tf.float32, 'f0_hz'),
                 'loudness_db': tf.TensorSpec([1, n_frames], tf.float32,
                                              'loudness_db')}
        if self.z_dims:
            specs['z'] = tf.TensorSpec([1, n_frames, self.z_dims],
                                       tf.float32, 'z')
        return specs

    def _step(self, frames: dict, state: dict):
        """One block: frames {f0_hz, loudness_db[, z]} [1, block_frames].

        `state` and the returned state are keyed by the signature names.
        """
        import tensorflow as tf
        n = len(STATE_PREFIX)
        audio, new_state = self.synth.step(
            frames['f0_hz'], frames['loudness_db'], frames.get('z'),
            {k[n:]: v for k, v in state.items()})
        audio = tf.reshape(audio, [1, self.block_frames * self.hop_size])
        return audio, {STATE_PREFIX + k: v for k, v in new_state.items()}

    def initial_state(self) -> dict:
        return {STATE_PREFIX + k: v
                for k, v in self.synth.initial_state().items()}

    def _offline(self, inputs: dict):
        """Whole sequences: the step in a graph loop over padded blocks."""
        import tensorflow as tf
        block, hop = self.block_frames, self.hop_size
        n_frames = tf.shape(inputs['f0_hz'])[1]
        n_samples = n_frames * hop
        # Enough blocks for the output plus the latency; the padding repeats
        # the last frame (held, as the offline synthesis holds it).
        n_blocks = (n_samples + self.latency_samples + block * hop - 1) // (
            block * hop)
        n_padded = n_blocks * block

        def pad(x):
            last = x[:, -1:]
            reps = tf.concat([[1, n_padded - n_frames],
                              tf.ones([tf.rank(x) - 2], tf.int32)], 0)
            x = tf.concat([x, tf.tile(last, reps)], axis=1)
            return tf.reshape(x, tf.concat([[1, n_blocks, block],
                                            tf.shape(x)[2:]], 0))

        frames = {k: pad(v) for k, v in inputs.items()}
        state = self.initial_state()
        audio = tf.TensorArray(tf.float32, size=n_blocks,
                               element_shape=[1, block * hop])

        def body(i, audio, state):
            block_frames = {k: tf.ensure_shape(
                v[:, i], self.frame_specs(block)[k].shape)
                for k, v in frames.items()}
            out, state = self._step(block_frames, state)
            return i + 1, audio.write(i, out), state

        _, audio, _ = tf.while_loop(lambda i, *_: i < n_blocks, body,
                                    (tf.constant(0), audio, state))
        audio = tf.reshape(tf.transpose(audio.stack(), [1, 0, 2]), [1, -1])
        return {'audio': audio[:, self.latency_samples:
                               self.latency_samples + n_samples]}

    def build(self, inference_model: str):
        """A tf.Module with the signatures of `inference_model`.

        Returns:
            (module, signatures {name: concrete function}, io {signature:
            {'inputs': {...}, 'outputs': {...}}} with shapes and dtypes).
        """
        import tensorflow as tf
        if inference_model not in INFERENCE_MODELS:
            raise ValueError(f'inference_model must be one of '
                             f'{list(INFERENCE_MODELS)}, got '
                             f'{inference_model!r}.')
        module = tf.Module()
        # Keras 3 variables are not tf.Variables: track their TF variables so
        # the SavedModel saves them (KERAS3-NOTES trap 7).
        module.model_variables = [
            getattr(v, 'value', v) for v in self.trained.model.variables]
        signatures, io = {}, {}
        if inference_model == 'autoencoder':
            specs = self.frame_specs(None)
            fn = tf.function(self._offline, input_signature=[specs],
                             autograph=False)
            module.serving_default = fn
            signatures['serving_default'] = fn.get_concrete_function()
            io['serving_default'] = {
                'inputs': _spec_dict(specs),
                'outputs': {'audio': {'shape': [1, None], 'dtype': 'float32'}}}
        else:
            specs = dict(self.frame_specs(self.block_frames),
                         **self.state_specs)

            def step(inputs):
                frames = {k: inputs[k] for k in self.frame_specs(None)}
                state = {k: inputs[k] for k in self.state_specs}
                audio, new_state = self._step(frames, state)
                return dict(new_state, audio=audio)

            module.step = tf.function(step, input_signature=[specs],
                                      autograph=False)
            module.initial_state = tf.function(self.initial_state,
                                               input_signature=[])
            signatures['step'] = module.step.get_concrete_function()
            signatures['initial_state'] = (
                module.initial_state.get_concrete_function())
            audio_spec = {'shape': [1, self.block_frames * self.hop_size],
                          'dtype': 'float32'}
            io['step'] = {'inputs': _spec_dict(specs),
                          'outputs': dict(_spec_dict(self.state_specs),
                                          audio=audio_spec)}
            io['initial_state'] = {'inputs': {},
                                   'outputs': _spec_dict(self.state_specs)}
        return module, signatures, io


def save_saved_model(module, signatures: dict, save_dir: str) -> str:
    """tf.saved_model.save without the (training-only) custom gradients."""
    import tensorflow as tf
    # The fused GRU's and the synthesis kernel's custom gradients capture
    # loop internals that SavedModel cannot serialise; inference needs none.
    options = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
    tf.saved_model.save(module, save_dir, signatures=signatures,
                        options=options)
    return save_dir


def export_tflite(trained, block_frames: int, path: str) -> dict:
    """Writes the streaming step (batch 1, no reverb) as a .tflite file.

    Traced with float32 phases and matrix-product DFTs so that only TFLite
    builtin ops are needed; falls back to TF select ops (Flex) with a warning
    if some op has no builtin (such a file does not run in ai_edge_litert).

    Returns:
        {'path', 'builtins_only', 'io' (the signature's shapes)}.
    """
    import tensorflow as tf
    from ddsp import core
    with (core.phase_precision(_TFLITE_PHASE_DTYPE),
          core.dft_method(_TFLITE_DFT_METHOD)):
        exporter = ExportModule(trained, block_frames, use_reverb=False)
        module, signatures, io = exporter.build('streaming')
        with tempfile.TemporaryDirectory() as tmp:
            save_saved_model(module, signatures, tmp)
            builtins_only = True
            try:
                flatbuffer = _convert_tflite(tmp, select_ops=False)
            except Exception as e:  # pylint: disable=broad-except
                logging.warning(
                    'The streaming step needs ops outside the TFLite builtins '
                    '(%s); writing a TFLite model with TF select ops, which '
                    'needs the Flex delegate (not in ai_edge_litert).',
                    str(e).splitlines()[0][:300])
                builtins_only = False
                flatbuffer = _convert_tflite(tmp, select_ops=True)
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'wb') as f:
        f.write(flatbuffer)
    return {'path': path, 'builtins_only': builtins_only, 'io': io}


def _convert_tflite(saved_model_dir: str, select_ops: bool) -> bytes:
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=['step', 'initial_state'])
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    return converter.convert()


def export_tfjs(saved_model_dir: str, save_dir: str) -> str | None:
    """Converts the SavedModel's serving signature to TF.js, if possible.

    Returns the output directory, or None (logged) without tensorflowjs.
    """
    try:
        from tensorflowjs.converters import tf_saved_model_conversion_v2
    except ImportError:
        logging.warning('--tfjs: skipped, the tensorflowjs package is not '
                        'installed (pip install tensorflowjs).')
        return None
    output_dir = os.path.join(save_dir, 'tfjs')
    tf_saved_model_conversion_v2.convert_tf_saved_model(
        saved_model_dir, output_dir, signature_def='serving_default',
        control_flow_v2=True, skip_op_check=True)
    return output_dir


# Metadata ---------------------------------------------------------------------
def _output_sizes(model) -> dict:
    decoder = getattr(model, 'decoder', None)
    return dict(getattr(decoder, 'output_splits', ()) or ())


def _dataset_summary(stats: dict | None) -> dict | None:
    """Pitch / loudness statistics for hosts (JSON scalars only)."""
    if not stats:
        return None
    return {k: v for k, v in stats.items()
            if k.split('_')[-1] in ('pitch', 'power', 'loudness', 'note') and
            isinstance(v, (int, float))} | {
                k: stats[k] for k in ('n_examples', 'frame_rate',
                                      'sample_rate') if k in stats}


def get_metadata(trained, block_frames: int, inference_model: str,
                 signatures_io: dict, latency_samples: int,
                 files: dict | None = None) -> dict[str, Any]:
    """The metadata.json contents for any model."""
    import ddsp
    sizes = _output_sizes(trained.model)
    ir_size = None
    if trained.has_reverb:
        from ddsp.training import inference
        ir = inference.get_reverb_ir(trained)
        ir_size = None if ir is None else int(len(ir))
    return {
        'name': files.get('name', '') if files else '',
        'inference_model': inference_model,
        'sample_rate': int(trained.sample_rate),
        'frame_rate': float(trained.frame_rate),
        'hop_size': int(trained.hop_size),
        'frame_size': int(trained.hop_size),
        'num_harmonics': sizes.get('harmonic_distribution'),
        'num_noise_amps': sizes.get('noise_magnitudes'),
        'uses_z': bool(trained.uses_z),
        'z_dims': trained.z_dims,
        'block_frames': int(block_frames),
        'block_samples': int(block_frames) * int(trained.hop_size),
        'latency_samples': int(latency_samples),
        'signatures': signatures_io,
        'reverb': {'has_reverb': bool(trained.has_reverb),
                   'ir_size': ir_size,
                   'in_saved_model': bool(trained.has_reverb),
                   'in_tflite': False},
        'dataset_statistics': _dataset_summary(trained.dataset_stats),
        'checkpoint': os.path.basename(trained.checkpoint),
        'files': files or {},
        'version': ddsp.__version__,
        'export_time': datetime.datetime.now(
            datetime.timezone.utc).isoformat(timespec='seconds'),
    }


# The whole export -------------------------------------------------------------
@dataclasses.dataclass
class ExportResult:
    save_dir: str
    metadata: dict
    tflite: str | None = None
    tfjs: str | None = None
    reverb_files: Sequence[str] = ()


def export(model_path: str, save_dir: str = '', name: str = '',
           inference_model: str = 'autoencoder',
           gin_params: Sequence[str] = (), block_frames: int = 20,
           tflite: bool = True, tfjs: bool = False, metadata: bool = True,
           reverb: bool = True, reverb_sample_rate: int | None = 44100
           ) -> ExportResult:
    """Exports the model at `model_path` (see the module docstring)."""
    from ddsp.training import inference
    if inference_model not in INFERENCE_MODELS:
        raise ValueError(f'inference_model must be one of '
                         f'{list(INFERENCE_MODELS)}, got {inference_model!r}.')
    model_dir, checkpoint = resolve_model_path(model_path)
    save_dir = save_dir or default_save_dir(model_dir, name)
    trained = inference.load_model(model_dir, checkpoint,
                                   gin_params=list(gin_params))
    exporter = ExportModule(trained, block_frames)
    module, signatures, io = exporter.build(inference_model)
    os.makedirs(save_dir, exist_ok=True)
    save_saved_model(module, signatures, save_dir)
    logging.info('Wrote the SavedModel (%s) to %s', sorted(signatures),
                 save_dir)
    result = ExportResult(save_dir=save_dir, metadata={})
    files = {'name': name, 'saved_model': '.'}
    if reverb and trained.has_reverb:
        ir = inference.get_reverb_ir(trained)
        if ir is not None:
            result.reverb_files = export_reverb_ir(
                ir, trained.sample_rate, save_dir, reverb_sample_rate or None)
            files['reverb_ir'] = [os.path.basename(p)
                                  for p in result.reverb_files]
    if tflite:
        tfl = export_tflite(trained, block_frames, os.path.join(
            save_dir, 'tflite', f'{name or "model"}.tflite'))
        result.tflite = tfl['path']
        io['tflite'] = tfl['io']
        io['tflite']['builtins_only'] = tfl['builtins_only']
        files['tflite'] = os.path.relpath(tfl['path'], save_dir)
    if tfjs:
        result.tfjs = export_tfjs(save_dir, save_dir)
        if result.tfjs:
            files['tfjs'] = 'tfjs'
    result.metadata = get_metadata(trained, block_frames, inference_model,
                                   io, exporter.latency_samples, files)
    if metadata:
        with open(os.path.join(save_dir, METADATA_FILE), 'w') as f:
            json.dump(result.metadata, f, indent=1)
    return result


# Command line -----------------------------------------------------------------
def _flag_errors() -> list:
    errors = []
    if not FLAGS.model_path:
        errors.append('--model_path is required (a ddsp_run model directory '
                      'or a checkpoint in it).')
    if FLAGS.block_frames < 1:
        errors.append(f'--block_frames must be >= 1, got '
                      f'{FLAGS.block_frames}.')
    if FLAGS.reverb_sample_rate < 0:
        errors.append('--reverb_sample_rate must be >= 0, got '
                      f'{FLAGS.reverb_sample_rate}.')
    return errors


# Parses our flags, then absl's own (logging); exits on errors.
parse_flags = cli.make_flag_parser(FLAGS, _NAME, __doc__)


def run() -> int:
    """Runs the export from the parsed FLAGS; returns the exit status."""
    errors = _flag_errors()
    if errors:
        return cli.print_errors(_NAME, errors)
    try:
        result = export(
            FLAGS.model_path, save_dir=FLAGS.save_dir, name=FLAGS.name,
            inference_model=FLAGS.inference_model,
            gin_params=FLAGS.gin_param, block_frames=FLAGS.block_frames,
            tflite=FLAGS.tflite, tfjs=FLAGS.tfjs, metadata=FLAGS.metadata,
            reverb=FLAGS.reverb,
            reverb_sample_rate=FLAGS.reverb_sample_rate)
    except (FileNotFoundError, ValueError) as e:
        return cli.print_errors(_NAME, [e], status=1)
    print(f'{_NAME}: exported to {result.save_dir}')
    return 0


def console_entry_point():
    """From pip installed script."""
    cli.run_tool(run, FLAGS, _NAME, __doc__)


if __name__ == '__main__':
    console_entry_point()
