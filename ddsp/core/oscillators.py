"""Oscillators: phase convention, phase precision, harmonic/sinusoidal control
conversions and audio-rate oscillator banks.

Phase convention (this module and `ddsp.core.synthesis`). An oscillator's phase
at sample n is initial_phase + the sum of its angular frequencies (radians per
sample) over the samples *before* n, so sample 0 sounds sin(initial_phase) and
the `final_phase` returned by the streaming functions is the phase the next
sample will have (wrapped to [0, 2*pi)). Feeding `final_phase` back in as the
next block's `initial_phase` therefore continues the oscillators seamlessly.
(magenta/ddsp includes the current sample in the sum; outputs differ by one
sample's phase advance.) Phase state shapes: harmonic_synthesis and
sinusoidal_synthesis take and return one phase per oscillator,
[batch, 1, n_oscillators]; streaming_harmonic_synthesis and
harmonic_oscillator_bank carry only the fundamental's phase, [batch, 1, 1]
(harmonic k is at k times it).

Phase precision (`phase_precision`). Inside `with phase_precision('float32'):`
the frame-rate functions (`ddsp.core.synthesis`) traced there accumulate phase
in float32 instead of float64. That is for graphs exported to runtimes without
float64 arithmetic (TFLite / LiteRT builtins) that synthesise short blocks (a
streaming step): the start phases are wrapped every frame, so the error stays
~1e-5 rad per harmonic over a block of a few dozen frames, but it grows with
the number of frames in one call; keep float64 everywhere else.
"""
import contextlib
from typing import Optional, Tuple

import gin
import numpy as np
import tensorflow as tf

from ddsp.core.utils import safe_divide, tf_float32

__all__ = [
    'sinusoidal_to_harmonic',
    'harmonic_to_sinusoidal',
    'angular_cumsum',
    'remove_above_nyquist',
    'normalize_harmonics',
    'oscillator_bank',
    'get_harmonic_frequencies',
    'phase_precision',
    'get_phase_dtype',
]

_TWO_PI = 2.0 * np.pi
_AMP_RESAMPLE_METHODS = ('nearest', 'linear', 'cubic', 'window')


# The dtype phases accumulate in; see `phase_precision`.
_phase_dtype = tf.float64


@contextlib.contextmanager
def phase_precision(dtype='float64'):
    """Context: frame-rate synthesis traced inside accumulates phase in dtype.

    Args:
        dtype: 'float64' (default, drift-free for any length) or 'float32'
            (for export to runtimes without float64, e.g. TFLite, of functions
            that synthesise short blocks; see the module docstring).

    Raises:
        ValueError: for another dtype.
    """
    global _phase_dtype
    dtype = tf.as_dtype(dtype)
    if dtype not in (tf.float32, tf.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype}.")
    previous, _phase_dtype = _phase_dtype, dtype
    try:
        yield
    finally:
        _phase_dtype = previous


def get_phase_dtype() -> tf.DType:
    """The dtype phases are accumulated in here now (see `phase_precision`).

    For callers that prepare phases for this module's functions in the same
    precision (e.g. a streaming step's start phase).
    """
    return _phase_dtype


def _mod_2pi(x):
    """x modulo 2*pi in [0, 2*pi] (gradient 1; XLA's floormod is slow)."""
    return x - _TWO_PI * tf.floor(x * (1.0 / _TWO_PI))


# Argument checks --------------------------------------------------------------
def _check_rank(x: tf.Tensor, rank: int, name: str, shape_doc: str):
    if x.shape.rank != rank:
        raise ValueError(f'{name} must have shape {shape_doc}, got shape '
                         f'{x.shape}.')


def _check_sample_rate(sample_rate):
    if not sample_rate > 0:
        raise ValueError(f'sample_rate must be positive, got {sample_rate}.')


def _check_n_samples(n_samples):
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f'n_samples must be a positive integer, got '
                         f'{n_samples}.')


def _check_amp_resample_method(method):
    if method not in _AMP_RESAMPLE_METHODS:
        raise ValueError(f'amp_resample_method must be one of '
                         f'{list(_AMP_RESAMPLE_METHODS)}, got {method!r}.')


def _check_channels(x: tf.Tensor, name: str, allowed: Tuple[int, ...]):
    n = x.shape[-1]
    if n is not None and n not in allowed:
        raise ValueError(f'{name} has {n} channels (last axis); expected '
                         f'{" or ".join(str(a) for a in allowed)}.')


# Synth parameter conversions -------------------------------------------------
def get_harmonic_frequencies(frequencies, n_harmonics: int) -> tf.Tensor:
    """Integer multiples of a fundamental frequency.

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        n_harmonics: Number of harmonics (the fundamental is harmonic 1).

    Returns:
        Harmonic frequencies in Hz, [batch, n_frames, n_harmonics].
    """
    frequencies = tf_float32(frequencies)
    ratios = tf.range(1, int(n_harmonics) + 1, dtype=tf.float32)
    return frequencies * ratios


def remove_above_nyquist(frequency_envelopes, amplitude_envelopes,
                         sample_rate: float = 16000) -> tf.Tensor:
    """Zeroes the amplitude of every oscillator at or above Nyquist.

    Args:
        frequency_envelopes: Oscillator frequencies in Hz, any shape.
        amplitude_envelopes: Amplitudes, same (or broadcastable) shape.
        sample_rate: Samples per second.

    Returns:
        amplitude_envelopes with zeros where frequency >= sample_rate / 2.
    """
    _check_sample_rate(sample_rate)
    frequency_envelopes = tf_float32(frequency_envelopes)
    amplitude_envelopes = tf_float32(amplitude_envelopes)
    return tf.where(frequency_envelopes >= sample_rate / 2.0, 0.0,
                    amplitude_envelopes)


def normalize_harmonics(harmonic_distribution, f0_hz=None,
                        sample_rate: Optional[float] = None) -> tf.Tensor:
    """Makes a harmonic distribution sum to one, optionally below Nyquist.

    Args:
        harmonic_distribution: [batch, n_frames, n_harmonics].
        f0_hz: Fundamental frequency [batch, n_frames, 1]. With sample_rate,
            harmonics at or above Nyquist are removed before normalising.
        sample_rate: Samples per second (see f0_hz).

    Returns:
        Normalised distribution, [batch, n_frames, n_harmonics]; all-zero
        frames stay zero.
    """
    harmonic_distribution = tf_float32(harmonic_distribution)
    if f0_hz is not None and sample_rate is not None:
        n_harmonics = int(harmonic_distribution.shape[-1])
        harmonic_distribution = remove_above_nyquist(
            get_harmonic_frequencies(f0_hz, n_harmonics),
            harmonic_distribution, sample_rate)
    total = tf.reduce_sum(harmonic_distribution, axis=-1, keepdims=True)
    return safe_divide(harmonic_distribution, total)


def sinusoidal_to_harmonic(sin_amps, sin_freqs, f0_hz,
                           harmonic_width: float = 0.1,
                           n_harmonics: int = 100,
                           sample_rate: float = 16000,
                           normalize: bool = False
                           ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Projects free sinusoids onto the harmonic series of f0.

    Every sinusoid contributes to harmonic k with the Gaussian weight
    exp(-((f_sin - k * f0) / (f0 * harmonic_width))**2).

    Args:
        sin_amps: Sinusoid amplitudes, [batch, n_frames, n_sinusoids].
        sin_freqs: Sinusoid frequencies in Hz, [batch, n_frames, n_sinusoids].
        f0_hz: Fundamental frequency in Hz, [batch, n_frames, 1].
        harmonic_width: Width of the weighting, relative to f0.
        n_harmonics: Number of harmonics to project onto.
        sample_rate: Samples per second; harmonics at or above Nyquist get
            nothing.
        normalize: If True, a harmonic's weights over the sinusoids are
            rescaled to sum to at most one, so no harmonic gets more than the
            loudest sinusoid near it.

    Returns:
        (harmonic amplitude [batch, n_frames, 1], harmonic distribution
        [batch, n_frames, n_harmonics] summing to one).
    """
    sin_amps, sin_freqs = tf_float32(sin_amps), tf_float32(sin_freqs)
    f0_hz = tf_float32(f0_hz)
    harmonic_freqs = get_harmonic_frequencies(f0_hz, n_harmonics)
    # [batch, n_frames, n_harmonics, n_sinusoids]
    distance = safe_divide(
        sin_freqs[:, :, tf.newaxis, :] - harmonic_freqs[..., tf.newaxis],
        f0_hz[..., tf.newaxis])
    weights = tf.exp(-tf.square(distance / harmonic_width))
    if normalize:
        total = tf.reduce_sum(weights, axis=-1, keepdims=True)
        weights = tf.where(total > 1.0, safe_divide(weights, total), weights)
    harmonic_amps = tf.reduce_sum(weights * sin_amps[:, :, tf.newaxis, :],
                                  axis=-1)
    harmonic_amps = remove_above_nyquist(harmonic_freqs, harmonic_amps,
                                         sample_rate)
    amplitude = tf.reduce_sum(harmonic_amps, axis=-1, keepdims=True)
    return amplitude, safe_divide(harmonic_amps, amplitude)


def harmonic_to_sinusoidal(harm_amp, harm_dist, f0_hz,
                           sample_rate: float = 16000
                           ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Turns harmonic controls into per-sinusoid amplitudes and frequencies.

    Args:
        harm_amp: Overall amplitude, [batch, n_frames, 1].
        harm_dist: Harmonic distribution, [batch, n_frames, n_harmonics].
        f0_hz: Fundamental frequency in Hz, [batch, n_frames, 1].
        sample_rate: Samples per second.

    Returns:
        (amplitudes, frequencies in Hz), both [batch, n_frames, n_harmonics];
        harmonics at or above Nyquist are silent and the rest renormalised.
    """
    harm_dist = tf_float32(harm_dist)
    n_harmonics = int(harm_dist.shape[-1])
    freqs = get_harmonic_frequencies(f0_hz, n_harmonics)
    harm_dist = normalize_harmonics(harm_dist, f0_hz, sample_rate)
    return tf_float32(harm_amp) * harm_dist, freqs


# Sample-rate oscillators -----------------------------------------------------
@gin.configurable(module='ddsp.core')
def angular_cumsum(angular_frequency, chunk_size: int = 1000) -> tf.Tensor:
    """Cumulative sum of phase increments, wrapped to [0, 2*pi), drift-free.

    A float32 cumsum over a long signal loses precision as the phase grows
    (audible after ~100k samples). Here the float32 cumsum only runs inside
    chunks of `chunk_size` samples, so its error is bounded by the chunk
    length (about sqrt(chunk_size) * chunk_size * eps * max|increment|);
    the chunks' offsets are summed in float64 and wrapped, so nothing
    accumulates across chunks.

    Args:
        angular_frequency: Phase increments in radians per sample,
            [batch, n_samples, ...] (or [n_samples]); float64 increments are
            used as such for the offsets (no float32 rounding to accumulate).
        chunk_size: Samples per float32 chunk (smaller: more precise).

    Returns:
        float32 inclusive cumulative sum modulo 2*pi, same shape.
    """
    x = tf.convert_to_tensor(angular_frequency)
    if x.dtype != tf.float64:
        x = tf_float32(x)
    if x.shape.rank is None or x.shape.rank < 1:
        raise ValueError('angular_frequency must have a time axis, got shape '
                         f'{x.shape}.')
    if x.shape.rank == 1:
        return angular_cumsum(x[tf.newaxis], chunk_size)[0]
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be positive, got {chunk_size}.')
    shape = tf.shape(x)
    n_time = shape[1]
    n_chunks = (n_time + chunk_size - 1) // chunk_size
    padding = [[0, 0], [0, n_chunks * chunk_size - n_time]]
    padding += [[0, 0]] * (x.shape.rank - 2)
    chunks = tf.reshape(tf.pad(x, padding),
                        tf.concat([shape[:1], [n_chunks, chunk_size],
                                   shape[2:]], axis=0))
    within = tf.cumsum(tf.cast(chunks, tf.float32), axis=2)
    advance = tf.reduce_sum(tf.cast(chunks, tf.float64), axis=2,
                            keepdims=True)
    offsets = _mod_2pi(tf.cumsum(advance, axis=1, exclusive=True))
    phase = _mod_2pi(within + tf.cast(offsets, tf.float32))
    phase = tf.reshape(phase, tf.concat([shape[:1], [-1], shape[2:]], 0))
    return tf.ensure_shape(phase[:, :n_time], x.shape)


def _sample_rate_oscillators(frequency_envelopes, amplitude_envelopes,
                             sample_rate, initial_phase, use_angular_cumsum,
                             sum_sinusoids):
    """Oscillators from audio-rate envelopes; see `oscillator_bank`.

    Returns (audio, final_phase [batch, 1, n_sinusoids] float32).
    """
    amplitude_envelopes = remove_above_nyquist(
        frequency_envelopes, amplitude_envelopes, sample_rate)
    omegas = tf.cast(frequency_envelopes, _phase_dtype) * (_TWO_PI /
                                                           sample_rate)
    if use_angular_cumsum:
        # Exclusive phase (see module docstring) from the inclusive sum.
        inclusive = angular_cumsum(omegas)
        phases = inclusive - tf.cast(omegas, tf.float32)
        final_phase = inclusive[:, -1:]
    else:
        inclusive = tf.cumsum(omegas, axis=1)
        phases = tf.cast(_mod_2pi(inclusive - omegas), tf.float32)
        final_phase = tf.cast(_mod_2pi(inclusive[:, -1:]), tf.float32)
    if initial_phase is not None:
        phases += initial_phase
        final_phase += initial_phase
    audio = amplitude_envelopes * tf.sin(phases)
    if sum_sinusoids:
        audio = tf.reduce_sum(audio, axis=-1)
    return audio, _mod_2pi(final_phase)


@gin.configurable(module='ddsp.core')
def oscillator_bank(frequency_envelopes, amplitude_envelopes,
                    sample_rate: float = 16000, sum_sinusoids: bool = True,
                    use_angular_cumsum: bool = False) -> tf.Tensor:
    """Sinusoids from audio-rate frequency and amplitude envelopes.

    Oscillators at or above Nyquist are silenced sample by sample. Phases
    start at 0 (see the module docstring).

    Args:
        frequency_envelopes: Frequencies in Hz,
            [batch, n_samples, n_sinusoids].
        amplitude_envelopes: Amplitudes, [batch, n_samples, n_sinusoids]
            (or broadcastable to it).
        sample_rate: Samples per second.
        sum_sinusoids: Mix the oscillators (True) or return each.
        use_angular_cumsum: Accumulate phase with `angular_cumsum` (float32
            within chunks: less memory, error bounded by its chunk_size)
            instead of an exact float64 cumsum. Neither drifts. (In
            magenta/ddsp False meant a float32 cumsum whose error grows with
            the signal length.)

    Returns:
        [batch, n_samples] if sum_sinusoids else
        [batch, n_samples, n_sinusoids].
    """
    frequency_envelopes = tf_float32(frequency_envelopes)
    amplitude_envelopes = tf_float32(amplitude_envelopes)
    shape_doc = '[batch, n_samples, n_sinusoids]'
    _check_rank(frequency_envelopes, 3, 'frequency_envelopes', shape_doc)
    _check_rank(amplitude_envelopes, 3, 'amplitude_envelopes', shape_doc)
    _check_sample_rate(sample_rate)
    audio, _ = _sample_rate_oscillators(
        frequency_envelopes, amplitude_envelopes, sample_rate, None,
        use_angular_cumsum, sum_sinusoids)
    return audio
