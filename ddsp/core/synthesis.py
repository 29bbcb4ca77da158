"""Additive synthesis: oscillator banks, harmonic synthesis and conversions
between harmonic and sinusoidal synth controls.

Phase convention (the whole module). An oscillator's phase at sample n is
initial_phase + the sum of its angular frequencies (radians per sample) over
the samples *before* n, so sample 0 sounds sin(initial_phase) and the
`final_phase` returned by the streaming functions is the phase the next
sample will have (wrapped to [0, 2*pi)). Feeding `final_phase` back in as the
next block's `initial_phase` therefore continues the oscillators seamlessly.
(magenta/ddsp includes the current sample in the sum; outputs differ by one
sample's phase advance.) Phase state shapes: harmonic_synthesis and
sinusoidal_synthesis take and return one phase per oscillator,
[batch, 1, n_oscillators]; streaming_harmonic_synthesis and
harmonic_oscillator_bank carry only the fundamental's phase, [batch, 1, 1]
(harmonic k is at k times it).

Frame-rate synthesis (harmonic_synthesis, sinusoidal_synthesis,
streaming_harmonic_synthesis, harmonic_oscillator_bank). With an integer
hop = n_samples / n_intervals, sample n = j * hop + m belongs to frame
interval j. Frequencies are linearly interpolated inside the interval, so the
phase there is a closed-form quadratic in m around the interval's start
phase; start phases are accumulated over frames in float64 and wrapped, which
makes the output drift-free for any length (inside a hop the float32 phase
is off by at most ~hop * pi * 6e-8 rad). Amplitudes are interpolated with
the 'linear' or 'window' weights of `resample`. One XLA-compiled kernel
evaluates sum_k amp * sin(phase) over [batch, frames, hop, oscillators]
without materialising anything of that size, and a custom gradient recomputes
sines/cosines instead of storing them. Other resampling methods, non-integer
hops or unknown frame counts use the generic path: resample the controls to
audio rate, then `oscillator_bank`.

Endpoint rule (`add_endpoint`). True (default, as magenta/ddsp): the T frames
cover T hops and the last frame is held over the last hop. False: frame T - 1
is only the end point, the T frames cover (T - 1) hops, and synthesising
frames [0..t] then [t..T-1] (carrying the phase) equals synthesising all of
them at once: that is what block-wise streaming needs.

Phase precision (`phase_precision`). Inside `with phase_precision('float32'):`
the frame-rate functions traced there accumulate phase in float32 instead of
float64. That is for graphs exported to runtimes without float64 arithmetic
(TFLite / LiteRT builtins) that synthesise short blocks (a streaming step):
the start phases are wrapped every frame, so the error stays ~1e-5 rad per
harmonic over a block of a few dozen frames, but it grows with the number of
frames in one call; keep float64 everywhere else.
"""
import contextlib
import functools
from typing import Optional, Text, Tuple

import gin
import numpy as np
import tensorflow as tf

from ddsp.core.resampling import resample
from ddsp.core.utils import safe_divide, tf_float32

__all__ = [
    'sinusoidal_to_harmonic',
    'harmonic_to_sinusoidal',
    'angular_cumsum',
    'remove_above_nyquist',
    'normalize_harmonics',
    'oscillator_bank',
    'harmonic_oscillator_bank',
    'get_harmonic_frequencies',
    'harmonic_synthesis',
    'streaming_harmonic_synthesis',
    'sinusoidal_synthesis',
    'phase_precision',
    'get_phase_dtype',
]

_TWO_PI = 2.0 * np.pi
_AMP_RESAMPLE_METHODS = ('nearest', 'linear', 'cubic', 'window')
# Amplitude interpolations the frame kernel evaluates in closed form.
_KERNEL_METHODS = ('linear', 'window')


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


# Frame-rate oscillator kernel ------------------------------------------------
# XLA on CPU lowers tf.sin/tf.cos to scalar library calls (~9 ns a value,
# measured); these odd/even minimax polynomials on [-pi, pi] vectorise and are
# accurate to ~5e-7 in float32.
_SIN_COEFFS = (9.999996039e-01, -1.666655345e-01, 8.332407596e-03,
               -1.980874008e-04, 2.699822815e-06, -2.036623162e-08)
_COS_COEFFS = (9.999999892e-01, -4.999998919e-01, 4.166649020e-02,
               -1.388780783e-03, 2.476996618e-05, -2.707977486e-07,
               1.724760501e-09)
# 2*pi split in two float32 parts for an accurate range reduction.
_TWO_PI_HI = float(np.float32(_TWO_PI))
_TWO_PI_LO = float(np.float32(_TWO_PI - _TWO_PI_HI))
_PI_F32 = float(np.float32(np.pi))
# XLA's CPU backend turns a reduction over an axis longer than 32 (or of a
# bare select) into a materialised tensor plus a library reduction. The
# kernels therefore reshape every reduced axis into axes of <= 32 elements
# and reduce products: each kernel stays one fused loop that never stores
# [batch, frames, hop, oscillators].
_MAX_FUSED_AXIS = 32


def _reduction_shape(n: int) -> Tuple[int, ...]:
    """Axes of <= _MAX_FUSED_AXIS whose product is the least >= n.

    Up to three axes (n <= 32768), shortest first; the product exceeds n
    (zero padding) only when no exact factorisation exists.
    """
    limit = _MAX_FUSED_AXIS
    if n <= limit:
        return (n,)
    candidates = [(-(-n // r), r) for r in range(2, limit + 1)]
    candidates += [(-(-n // (r1 * r2)), r1, r2)
                   for r1 in range(2, limit + 1) for r2 in range(2, limit + 1)]
    candidates = [c for c in candidates if c[0] <= limit]
    if not candidates:
        raise ValueError(f'Too many samples per frame or oscillators ({n}); '
                         f'at most {limit**3} are supported.')
    best = min(candidates, key=lambda c: (int(np.prod(c)), len(c)))
    return tuple(sorted(best))  # Longest axis innermost: ~10% faster.


def _wrap_phase(x):
    """x modulo 2*pi, in [-pi, pi]."""
    n = tf.round(x * (1.0 / _TWO_PI))
    return (x - n * _TWO_PI_HI) - n * _TWO_PI_LO


def _horner(x, coeffs):
    result = coeffs[-1]
    for c in coeffs[-2::-1]:
        result = result * x + c
    return result


def _poly_sin(x):
    r = _wrap_phase(x)
    return r * _horner(r * r, _SIN_COEFFS)


def _poly_cos(x):
    r = _wrap_phase(x)
    return _horner(r * r, _COS_COEFFS)


@functools.lru_cache(maxsize=None)
def _frame_kernels(hop: int, method: str):
    """(forward, backward_amp, backward_phase) XLA functions for one hop.

    Kernel inputs, all float32 with n_osc oscillators and J frame intervals:
      phase [batch, J, n_osc]: phase at the start of each interval (radians),
      freq [batch, J + 1, n_osc]: angular frequency (radians per sample) at
        the interval boundaries, linearly interpolated in between,
      amp [batch, J + 1, n_osc]: amplitudes at the boundaries.
    forward returns audio [batch, J * hop]. At sample m of interval j:
      phase_j + a(m) * freq_j + q(m) * freq_{j+1}, with q(m) = m(m-1)/(2 hop)
      and a(m) = m - q(m) (the exact sum of the interpolated increments),
      amplitude amp_j + s(m) * (amp_{j+1} - amp_j),
      silent where the interpolated frequency is >= pi (Nyquist).
    The backward functions take d_audio [batch, J * hop] first.
    """
    sample_axes = _reduction_shape(hop)
    n_padded = int(np.prod(sample_axes))  # Padded samples have zero gradient.
    m = np.arange(n_padded, dtype=np.float64)
    q = m * (m - 1.0) / (2.0 * hop)
    if method == 'window':
        s = np.sin(np.pi * m / (2.0 * hop))**2
    else:
        s = m / hop
    tables = {'s': s, 'q': q, 'a': m - q, 'l': m / hop, 'c': hop - m}

    def weights(names, shape):
        return {n: tf.constant(tables[n][:int(np.prod(shape))].reshape(shape),
                               tf.float32) for n in names}

    def instantaneous(phase, f0, f1, w):
        """Phase and Nyquist mask at the samples the weights w describe."""
        inst_phase = phase + w['a'] * f0 + w['q'] * f1
        audible = f0 + w['l'] * (f1 - f0) < _PI_F32
        return inst_phase, audible

    @tf.function(jit_compile=True)
    def forward(phase, freq, amp):
        n_intervals, n_osc = phase.shape[1], phase.shape[2]
        osc_axes = _reduction_shape(n_osc)

        def split_oscillators(x):  # -> [batch, frames, *osc_axes, 1]
            x = tf.pad(x, [[0, 0], [0, 0], [0, int(np.prod(osc_axes)) - n_osc]])
            return tf.reshape(x, [-1, x.shape[1], *osc_axes, 1])

        p, f, a = (split_oscillators(x) for x in (phase, freq, amp))
        w = weights('sqal', [hop])
        inst_phase, audible = instantaneous(p, f[:, :-1], f[:, 1:], w)
        a0, a1 = a[:, :-1], a[:, 1:]
        envelope = tf.where(audible, a0 + w['s'] * (a1 - a0), 0.0)
        audio = tf.reduce_sum(envelope * _poly_sin(inst_phase),
                              axis=list(range(2, 2 + len(osc_axes))))
        return tf.reshape(audio, [-1, n_intervals * hop])

    def backward_sums(d_audio, phase, freq, amp, names):
        """Sums over each interval's samples of d_audio * trig * w[name].

        trig is sin(phase) without amp, amp * cos(phase) with it.
        """
        n_intervals = phase.shape[1]
        g = tf.pad(tf.reshape(d_audio, [-1, n_intervals, hop]),
                   [[0, 0], [0, 0], [0, n_padded - hop]])
        g = tf.reshape(g, [-1, n_intervals, *sample_axes, 1])

        def expand(x):  # -> [batch, frames, 1, ..., 1, n_osc]
            return tf.reshape(x, [-1, x.shape[1]] + [1] * len(sample_axes) +
                              [x.shape[2]])

        p, f = expand(phase), expand(freq)
        w = weights('sqalc', [*sample_axes, 1])
        w['1-s'] = 1.0 - w['s']
        inst_phase, audible = instantaneous(p, f[:, :-1], f[:, 1:], w)
        g = tf.where(audible, g, 0.0)
        if amp is None:
            term = g * _poly_sin(inst_phase)
        else:
            a = expand(amp)
            envelope = a[:, :-1] + w['s'] * (a[:, 1:] - a[:, :-1])
            term = g * envelope * _poly_cos(inst_phase)
        axes = list(range(2, 2 + len(sample_axes)))
        return {n: tf.reduce_sum(term * w[n], axis=axes) for n in names}

    def to_boundaries(d_start, d_end):
        """Gradients w.r.t. interval starts and ends -> boundary values."""
        return (tf.pad(d_start, [[0, 0], [0, 1], [0, 0]]) +
                tf.pad(d_end, [[0, 0], [1, 0], [0, 0]]))

    @tf.function(jit_compile=True)
    def backward_amp(d_audio, phase, freq):
        sums = backward_sums(d_audio, phase, freq, None, ('1-s', 's'))
        return to_boundaries(sums['1-s'], sums['s'])

    @tf.function(jit_compile=True)
    def backward_phase(d_audio, phase, freq, amp):
        # d phase / d phase_j = 1 = (c + a + q) / hop: no sum has a bare
        # weight of one (see _MAX_FUSED_AXIS).
        sums = backward_sums(d_audio, phase, freq, amp, ('c', 'a', 'q'))
        d_phase = (sums['c'] + sums['a'] + sums['q']) * (1.0 / hop)
        return d_phase, to_boundaries(sums['a'], sums['q'])

    return forward, backward_amp, backward_phase


def _run_frame_kernel(phase, freq, amp, hop: int, method: str) -> tf.Tensor:
    """Audio [batch, J * hop] from kernel inputs (see _frame_kernels)."""
    forward, backward_amp, backward_phase = _frame_kernels(hop, method)

    @tf.custom_gradient
    def synthesize(phase, freq, amp):
        def grad(d_audio):
            # Two kernels so that graph mode prunes the phase one when no
            # frequency gradient is needed.
            d_phase, d_freq = backward_phase(d_audio, phase, freq, amp)
            return d_phase, d_freq, backward_amp(d_audio, phase, freq)
        return forward(phase, freq, amp), grad

    return synthesize(phase, freq, amp)


# Frame-rate synthesis --------------------------------------------------------
def _resample_controls(x, n_samples, method, add_endpoint):
    """`resample` under this module's endpoint rule."""
    n_frames = x.shape[1]
    if add_endpoint or n_frames is None or n_frames < 2:
        return resample(x, n_samples, method, add_endpoint=add_endpoint)
    if n_samples % (n_frames - 1) == 0:
        # Frame j at sample j * hop; the held extra hop is cropped off.
        hop = n_samples // (n_frames - 1)
        return resample(x, n_frames * hop, method)[:, :n_samples]
    # No integer hop: resample's own convention (last frame on last sample).
    return resample(x, n_samples, method, add_endpoint=False)


def _oscillator_values(x, n_osc: int, harmonic: bool):
    """Per-oscillator values: multiples 1..n_osc of x [..., 1] if harmonic."""
    if harmonic:
        return x * tf.range(1, n_osc + 1, dtype=x.dtype)
    return x


@tf.function(jit_compile=True)
def _kernel_phases(frequencies, initial_phase, n_osc: int, harmonic: bool,
                   hop: int, add_endpoint: bool, sample_rate: float):
    """Frame-kernel phase inputs from frame-rate frequencies (fused by XLA).

    Separate from the amplitudes, so that graph mode prunes the kernel's
    phase gradient when no frequency gradient is needed.

    Args: see `_synthesize`; hop: samples per frame interval.

    Returns:
        start phase [batch, J, n_osc], angular frequency (rad / sample)
        [batch, J + 1, n_osc] and final phase [batch, 1, n_osc], float32.
    """
    if add_endpoint:  # Hold the last frame over the last hop.
        frequencies = tf.concat([frequencies, frequencies[:, -1:]], axis=1)
    omegas = frequencies * (_TWO_PI / sample_rate)  # The phase dtype.
    # Exact phase advance of a linear frequency ramp over one interval,
    # accumulated in float64 and wrapped: no drift however long the signal.
    # For harmonics, k times the wrapped fundamental phase is exact mod 2 pi.
    advance = 0.5 * (hop + 1) * omegas[:, :-1] + 0.5 * (hop - 1) * omegas[:, 1:]
    if advance.dtype != tf.float64:  # phase_precision('float32'): keep the
        advance = _mod_2pi(advance)  # running sum (and its rounding) small.
    phase = tf.concat([tf.zeros_like(advance[:, :1]),
                       tf.cumsum(advance, axis=1)], axis=1)
    phase = _oscillator_values(_mod_2pi(phase), n_osc, harmonic)
    omegas = _oscillator_values(omegas, n_osc, harmonic)
    if initial_phase is not None:
        phase = _mod_2pi(phase + initial_phase)
        omegas += tf.zeros_like(initial_phase)  # Broadcast the batch.
    return (tf.cast(phase[:, :-1], tf.float32), tf.cast(omegas, tf.float32),
            tf.cast(phase[:, -1:], tf.float32))


def _common_batch(*tensors):
    """Broadcasts [batch or 1, ...] tensors to one batch size."""
    batch = tensors[0].shape[0]
    if all(t.shape[0] == batch for t in tensors) and batch is not None:
        return tensors
    batch = tf.reduce_max(tf.stack([tf.shape(t)[0] for t in tensors]))
    return [tf.ensure_shape(
        tf.broadcast_to(t, tf.concat([[batch], tf.shape(t)[1:]], 0)),
        [None] + t.shape[1:]) for t in tensors]


def _synthesize(frequencies, amplitudes, n_osc: int, harmonic: bool,
                n_samples: int, sample_rate, amp_resample_method,
                initial_phase, add_endpoint, use_angular_cumsum):
    """Oscillators from frame-rate controls.

    Args:
        frequencies: float64 Hz, [batch, n_frames, 1] if harmonic (oscillator
            k has k times that frequency), else [batch, n_frames, n_osc].
        amplitudes: float32, [batch, n_frames, n_osc or 1].
        n_osc: Number of oscillators.
        harmonic: See frequencies.
        initial_phase: None or float64 radians, [batch, 1, n_osc].
        Others: see harmonic_synthesis.

    Returns:
        (audio [batch, n_samples], final_phase [batch, 1, n_osc] float32).
    """
    n_frames = frequencies.shape[1]
    n_intervals = None
    if n_frames is not None and n_frames == amplitudes.shape[1]:
        n_intervals = n_frames if add_endpoint else n_frames - 1
    hop = n_samples // n_intervals if n_intervals else 0
    if (amp_resample_method in _KERNEL_METHODS and hop and
            n_samples % n_intervals == 0 and
            max(hop, n_osc) <= _MAX_FUSED_AXIS**3):
        phase, omegas, final_phase = _kernel_phases(
            frequencies, initial_phase, n_osc, harmonic, hop, add_endpoint,
            float(sample_rate))
        if add_endpoint:
            amplitudes = tf.concat([amplitudes, amplitudes[:, -1:]], axis=1)
        amplitudes = tf.broadcast_to(
            amplitudes, tf.concat([tf.shape(amplitudes)[:2], [n_osc]], 0))
        phase, omegas, amplitudes, final_phase = _common_batch(
            phase, omegas, amplitudes, final_phase)
        audio = _run_frame_kernel(
            phase, omegas, tf.ensure_shape(amplitudes, omegas.shape), hop,
            amp_resample_method)
        return audio, final_phase

    frequencies = _oscillator_values(frequencies, n_osc, harmonic)
    freq_env = _resample_controls(tf.cast(frequencies, tf.float32),
                                  n_samples, 'linear', add_endpoint)
    amp_env = _resample_controls(amplitudes, n_samples, amp_resample_method,
                                 add_endpoint)
    if initial_phase is not None:
        initial_phase = tf.cast(initial_phase, tf.float32)
    return _sample_rate_oscillators(freq_env, amp_env, sample_rate,
                                    initial_phase, use_angular_cumsum,
                                    sum_sinusoids=True)


def _initial_phase64(initial_phase, n_osc: int, name: str):
    if initial_phase is None:
        return None
    initial_phase = tf_float32(initial_phase)
    if initial_phase.shape.rank != 3 or initial_phase.shape[1] != 1:
        raise ValueError(f'{name} must have shape [batch, 1, {n_osc}], got '
                         f'shape {initial_phase.shape}.')
    _check_channels(initial_phase, name, (n_osc,))
    return tf.cast(initial_phase, _phase_dtype)


def _check_frame_controls(name, x, shape_doc, channels=None):
    _check_rank(x, 3, name, shape_doc)
    if channels is not None:
        _check_channels(x, name, channels)
    if x.shape[1] is not None and x.shape[1] < 1:
        raise ValueError(f'{name} has no frames: shape {x.shape}.')


def _check_synthesis_args(n_samples, sample_rate, amp_resample_method,
                          add_endpoint, n_frames):
    _check_n_samples(n_samples)
    _check_sample_rate(sample_rate)
    _check_amp_resample_method(amp_resample_method)
    if not add_endpoint and n_frames is not None and n_frames < 2:
        raise ValueError('add_endpoint=False needs at least 2 frames, got '
                         f'{n_frames}.')


def _harmonic_synthesis(frequencies, amplitudes, harmonic_shifts,
                        harmonic_distribution, n_samples, sample_rate,
                        amp_resample_method, initial_phase, add_endpoint,
                        use_angular_cumsum, fundamental_phase=False):
    """harmonic_synthesis returning (audio, final_phase [batch, 1, K]).

    initial_phase is per harmonic [batch, 1, K], or the fundamental's
    [batch, 1, 1] if fundamental_phase.
    """
    frequencies = tf_float32(frequencies)
    amplitudes = tf_float32(amplitudes)
    harmonic_doc = '[batch, n_frames, n_harmonics]'
    _check_frame_controls('frequencies', frequencies, '[batch, n_frames, 1]',
                          (1,))
    n_harmonics = 1
    if harmonic_distribution is not None:
        harmonic_distribution = tf_float32(harmonic_distribution)
        _check_frame_controls('harmonic_distribution', harmonic_distribution,
                              harmonic_doc)
        n_harmonics = int(harmonic_distribution.shape[-1])
    if harmonic_shifts is not None:
        harmonic_shifts = tf_float32(harmonic_shifts)
        _check_frame_controls('harmonic_shifts', harmonic_shifts, harmonic_doc,
                              None if harmonic_distribution is None
                              else (n_harmonics,))
        n_harmonics = int(harmonic_shifts.shape[-1])
    _check_frame_controls('amplitudes', amplitudes, '[batch, n_frames, 1]',
                          (1, n_harmonics))
    _check_synthesis_args(n_samples, sample_rate, amp_resample_method,
                          add_endpoint, frequencies.shape[1])

    if fundamental_phase:
        initial_phase = _fundamental_to_harmonic_phase(initial_phase,
                                                       n_harmonics)
    else:
        initial_phase = _initial_phase64(initial_phase, n_harmonics,
                                         'initial_phase')

    frequencies = tf.cast(frequencies, _phase_dtype)
    if harmonic_shifts is not None:
        frequencies = _oscillator_values(frequencies, n_harmonics, True)
        frequencies *= 1.0 + tf.cast(harmonic_shifts, _phase_dtype)
    if harmonic_distribution is not None:
        amplitudes = amplitudes * harmonic_distribution
    return _synthesize(frequencies, amplitudes, n_harmonics,
                       harmonic_shifts is None, int(n_samples), sample_rate,
                       amp_resample_method, initial_phase, add_endpoint,
                       use_angular_cumsum)


def harmonic_synthesis(frequencies, amplitudes, harmonic_shifts=None,
                       harmonic_distribution=None, n_samples: int = 64000,
                       sample_rate: float = 16000,
                       amp_resample_method: Text = 'window',
                       use_angular_cumsum: bool = False,
                       initial_phase=None, return_final_phase: bool = False,
                       add_endpoint: bool = True):
    """Audio of a monophonic harmonic oscillator bank from frame-rate controls.

    Harmonic k (1-based) has frequency frequencies * k * (1 + shift_k) and
    amplitude amplitudes * distribution_k; frequencies are interpolated
    linearly between frames, amplitudes with `amp_resample_method`, and each
    harmonic is silent wherever it is at or above Nyquist. See the module
    docstring for the phase convention and the endpoint rule.

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        amplitudes: Overall amplitude, [batch, n_frames, 1].
        harmonic_shifts: Optional relative detuning of each harmonic,
            [batch, n_frames, n_harmonics].
        harmonic_distribution: Optional amplitude share of each harmonic,
            [batch, n_frames, n_harmonics]. Without it and without shifts
            there is a single (fundamental) oscillator.
        n_samples: Output length in samples.
        sample_rate: Samples per second.
        amp_resample_method: 'window' (default), 'linear', 'nearest' or
            'cubic' (see `resample`).
        use_angular_cumsum: Only used on the generic path (nearest/cubic
            amplitudes or a non-integer hop), see `oscillator_bank`. The
            frame kernel accumulates phase without drift regardless.
        initial_phase: Optional phase of each harmonic at sample 0 in
            radians, [batch, 1, n_harmonics].
        return_final_phase: Also return the phases for the next block.
        add_endpoint: True: the frames cover n_samples, the last frame held
            over the last hop. False: the last frame falls on sample
            n_samples (just after the output); use it to stream blocks whose
            frames overlap by one.

    Returns:
        audio [batch, n_samples], or (audio, final_phase
        [batch, 1, n_harmonics]) with return_final_phase.

    Raises:
        ValueError: on bad shapes, sample_rate, n_samples or method.
    """
    audio, final_phase = _harmonic_synthesis(
        frequencies, amplitudes, harmonic_shifts, harmonic_distribution,
        n_samples, sample_rate, amp_resample_method, initial_phase,
        add_endpoint, use_angular_cumsum)
    return (audio, final_phase) if return_final_phase else audio


def sinusoidal_synthesis(frequencies, amplitudes, n_samples: int = 64000,
                         sample_rate: float = 16000,
                         amp_resample_method: Text = 'window',
                         initial_phase=None, return_final_phase: bool = False,
                         add_endpoint: bool = True):
    """Audio of freely moving sinusoids from frame-rate controls.

    The same synthesis as `harmonic_synthesis`, with every oscillator's
    frequency given directly.

    Args:
        frequencies: Frequencies in Hz, [batch, n_frames, n_sinusoids].
        amplitudes: Amplitudes, [batch, n_frames, n_sinusoids].
        n_samples, sample_rate, amp_resample_method, add_endpoint: See
            `harmonic_synthesis`.
        initial_phase: Optional phases at sample 0 (radians),
            [batch, 1, n_sinusoids].
        return_final_phase: Also return the phases for the next block.

    Returns:
        audio [batch, n_samples], or (audio, final_phase
        [batch, 1, n_sinusoids]).
    """
    frequencies = tf_float32(frequencies)
    amplitudes = tf_float32(amplitudes)
    shape_doc = '[batch, n_frames, n_sinusoids]'
    _check_frame_controls('frequencies', frequencies, shape_doc)
    n_osc = int(frequencies.shape[-1])
    _check_frame_controls('amplitudes', amplitudes, shape_doc, (1, n_osc))
    _check_synthesis_args(n_samples, sample_rate, amp_resample_method,
                          add_endpoint, frequencies.shape[1])
    audio, final_phase = _synthesize(
        tf.cast(frequencies, _phase_dtype), amplitudes, n_osc, False,
        int(n_samples), sample_rate, amp_resample_method,
        _initial_phase64(initial_phase, n_osc, 'initial_phase'),
        add_endpoint, use_angular_cumsum=False)
    return (audio, final_phase) if return_final_phase else audio


def _fundamental_to_harmonic_phase(initial_phase, n_harmonics: int):
    """[batch, 1, 1] fundamental phase -> [batch, 1, n_harmonics] float64."""
    if initial_phase is None:
        return None
    ratios = tf.range(1, n_harmonics + 1, dtype=_phase_dtype)
    return _mod_2pi(
        _initial_phase64(initial_phase, 1, 'initial_phase') * ratios)


def streaming_harmonic_synthesis(frequencies, amplitudes,
                                 harmonic_distribution=None,
                                 initial_phase=None, n_samples: int = 64000,
                                 sample_rate: float = 16000,
                                 amp_resample_method: Text = 'linear',
                                 add_endpoint: bool = True
                                 ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Harmonic synthesis of one block of a stream, carrying the phase.

    The distribution is renormalised over the harmonics below Nyquist (per
    frame); the phase state is the fundamental's phase only, since harmonic
    k's phase is k times it.

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        amplitudes: Overall amplitude, [batch, n_frames, 1].
        harmonic_distribution: [batch, n_frames, n_harmonics] or None (one
            oscillator).
        initial_phase: Fundamental phase in radians at the block's first
            sample, [batch, 1, 1]; None means 0.
        n_samples: Samples in this block.
        sample_rate: Samples per second.
        amp_resample_method: See `harmonic_synthesis`.
        add_endpoint: True (magenta/ddsp behaviour): each block holds its last
            frame. False: consecutive blocks share their boundary frame and
            the stream equals one-shot synthesis (see module docstring).

    Returns:
        (audio [batch, n_samples], final_phase [batch, 1, 1]): the
        fundamental's phase at the next block's first sample, in [0, 2*pi).
    """
    frequencies = tf_float32(frequencies)
    _check_frame_controls('frequencies', frequencies, '[batch, n_frames, 1]',
                          (1,))
    if harmonic_distribution is not None:
        harmonic_distribution = tf_float32(harmonic_distribution)
        _check_frame_controls('harmonic_distribution', harmonic_distribution,
                              '[batch, n_frames, n_harmonics]')
        harmonic_distribution = normalize_harmonics(
            harmonic_distribution, frequencies, sample_rate)
    audio, final_phase = _harmonic_synthesis(
        frequencies, amplitudes, None, harmonic_distribution, n_samples,
        sample_rate, amp_resample_method, initial_phase, add_endpoint,
        use_angular_cumsum=False, fundamental_phase=True)
    return audio, final_phase[..., :1]


@gin.configurable(module='ddsp.core')
def harmonic_oscillator_bank(frequency, amplitude_envelopes,
                             initial_phase=None, sample_rate: float = 16000,
                             use_angular_cumsum: bool = True
                             ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Harmonic oscillators from audio-rate envelopes, with phase state.

    Harmonics at or above Nyquist are silenced sample by sample.

    Args:
        frequency: Fundamental frequency in Hz, [batch, n_samples, 1].
        amplitude_envelopes: Amplitude of each harmonic,
            [batch, n_samples, n_harmonics].
        initial_phase: Fundamental phase at sample 0 in radians,
            [batch, 1, 1]; None means 0.
        sample_rate: Samples per second.
        use_angular_cumsum: Kept for compatibility with magenta/ddsp; the
            phase is always accumulated without drift.

    Returns:
        (audio [batch, n_samples], final_phase [batch, 1, 1]): the
        fundamental's phase at the sample after the last, in [0, 2*pi).
    """
    del use_angular_cumsum  # Always drift-free.
    frequency = tf_float32(frequency)
    amplitude_envelopes = tf_float32(amplitude_envelopes)
    _check_rank(frequency, 3, 'frequency', '[batch, n_samples, 1]')
    _check_channels(frequency, 'frequency', (1,))
    _check_rank(amplitude_envelopes, 3, 'amplitude_envelopes',
                '[batch, n_samples, n_harmonics]')
    _check_sample_rate(sample_rate)
    n_samples = frequency.shape[1]
    if n_samples is None:
        raise ValueError('frequency needs a static number of samples, got '
                         f'shape {frequency.shape}.')
    n_harmonics = int(amplitude_envelopes.shape[-1])
    # The frame kernel with one sample per frame (hop 1).
    audio, final_phase = _synthesize(
        tf.cast(frequency, _phase_dtype), amplitude_envelopes, n_harmonics,
        True, n_samples, sample_rate, 'linear',
        _fundamental_to_harmonic_phase(initial_phase, n_harmonics),
        add_endpoint=True, use_angular_cumsum=False)
    return audio, final_phase[..., :1]
