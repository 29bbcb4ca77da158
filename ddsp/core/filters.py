"""FFT convolution (time-invariant and time-varying) and FIR filter design.

Conventions others rely on:

* Linear-phase impulse responses made here (`frequency_impulse_response`,
  `sinc_impulse_response`, `apply_window_to_impulse_response`) of length L have
  their centre (group delay) at sample L // 2; for even L, tap 0 is zero.
  `fft_convolve(..., padding='same')` compensates exactly that delay by default
  (`delay_compensation=-1`), so filtering with these IRs shifts nothing.
* Time-varying filtering (impulse responses [batch, n_frames, ir_size]) is a
  windowed overlap-add: with hop = n_samples / n_frames, IR frame j is fully
  active at sample j * hop and crossfades with its neighbours through Hann
  windows (50% overlap) that sum to one over the whole signal (the last
  frame's window stays flat to the end). The frames thus sit where
  `resample(..., add_endpoint=True)` puts them, and there are no clicks at
  frame boundaries.

DFT method (`dft_method`). The real DFTs here are `tf.signal.rfft` / `irfft`
(complex64) by default. Inside `with dft_method('matmul'):` the functions
traced there instead multiply by cosine and sine matrices, in float32 without
complex numbers. That is for graphs exported to runtimes without FFT or
complex ops (TFLite / LiteRT builtins) that filter short frames (a streaming
step): it costs O(n^2) per transform, so keep the default everywhere else.
"""
import contextlib
import functools
from typing import Optional, Text, Tuple

import numpy as np
import scipy.fft
import tensorflow as tf

from ddsp.core.utils import tf_float32

__all__ = [
    'dft_method',
    'circular_convolve',
    'get_fft_size',
    'crop_and_compensate_delay',
    'fft_convolve',
    'overlap_add_convolve',
    'apply_window_to_impulse_response',
    'frequency_impulse_response',
    'sinc',
    'sinc_impulse_response',
    'frequency_filter',
    'sinc_filter',
]

_PADDINGS = ('same', 'valid')
_DFT_METHODS = ('fft', 'matmul')

# How real DFTs are computed; see `dft_method`.
_dft_method = 'fft'


@contextlib.contextmanager
def dft_method(method: str = 'fft'):
    """Context: filters traced inside compute their real DFTs with `method`.

    Args:
        method: 'fft' (default, tf.signal with complex64 spectra) or 'matmul'
            (products with cosine / sine matrices, real float32 ops only: for
            export to runtimes without FFT or complex ops, e.g. TFLite
            builtins, of functions that filter short frames; see the module
            docstring).

    Raises:
        ValueError: for another method.
    """
    global _dft_method
    if method not in _DFT_METHODS:
        raise ValueError(f'method must be one of {list(_DFT_METHODS)}, got '
                         f'{method!r}.')
    previous, _dft_method = _dft_method, method
    try:
        yield
    finally:
        _dft_method = previous


@functools.lru_cache(maxsize=None)
def _dft_angles(n_samples: int, fft_size: int) -> np.ndarray:
    """2*pi*k*n/fft_size for n < n_samples, k <= fft_size // 2 (float64).

    k * n is reduced modulo fft_size in integers first, so the angles (and
    the matrices made from them) are exact to float64 rounding for any size.
    """
    k_times_n = np.outer(np.arange(n_samples), np.arange(fft_size // 2 + 1))
    return 2.0 * np.pi * (k_times_n % fft_size) / fft_size


def _matmul_rfft(x: tf.Tensor, fft_size: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """rfft(x, [fft_size]) as (real, imag) by matrix products.

    Args:
        x: float32 [..., n] (zero-padded, or cropped, to fft_size).
        fft_size: DFT length.

    Returns:
        Real and imaginary parts, float32 [..., fft_size // 2 + 1] each.
    """
    x = x[..., :fft_size]
    angles = _dft_angles(int(x.shape[-1]), fft_size)
    real = tf.tensordot(x, tf.constant(np.cos(angles), tf.float32), 1)
    imag = tf.tensordot(x, tf.constant(-np.sin(angles), tf.float32), 1)
    return real, imag


def _matmul_irfft(real: tf.Tensor, imag: Optional[tf.Tensor],
                  fft_size: int) -> tf.Tensor:
    """irfft(complex(real, imag), [fft_size]) by matrix products.

    Args:
        real: float32 [..., fft_size // 2 + 1].
        imag: Same shape, or None for a real spectrum.
        fft_size: DFT length.

    Returns:
        float32 [..., fft_size].
    """
    angles = _dft_angles(fft_size, fft_size).T  # [bins, fft_size]
    # Every bin but DC and (for even sizes) Nyquist stands for itself and its
    # conjugate mirror bin; their imaginary parts are ignored (sin is 0).
    weights = np.full([angles.shape[0], 1], 2.0 / fft_size)
    weights[0] = 1.0 / fft_size
    if fft_size % 2 == 0:
        weights[-1] = 1.0 / fft_size
    x = tf.tensordot(real, tf.constant(weights * np.cos(angles), tf.float32), 1)
    if imag is not None:
        x -= tf.tensordot(imag, tf.constant(weights * np.sin(angles),
                                            tf.float32), 1)
    return x


def circular_convolve(x, y, fft_size: int) -> tf.Tensor:
    """Circular convolution of length fft_size along the last axis.

    irfft(rfft(x) * rfft(y)) with both zero-padded to fft_size, computed as
    `dft_method` says; with fft_size >= n + m - 1 it is the full linear
    convolution.

    Args:
        x: float32 [..., n], n <= fft_size.
        y: float32 [..., m], m <= fft_size, batch axes broadcastable with x.
        fft_size: DFT length.

    Returns:
        float32 [..., fft_size].
    """
    if _dft_method == 'fft':
        return tf.signal.irfft(tf.signal.rfft(x, [fft_size]) *
                               tf.signal.rfft(y, [fft_size]), [fft_size])
    x_real, x_imag = _matmul_rfft(x, fft_size)
    y_real, y_imag = _matmul_rfft(y, fft_size)
    return _matmul_irfft(x_real * y_real - x_imag * y_imag,
                         x_real * y_imag + x_imag * y_real, fft_size)


def get_fft_size(frame_size: int, ir_size: int, power_of_2: bool = True) -> int:
    """Smallest FFT length that holds a full linear convolution.

    Args:
        frame_size: Length of the audio frame.
        ir_size: Length of the impulse response.
        power_of_2: Round up to a power of 2; otherwise to a 5-smooth length
            (scipy.fft.next_fast_len for real transforms).

    Returns:
        An FFT length >= frame_size + ir_size - 1.
    """
    convolved_size = int(frame_size) + int(ir_size) - 1
    if convolved_size < 1:
        raise ValueError(f'frame_size ({frame_size}) and ir_size ({ir_size}) '
                         'must be positive.')
    if power_of_2:
        return 1 << (convolved_size - 1).bit_length()
    return int(scipy.fft.next_fast_len(convolved_size, real=True))


def _check_padding(padding):
    if padding not in _PADDINGS:
        raise ValueError(f"padding ({padding!r}) must be 'same' or 'valid'.")


def crop_and_compensate_delay(audio, audio_size: int, ir_size: int,
                              padding: Text,
                              delay_compensation: int) -> tf.Tensor:
    """Crops a full convolution output to 'same' or 'valid' size.

    Args:
        audio: Full convolution output [..., audio_size + ir_size - 1].
        audio_size: Length of the input audio.
        ir_size: Length of the impulse response.
        padding: 'same' returns audio_size samples starting at the delay;
            'valid' returns the full output (audio_size + ir_size - 1).
        delay_compensation: Samples to drop from the start for 'same'. If < 0,
            the group delay of this module's linear-phase IRs: ir_size // 2.

    Raises:
        ValueError: If padding is invalid or delay_compensation >= ir_size.
    """
    _check_padding(padding)
    full_size = int(audio_size) + int(ir_size) - 1
    if padding == 'valid':
        return audio[..., :full_size]
    start = int(ir_size) // 2 if delay_compensation < 0 else int(
        delay_compensation)
    if start > ir_size - 1:
        raise ValueError(f'delay_compensation ({delay_compensation}) must be '
                         f'smaller than the impulse response size ({ir_size}).')
    return audio[..., start:start + int(audio_size)]


def _crossfade_windows(n_frames: int, hop: int,
                       flat_end: bool = True) -> tf.Tensor:
    """[n_frames, 2 * hop] Hann windows; with flat_end the last one is flat at
    its end."""
    hann = np.sin(np.pi * np.arange(2 * hop) / (2 * hop))**2
    last = np.concatenate([hann[:hop], np.ones(hop)]) if flat_end else hann
    hann = tf.constant(hann, tf.float32)
    return tf.concat([tf.tile(hann[tf.newaxis], [n_frames - 1, 1]),
                      tf.constant(last[np.newaxis], tf.float32)], axis=0)


def overlap_add_convolve(audio, impulse_response, hop: int,
                         flat_end: bool = True) -> tf.Tensor:
    """Time-varying filtering: windowed segments, one IR each, overlap-added.

    Segment j is audio[j * hop:(j + 2) * hop], multiplied by a crossfade
    window (see `_crossfade_windows`) and fully convolved with IR frame j.
    `fft_convolve` uses it on its audio padded with one hop in front; a
    stream, whose last segment is continued by the next block, passes
    flat_end=False.

    Args:
        audio: [batch, (n_frames + 1) * hop].
        impulse_response: [batch or 1, n_frames, ir_size].
        hop: Samples between segments (half a segment).
        flat_end: The last segment's window stays flat at its end.

    Returns:
        float32 [batch, (n_frames + 1) * hop + ir_size - 1].
    """
    n_frames, ir_size = impulse_response.shape[1], impulse_response.shape[2]
    segments = tf.signal.frame(audio, 2 * hop, hop)  # [B, F, 2 * hop]
    segments *= _crossfade_windows(n_frames, hop, flat_end)
    fft_size = get_fft_size(2 * hop, ir_size, power_of_2=True)
    segments_out = circular_convolve(segments, impulse_response, fft_size)
    return tf.signal.overlap_and_add(
        segments_out[..., :2 * hop + ir_size - 1], hop)


def fft_convolve(audio, impulse_response, padding: Text = 'same',
                 delay_compensation: int = -1) -> tf.Tensor:
    """Filters audio with one impulse response, or with a time-varying series.

    With one IR frame this is plain linear convolution (one FFT of the whole
    signal). With n_frames > 1 it is a time-varying filter: the audio is split
    into n_frames segments of 2 * hop samples (hop = n_samples / n_frames; if
    that is not an integer, the end is zero-padded up to n_frames * hop and
    cropped again), each multiplied by a crossfade window (Hann, 50% overlap,
    partition of unity; see the module docstring), convolved with its own IR
    frame, and overlap-added. A constant series of IRs gives exactly the plain
    convolution; a change of IR crossfades smoothly over 2 * hop samples.

    Args:
        audio: Input audio [batch, n_samples].
        impulse_response: [batch, ir_size] (time-invariant) or
            [batch, n_frames, ir_size] (time-varying). A batch of 1 is
            broadcast over the audio batch.
        padding: 'same' (output [batch, n_samples], delay compensated) or
            'valid' (full convolution, [batch, n_samples + ir_size - 1]).
        delay_compensation: Samples dropped from the start for 'same'; if < 0,
            ir_size // 2, the group delay of this module's linear-phase IRs.

    Returns:
        Filtered audio, float32.

    Raises:
        ValueError: On invalid padding, on mismatched batch sizes, if the
            shapes have the wrong rank, or if n_frames does not fit the audio
            (n_frames > n_samples, or zero-padding of a whole hop or more).
    """
    _check_padding(padding)
    audio = tf_float32(audio)
    impulse_response = tf_float32(impulse_response)
    if len(audio.shape) != 2:
        raise ValueError('audio must be [batch, n_samples], not shape '
                         f'{audio.shape}.')
    if len(impulse_response.shape) == 2:
        impulse_response = impulse_response[:, tf.newaxis, :]
    if len(impulse_response.shape) != 3:
        raise ValueError('impulse_response must be [batch, ir_size] or [batch, '
                         f'n_frames, ir_size], not shape '
                         f'{impulse_response.shape}.')

    batch_size, audio_size = audio.shape
    ir_batch_size, n_frames, ir_size = impulse_response.shape
    if audio_size is None or n_frames is None or ir_size is None:
        raise ValueError('fft_convolve needs static n_samples, n_frames and '
                         f'ir_size (audio: {audio.shape}, impulse_response: '
                         f'{impulse_response.shape}).')
    if (batch_size is not None and ir_batch_size is not None and
            ir_batch_size != 1 and ir_batch_size != batch_size):
        raise ValueError(f'Batch size of audio ({batch_size}) and '
                         f'impulse_response ({ir_batch_size}) must be the same '
                         '(or 1 for the impulse response).')

    if n_frames == 1:
        fft_size = get_fft_size(audio_size, ir_size, power_of_2=True)
        audio_out = circular_convolve(audio, impulse_response[:, 0, :],
                                      fft_size)
    else:
        hop = -(-audio_size // n_frames)  # ceil
        pad_end = n_frames * hop - audio_size
        if pad_end >= hop:
            raise ValueError(
                f'Number of impulse response frames ({n_frames}) does not fit '
                f'the audio ({audio_size} samples): with hop size ceil('
                f'{audio_size} / {n_frames}) = {hop}, the audio spans only '
                f'{-(-audio_size // hop)} frames.')
        # Frame j covers [(j - 1) * hop, (j + 1) * hop) of the audio.
        padded = tf.pad(audio, [[0, 0], [hop, pad_end]])
        audio_out = overlap_add_convolve(padded, impulse_response, hop)
        audio_out = audio_out[:, hop:]

    audio_out = audio_out[:, :audio_size + ir_size - 1]
    return crop_and_compensate_delay(audio_out, audio_size, ir_size, padding,
                                     delay_compensation)


# Filter design ----------------------------------------------------------------
def apply_window_to_impulse_response(impulse_response, window_size: int = 0,
                                     causal: bool = False) -> tf.Tensor:
    """Windows a zero-phase impulse response and returns it in causal form.

    The output has length W = window_size (ir_size if window_size <= 0 or
    > ir_size); its centre tap (zero-phase index 0) is at W // 2 and it is
    multiplied by a Hann window peaking there: sin^2(pi * n / W) for even W
    (tap 0 is zero), sin^2(pi * (n + 1) / (W + 1)) for odd W. A symmetric
    zero-phase input gives a symmetric, linear-phase output with group delay
    W // 2.

    Args:
        impulse_response: [..., ir_size], in zero-phase form (centre at index
            0, negative times wrapped to the end) unless `causal`.
        window_size: Length of the window and of the output.
        causal: The input is in causal form (centre at ir_size // 2).

    Returns:
        Windowed causal impulse response [..., W].
    """
    impulse_response = tf_float32(impulse_response)
    ir_size = impulse_response.shape[-1]
    if ir_size is None:
        raise ValueError('impulse_response needs a static last dimension.')
    if causal:
        impulse_response = tf.roll(impulse_response, -(ir_size // 2), axis=-1)
    window_size = int(window_size)
    if window_size <= 0 or window_size > ir_size:
        window_size = ir_size
    odd = window_size % 2
    n = np.arange(window_size)
    window = np.sin(np.pi * (n + odd) / (window_size + odd))**2
    indices = (n - window_size // 2) % ir_size
    impulse_response = tf.gather(impulse_response, indices, axis=-1)
    return impulse_response * tf.constant(window, tf.float32)


def frequency_impulse_response(magnitudes, window_size: int = 0) -> tf.Tensor:
    """Linear-phase FIR filters from sampled magnitude responses.

    Frequency sampling method: the zero-phase IR is irfft(magnitudes), of
    length 2 * (n_frequencies - 1), then windowed and made causal with
    apply_window_to_impulse_response (centre at W // 2).

    Args:
        magnitudes: [batch, n_frames, n_frequencies] or [batch, n_frequencies],
            non-negative, at frequencies linspace(0, nyquist, n_frequencies).
        window_size: Length of the Hann window and of the IR; <= 0 (default)
            means the full 2 * (n_frequencies - 1).

    Returns:
        Impulse responses [batch, n_frames, W] or [batch, W].
    """
    magnitudes = tf_float32(magnitudes)
    if magnitudes.shape[-1] is None or magnitudes.shape[-1] < 2:
        raise ValueError('magnitudes needs at least 2 frequencies in its last '
                         f'dimension, not shape {magnitudes.shape}.')
    if _dft_method == 'fft':
        impulse_response = tf.signal.irfft(
            tf.complex(magnitudes, tf.zeros_like(magnitudes)))
    else:
        impulse_response = _matmul_irfft(
            magnitudes, None, 2 * (int(magnitudes.shape[-1]) - 1))
    return apply_window_to_impulse_response(impulse_response, window_size)


def sinc(x, threshold: float = 1e-20) -> tf.Tensor:
    """Normalised sinc sin(pi x) / (pi x), with sinc(0) = 1."""
    x = tf_float32(x)
    x = tf.where(tf.abs(x) < threshold, threshold * tf.ones_like(x), x)
    x = np.pi * x
    return tf.sin(x) / x


def sinc_impulse_response(cutoff_frequency, window_size: int = 512,
                          sample_rate=None, high_pass: bool = False
                          ) -> tf.Tensor:
    """Hamming-windowed sinc low-pass (or high-pass) impulse responses.

    Args:
        cutoff_frequency: Cutoff in Hz if sample_rate is given, else as a
            fraction of Nyquist in [0, 1]. Shape [batch, n_frames, 1] (or any
            shape [..., 1]; other shapes get a new last axis).
        window_size: The IR length is (window_size // 2) * 2 + 1 (odd, centred
            at window_size // 2).
        sample_rate: Sample rate in Hz, or None for normalised cutoffs.
        high_pass: Return the complementary high-pass filter
            (delta - low-pass).

    Returns:
        Impulse responses [..., (window_size // 2) * 2 + 1]; the low-pass has
        unity DC gain, the high-pass zero DC gain.
    """
    cutoff = tf_float32(cutoff_frequency)
    if sample_rate is not None:
        cutoff = cutoff * (2.0 / float(sample_rate))
    if not (cutoff.shape.rank and cutoff.shape[-1] == 1):
        cutoff = cutoff[..., tf.newaxis]

    half_size = int(window_size) // 2
    full_size = 2 * half_size + 1
    idx = tf.range(-half_size, half_size + 1, dtype=tf.float32)
    impulse_response = sinc(cutoff * idx)

    # Symmetric Hamming window, so that the filter is exactly linear phase.
    n = np.arange(full_size)
    window = 0.54 - 0.46 * np.cos(2.0 * np.pi * n / max(full_size - 1, 1))
    impulse_response *= tf.constant(window, tf.float32)
    impulse_response /= tf.abs(
        tf.reduce_sum(impulse_response, axis=-1, keepdims=True))

    if high_pass:
        delta = tf.one_hot(half_size, full_size, dtype=tf.float32)
        impulse_response = delta - impulse_response
    return impulse_response


def frequency_filter(audio, magnitudes, window_size: int = 0,
                     padding: Text = 'same') -> tf.Tensor:
    """Filters audio with (time-varying) linear-phase FIR magnitude responses.

    fft_convolve(audio, frequency_impulse_response(magnitudes, window_size)).

    Args:
        audio: [batch, n_samples].
        magnitudes: [batch, n_frames, n_frequencies] or [batch, n_frequencies].
        window_size: IR length (<= 0: 2 * (n_frequencies - 1)).
        padding: 'same' or 'valid' (see fft_convolve).
    """
    impulse_response = frequency_impulse_response(magnitudes,
                                                  window_size=window_size)
    return fft_convolve(audio, impulse_response, padding=padding)


def sinc_filter(audio, cutoff_frequency, window_size: int = 512,
                sample_rate=None, padding: Text = 'same',
                high_pass: bool = False) -> tf.Tensor:
    """Filters audio with (time-varying) windowed-sinc low/high-pass filters.

    Args:
        audio: [batch, n_samples].
        cutoff_frequency: [batch, n_frames, 1] (see sinc_impulse_response).
        window_size: IR length is (window_size // 2) * 2 + 1.
        sample_rate: Sample rate, or None for cutoffs as a fraction of Nyquist.
        padding: 'same' or 'valid' (see fft_convolve).
        high_pass: High-pass instead of low-pass.
    """
    impulse_response = sinc_impulse_response(cutoff_frequency,
                                             window_size=window_size,
                                             sample_rate=sample_rate,
                                             high_pass=high_pass)
    return fft_convolve(audio, impulse_response, padding=padding)
