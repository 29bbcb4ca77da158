"""Fundamental frequency (f0) with CREPE: `compute_f0`, `PretrainedCREPE`.

`compute_f0` counts frames on the same time grid as the other frame-wise
features, from the input length and rate (frame_size = 1024 samples at 16 kHz
= 64 ms, hop = 1 / frame_rate seconds), and cuts the 16 kHz frames (after
resampling) at those times, so the count depends only on the input length,
sample rate, frame rate and padding.
"""
from fractions import Fraction
import math
from typing import Optional, Tuple

import gin
import librosa
import numpy as np
import tensorflow as tf
import keras

from ddsp import core
from ddsp import crepe
from ddsp.spectral_ops.spectrograms import _audio_np
from ddsp.spectral_ops.spectrograms import _audio_tf
from ddsp.spectral_ops.spectrograms import _check_padding
from ddsp.spectral_ops.spectrograms import _fraction
from ddsp.spectral_ops.spectrograms import _frame
from ddsp.spectral_ops.spectrograms import _frame_starts
from ddsp.spectral_ops.spectrograms import _n_frames
from ddsp.spectral_ops.spectrograms import _positive
from ddsp.spectral_ops.spectrograms import _positive_int
from ddsp.spectral_ops.spectrograms import _static_length
from ddsp.spectral_ops.spectrograms import pad


CREPE_SAMPLE_RATE = crepe.SAMPLE_RATE  # 16000
CREPE_FRAME_SIZE = crepe.FRAME_SIZE  # 1024
F0_RANGE = 127.0  # MIDI


# Pitch (CREPE) ---------------------------------------------------------------
def reset_crepe():
    """Frees the cached CREPE models (they are otherwise kept per process)."""
    crepe.reset_cache()


def _resample_to_crepe_rate(audio: np.ndarray, sample_rate) -> np.ndarray:
    if Fraction(sample_rate) == CREPE_SAMPLE_RATE:
        return audio
    import soxr  # Imported lazily: only needed at other rates.

    resampled = soxr.resample(audio.T, float(sample_rate),
                              float(CREPE_SAMPLE_RATE), quality='HQ')
    return np.ascontiguousarray(resampled.T, dtype=np.float32)


_PRECISIONS = {'float32': 'float32', 'bfloat16': 'mixed_bfloat16'}


@gin.register(module='ddsp.spectral_ops')
def compute_f0(audio, frame_rate: float, viterbi: bool = True,
               padding: str = 'center', model_capacity: str = 'full',
               crepe_frame_rate: Optional[float] = None,
               sample_rate: float = CREPE_SAMPLE_RATE, *,
               precision: str = 'float32'
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Fundamental frequency and confidence with CREPE (numpy in and out).

    The defaults reproduce magenta/ddsp: CREPE 'full' at 16 kHz, one CREPE
    frame per output frame, Viterbi smoothing. Frames are counted from the
    input as described in the module docstring (frame = 64 ms, hop =
    1 / frame_rate s); e.g. 4 s at 250 frames/s gives 1001 'center', 1000
    'same' and 985 'valid' frames at any sample rate.

    Fast mode: `crepe_frame_rate` < `frame_rate` runs CREPE on a coarser grid
    of frames (same first frame, spacing 1 / crepe_frame_rate, covering the
    last output frame) and interpolates f0 linearly in MIDI, and confidence
    linearly, to the output frames (Viterbi runs on the coarse grid).

    Measured (bench/crepe_bench.py: 80 s of FluidSynth-rendered instrument
    notes, 250 frames/s, Viterbi; raw pitch accuracy at 50 cents; CPU time
    for 4 s of audio on a 2-core AVX-512 machine):

    ==========================================  =======  ==============
    arguments                                   RPA      CPU time (4 s)
    ==========================================  =======  ==============
    defaults (full, CREPE at 250 frames/s)      98.67 %  12.7 s
    precision='bfloat16'                        98.66 %   6.4 s
    crepe_frame_rate=50 ("fast mode")           98.40 %   2.7 s
    crepe_frame_rate=50, precision='bfloat16'   98.40 %   1.3 s
    model_capacity='tiny'                       94.71 %   0.5 s
    ==========================================  =======  ==============

    (Wall time on an idle machine is about half the CPU time.) Smaller
    capacities lose 2-4 points of RPA (mostly octave errors on low notes), a
    lower CREPE frame rate only ~0.3: prefer `crepe_frame_rate` for speed.

    Args:
        audio: `[n_samples]` or `[batch, n_samples]` (numpy or tensor).
        frame_rate: Output frames per second (> 0).
        viterbi: Smooth with CREPE's Viterbi decoding.
        padding: 'valid', 'same' or 'center'.
        model_capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
        crepe_frame_rate: Rate at which CREPE runs (None: frame_rate).
        sample_rate: Rate of `audio`; other rates than 16 kHz are resampled to
            16 kHz (soxr, high quality) inside.
        precision: 'float32' (default), or 'bfloat16' to run the
            convolutions in bfloat16 (classifier in float32): about 2x faster
            on CPUs with AVX512-BF16 / AMX, f0 within a fraction of a cent of
            float32 (bench/crepe_bench.py).

    Returns:
        f0_hz, f0_confidence: float32 `[n_frames]` or `[batch, n_frames]`.
    """
    audio = _audio_np(audio)
    _positive(frame_rate, 'frame_rate')
    _positive(sample_rate, 'sample_rate')
    _check_padding(padding)
    crepe.check_capacity(model_capacity)
    if crepe_frame_rate is not None:
        _positive(crepe_frame_rate, 'crepe_frame_rate')
    dtype = _PRECISIONS.get(precision)
    if dtype is None:
        raise ValueError(f'precision must be one of {list(_PRECISIONS)}, got '
                         f'{precision!r}.')
    rate = _fraction(sample_rate, 'sample_rate')
    frame_rate_f = _fraction(frame_rate, 'frame_rate')
    hop = rate / frame_rate_f
    frame_size = Fraction(CREPE_FRAME_SIZE) * rate / CREPE_SAMPLE_RATE
    n_frames = _n_frames(audio.shape[-1], frame_size, hop, padding)
    if n_frames == 0:
        empty = np.zeros(audio.shape[:-1] + (0,), np.float32)
        return empty, empty.copy()

    audio_16k = _resample_to_crepe_rate(audio, rate)
    offset = -(CREPE_FRAME_SIZE // 2) if padding == 'center' else 0
    if crepe_frame_rate is None or _fraction(crepe_frame_rate) == frame_rate_f:
        grid_rate, n_grid = frame_rate_f, n_frames
    else:
        grid_rate = _fraction(crepe_frame_rate, 'crepe_frame_rate')
        span = (n_frames - 1) * grid_rate / frame_rate_f  # In grid steps.
        n_grid = math.ceil(span) + 1
    starts = _frame_starts(n_grid, CREPE_SAMPLE_RATE / grid_rate) + offset
    frames = crepe.frame_audio(audio_16k, starts)
    activations = crepe.predict_activations(frames, model_capacity,
                                            dtype=dtype)
    f0_hz, confidence = crepe.decode(activations, viterbi=viterbi)
    if n_grid != n_frames or grid_rate != frame_rate_f:
        f0_hz, confidence = _interpolate_f0(
            f0_hz, confidence, n_frames, float(grid_rate / frame_rate_f))
    return f0_hz, confidence


def _interpolate_f0(f0_hz, confidence, n_frames, step):
    """Linear interpolation (f0 in MIDI) from grid frames to output frames
    at grid positions i * step."""
    positions = np.arange(n_frames) * step
    grid = np.arange(f0_hz.shape[-1])

    def interp(values):
        flat = values.reshape(-1, values.shape[-1])
        out = np.stack([np.interp(positions, grid, v) for v in flat])
        return out.reshape(values.shape[:-1] + (n_frames,))

    with np.errstate(divide='ignore', invalid='ignore'):
        midi = np.where(f0_hz > 0, librosa.hz_to_midi(np.maximum(f0_hz, 1e-9)),
                        np.nan)
    midi = interp(midi)
    f0_out = np.where(np.isnan(midi), 0.0,
                      librosa.midi_to_hz(np.nan_to_num(midi)))
    return (f0_out.astype(np.float32),
            interp(confidence).astype(np.float32))


class PretrainedCREPE(keras.Model):
    """CREPE inside a Keras model (in-graph, e.g. for online f0 features).

    Frames 16 kHz audio with `hop_size`, normalises each frame and runs the
    (frozen) network; f0 from the local weighted average around the argmax or
    the Viterbi path (tensorflow_probability HMM, same HMM as `compute_f0`).
    Differentiable w.r.t. nothing useful (argmax); meant for features.

    Args:
        model_size_or_path: A capacity ('tiny', 'small', 'medium', 'large',
            'full': the process-wide cached model of `ddsp.crepe`), or a path
            to a `.keras` model or a Keras-2 `.h5` CREPE weights file.
        hop_size: Samples between frames at 16 kHz.
    """

    def __init__(self, model_size_or_path: str = 'full', hop_size: int = 160,
                 **kwargs):
        super().__init__(**kwargs)
        self.hop_size = _positive_int(hop_size, 'hop_size')
        self.frame_size = CREPE_FRAME_SIZE
        self.sample_rate = CREPE_SAMPLE_RATE
        self.model_size_or_path = model_size_or_path
        self.core_model = self._load_core_model(model_size_or_path)

    @staticmethod
    def _load_core_model(model_size_or_path) -> keras.Model:
        if model_size_or_path in crepe.CAPACITIES:
            return crepe.get_model(model_size_or_path)
        path = str(model_size_or_path)
        if path.endswith('.h5'):
            import h5py

            try:
                with h5py.File(path, 'r') as f:
                    root = f['model_weights'] if 'model_weights' in f else f
                    conv1 = crepe._read_h5_layer(root['conv1'])['kernel']
                capacity = {32 * m: c for c, m in crepe.CAPACITIES.items()}[
                    conv1.shape[-1]]
            except (OSError, KeyError) as e:
                raise ValueError(
                    f'model_size_or_path {path!r} is not a CREPE weights '
                    f'file: {e}') from e
            model = crepe.build_model(capacity)
            crepe.load_weights(model, path)
            model.trainable = False
            return model
        if path.endswith('.keras'):
            model = keras.saving.load_model(path)
            model.trainable = False
            return model
        raise ValueError(
            f'model_size_or_path must be one of {list(crepe.CAPACITIES)} or a '
            f'path to a .keras / .h5 file, got {model_size_or_path!r}.')

    @classmethod
    def activations_to_f0_and_confidence(cls, activations, centers=None):
        """[N, 360] activations -> (f0_hz [N], confidence [N]) float32.

        f0: weighted average of the bin cents within +-4 bins of `centers`
        (default the argmax); confidence: the maximum activation.
        """
        activations = core.tf_float32(activations)
        cents = tf.constant(crepe.CENTS_MAPPING, tf.float32)
        confidence = tf.reduce_max(activations, axis=-1)
        if centers is None:
            centers = tf.argmax(activations, axis=-1)
        centers = tf.cast(centers, tf.int32)
        bins = tf.range(crepe.N_BINS, dtype=tf.int32)
        radius = crepe.LOCAL_AVERAGE_RADIUS
        near = tf.abs(bins[None, :] - centers[..., None]) <= radius
        weights = tf.where(near, activations, 0.0)
        f0_cents = core.safe_divide(tf.reduce_sum(weights * cents, axis=-1),
                                    tf.reduce_sum(weights, axis=-1))
        f0_hz = 10.0 * tf.pow(2.0, f0_cents / 1200.0)
        f0_hz = tf.where(tf.reduce_sum(weights, axis=-1) > 0, f0_hz, 0.0)
        return f0_hz, confidence

    def batch_frames(self, audio):
        """[batch, n] padded audio -> [batch * n_frames, 1024] frames."""
        frames = _frame(audio, self.frame_size, Fraction(self.hop_size))
        return tf.reshape(frames, [-1, self.frame_size])

    def normalize_frames(self, frames):
        """Zero mean, unit std per frame (std floored at 1e-8)."""
        return crepe.normalize_frames_tf(core.tf_float32(frames))

    def predict_f0_and_confidence(self, audio, viterbi: bool = False,
                                  padding: str = 'center'):
        """16 kHz audio `[n]` or `[batch, n]` -> f0_hz, confidence, both
        `[batch, n_frames]` (n_frames from `get_framed_lengths`)."""
        audio = _audio_tf(audio)
        _check_padding(padding)
        if audio.shape.rank == 1:
            audio = audio[None, :]
        n_t = _static_length(audio, -1)
        if n_t is not None:
            _n_frames(n_t, self.frame_size, Fraction(self.hop_size), padding)
        batch_size = tf.shape(audio)[0]
        audio = pad(audio, self.frame_size, self.hop_size, padding, axis=-1)
        frames = self.normalize_frames(self.batch_frames(audio))
        activations = self.core_model(frames, training=False)
        activations = tf.cast(activations, tf.float32)
        centers = None
        if viterbi:
            centers = self.viterbi_decode(
                tf.reshape(activations, [batch_size, -1, crepe.N_BINS]))
            centers = tf.reshape(centers, [-1])
        f0_hz, confidence = self.activations_to_f0_and_confidence(
            activations, centers)
        return (tf.reshape(f0_hz, [batch_size, -1]),
                tf.reshape(confidence, [batch_size, -1]))

    def call(self, audio, viterbi: bool = False, padding: str = 'center'):
        return self.predict_f0_and_confidence(audio, viterbi, padding)

    def create_hmm(self, num_steps):
        """The Viterbi HMM as a tfp HiddenMarkovModel over argmax bins."""
        import tensorflow_probability as tfp  # Lazy: heavy import.

        tfd = tfp.distributions
        n = crepe.N_BINS
        log_hit, log_miss = crepe.emission_log_probs()
        emission = np.full((n, n), log_miss) + np.eye(n) * (log_hit - log_miss)
        return tfd.HiddenMarkovModel(
            initial_distribution=tfd.Categorical(
                logits=tf.zeros([n], tf.float32)),
            transition_distribution=tfd.Categorical(
                logits=tf.constant(crepe.transition_log_probs(), tf.float32)),
            observation_distribution=tfd.Categorical(
                logits=tf.constant(emission, tf.float32)),
            num_steps=num_steps)

    def viterbi_decode(self, activations):
        """[batch, n_frames, 360] -> [batch, n_frames] Viterbi path bins."""
        observations = tf.argmax(activations, axis=-1, output_type=tf.int32)
        num_steps = activations.shape[1]
        if num_steps is None:
            num_steps = tf.shape(activations)[1]
        return self.create_hmm(num_steps).posterior_mode(observations)

    def get_config(self):
        config = super().get_config()
        config.update(model_size_or_path=self.model_size_or_path,
                      hop_size=self.hop_size)
        return config
