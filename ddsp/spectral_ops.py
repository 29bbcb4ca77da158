"""Spectral features, loudness, power and f0 (CREPE), at any sample rate.

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

`compute_f0` counts frames on the same time grid from the input length and
rate (frame_size = 1024 samples at 16 kHz = 64 ms, hop = 1 / frame_rate
seconds), and cuts the 16 kHz frames (after resampling) at those times, so the
count depends only on the input length, sample rate, frame rate and padding.
"""
from fractions import Fraction
import math
import numbers
from typing import Optional, Tuple, Union

import gin
import librosa
import numpy as np
import tensorflow as tf
import keras

from ddsp import core
from ddsp import crepe

__all__ = [
    'CREPE_SAMPLE_RATE',
    'CREPE_FRAME_SIZE',
    'F0_RANGE',
    'DB_RANGE',
    'PADDING_MODES',
    'stft',
    'stft_np',
    'compute_mag',
    'compute_mel',
    'compute_logmag',
    'compute_logmel',
    'compute_mfcc',
    'get_framed_lengths',
    'pad',
    'compute_rms_energy',
    'compute_power',
    'compute_loudness',
    'pad_or_trim_to_expected_length',
    'compute_f0',
    'reset_crepe',
    'PretrainedCREPE',
]

CREPE_SAMPLE_RATE = crepe.SAMPLE_RATE  # 16000
CREPE_FRAME_SIZE = crepe.FRAME_SIZE  # 1024
F0_RANGE = 127.0  # MIDI
DB_RANGE = core.DB_RANGE  # 80 dB

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


def _frame(x: tf.Tensor, frame_size: int, hop: Fraction) -> tf.Tensor:
    """Frames the last axis (no padding): [..., n] -> [..., n_frames, size].

    Integer hops use tf.signal.frame; fractional hops gather frames starting
    at floor(i * hop + 1/2). Works with unknown (dynamic) lengths.
    """
    if hop.denominator == 1:
        return tf.signal.frame(x, frame_size, int(hop), pad_end=False,
                               axis=-1)
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


def _stft(audio: tf.Tensor, frame_size: int, hop: Fraction, fft_size: int,
          pad_end: bool) -> tf.Tensor:
    """Complex STFT with a periodic Hann window along the last axis."""
    if pad_end:
        audio = pad(audio, frame_size, hop, 'same', axis=-1)
    if hop.denominator == 1:
        return tf.signal.stft(audio, frame_length=frame_size,
                              frame_step=int(hop), fft_length=fft_size,
                              pad_end=False)
    frames = _frame(audio, frame_size, hop)
    window = tf.signal.hann_window(frame_size, periodic=True)
    return tf.signal.rfft(frames * window, fft_length=[fft_size])


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
    """Complex STFT (`tf.signal.stft`, periodic Hann window).

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


def _stft_magnitude(audio: tf.Tensor, frame_size: int, hop: Fraction,
                    fft_size: int, pad_end: bool) -> tf.Tensor:
    """|STFT| (periodic Hann window), with a hand-written gradient.

    Autodiff through framing, FFT and complex abs costs about twice the
    forward pass; the adjoint written out (inverse real FFT of the scaled
    spectrum, window, overlap-add) costs about as much as the forward pass,
    which makes the multi-scale spectral loss's backward pass much cheaper.
    Fractional hops keep the autodiff path.
    """
    if hop.denominator != 1:
        return tf.abs(_stft(audio, frame_size, hop, fft_size, pad_end))
    hop = int(hop)
    window = tf.signal.hann_window(frame_size, periodic=True)
    # A real loss sees bins 1 .. fft_size/2 - 1 of a real FFT twice (as the
    # bin and its conjugate); irfft counts them twice, so they get half weight.
    bin_weights = np.full([fft_size // 2 + 1], fft_size / 2, np.float32)
    bin_weights[[0, -1]] = fft_size

    @tf.custom_gradient
    def magnitude(audio):
        n_samples = tf.shape(audio)[-1]
        padded = pad(audio, frame_size, hop, 'same', axis=-1) if pad_end \
            else audio
        frames = tf.signal.frame(padded, frame_size, hop, axis=-1)
        spectrum = tf.signal.rfft(frames * window, fft_length=[fft_size])
        real, imag = tf.math.real(spectrum), tf.math.imag(spectrum)
        mag = tf.sqrt(real * real + imag * imag)

        def grad(upstream):
            # d|S|/dS = S/|S| (0 where S = 0).
            scale = upstream * bin_weights / tf.maximum(mag, 1e-30)
            frames_grad = tf.signal.irfft(
                tf.complex(real * scale, imag * scale),
                fft_length=[fft_size])[..., :frame_size] * window
            audio_grad = tf.signal.overlap_and_add(frames_grad, hop)
            # Drop the 'same' padding; samples after the last 'valid' frame
            # get zero gradient.
            missing = tf.maximum(n_samples - tf.shape(audio_grad)[-1], 0)
            paddings = tf.concat([tf.zeros([tf.rank(audio_grad) - 1, 2],
                                           tf.int32),
                                  [[0, missing]]], axis=0)
            audio_grad = tf.pad(audio_grad, paddings)[..., :n_samples]
            return tf.reshape(audio_grad, tf.shape(audio))

        return mag, grad

    return magnitude(audio)


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


# Energy and loudness ---------------------------------------------------------
def _framed(audio, sample_rate, frame_rate, frame_size, padding):
    """Validated framing of [n] / [batch, n] audio -> [..., n_frames, size]."""
    audio = _audio_tf(audio)
    frame_size = _positive_int(frame_size, 'frame_size')
    hop = _hop(sample_rate, frame_rate)
    _check_padding(padding)
    n_t = _static_length(audio, -1)
    if n_t is not None:
        _n_frames(n_t, frame_size, hop, padding)  # Raises if too short.
    audio = pad(audio, frame_size, hop, padding, axis=-1)
    return _frame(audio, frame_size, hop)


def compute_rms_energy(audio, sample_rate: int = 16000,
                       frame_rate: float = 250, frame_size: int = 512,
                       padding: str = 'center') -> tf.Tensor:
    """Root mean square of each frame, `[..., n_frames]` float32.

    Gradients are finite for silent frames (the mean square is floored at
    1e-20 inside the square root).
    """
    frames = _framed(audio, sample_rate, frame_rate, frame_size, padding)
    mean_square = tf.reduce_mean(frames**2, axis=-1)
    return tf.sqrt(tf.maximum(mean_square, 1e-20))


def compute_power(audio, sample_rate: int = 16000, frame_rate: float = 250,
                  frame_size: int = 512, range_db: float = DB_RANGE,
                  ref_db: float = 0.0, padding: str = 'center') -> tf.Tensor:
    """Frame power in dB: power_to_db(rms**2), floored at -range_db."""
    frames = _framed(audio, sample_rate, frame_rate, frame_size, padding)
    mean_square = tf.reduce_mean(frames**2, axis=-1)
    return core.power_to_db(mean_square, ref_db=ref_db, range_db=range_db,
                            use_tf=True)


def _a_weighting(sample_rate, n_fft: int) -> np.ndarray:
    """Linear power weights of librosa's A-weighting at the FFT bins."""
    frequencies = librosa.fft_frequencies(sr=float(sample_rate), n_fft=n_fft)
    with np.errstate(divide='ignore'):  # 0 Hz: -inf dB, floored at -80 dB.
        a_weighting = librosa.A_weighting(frequencies)
    return 10.0**(a_weighting / 10.0)


@gin.register(module='ddsp.spectral_ops')
def compute_loudness(audio, sample_rate: int = 16000, frame_rate: float = 250,
                     n_fft: int = 512, range_db: float = DB_RANGE,
                     ref_db: float = 0.0, use_tf: bool = True,
                     padding: str = 'center'):
    """A-weighted loudness in dB, `[..., n_frames]`.

    Per frame: periodic-Hann STFT (frame = FFT length = n_fft, hop =
    sample_rate / frame_rate, see the module docstring), power |S|**2,
    multiplied by 10**(A(f) / 10) (librosa's A-weighting of each bin, floored
    at -80 dB), averaged over bins in linear power, then
    power_to_db(ref_db, range_db): 0 dB reference, floor at -range_db. This is
    magenta/ddsp's definition since v2.0.0.

    Args:
        audio: `[n_samples]` or `[batch, n_samples]` at `sample_rate`.
        sample_rate, frame_rate: Rates (any positive numbers).
        n_fft: Frame and FFT size.
        range_db, ref_db: See `ddsp.core.power_to_db`.
        use_tf: Differentiable TensorFlow path (float32 tensor) or the
            numpy/librosa path (numpy array); they agree within 0.1 dB.
        padding: 'valid', 'same' or 'center'.
    """
    n_fft = _positive_int(n_fft, 'n_fft')
    hop = _hop(sample_rate, frame_rate)
    _check_padding(padding)
    weighting = _a_weighting(sample_rate, n_fft)
    if use_tf:
        audio = _audio_tf(audio)
        n_t = _static_length(audio, -1)
        if n_t is not None:
            _n_frames(n_t, n_fft, hop, padding)
        audio = pad(audio, n_fft, hop, padding, axis=-1)
        s = _stft(audio, n_fft, hop, n_fft, pad_end=False)
        power = tf.math.real(s)**2 + tf.math.imag(s)**2
        power = power * tf.constant(weighting, tf.float32)
        avg_power = tf.reduce_mean(power, axis=-1)
        return core.power_to_db(avg_power, ref_db=ref_db, range_db=range_db,
                                use_tf=True)
    audio = _audio_np(audio)
    _n_frames(audio.shape[-1], n_fft, hop, padding)
    audio = pad(audio, n_fft, hop, padding, axis=-1).numpy()
    frames = _frame_np(audio, n_fft, hop)
    window = librosa.filters.get_window('hann', n_fft, fftbins=True)
    s = np.fft.rfft(frames.astype(np.float64) * window, n=n_fft)
    power = np.abs(s)**2 * weighting
    avg_power = np.mean(power, axis=-1)
    return core.power_to_db(avg_power, ref_db=ref_db, range_db=range_db,
                            use_tf=False).astype(np.float32)


def pad_or_trim_to_expected_length(vector, expected_len: int,
                                   pad_value: float = 0,
                                   len_tolerance: int = 20,
                                   use_tf: bool = False):
    """Pads (with pad_value) or trims the last axis to expected_len.

    For fixing +-1-frame mismatches between features; a mismatch larger than
    `len_tolerance` raises ValueError. `[n]` or `[batch, n]`.
    """
    expected_len = int(expected_len)
    if expected_len < 0:
        raise ValueError(f'expected_len must be >= 0, got {expected_len}.')
    vector = core.tf_float32(vector) if use_tf else np.asarray(vector)
    if len(vector.shape) not in (1, 2):
        raise ValueError(f'vector must be [n] or [batch, n], got shape '
                         f'{vector.shape}.')
    vector_len = int(vector.shape[-1])
    if abs(vector_len - expected_len) > len_tolerance:
        raise ValueError(
            f'vector length ({vector_len}) differs from expected_len '
            f'({expected_len}) by more than len_tolerance ({len_tolerance}).')
    if vector_len > expected_len:
        return vector[..., :expected_len]
    if vector_len < expected_len:
        widths = [(0, 0)] * (len(vector.shape) - 1) + [
            (0, expected_len - vector_len)]
        lib_pad = tf.pad if use_tf else np.pad
        return lib_pad(vector, widths, constant_values=pad_value)
    return vector


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
