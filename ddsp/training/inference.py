"""Inference with trained models: loading, whole-file and streaming synthesis.

`load_model(model_dir)` restores a `ddsp_run` save_dir. `synthesize` renders
f0 and loudness of any length (minutes) block by block with the
`StreamingSynthesizer`, in bounded memory; `synthesize_offline` renders the
whole sequence in one pass (the reference the stream is tested against: both
agree within 1e-3).

Streaming design (batch 1, hop H samples per frame, block of B frames):
* Decoder: the RnnFcDecoder is built with `stateless=True` (same variables as
  the stateful decoder it was trained as) and its RNN state is carried.
* Harmonic synthesizer: frame j sits at sample j * H; the samples between
  frames j and j + 1 need both, so a block's frames render the interval
  before them, from the previous block's last frame (kept in the state), with
  the oscillator phases carried: one frame of latency.
* Filtered noise: the noise is `core.counter_noise` (a function of the
  absolute sample index), the same in both paths. Each frame's windowed noise
  segment is filtered with its own impulse response (as `core.fft_convolve`
  does) and overlap-added into a tail buffer carried to the next block. The
  filters are linear phase (centred), so the dry signal is delayed by half
  the filter length: latency_samples = H + W // 2.
* Reverb: uniformly partitioned convolution (overlap-save, one FFT of each
  IR partition made once, a frequency-domain delay line of past blocks).
* The end (`flush`): the last frame is held over one more hop, as the
  synthesizers do with `add_endpoint=True`, so the stream is exactly
  n_frames * H samples long.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from typing import Optional, Sequence

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from ddsp import core
from ddsp import effects
from ddsp import processors
from ddsp import synths
from ddsp.training import ddsp_run
from ddsp.training import decoders
from ddsp.training import models
from ddsp.training import postprocessing
from ddsp.training import train_util

# Seed of the noise of the filtered-noise synthesizer in both paths.
NOISE_SEED = 0
DEFAULT_BLOCK_FRAMES = 50  # 0.2 s at 250 frames per second.
_SYNTHESIZE_BLOCK_FRAMES = 1000  # Whole-file rendering: bigger is faster.
_APPLY_REVERB_BLOCK = 16384
_STATELESS_BINDING = 'RnnFcDecoder.stateless = True'


@dataclasses.dataclass
class TrainedModel:
    """A restored model and what inference needs to know about it."""
    model: 'models.Autoencoder'  # restored, built, ready to call
    model_dir: str
    checkpoint: str  # the checkpoint prefix that was restored
    sample_rate: int
    frame_rate: float
    hop_size: int  # samples per frame
    dataset_stats: Optional[dict]
    uses_z: bool  # the model has an encoder (needs audio or z)
    z_dims: Optional[int]
    has_reverb: bool


# Loading ----------------------------------------------------------------------
def _expand(path: str) -> str:
    return os.path.expanduser(os.path.expandvars(path))


def _find_processor(model, cls):
    group = getattr(model, 'processor_group', None)
    if group is None:
        return None
    for module in group.modules:
        if isinstance(module, cls):
            return module
    return None


def _training_lengths(model) -> tuple[int, int]:
    """(frames, samples) of the model's training examples."""
    harmonic = _find_processor(model, synths.Harmonic)
    if harmonic is None:
        raise ValueError('inference needs a model with a synths.Harmonic '
                         'synthesizer in its processor group.')
    n_samples = int(harmonic.n_samples)
    preprocessor = getattr(model, 'preprocessor', None)
    time_steps = getattr(preprocessor, 'time_steps', None)
    if time_steps is None:
        raise ValueError('inference needs a preprocessor with `time_steps` '
                         '(e.g. F0LoudnessPreprocessor) to know the frame rate.')
    return int(time_steps), n_samples


def _dataset_statistics(model_dir: str) -> Optional[dict]:
    """dataset_statistics.json of model_dir, else beside the TFRecords."""
    name = postprocessing.DATASET_STATISTICS_FILE
    candidates = [os.path.join(model_dir, name)]
    try:
        pattern = gin.query_parameter('TFRecordProvider.file_pattern')
    except (ValueError, KeyError):
        pattern = None
    if isinstance(pattern, str) and pattern:
        candidates.append(os.path.join(os.path.dirname(_expand(pattern)), name))
    for path in candidates:
        if tf.io.gfile.exists(path):
            logging.info('Dataset statistics from %s.', path)
            return postprocessing.load_dataset_statistics(path)
    logging.info('No %s in %s: dataset_stats is None.', name, candidates)
    return None


def _dummy_features(model, time_steps: int, n_samples: int) -> dict:
    features = {'f0_hz': tf.fill([1, time_steps], 220.0),
                'loudness_db': tf.fill([1, time_steps], -40.0)}
    if getattr(model, 'encoder', None) is not None:
        features['audio'] = tf.zeros([1, n_samples])
    return features


def load_model(model_dir: str, checkpoint: Optional[str] = None,
               gin_params: Sequence[str] = ()) -> TrainedModel:
    """Restores the newest checkpoint of a `ddsp_run` save_dir.

    Replaces the global gin config with the model's operative config (plus
    `gin_params`). RnnFcDecoders are built stateless (explicit RNN state, same
    variables) so that the model can stream.

    Args:
        model_dir: The save_dir of a training run.
        checkpoint: A checkpoint prefix or directory; None: newest in
            model_dir.
        gin_params: Extra gin bindings, applied last.

    Returns:
        TrainedModel.

    Raises:
        FileNotFoundError: model_dir is not a directory, or has no operative
            config, or there is no checkpoint.
        ValueError: the model is not a DDSP synthesis model inference knows.
    """
    model_dir = _expand(str(model_dir))
    if not tf.io.gfile.isdir(model_dir):
        raise FileNotFoundError(f'model_dir {model_dir!r} is not a directory.')
    try:
        train_util.get_latest_operative_config(model_dir)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'model_dir {model_dir!r} has no operative_config-<N>.gin: not a '
            '`ddsp_run` save_dir.') from None
    source = model_dir if checkpoint is None else _expand(str(checkpoint))
    try:
        checkpoint_path = models.latest_checkpoint(source)
    except FileNotFoundError as e:
        arg = 'model_dir' if checkpoint is None else 'checkpoint'
        raise FileNotFoundError(f'{arg} {source!r}: {e}') from None

    gin.clear_config()
    ddsp_run.parse_gin(model_dir,
                       gin_params=[_STATELESS_BINDING] + list(gin_params))
    model = models.get_model()
    time_steps, n_samples = _training_lengths(model)
    if n_samples % time_steps:
        raise ValueError(f'Harmonic.n_samples ({n_samples}) is not a multiple '
                         f'of the preprocessor time_steps ({time_steps}).')
    hop_size = n_samples // time_steps
    # Build every variable (one call at the training lengths) so that the
    # restore can check that all of them are in the checkpoint.
    model(_dummy_features(model, time_steps, n_samples), training=False)
    model.restore(checkpoint_path, verbose=True)

    harmonic = _find_processor(model, synths.Harmonic)
    sample_rate = int(harmonic.sample_rate)
    frame_rate = sample_rate / hop_size
    preprocessor_rate = getattr(model.preprocessor, 'frame_rate', None)
    if preprocessor_rate is not None and preprocessor_rate != frame_rate:
        logging.warning('The preprocessor frame_rate (%s) differs from the '
                        'synthesis frame rate %s = Harmonic.n_samples / '
                        'time_steps; using the latter.', preprocessor_rate,
                        frame_rate)
    encoder = getattr(model, 'encoder', None)
    z_dims = None
    if encoder is not None:
        dense = getattr(encoder, 'dense_out', None)
        z_dims = int(dense.units) if dense is not None else None
    reverb = _find_processor(model, effects.Reverb)
    return TrainedModel(
        model=model, model_dir=model_dir, checkpoint=checkpoint_path,
        sample_rate=sample_rate, frame_rate=frame_rate, hop_size=hop_size,
        dataset_stats=_dataset_statistics(model_dir),
        uses_z=encoder is not None, z_dims=z_dims,
        has_reverb=reverb is not None)


# Input checks -----------------------------------------------------------------
def _frames_array(x, name: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 1:
        raise ValueError(f'{name} must be a 1-D array [n_frames], got shape '
                         f'{x.shape}.')
    if not np.all(np.isfinite(x)):
        raise ValueError(f'{name} contains NaN or infinite values (at frames '
                         f'{np.flatnonzero(~np.isfinite(x))[:5].tolist()}...).')
    return x


def _check_features(trained: TrainedModel, f0_hz, loudness_db, z,
                    allow_empty: bool = False):
    """Validated float32 (f0 [n], loudness [n], z [n, z_dims] or None)."""
    f0_hz = _frames_array(f0_hz, 'f0_hz')
    loudness_db = _frames_array(loudness_db, 'loudness_db')
    if f0_hz.shape != loudness_db.shape:
        raise ValueError(f'f0_hz and loudness_db must have the same number of '
                         f'frames, got {f0_hz.shape[0]} and '
                         f'{loudness_db.shape[0]}.')
    if not allow_empty and not f0_hz.size:
        raise ValueError('f0_hz and loudness_db are empty (0 frames).')
    if np.any(f0_hz < 0):
        raise ValueError('f0_hz must be >= 0 Hz.')
    if trained.uses_z:
        if z is None:
            raise ValueError('This model has an encoder: pass z [n_frames, '
                             'z_dims] (from compute_z).')
        z = np.asarray(z, np.float32)
        expected = (f0_hz.shape[0], trained.z_dims)
        if z.ndim != 2 or z.shape[0] != expected[0] or (
                expected[1] is not None and z.shape[1] != expected[1]):
            raise ValueError(f'z must have shape [n_frames, z_dims] = '
                             f'{list(expected)}, got {list(z.shape)}.')
        if not np.all(np.isfinite(z)):
            raise ValueError('z contains NaN or infinite values.')
    elif z is not None:
        raise ValueError('This model has no encoder: z must be None.')
    return f0_hz, loudness_db, z


# The synthesis plan -----------------------------------------------------------
@dataclasses.dataclass
class _Plan:
    """The processors of a model and the keys of their inputs."""
    harmonic: synths.Harmonic
    harmonic_keys: list
    noise: Optional[synths.FilteredNoise]
    noise_keys: list
    reverb: Optional[effects.Reverb]


def _plan(model) -> _Plan:
    """Reads the processor group: Harmonic (+ FilteredNoise, Add) (+ Reverb).

    Raises:
        ValueError: for other processor groups.
    """
    group = model.processor_group
    found = {}
    signals = []  # Signals that the Add / Reverb nodes may read.
    for i, (name, keys, _) in enumerate(group.dag_nodes):
        module = getattr(group, name)
        kind = None
        if isinstance(module, synths.Harmonic):
            kind = 'harmonic'
        elif isinstance(module, synths.FilteredNoise):
            kind = 'noise'
        elif (isinstance(module, processors.Add) and len(signals) == 2 and
              sorted(keys) == sorted(signals)):
            kind = 'add'
        elif (isinstance(module, effects.Reverb) and module.trainable and
              i == len(group.dag_nodes) - 1 and len(keys) == 1 and
              keys[0] in signals[-1:]):
            kind = 'reverb'
        if kind is None or kind in found:
            raise ValueError(
                f'inference supports processor groups of a Harmonic '
                f'synthesizer, optionally FilteredNoise added to it, and '
                f'optionally a trainable Reverb last (models/*.gin); node '
                f'{name!r} ({type(module).__name__}, inputs {keys}) is not '
                'supported.')
        found[kind] = (module, list(keys))
        signals = [f'{name}/signal'] if kind in ('add', 'reverb') else (
            signals + [f'{name}/signal'])
    if 'harmonic' not in found:
        raise ValueError('inference needs a Harmonic synthesizer.')
    if 'noise' in found and 'add' not in found:
        raise ValueError('FilteredNoise must be added to the harmonic signal '
                         'with processors.Add.')
    noise, noise_keys = found.get('noise', (None, []))
    return _Plan(harmonic=found['harmonic'][0],
                 harmonic_keys=found['harmonic'][1], noise=noise,
                 noise_keys=noise_keys,
                 reverb=found.get('reverb', (None,))[0])


@contextlib.contextmanager
def _time_steps(preprocessor, n_frames: int):
    """Temporarily resamples the preprocessor's outputs to n_frames."""
    if preprocessor is None or not hasattr(preprocessor, 'time_steps'):
        yield
        return
    saved = preprocessor.time_steps
    preprocessor.time_steps = int(n_frames)
    try:
        yield
    finally:
        preprocessor.time_steps = saved


def _controls(model, plan: _Plan, f0_hz, loudness_db, z, rnn_state=None):
    """Decoder and synthesizer controls for [1, n, 1] f0 and loudness.

    Returns:
        (harmonic controls dict, noise magnitudes [1, n, bands] or None, new
        RNN state or None).
    """
    n_frames = f0_hz.shape[1]
    conditioning = {'f0_hz': f0_hz, 'loudness_db': loudness_db}
    if model.preprocessor is not None:
        with _time_steps(model.preprocessor, n_frames):
            conditioning.update(model.preprocessor(conditioning,
                                                   training=False))
    if z is not None:
        conditioning['z'] = z
    if rnn_state is not None:
        conditioning['state'] = rnn_state
    outputs = dict(conditioning)
    outputs.update(model.decoder(conditioning, training=False))

    def inputs(keys):
        return [core.nested_lookup(k, outputs) for k in keys]

    harmonic = plan.harmonic.get_controls(*inputs(plan.harmonic_keys))
    magnitudes = None
    if plan.noise is not None:
        magnitudes = plan.noise.get_controls(
            *inputs(plan.noise_keys))['magnitudes']
    return harmonic, magnitudes, outputs.get('state')


def _reverb_ir(reverb: effects.Reverb) -> tf.Tensor:
    """The wet IR [ir_size] as Reverb applies it (first sample zeroed)."""
    ir = reverb.get_controls(tf.zeros([1, 1]))['ir'][0]
    return tf.concat([tf.zeros([1]), ir[1:]], axis=0)


def _to_3d(x, n_frames):
    return tf.reshape(core.tf_float32(x), [1, n_frames, -1])


# Offline ----------------------------------------------------------------------
def _offline(trained: TrainedModel, f0_hz, loudness_db, z, use_reverb: bool
             ) -> dict:
    """Whole-sequence synthesis; returns every signal (float32 [1, n])."""
    model, plan = trained.model, _plan(trained.model)
    n_frames = f0_hz.shape[0]
    n_samples = n_frames * trained.hop_size
    harmonic, magnitudes, _ = _controls(
        model, plan, _to_3d(f0_hz, n_frames), _to_3d(loudness_db, n_frames),
        None if z is None else _to_3d(z, n_frames))
    signals = {'harmonic': core.harmonic_synthesis(
        frequencies=harmonic['f0_hz'], amplitudes=harmonic['amplitudes'],
        harmonic_distribution=harmonic['harmonic_distribution'],
        n_samples=n_samples, sample_rate=plan.harmonic.sample_rate,
        amp_resample_method=plan.harmonic.amp_resample_method,
        use_angular_cumsum=plan.harmonic.use_angular_cumsum)}
    dry = signals['harmonic']
    if plan.noise is not None:
        noise = core.counter_noise(0, n_samples, NOISE_SEED)[tf.newaxis]
        signals['noise'] = core.frequency_filter(
            noise, magnitudes, window_size=plan.noise.window_size)
        dry = dry + signals['noise']
    signals['dry'] = dry
    signals['audio'] = (plan.reverb(dry) if use_reverb and plan.reverb
                        is not None else dry)
    return signals


def synthesize_offline(trained: TrainedModel, f0_hz, loudness_db, z=None, *,
                       use_reverb: bool = True) -> np.ndarray:
    """Renders the whole sequence in one model pass.

    Same inputs and output as `synthesize`; memory grows with the length.
    The noise is `core.counter_noise(seed=NOISE_SEED)` (as in `synthesize`).
    """
    f0_hz, loudness_db, z = _check_features(trained, f0_hz, loudness_db, z)
    return _offline(trained, f0_hz, loudness_db, z,
                    use_reverb)['audio'][0].numpy()


# Reverb -----------------------------------------------------------------------
class _PartitionedConvolver:
    """Streaming linear convolution with a long IR (uniform partitions).

    Overlap-save: each step takes `block_size` new samples and returns
    `block_size` samples of input * ir. The IR is cut into P partitions of
    block_size samples whose spectra (FFT size 2 * block_size) are computed
    once; the state holds the previous input block and the spectra of the
    last P input frames (real and imaginary parts, float32).
    """

    STATE_KEYS = ('reverb_input', 'reverb_fdl_real', 'reverb_fdl_imag')

    def __init__(self, ir, block_size: int):
        ir = np.asarray(ir, np.float32)
        self.block_size = int(block_size)
        self.n_partitions = -(-len(ir) // self.block_size)
        parts = np.zeros([self.n_partitions, 2 * self.block_size], np.float64)
        padded = np.zeros(self.n_partitions * self.block_size)
        padded[:len(ir)] = ir
        parts[:, :self.block_size] = padded.reshape(self.n_partitions, -1)
        self.ir_fft = tf.constant(np.fft.rfft(parts).astype(np.complex64))

    def initial_state(self) -> dict:
        shape = [self.n_partitions, self.block_size + 1]
        return {'reverb_input': tf.zeros([1, self.block_size]),
                'reverb_fdl_real': tf.zeros(shape),
                'reverb_fdl_imag': tf.zeros(shape)}

    def step(self, x, state: dict):
        """x [1, block_size] -> (x * ir [1, block_size], new state)."""
        frame = tf.concat([state['reverb_input'], x], axis=1)
        spectrum = tf.signal.rfft(frame)  # [1, block_size + 1]
        fdl = tf.complex(state['reverb_fdl_real'], state['reverb_fdl_imag'])
        fdl = tf.concat([spectrum, fdl[:-1]], axis=0)
        y_fft = tf.reduce_sum(fdl * self.ir_fft, axis=0, keepdims=True)
        y = tf.signal.irfft(y_fft)[:, self.block_size:]
        return y, {'reverb_input': x, 'reverb_fdl_real': tf.math.real(fdl),
                   'reverb_fdl_imag': tf.math.imag(fdl)}


def get_reverb_ir(trained: TrainedModel) -> Optional[np.ndarray]:
    """The learned room impulse response [ir_size], as the model applies it.

    Its first sample is zero: the dry signal is added separately
    (Reverb.add_dry). None if the model has no reverb.
    """
    reverb = _find_processor(trained.model, effects.Reverb)
    if reverb is None:
        return None
    return _reverb_ir(reverb).numpy()


def apply_reverb(trained: TrainedModel, audio) -> np.ndarray:
    """Acoustic transfer: the model's room applied to audio (any length).

    Args:
        trained: A model with a reverb.
        audio: [n_samples] at trained.sample_rate.

    Returns:
        float32 [n_samples]: audio + audio * ir (dry + wet, as the model's
        Reverb with add_dry; wet only if add_dry is False), computed in
        blocks (bounded memory).

    Raises:
        ValueError: if the model has no reverb or audio is not 1-D finite.
    """
    reverb = _find_processor(trained.model, effects.Reverb)
    if reverb is None:
        raise ValueError('apply_reverb: this model has no reverb '
                         f'(model_dir {trained.model_dir!r}).')
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1 or not np.all(np.isfinite(audio)):
        raise ValueError(f'audio must be a finite 1-D array [n_samples], got '
                         f'shape {audio.shape}.')
    block = _APPLY_REVERB_BLOCK
    convolver = _PartitionedConvolver(_reverb_ir(reverb).numpy(), block)
    step = tf.function(convolver.step, autograph=False)
    state = convolver.initial_state()
    n_blocks = -(-len(audio) // block)
    padded = np.zeros(n_blocks * block, np.float32)
    padded[:len(audio)] = audio
    wet = []
    for i in range(n_blocks):
        y, state = step(tf.constant(padded[i * block:(i + 1) * block][None]),
                        state)
        wet.append(y[0].numpy())
    wet = np.concatenate(wet)[:len(audio)] if wet else np.zeros(0, np.float32)
    return (wet + audio) if reverb.add_dry else wet


# z ----------------------------------------------------------------------------
def compute_z(trained: TrainedModel, audio, n_frames: int) -> np.ndarray:
    """The encoder's latent z of audio, at n_frames frames.

    Args:
        trained: A model with an encoder (e.g. models/ae.gin).
        audio: [n_samples] at trained.sample_rate (the whole recording).
        n_frames: Frames of the f0 / loudness it will be decoded with.

    Returns:
        float32 z [n_frames, z_dims].
    """
    encoder = getattr(trained.model, 'encoder', None)
    if encoder is None:
        raise ValueError('compute_z: this model has no encoder (uses_z is '
                         'False).')
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1 or not audio.size or not np.all(np.isfinite(audio)):
        raise ValueError(f'audio must be a non-empty finite 1-D array '
                         f'[n_samples], got shape {audio.shape}.')
    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f'n_frames must be a positive integer, got '
                         f'{n_frames}.')
    z = encoder.compute_z(tf.constant(audio[np.newaxis]))
    return encoder.expand_z(z, int(n_frames))[0].numpy()


# Streaming --------------------------------------------------------------------
def _streamable(model) -> bool:
    decoder = model.decoder
    return isinstance(decoder, decoders.RnnFcDecoder) and decoder.stateless


def _virtual_start_phase(f0_hz: tf.Tensor, hop: int, sample_rate: float,
                         n_harmonics: int) -> tf.Tensor:
    """Harmonic phases one hop before sample 0 that reach 0 at sample 0.

    The phases of a constant f0 interval ending at the first frame. Computed
    in `core.get_phase_dtype()` (float64, or float32 when traced for TFLite);
    the fundamental's phase is wrapped before it is multiplied by k, so that
    float32 errs by ~k * 5e-7 rad at most.

    Args:
        f0_hz: The first frame's f0, [1, 1, 1].
        hop: Samples per frame.
        sample_rate: Samples per second.
        n_harmonics: K.

    Returns:
        float32 phases in [0, 2*pi), [1, 1, K].
    """
    dtype = core.get_phase_dtype()
    advance = tf.cast(f0_hz, dtype) * (2.0 * np.pi * hop / sample_rate)
    fundamental = tf.math.floormod(-advance, 2.0 * np.pi)
    harmonics = fundamental * tf.range(1, n_harmonics + 1, dtype=dtype)
    return tf.cast(tf.math.floormod(harmonics, 2.0 * np.pi), tf.float32)


class StreamingSynthesizer:
    """Block-by-block synthesis with explicit state (see module docstring).

    `process(f0, loudness, z)` takes any number of frames and returns the
    audio that is ready; `flush()` returns the rest. All outputs concatenated
    are the n_frames * hop_size samples of `synthesize_offline` (within
    1e-3). `step(f0, loudness, z, state)` is the pure-TF fixed-size block
    function (block_frames frames in, block_frames * hop_size samples out,
    delayed by latency_samples) for export.
    """

    def __init__(self, trained: TrainedModel, use_reverb: bool = True,
                 block_frames: int = DEFAULT_BLOCK_FRAMES):
        if int(block_frames) != block_frames or block_frames < 1:
            raise ValueError(f'block_frames must be a positive integer, got '
                             f'{block_frames}.')
        model = trained.model
        if not _streamable(model):
            raise ValueError(
                'Streaming needs an RnnFcDecoder built with stateless=True '
                '(load_model binds it); this model has '
                f'{type(model.decoder).__name__}.')
        self.trained = trained
        self.plan = _plan(model)
        self.use_reverb = bool(use_reverb) and self.plan.reverb is not None
        self.block_frames = int(block_frames)
        self.hop_size = trained.hop_size
        self.block_samples = self.block_frames * self.hop_size
        harmonic, magnitudes, _ = self._probe()
        self.n_harmonics = int(harmonic['harmonic_distribution'].shape[-1])
        self._n_bands = None if magnitudes is None else magnitudes.shape[-1]
        self.noise_ir_size = self._probe_noise_ir_size()
        self.noise_delay = self.noise_ir_size // 2
        self.latency_samples = self.hop_size + self.noise_delay
        self.convolver = None
        if self.use_reverb:
            self.convolver = _PartitionedConvolver(
                _reverb_ir(self.plan.reverb).numpy(), self.block_samples)
        # Static control flow only: no autograph (its conversion is slow).
        self._step = tf.function(self.step, autograph=False)
        self.reset()

    # Static sizes, from one decoder call on one frame.
    def _probe(self):
        z = None
        if self.trained.uses_z:
            z = tf.zeros([1, 1, self.trained.z_dims])
        return _controls(self.trained.model, self.plan, tf.fill([1, 1, 1], 220.),
                         tf.fill([1, 1, 1], -40.), z, self._zero_rnn_state())

    def _zero_rnn_state(self):
        return self.trained.model.decoder.zero_state(1)

    def _probe_noise_ir_size(self) -> int:
        if self.plan.noise is None:
            return 0
        ir = core.frequency_impulse_response(
            tf.ones([1, 1, self._n_bands]), self.plan.noise.window_size)
        return int(ir.shape[-1])

    def initial_state(self) -> dict:
        """The state before the first block (batch 1 tensors)."""
        k = self.n_harmonics
        state = {
            'frame_index': tf.zeros([], tf.int32),  # frames processed
            'rnn_state': self._zero_rnn_state(),
            'f0_hz': tf.zeros([1, 1, 1]),  # the last frame's controls
            'amplitudes': tf.zeros([1, 1, 1]),
            'harmonic_distribution': tf.zeros([1, 1, k]),
            'phase': tf.zeros([1, 1, k]),  # at the last frame's sample
        }
        if self.plan.noise is not None:
            state['noise_magnitudes'] = tf.zeros([1, 1, self._n_bands])
            state['noise_tail'] = tf.zeros(
                [1, self.hop_size + self.noise_ir_size - 1])
            state['harmonic_delay'] = tf.zeros([1, self.noise_delay])
        if self.convolver is not None:
            state.update(self.convolver.initial_state())
        return state

    def reset(self):
        """Starts a new stream."""
        self._state = self.initial_state()
        self._pending = []  # Buffered (f0, loudness, z) frames < one block.
        self._n_pending = 0
        self._to_skip = self.latency_samples

    # The block function -------------------------------------------------
    def step(self, f0_hz, loudness_db, z, state: dict):
        """One block: block_frames frames -> block_frames * hop_size samples.

        Args:
            f0_hz, loudness_db: [block_frames] (or [1, block_frames]).
            z: [block_frames, z_dims] (or with a batch of 1) or None.
            state: initial_state() or the state the previous step returned.

        Returns:
            (audio [block_frames * hop_size] of the stream positions
            [k * S - latency_samples, (k + 1) * S - latency_samples) for the
            k-th block (S block samples; negative positions are silence),
            new state).
        """
        if (z is None) == self.trained.uses_z:
            raise ValueError('step: z must be given if and only if the model '
                             'has an encoder.')
        inputs = {'f0_hz': f0_hz, 'loudness_db': loudness_db}
        if z is not None:
            inputs['z'] = z
        for name, x in inputs.items():
            size = tf.convert_to_tensor(x).shape.num_elements()
            expected = self.block_frames * (self.trained.z_dims or 1
                                            if name == 'z' else 1)
            if size is not None and size != expected:
                raise ValueError(f'step: {name} must have block_frames '
                                 f'({self.block_frames}) frames, got shape '
                                 f'{tf.convert_to_tensor(x).shape}.')
        return self._render(f0_hz, loudness_db, z, state, self.block_frames,
                            final=False)

    def _render(self, f0_hz, loudness_db, z, state, n_frames: int,
                final: bool):
        """n_frames new frames (+ the held end frame if final) -> audio."""
        hop, k = self.hop_size, self.n_harmonics
        frame_index = state['frame_index']
        new_state = dict(state)
        started = frame_index > 0
        if n_frames:
            z3 = None if z is None else _to_3d(z, n_frames)
            harmonic, magnitudes, rnn_state = _controls(
                self.trained.model, self.plan, _to_3d(f0_hz, n_frames),
                _to_3d(loudness_db, n_frames), z3, state['rnn_state'])
            new_state['rnn_state'] = rnn_state
            first = {key: harmonic[key][:, :1] for key in
                     ('f0_hz', 'amplitudes', 'harmonic_distribution')}
            cur = harmonic
        else:  # Only the held end frame.
            first = {key: state[key] for key in
                     ('f0_hz', 'amplitudes', 'harmonic_distribution')}
            cur = {key: v[:, :0] for key, v in first.items()}
            magnitudes = None

        # Harmonic: the intervals from the last frame to the new ones.
        frames = {}
        for key in ('f0_hz', 'amplitudes', 'harmonic_distribution'):
            prev = tf.where(started, state[key], first[key])
            parts = [prev, cur[key]]
            if final:
                parts.append((cur[key] if n_frames else prev)[:, -1:])
            frames[key] = tf.concat(parts, axis=1)
            new_state[key] = frames[key][:, -1:]
        # Before the first frame, a constant virtual interval that ends with
        # phase 0 at sample 0 (its audio is in the skipped latency).
        start_phase = _virtual_start_phase(
            first['f0_hz'], hop, self.plan.harmonic.sample_rate, k)
        phase = tf.where(started, state['phase'], start_phase)
        n_intervals = n_frames + int(final)
        harmonic_audio, new_state['phase'] = core.harmonic_synthesis(
            frequencies=frames['f0_hz'], amplitudes=frames['amplitudes'],
            harmonic_distribution=frames['harmonic_distribution'],
            n_samples=n_intervals * hop,
            sample_rate=self.plan.harmonic.sample_rate,
            amp_resample_method=self.plan.harmonic.amp_resample_method,
            initial_phase=phase, return_final_phase=True, add_endpoint=False)

        # Dry signal at positions [(F - 1) * hop - delay, ...).
        dry = harmonic_audio
        if self.plan.noise is not None:
            dry, new_state = self._add_noise(dry, magnitudes, state,
                                             new_state, n_frames, final)
        n_out = dry.shape[1]
        start = (frame_index - 1) * hop - self.noise_delay
        positions = start + tf.range(n_out)
        dry = tf.where(positions[tf.newaxis] >= 0, dry, 0.0)
        new_state['frame_index'] = frame_index + n_frames
        if self.convolver is None:
            return dry[0], new_state
        if final:  # Any length: zero-padded reverb blocks.
            s = self.block_samples
            n_blocks = -(-n_out // s)
            padded = tf.pad(dry, [[0, 0], [0, n_blocks * s - n_out]])
            wet = []
            for i in range(n_blocks):
                y, new_state = self._reverb(padded[:, i * s:(i + 1) * s],
                                            new_state)
                wet.append(y)
            wet = tf.concat(wet, axis=1)[:, :n_out]
        else:
            wet, new_state = self._reverb(dry, new_state)
        audio = wet + dry if self.plan.reverb.add_dry else wet
        return audio[0], new_state

    def _reverb(self, x, state):
        y, reverb_state = self.convolver.step(
            x, {k: state[k] for k in self.convolver.STATE_KEYS})
        return y, {**state, **reverb_state}

    def _add_noise(self, harmonic_audio, magnitudes, state, new_state,
                   n_frames: int, final: bool):
        """Filtered noise of the new frames, overlap-added with the tail."""
        hop, ir_size = self.hop_size, self.noise_ir_size
        frame_index = state['frame_index']
        parts = [] if magnitudes is None else [magnitudes]
        if final:  # The held end frame (completes the last frame's window).
            last = (magnitudes[:, -1:] if n_frames
                    else state['noise_magnitudes'])
            parts.append(last)
        mags = tf.concat(parts, axis=1)
        n_filtered = mags.shape[1]
        new_state['noise_magnitudes'] = mags[:, -1:]
        # Frame j filters the noise of [(j - 1) * hop, (j + 1) * hop).
        start = (frame_index - 1) * hop
        length = (n_filtered + 1) * hop
        positions = start + tf.range(length)
        end = (frame_index + n_frames) * hop if final else None
        valid = positions >= 0
        if end is not None:
            valid = tf.logical_and(valid, positions < end)
        noise = tf.where(valid, core.counter_noise(start, length, NOISE_SEED),
                         0.0)[tf.newaxis]
        segments = tf.signal.frame(noise, 2 * hop, hop)  # [1, m, 2 hop]
        window = np.sin(np.pi * np.arange(2 * hop) / (2 * hop))**2
        segments *= tf.constant(window, tf.float32)
        ir = core.frequency_impulse_response(mags, self.plan.noise.window_size)
        filtered = core.circular_convolve(
            segments, ir, core.get_fft_size(2 * hop, ir_size))
        full = tf.signal.overlap_and_add(
            filtered[..., :2 * hop + ir_size - 1], hop)
        tail = state['noise_tail']
        full += tf.pad(tail, [[0, 0], [0, full.shape[1] - tail.shape[1]]])
        harmonic_audio = tf.concat([state['harmonic_delay'], harmonic_audio],
                                   axis=1)
        if final:
            n_out = harmonic_audio.shape[1]
            return harmonic_audio + full[:, :n_out], new_state
        n_out = n_frames * hop
        new_state['noise_tail'] = full[:, n_out:n_out + tail.shape[1]]
        new_state['harmonic_delay'] = harmonic_audio[:, n_out:]
        # full[t] is the noise output at t - noise_delay, as harmonic_audio.
        return harmonic_audio[:, :n_out] + full[:, :n_out], new_state

    # Python driver ------------------------------------------------------
    def _emit(self, audio: np.ndarray) -> np.ndarray:
        skip = min(self._to_skip, len(audio))
        self._to_skip -= skip
        return audio[skip:]

    def process(self, f0_hz, loudness_db, z=None) -> np.ndarray:
        """Frames in (any number), ready audio out (float32 1-D)."""
        f0_hz, loudness_db, z = _check_features(self.trained, f0_hz,
                                                loudness_db, z,
                                                allow_empty=True)
        self._pending.append((f0_hz, loudness_db, z))
        self._n_pending += len(f0_hz)
        outputs = []
        b = self.block_frames
        if self._n_pending >= b:
            f0_all, ld_all, z_all = self._take_pending()
            n_full = (len(f0_all) // b) * b
            for i in range(0, n_full, b):
                zi = None if z_all is None else tf.constant(z_all[i:i + b])
                audio, self._state = self._step(
                    tf.constant(f0_all[i:i + b]), tf.constant(ld_all[i:i + b]),
                    zi, self._state)
                outputs.append(self._emit(audio.numpy()))
            rest = (f0_all[n_full:], ld_all[n_full:],
                    None if z_all is None else z_all[n_full:])
            self._pending = [rest]
            self._n_pending = len(rest[0])
        if not outputs:
            return np.zeros(0, np.float32)
        return np.concatenate(outputs)

    def _take_pending(self):
        pending = self._pending
        f0 = np.concatenate([np.zeros(0, np.float32)] + [p[0] for p in pending])
        ld = np.concatenate([np.zeros(0, np.float32)] + [p[1] for p in pending])
        z = None
        if self.trained.uses_z:
            z = np.concatenate([np.zeros([0, self.trained.z_dims], np.float32)]
                               + [p[2] for p in pending])
        self._pending, self._n_pending = [], 0
        return f0, ld, z

    def flush(self) -> np.ndarray:
        """The remaining audio (the last frame held over one hop); resets.

        Raises:
            ValueError: if no frame was given since the last reset.
        """
        f0, ld, z = self._take_pending()
        if not len(f0) and int(self._state['frame_index']) == 0:
            raise ValueError('flush: no frames were processed.')
        audio, _ = self._render(
            tf.constant(f0), tf.constant(ld),
            None if z is None else tf.constant(z), self._state, len(f0),
            final=True)
        out = self._emit(audio.numpy())
        self.reset()
        return out


def _cached_streamer(trained: TrainedModel, use_reverb: bool,
                     block_frames: int) -> StreamingSynthesizer:
    """A reset StreamingSynthesizer, reused across calls (traced once).

    Kept on the TrainedModel; the key includes the reverb IR, which the
    streamer holds as a constant.
    """
    ir = get_reverb_ir(trained) if use_reverb else None
    key = (bool(use_reverb), int(block_frames),
           None if ir is None else hashlib.sha1(ir.tobytes()).hexdigest())
    cache = trained.__dict__.setdefault('_streamers', {})
    if key not in cache:
        cache[key] = StreamingSynthesizer(trained, use_reverb, block_frames)
    streamer = cache[key]
    streamer.reset()
    return streamer


def synthesize(trained: TrainedModel, f0_hz, loudness_db, z=None, *,
               use_reverb: bool = True,
               block_frames: Optional[int] = None) -> np.ndarray:
    """Renders f0 and loudness of any length, in blocks (bounded memory).

    Args:
        trained: From load_model.
        f0_hz: [n_frames] Hz at trained.frame_rate.
        loudness_db: [n_frames] dB.
        z: [n_frames, z_dims] for models with an encoder (compute_z), else
            None.
        use_reverb: Apply the learned room (False: dry signal,
            dereverberation). Ignored for models without reverb.
        block_frames: Frames per block (default 1000, 4 s at 250 Hz).
            Models whose decoder cannot stream (not an RnnFcDecoder) are
            rendered in one pass instead (a warning is logged).

    Returns:
        float32 audio [n_frames * hop_size], equal to synthesize_offline
        within 1e-3.
    """
    f0_hz, loudness_db, z = _check_features(trained, f0_hz, loudness_db, z)
    if not _streamable(trained.model):
        logging.warning('%s cannot stream (only RnnFcDecoder(stateless=True) '
                        'can): rendering in one pass.',
                        type(trained.model.decoder).__name__)
        return _offline(trained, f0_hz, loudness_db, z,
                        use_reverb)['audio'][0].numpy()
    streamer = _cached_streamer(
        trained, use_reverb,
        block_frames or min(_SYNTHESIZE_BLOCK_FRAMES, len(f0_hz)))
    return np.concatenate([streamer.process(f0_hz, loudness_db, z),
                           streamer.flush()])
