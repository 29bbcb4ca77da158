"""RMS energy, power and A-weighted loudness (frame-wise, see `spectrograms`).

Also `pad_or_trim_to_expected_length`.
"""

import gin
import librosa
import numpy as np
import tensorflow as tf

from ddsp import core
from ddsp.spectral_ops.spectrograms import _audio_np
from ddsp.spectral_ops.spectrograms import _audio_tf
from ddsp.spectral_ops.spectrograms import _check_padding
from ddsp.spectral_ops.spectrograms import _frame
from ddsp.spectral_ops.spectrograms import _frame_np
from ddsp.spectral_ops.spectrograms import _hop
from ddsp.spectral_ops.spectrograms import _n_frames
from ddsp.spectral_ops.spectrograms import _positive_int
from ddsp.spectral_ops.spectrograms import _static_length
from ddsp.spectral_ops.spectrograms import _stft
from ddsp.spectral_ops.spectrograms import pad


DB_RANGE = core.DB_RANGE  # 80 dB


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
