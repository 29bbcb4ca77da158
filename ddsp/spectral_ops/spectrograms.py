"""Framing, STFT, magnitude, mel and MFCC spectrograms.

Framing rules (shared by every frame-wise function here)
-----------------------------------------------------------
A signal of `n` samples cut into frames of `frame_size` samples every
`hop_size` samples gives, for each `padding` mode:

=========  ==========================  =======================================
padding    n_frames                    padding added / frame placement
=========  ==========================  =======================================
'valid'    floor((n - frame_size)      none; frame i starts at sample i * hop.
           / hop) + 1                  ValueError if n < frame_size.
'same'     ceil(n / hop)               zeros at the end only, up to
                                       ceil((n_frames - 1) * hop) + frame_size
                                       samples; frame i starts at i * hop.
'center'   floor(n / hop) + 1          frame_size // 2 zeros in front,
                                       frame_size - frame_size // 2 behind;
                                       frame i is centred on sample i * hop.
=========  ==========================  =======================================

`hop_size` may be fractional: the feature functions use hop = sample_rate /
frame_rate exactly (a rational number), so 44.1 kHz at 250 frames/s gives
hop 176.4 and e.g. 1 s of audio gives exactly 250 ('same'), 251 ('center')
frames, as at 16 kHz. Frame i then starts at the nearest sample,
floor(i * hop + 1/2) (exact integer arithmetic, no float rounding), so frames
are at most half a sample off the ideal grid. For integer hops this is the
usual framing, identical to `tf.signal.frame` / magenta/ddsp. Unlike the
reference, no function asserts or truncates the hop for rates that are not a
multiple of the frame rate (magenta/ddsp issues #55, #20).
"""
from fractions import Fraction
import math
import numbers
from typing import Optional, Tuple, Union

import gin
import librosa
import numpy as np
import tensorflow as tf

from ddsp import core


PADDING_MODES = ('valid', 'same', 'center')

Hop = Union[int, float, Fraction]


# Validation helpers ----------------------------------------------------------
def _positive(value, name: str):
    """Returns `value` if it is a finite number > 0, else ValueError."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not np.isfinite(float(value)) or value <= 0):
        raise ValueError(f'{name} must be a positive number, got {value!r}.')
    return value


def _positive_int(value, name: str) -> int:
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value <= 0):
        raise ValueError(f'{name} must be a positive integer, got {value!r}.')
    return int(value)


def _check_padding(padding: str) -> str:
    if padding not in PADDING_MODES:
        raise ValueError(
            f'padding must be one of {PADDING_MODES}, got {padding!r}.')
    return padding


def _fraction(value: Hop, name: str = 'hop_size') -> Fraction:
    """Exact rational value of a hop / rate (floats via their nearest
    fraction with denominator <= 10**6, so 176.4 -> 882/5 exactly)."""
    _positive(value, name)
    if isinstance(value, (numbers.Integral, Fraction)):
        return Fraction(value)
    return Fraction(float(value)).limit_denominator(1_000_000)


def _hop(sample_rate, frame_rate) -> Fraction:
    """Exact hop in samples: sample_rate / frame_rate."""
    return (_fraction(sample_rate, 'sample_rate')
            / _fraction(frame_rate, 'frame_rate'))


def _static_length(x, axis: int) -> Optional[int]:
    length = x.shape[axis]
    return None if length is None else int(length)


def _audio_tf(audio, name: str = 'audio', max_rank: int = 2) -> tf.Tensor:
    """float32 tensor of rank 1..max_rank (a trailing channel axis of size 1
    is squeezed when max_rank allows [batch, n, 1])."""
    audio = core.tf_float32(audio)
    rank = audio.shape.rank
    if rank == 3 and audio.shape[-1] == 1:
        audio = audio[..., 0]
        rank = 2
    if rank is None or not 1 <= rank <= max_rank:
        raise ValueError(
            f'{name} must be [n_samples] or [batch, n_samples], got shape '
            f'{audio.shape}.')
    return audio


def _audio_np(audio, name: str = 'audio') -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 3 and audio.shape[-1] == 1:
        audio = audio[..., 0]
    if audio.ndim not in (1, 2):
        raise ValueError(
            f'{name} must be [n_samples] or [batch, n_samples], got shape '
            f'{audio.shape}.')
    return audio


# Framing ---------------------------------------------------------------------
def _n_frames(length: int, frame_size: Hop, hop: Fraction,
              padding: str) -> int:
    """Exact frame count (see the module docstring); ValueError if none."""
    if padding == 'valid':
        room = Fraction(length) - Fraction(frame_size)
        if room < 0:
            raise ValueError(
                f'audio is too short for padding=\'valid\': {length} samples '
                f'< frame_size {frame_size}.')
        return math.floor(room / hop) + 1
    if padding == 'same':
        return math.ceil(length / hop)
    return math.floor(length / hop) + 1  # center


def _frame_starts(n_frames: int, hop: Fraction) -> np.ndarray:
    """floor(i * hop + 1/2) for i < n_frames, exactly."""
    p, q = hop.numerator, hop.denominator
    i = np.arange(n_frames, dtype=np.int64)
    return (2 * i * p + q) // (2 * q)


def get_framed_lengths(input_length: int, frame_size: int, hop_size: Hop,
                       padding: str = 'center') -> Tuple[int, int]:
    """Number of frames and padded signal length of a framing.

    Args:
        input_length: Samples in the signal.
        frame_size: Samples per frame.
        hop_size: Samples between frames (may be fractional, e.g.
            sample_rate / frame_rate = 176.4).
        padding: 'valid', 'same' or 'center' (see the module docstring).

    Returns:
        (n_frames, padded_length).

    Raises:
        ValueError: bad arguments, or 'valid' with input_length < frame_size.
    """
    input_length = int(input_length)
    if input_length < 0:
        raise ValueError(f'input_length must be >= 0, got {input_length}.')
    frame_size = _positive_int(frame_size, 'frame_size')
    hop = _fraction(hop_size)
    _check_padding(padding)
    n_frames = _n_frames(input_length, frame_size, hop, padding)
    if padding == 'valid':
        padded_length = input_length
    elif padding == 'center':
        padded_length = input_length + frame_size
    elif n_frames == 0:  # same, empty input
        padded_length = 0
    else:  # same
        last_start = math.ceil((n_frames - 1) * hop)
        padded_length = max(input_length, last_start + frame_size)
    return n_frames, padded_length


def pad(x, frame_size: int, hop_size: Hop, padding: str = 'center',
        axis: int = 1, mode: str = 'CONSTANT',
        constant_values=0) -> tf.Tensor:
    """Pads `x` along `axis` for framing with the given padding mode.

    'valid': unchanged; 'same': at the end, to the padded length of
    `get_framed_lengths`; 'center': frame_size // 2 in front and
    frame_size - frame_size // 2 behind (symmetric for even frame sizes, as
    librosa; odd sizes get the extra sample at the end so that the frame count
    is still floor(n / hop) + 1). Hops larger than the frame are allowed (the
    frames then skip samples).

    Args:
        x: Tensor (or array) of any rank.
        frame_size: Samples per frame.
        hop_size: Samples between frames (may be fractional).
        padding: 'valid', 'same' or 'center'.
        axis: Time axis.
        mode, constant_values: As `tf.pad`.

    Returns:
        float32 tensor.
    """
    x = core.tf_float32(x)
    frame_size = _positive_int(frame_size, 'frame_size')
    hop = _fraction(hop_size)
    _check_padding(padding)
    if padding == 'valid':
        return x
    rank = x.shape.rank
    if rank is None or not -rank <= axis < rank:
        raise ValueError(f'axis {axis} is out of range for a tensor of shape '
                         f'{x.shape}.')
    axis = axis % rank
    pads = [[0, 0] for _ in range(rank)]
    if padding == 'center':
        pads[axis] = [frame_size // 2, frame_size - frame_size // 2]
    else:
        n_t = _static_length(x, axis)
        if n_t is None:
            n_t = tf.shape(x, out_type=tf.int64)[axis]
            p, q = hop.numerator, hop.denominator
            n_frames = (n_t * q + p - 1) // p
            last = ((n_frames - 1) * p + q - 1) // q  # ceil((n - 1) * hop)
            amount = tf.maximum(last + frame_size - n_t, 0)
            pads = tf.tensor_scatter_nd_update(
                tf.zeros([rank, 2], tf.int64), [[axis, 1]], [amount])
        else:
            _, padded = get_framed_lengths(n_t, frame_size, hop, 'same')
            pads[axis] = [0, padded - n_t]
    return tf.pad(x, pads, mode=mode, constant_values=constant_values)


def _frame_by_blocks(x: tf.Tensor, frame_size: int, hop: int) -> tf.Tensor:
    """tf.signal.frame(x, frame_size, hop) along the last axis; when the hop
    divides the frame size and the length is static, as k = frame_size / hop
    shifted views of hop-sized blocks, which XLA fuses (its lowering of
    tf.signal.frame is a slower gather)."""
    n = _static_length(x, -1)
    if frame_size % hop or n is None or n < frame_size:
        return tf.signal.frame(x, frame_size, hop, axis=-1)
    k = frame_size // hop
    n_frames = (n - frame_size) // hop + 1
    blocks = tf.reshape(x[..., :(n_frames + k - 1) * hop],
                        tf.concat([tf.shape(x)[:-1], [n_frames + k - 1, hop]],
                                  axis=0))
    return tf.concat([blocks[..., j:j + n_frames, :] for j in range(k)],
                     axis=-1)


def _frame(x: tf.Tensor, frame_size: int, hop: Fraction) -> tf.Tensor:
    """Frames the last axis (no padding): [..., n] -> [..., n_frames, size].

    Integer hops use `_frame_by_blocks` (tf.signal.frame when the hop does
    not divide the frame or the length is unknown); fractional hops gather
    frames starting at floor(i * hop + 1/2). Works with unknown (dynamic)
    lengths.
    """
    if hop.denominator == 1:
        return _frame_by_blocks(x, frame_size, int(hop))
    p, q = hop.numerator, hop.denominator
    n_t = _static_length(x, -1)
    if n_t is not None:
        n_frames = max(0, (n_t - frame_size) * q // p + 1) \
            if n_t >= frame_size else 0
        starts = tf.constant(_frame_starts(n_frames, hop))
    else:
        n_t = tf.shape(x, out_type=tf.int64)[-1]
        n_frames = tf.maximum((n_t - frame_size) * q // p + 1, 0)
        i = tf.range(n_frames, dtype=tf.int64)
        starts = (2 * i * p + q) // (2 * q)
    index = starts[:, None] + tf.range(frame_size, dtype=tf.int64)[None, :]
    return tf.gather(x, index, axis=-1)


def _frame_np(x: np.ndarray, frame_size: int, hop: Fraction) -> np.ndarray:
    n_t = x.shape[-1]
    n_frames = (n_t - frame_size) * hop.denominator // hop.numerator + 1 \
        if n_t >= frame_size else 0
    index = _frame_starts(n_frames, hop)[:, None] + np.arange(frame_size)
    return x[..., index]


def _overlap_to_hop(frame_size: int, overlap: float) -> Fraction:
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f'overlap must be in [0, 1), got {overlap!r}.')
    hop = Fraction(frame_size) * (1 - Fraction(float(overlap)))
    if abs(hop - round(hop)) < 1e-6:  # e.g. 2048 * (1 - 0.9) = 204.8 stays.
        hop = Fraction(round(hop))
    return hop.limit_denominator(1_000_000)


def _window_and_bin_weights(frame_size: int, fft_size: int):
    """Periodic Hann window, and the weights of the magnitude adjoint: a real
    loss sees bins 1 .. fft_size/2 - 1 of a real FFT twice (as the bin and
    its conjugate); irfft counts them twice, so they get half weight."""
    bin_weights = np.full([fft_size // 2 + 1], fft_size / 2, np.float32)
    bin_weights[[0, -1]] = fft_size
    return tf.signal.hann_window(frame_size, periodic=True), bin_weights


def _stft(audio: tf.Tensor, frame_size: int, hop: Fraction, fft_size: int,
          pad_end: bool) -> tf.Tensor:
    """Complex STFT with a periodic Hann window along the last axis."""
    if pad_end:
        audio = pad(audio, frame_size, hop, 'same', axis=-1)
    window, _ = _window_and_bin_weights(frame_size, fft_size)
    return tf.signal.rfft(_frame(audio, frame_size, hop) * window,
                          fft_length=[fft_size])


def _check_length(audio_length: Optional[int], frame_size, pad_end: bool):
    if audio_length is not None and not pad_end and audio_length < frame_size:
        raise ValueError(
            f'audio is too short: {audio_length} samples < frame_size '
            f'{frame_size} (with pad_end=False).')


def _stft_arguments(audio, frame_size: int, overlap: float, pad_end: bool
                    ) -> Tuple[tf.Tensor, Fraction, int]:
    """Validated (audio, hop, fft_size) of an STFT; fft_size is the next
    power of 2 of frame_size."""
    audio = _audio_tf(audio, max_rank=2)
    frame_size = _positive_int(frame_size, 'frame_size')
    hop = _overlap_to_hop(frame_size, overlap)
    _check_length(_static_length(audio, -1), frame_size, pad_end)
    return audio, hop, int(2**np.ceil(np.log2(frame_size)))


def stft(audio, frame_size: int = 2048, overlap: float = 0.75,
         pad_end: bool = True) -> tf.Tensor:
    """Complex STFT with a periodic Hann window (as `tf.signal.stft`).

    Args:
        audio: `[n_samples]`, `[batch, n_samples]` or `[batch, n_samples, 1]`.
        frame_size: Window length; the FFT length is the next power of 2.
        overlap: Fraction of overlap; hop = frame_size * (1 - overlap)
            (fractional hops are framed as described in the module docstring).
        pad_end: Zero-pad the end ('same' framing: ceil(n / hop) frames);
            otherwise only full frames ('valid').

    Returns:
        complex64 `[..., n_frames, fft_size // 2 + 1]`.
    """
    audio, hop, fft_size = _stft_arguments(audio, frame_size, overlap, pad_end)
    return _stft(audio, frame_size, hop, fft_size, pad_end)


def stft_np(audio, frame_size: int = 2048, overlap: float = 0.75,
            pad_end: bool = True) -> np.ndarray:
    """numpy/librosa STFT (FFT length = frame_size, periodic Hann window).

    Same framing as `stft`: librosa.stft(center=False) after 'same' padding
    when pad_end. Returns complex `[..., n_frames, frame_size // 2 + 1]`.
    """
    audio = _audio_np(audio)
    frame_size = _positive_int(frame_size, 'frame_size')
    hop = _overlap_to_hop(frame_size, overlap)
    _check_length(audio.shape[-1], frame_size, pad_end)
    if pad_end:
        audio = pad(audio, frame_size, hop, 'same', axis=-1).numpy()
    if hop.denominator == 1:
        s = librosa.stft(audio, n_fft=frame_size, hop_length=int(hop),
                         center=False)
        return np.swapaxes(s, -1, -2)
    frames = _frame_np(audio, frame_size, hop)
    window = librosa.filters.get_window('hann', frame_size, fftbins=True)
    return np.fft.rfft(frames * window, n=frame_size).astype(np.complex64)


def _magnitude_adjoint(spectrum, mag, d_mag, frame_size: int, hop: int,
                       fft_size: int, n_samples) -> tf.Tensor:
    """Gradient w.r.t. the audio of a function of |STFT| given d f / d|S|.

    The adjoint of windowed framing + real FFT + abs: inverse real FFT of the
    scaled spectrum, window, overlap-add, cut to `n_samples` (samples after
    the last 'valid' frame get zero gradient).
    """
    window, bin_weights = _window_and_bin_weights(frame_size, fft_size)
    # d|S|/dS = S/|S| (0 where S = 0).
    scale = d_mag * bin_weights / tf.maximum(mag, 1e-30)
    frames_grad = tf.signal.irfft(
        spectrum * tf.complex(scale, tf.zeros_like(scale)),
        fft_length=[fft_size])[..., :frame_size] * window
    audio_grad = _overlap_add_by_blocks(frames_grad, hop)
    missing = tf.maximum(n_samples - tf.shape(audio_grad)[-1], 0)
    paddings = tf.concat([tf.zeros([tf.rank(audio_grad) - 1, 2], tf.int32),
                          [[0, missing]]], axis=0)
    return tf.pad(audio_grad, paddings)[..., :n_samples]


def _overlap_add_by_blocks(frames: tf.Tensor, hop: int) -> tf.Tensor:
    """tf.signal.overlap_and_add(frames, hop); when the hop divides the frame
    size, as a sum of k = frame_size / hop shifted block sequences (the
    adjoint of `_frame_by_blocks`, fused by XLA)."""
    frame_size, n_frames = frames.shape[-1], frames.shape[-2]
    if frame_size is None or n_frames is None or frame_size % hop:
        return tf.signal.overlap_and_add(frames, hop)
    k = frame_size // hop
    no_pad = [[0, 0]] * (len(frames.shape) - 2)
    blocks = tf.add_n([
        tf.pad(frames[..., j * hop:(j + 1) * hop], no_pad + [[j, k - 1 - j],
                                                              [0, 0]])
        for j in range(k)])
    return tf.reshape(blocks, tf.concat(
        [tf.shape(frames)[:-2], [(n_frames + k - 1) * hop]], axis=0))


def _stft_magnitude(audio: tf.Tensor, frame_size: int, hop: Fraction,
                    fft_size: int, pad_end: bool) -> tf.Tensor:
    """|STFT| (periodic Hann window), with a hand-written gradient.

    Autodiff through framing, FFT and complex abs costs about twice the
    forward pass; the adjoint written out (`_magnitude_adjoint`) costs about
    as much as the forward pass, which makes the multi-scale spectral loss's
    backward pass much cheaper. Fractional hops keep the autodiff path.
    """
    if hop.denominator != 1:
        return tf.abs(_stft(audio, frame_size, hop, fft_size, pad_end))

    @tf.custom_gradient
    def magnitude(audio):
        spectrum = _stft(audio, frame_size, hop, fft_size, pad_end)
        mag = tf.abs(spectrum)

        def grad(d_mag):
            audio_grad = _magnitude_adjoint(spectrum, mag, d_mag, frame_size,
                                            int(hop), fft_size,
                                            tf.shape(audio)[-1])
            return tf.reshape(audio_grad, tf.shape(audio))

        return mag, grad

    return magnitude(audio)


def magnitude_loss_and_gradient(target_audio, audio, loss_fn, size: int = 2048,
                                overlap: float = 0.75, pad_end: bool = True
                                ) -> Tuple[tf.Tensor, tf.Tensor]:
    """A loss of two magnitude spectrograms and its gradient w.r.t. `audio`.

    Computes `loss_fn(compute_mag(target_audio), compute_mag(audio))` and
    d loss / d audio in one pass, without a gradient tape outside: the
    spectrograms are dropped as soon as the gradient is known, so a training
    step does not hold them until its backward pass (see
    `losses.SpectralLoss`).

    Args:
        target_audio, audio: `[batch, n_samples]`, same shape, static length.
        loss_fn: (target_mag, audio_mag) -> scalar, differentiable in its
            second argument; mags are `[batch, n_frames, fft_size // 2 + 1]`.
        size, overlap, pad_end: As `compute_mag`; the hop must be an integer.

    Returns:
        (scalar loss, gradient `[batch, n_samples]`).
    """
    audio, hop, fft_size = _stft_arguments(audio, size, overlap, pad_end)
    target_audio = _audio_tf(target_audio, 'target_audio')
    if hop.denominator != 1:
        raise ValueError(f'magnitude_loss_and_gradient needs an integer hop, '
                         f'got {hop} (size {size}, overlap {overlap}).')
    if target_audio.shape != audio.shape:
        raise ValueError(f'target_audio and audio must have the same shape, '
                         f'got {target_audio.shape} and {audio.shape}.')
    target_mag = tf.abs(_stft(target_audio, size, hop, fft_size, pad_end))
    spectrum = _stft(audio, size, hop, fft_size, pad_end)
    mag = tf.abs(spectrum)
    with tf.GradientTape() as tape:
        tape.watch(mag)
        loss = loss_fn(target_mag, mag)
    d_mag = tape.gradient(loss, mag)
    return loss, _magnitude_adjoint(spectrum, mag, d_mag, size, int(hop),
                                    fft_size, _static_length(audio, -1))


@gin.register(module='ddsp.spectral_ops')
def compute_mag(audio, size: int = 2048, overlap: float = 0.75,
                pad_end: bool = True) -> tf.Tensor:
    """Magnitude spectrogram |stft(audio)|, float32.

    Same arguments and framing as `stft`; returns
    `[..., n_frames, fft_size // 2 + 1]`.
    """
    audio, hop, fft_size = _stft_arguments(audio, size, overlap, pad_end)
    return _stft_magnitude(audio, size, hop, fft_size, pad_end)


@gin.register(module='ddsp.spectral_ops')
def compute_mel(audio, lo_hz: float = 0.0, hi_hz: float = 8000.0,
                bins: int = 64, fft_size: int = 2048, overlap: float = 0.75,
                pad_end: bool = True, sample_rate: int = 16000) -> tf.Tensor:
    """Mel magnitude spectrogram (`tf.signal.linear_to_mel_weight_matrix`,
    HTK mel scale, triangles in mel, no area normalisation)."""
    _positive(sample_rate, 'sample_rate')
    if not 0.0 <= lo_hz < hi_hz <= sample_rate / 2.0:
        raise ValueError(
            f'need 0 <= lo_hz < hi_hz <= sample_rate / 2, got lo_hz={lo_hz}, '
            f'hi_hz={hi_hz}, sample_rate={sample_rate}.')
    mag = compute_mag(audio, fft_size, overlap, pad_end)
    matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=_positive_int(bins, 'bins'),
        num_spectrogram_bins=int(mag.shape[-1]),
        sample_rate=float(sample_rate), lower_edge_hertz=float(lo_hz),
        upper_edge_hertz=float(hi_hz))
    return tf.tensordot(mag, matrix, 1)


@gin.register(module='ddsp.spectral_ops')
def compute_logmag(audio, size: int = 2048, overlap: float = 0.75,
                   pad_end: bool = True) -> tf.Tensor:
    """safe_log of the magnitude spectrogram."""
    return core.safe_log(compute_mag(audio, size, overlap, pad_end))


@gin.register(module='ddsp.spectral_ops')
def compute_logmel(audio, lo_hz: float = 80.0, hi_hz: float = 7600.0,
                   bins: int = 64, fft_size: int = 2048,
                   overlap: float = 0.75, pad_end: bool = True,
                   sample_rate: int = 16000) -> tf.Tensor:
    """safe_log of the mel magnitude spectrogram."""
    mel = compute_mel(audio, lo_hz, hi_hz, bins, fft_size, overlap, pad_end,
                      sample_rate)
    return core.safe_log(mel)


@gin.register(module='ddsp.spectral_ops')
def compute_mfcc(audio, lo_hz: float = 20.0, hi_hz: float = 8000.0,
                 fft_size: int = 1024, mel_bins: int = 128,
                 mfcc_bins: int = 13, overlap: float = 0.75,
                 pad_end: bool = True, sample_rate: int = 16000) -> tf.Tensor:
    """First `mfcc_bins` MFCCs (`tf.signal.mfccs_from_log_mel_spectrograms`:
    DCT-II of the log mel magnitudes, orthonormal except that coefficient 0 is
    sqrt(2) larger)."""
    mfcc_bins = _positive_int(mfcc_bins, 'mfcc_bins')
    if mfcc_bins > mel_bins:
        raise ValueError(f'mfcc_bins ({mfcc_bins}) must be <= mel_bins '
                         f'({mel_bins}).')
    logmel = compute_logmel(audio, lo_hz=lo_hz, hi_hz=hi_hz, bins=mel_bins,
                            fft_size=fft_size, overlap=overlap,
                            pad_end=pad_end, sample_rate=sample_rate)
    mfccs = tf.signal.mfccs_from_log_mel_spectrograms(logmel)
    return mfccs[..., :mfcc_bins]
