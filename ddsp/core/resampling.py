"""Resampling of frame-rate controls to audio rate (and back).

Position convention (shared by every method): with `add_endpoint=True`, the
T input frames sit at output positions j * N / T (N = n_timesteps) and the last
frame is held for one more interval, so output sample n reads the input at
position p = n * T / N. With `add_endpoint=False` the first and last frames sit
at the first and last output samples: p = n * (T - 1) / (N - 1).
"""
from typing import Text

import numpy as np
import tensorflow as tf

from ddsp.core.utils import tf_float32

__all__ = [
    'resample',
    'upsample_with_windows',
    'center_crop',
]

_METHODS = ('nearest', 'linear', 'cubic', 'window')


def _source_positions(n_frames, n_timesteps: int, add_endpoint: bool):
    """Integer part and fraction of each output sample's input position.

    Exact integer arithmetic: p = n * num / den, returned as (floor(p),
    p - floor(p)), with num / den = T / N or (T - 1) / (N - 1).
    n_frames may be a Python int or a scalar int tensor.
    """
    n = tf.range(n_timesteps, dtype=tf.int64)
    n_frames = tf.cast(n_frames, tf.int64)
    if add_endpoint:
        num, den = n_frames, tf.constant(n_timesteps, tf.int64)
    else:
        num = n_frames - 1
        den = tf.constant(max(n_timesteps - 1, 1), tf.int64)
    index = (n * num) // den
    frac = tf.cast((n * num) % den, tf.float64) / tf.cast(den, tf.float64)
    return index, tf.cast(frac, tf.float32)


def _cubic_weights(t):
    """Keys cubic convolution weights (a = -0.5) for taps at -1, 0, 1, 2."""
    a = -0.5
    t2, t3 = t * t, t * t * t
    w_m1 = a * (t3 - 2.0 * t2 + t)
    w_0 = (a + 2.0) * t3 - (a + 3.0) * t2 + 1.0
    w_1 = -(a + 2.0) * t3 + (2.0 * a + 3.0) * t2 - a * t
    w_2 = -a * (t3 - t2)
    return [w_m1, w_0, w_1, w_2]


def resample(inputs, n_timesteps: int, method: Text = 'linear',
             add_endpoint: bool = True) -> tf.Tensor:
    """Interpolates a tensor from n_frames to n_timesteps along the time axis.

    Args:
        inputs: Frame-wise tensor of shape [n_frames], [batch, n_frames],
            [batch, n_frames, channels] or [batch, n_frames, n_freq, channels].
            Time is axis 0 for 1-D inputs and axis 1 otherwise.
        n_timesteps: Number of output time steps.
        method: 'nearest', 'linear', 'cubic' (Keys cubic convolution, a=-0.5,
            edges clamped) or 'window' (upsample_with_windows; 3-D inputs and
            integer upsampling ratios only). 'nearest' holds frame
            floor(p) with add_endpoint=True and takes round(p) otherwise.
        add_endpoint: See the module docstring. True: n_timesteps is divided
            into n_frames equal segments, the last frame held over the last one.
            False: (n_frames - 1) segments, first and last samples equal to the
            first and last frames.

    Returns:
        float32 tensor of the input's rank with n_timesteps on the time axis.

    Raises:
        ValueError: If `method` is invalid, or is 'window' and inputs is not
            3-D (or the ratio is not an integer upsampling ratio).
    """
    if method not in _METHODS:
        raise ValueError(f'method ({method!r}) is invalid; must be one of '
                         f'{list(_METHODS)}.')
    inputs = tf_float32(inputs)
    ndim = len(inputs.shape)
    if ndim not in (1, 2, 3, 4):
        raise ValueError('inputs must be 1-D to 4-D, not shape '
                         f'{inputs.shape}.')
    n_timesteps = int(n_timesteps)
    if n_timesteps < 1:
        raise ValueError(f'n_timesteps ({n_timesteps}) must be positive.')

    if method == 'window':
        if ndim != 3:
            raise ValueError("method 'window' only supports 3-D inputs "
                             f'[batch, n_frames, channels], not shape '
                             f'{inputs.shape}.')
        return upsample_with_windows(inputs, n_timesteps, add_endpoint)

    if ndim == 1:
        return resample(inputs[tf.newaxis], n_timesteps, method,
                        add_endpoint)[0]

    n_frames = inputs.shape[1]
    if method == 'linear' and n_frames is not None and n_frames > 1:
        # Integer upsampling ratio: closed form per segment (faster than
        # gathering every output sample).
        n_intervals = n_frames if add_endpoint else n_frames - 1
        n_segment_samples = n_timesteps - (0 if add_endpoint else 1)
        if (n_segment_samples >= n_intervals and
                n_segment_samples % n_intervals == 0):
            hop = n_segment_samples // n_intervals
            outputs = _interpolate_segments(inputs, hop, np.arange(hop) / hop,
                                            add_endpoint)
            if not add_endpoint:
                outputs = tf.concat([outputs, inputs[:, -1:]], axis=1)
            return outputs

    if n_frames is None:
        n_frames = tf.shape(inputs)[1]
    last = tf.cast(n_frames, tf.int64) - 1
    index, frac = _source_positions(n_frames, n_timesteps, add_endpoint)

    def take(idx):
        return tf.gather(inputs, tf.clip_by_value(idx, 0, last), axis=1)

    if method == 'nearest':
        if not add_endpoint:
            index += tf.cast(frac >= 0.5, tf.int64)
        return take(index)
    # Weights broadcast against [batch, n_timesteps, ...].
    frac = tf.reshape(frac, [n_timesteps] + [1] * (ndim - 2))
    if method == 'linear':
        x0, x1 = take(index), take(index + 1)
        return x0 + (x1 - x0) * frac
    # Cubic.
    weights = _cubic_weights(frac)
    return tf.add_n([w * take(index + k - 1) for k, w in enumerate(weights)])


def _interpolate_segments(inputs, hop: int, weights, add_endpoint: bool):
    """Closed-form interpolation between consecutive frames, hop samples each.

    Output sample j * hop + m = x_j + (x_{j+1} - x_j) * weights[m], for every
    interval j (n_frames intervals with the last frame held if add_endpoint,
    else n_frames - 1). inputs: [batch, n_frames, ...] with static n_frames.
    """
    if add_endpoint:
        inputs = tf.concat([inputs, inputs[:, -1:]], axis=1)
    n_intervals = inputs.shape[1] - 1
    x0 = inputs[:, :n_intervals, tf.newaxis]  # [B, J, 1, ...]
    x1 = inputs[:, 1:, tf.newaxis]
    extra_dims = len(inputs.shape) - 2
    weights = tf.constant(np.reshape(weights, [hop] + [1] * extra_dims),
                          tf.float32)
    outputs = x0 + (x1 - x0) * weights  # [B, J, hop, ...]
    shape = [inputs.shape[0] if inputs.shape[0] is not None else -1,
             n_intervals * hop]
    for i, dim in enumerate(inputs.shape[2:]):
        shape.append(dim if dim is not None else tf.shape(inputs)[2 + i])
    return tf.reshape(outputs, shape)


def upsample_with_windows(inputs, n_timesteps: int,
                          add_endpoint: bool = True) -> tf.Tensor:
    """Upsamples frames with 50%-overlapping raised-cosine (Hann) windows.

    Smoother than linear interpolation for amplitude envelopes. With
    hop = n_timesteps / n_frames (add_endpoint) or n_timesteps / (n_frames - 1),
    output sample n = j * hop + m (0 <= m < hop) is
    (1 - s(m)) * x_j + s(m) * x_{j+1}, with s(m) = sin^2(pi * m / (2 * hop)):
    the overlap-add of periodic Hann windows of length 2 * hop centred on the
    frames. With add_endpoint the last frame is held: x_T = x_{T-1}.

    Args:
        inputs: Frame-wise tensor [batch, n_frames, channels].
        n_timesteps: Number of output samples.
        add_endpoint: See `resample`.

    Returns:
        float32 tensor [batch, n_timesteps, channels].

    Raises:
        ValueError: If inputs is not 3-D, if n_timesteps <= n_frames
            (downsampling), or if the ratio is not an integer.
    """
    inputs = tf_float32(inputs)
    if len(inputs.shape) != 3:
        raise ValueError('upsample_with_windows() only supports 3-D inputs '
                         f'[batch, n_frames, channels], not shape '
                         f'{inputs.shape}.')
    n_frames = inputs.shape[1]
    if n_frames is None:
        raise ValueError('upsample_with_windows() needs a static number of '
                         'frames (inputs.shape[1]).')
    n_timesteps = int(n_timesteps)
    if n_timesteps <= n_frames:
        raise ValueError('upsample_with_windows() cannot downsample: '
                         f'n_timesteps ({n_timesteps}) must be larger than the '
                         f'number of frames of inputs ({n_frames}).')
    n_intervals = n_frames if add_endpoint else n_frames - 1
    if n_intervals < 1 or n_timesteps % n_intervals != 0:
        minus_one = '' if add_endpoint else ' - 1'
        raise ValueError(
            'upsample_with_windows() needs n_timesteps to be divisible by the '
            f'number of frames of inputs{minus_one} (n_timesteps: '
            f'{n_timesteps}, frames: {n_frames}, add_endpoint: '
            f'{add_endpoint}).')
    hop = n_timesteps // n_intervals

    s = np.sin(np.pi * np.arange(hop) / (2.0 * hop))**2
    return _interpolate_segments(inputs, hop, s, add_endpoint)


def center_crop(audio, frame_size: int) -> tf.Tensor:
    """Removes frame_size // 2 samples from both ends of the time axis.

    Undoes the symmetric padding of centred framing (librosa's center=True).

    Args:
        audio: Tensor [batch, n_samples, ...] (time on axis 1).
        frame_size: Frame size of the centred framing.
    """
    audio = tf_float32(audio)
    crop = int(frame_size) // 2
    if crop == 0:
        return audio
    return audio[:, crop:-crop]
