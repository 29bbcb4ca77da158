"""Whole-sequence synthesis (`synthesize_offline`), reverb and z helpers.

Also the synthesis plan (the processors of a model and their inputs) and the
controls computation that the streaming synthesizer shares.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from typing import Optional

import numpy as np
import tensorflow as tf

from ddsp import core
from ddsp import effects
from ddsp import processors
from ddsp import synths
from ddsp.training.inference.model import TrainedModel
from ddsp.training.inference.model import _check_features
from ddsp.training.inference.model import _find_processor

# Seed of the noise of the filtered-noise synthesizer in both paths.
NOISE_SEED = 0
_APPLY_REVERB_BLOCK = 16384


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
    return reverb.wet_ir(reverb.get_controls(tf.zeros([1, 1]))['ir'])[0]


def _cached(trained: TrainedModel, key: tuple, make):
    """make(), built once per key and kept on the TrainedModel.

    For objects that hold a traced tf.function and constants derived from
    the reverb IR: keys that include the IR (`_ir_digest`) stay valid if the
    IR variable is changed.
    """
    cache = trained.__dict__.setdefault('_inference_cache', {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _ir_digest(ir: Optional[np.ndarray]) -> Optional[str]:
    return None if ir is None else hashlib.sha1(ir.tobytes()).hexdigest()


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
    ir = _reverb_ir(reverb).numpy()

    def make():
        convolver = _PartitionedConvolver(ir, block)
        # Static control flow only: no autograph (its conversion is slow).
        return convolver, tf.function(convolver.step, autograph=False)

    convolver, step = _cached(trained, ('apply_reverb', _ir_digest(ir)), make)
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
    return reverb.mix(audio, wet)


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

