"""Output nonlinearities that map network outputs to synth controls.

All are gin-registered in module 'ddsp.core' (`@exp_sigmoid` or
`@ddsp.core.exp_sigmoid` in gin files).
"""
import gin
import numpy as np
import tensorflow as tf

from ddsp.core.conversions import (bark_to_hz, hz_to_bark, hz_to_erb,
                                   hz_to_mel, mel_to_hz, unit_to_hz)
from ddsp.core.utils import soft_limit, tf_float32

__all__ = [
    'exp_sigmoid',
    'sym_exp_sigmoid',
    'frequencies_softmax',
    'frequencies_sigmoid',
    'frequencies_critical_bands',
]


@gin.register(module='ddsp.core')
def exp_sigmoid(x, exponent=10.0, max_value=2.0, threshold=1e-7):
    """Exponentiated sigmoid: max_value * sigmoid(x)**ln(exponent) + threshold.

    Bounds the output to [threshold, max_value]; away from x = 0 (in the
    negative regime) the output changes by a factor `exponent` per unit of x.
    The standard DDSP amplitude nonlinearity.

    Args:
        x: Input tensor.
        exponent: Output ratio per unit change of x in the exponential regime.
        max_value: Limit at x = +inf.
        threshold: Limit at x = -inf (keeps amplitudes strictly positive).
    """
    x = tf_float32(x)
    exponent = tf.math.log(tf_float32(exponent))
    return max_value * tf.nn.sigmoid(x)**exponent + threshold


@gin.register(module='ddsp.core')
def sym_exp_sigmoid(x, width=8.0):
    """Symmetric exp_sigmoid: peak near |x| large, minimum (1e-7) at x = 0."""
    x = tf_float32(x)
    return exp_sigmoid(width * (tf.abs(x) / 2.0 - 1.0))


def _add_depth_axis(freqs, depth: int = 1):
    """[batch, time, n * depth] -> [batch, time, n, depth]; 4-D unchanged."""
    freqs = tf_float32(freqs)
    if len(freqs.shape) == 4:
        return freqs
    if len(freqs.shape) != 3:
        raise ValueError('freqs must be [batch, time, n_sinusoids * depth] or '
                         f'[batch, time, n_sinusoids, depth], not shape '
                         f'{freqs.shape}.')
    depth = int(depth)
    n_combined = freqs.shape[-1]
    if depth < 1 or (n_combined is not None and n_combined % depth):
        raise ValueError(f'depth ({depth}) must be positive and divide the '
                         f'last dimension of freqs ({n_combined}).')
    shape = tf.concat([tf.shape(freqs)[:2], [-1, depth]], axis=0)
    return tf.reshape(freqs, shape)


@gin.register(module='ddsp.core')
def frequencies_softmax(freqs, depth=1, hz_min=20.0, hz_max=8000.0):
    """Softmax over `depth` bins -> expected unit value -> frequency in Hz.

    The bins sit at evenly spaced unit positions linspace(0, 1, depth); the
    expected position is mapped with unit_to_hz (log frequency).

    Args:
        freqs: Network outputs [batch, time, n_sinusoids * depth] or
            [batch, time, n_sinusoids, depth].
        depth: Number of bins per sinusoid (3-D inputs only; 4-D inputs use
            their last dimension).
        hz_min: Lowest frequency.
        hz_max: Highest frequency.

    Returns:
        Frequencies in Hz [batch, time, n_sinusoids], within [hz_min, hz_max].
    """
    freqs = _add_depth_axis(freqs, depth)
    depth = freqs.shape[-1]
    probs = tf.nn.softmax(freqs, axis=-1)
    unit_bins = tf.linspace(0.0, 1.0, depth) if depth > 1 else tf.zeros([1])
    unit = tf.reduce_sum(probs * unit_bins, axis=-1)
    return unit_to_hz(unit, hz_min=hz_min, hz_max=hz_max)


@gin.register(module='ddsp.core')
def frequencies_sigmoid(freqs, depth=1, hz_min=0.0, hz_max=8000.0):
    """Sum of `depth` sigmoids, each scaled (log-wise) to a part of the range.

    The range [hz_min, hz_max] is partitioned geometrically: each depth
    component but the last covers [0, r * (1 - 1 / f)] of the remaining range
    r (f = (hz_max - hz_min)**(1 / depth)); the last covers [hz_min, rest].

    Args:
        freqs: Network outputs [batch, time, n_sinusoids * depth] or
            [batch, time, n_sinusoids, depth].
        depth: Number of components per sinusoid (3-D inputs only).
        hz_min: Lowest frequency.
        hz_max: Highest frequency.

    Returns:
        Frequencies in Hz [batch, time, n_sinusoids].
    """
    freqs = _add_depth_axis(freqs, depth)
    depth = freqs.shape[-1]
    probs = tf.nn.sigmoid(freqs)

    remainder = hz_max - hz_min
    scale_factor = remainder**(1.0 / depth)
    components = []
    for i in range(depth):
        if i == depth - 1:
            lo, hi = hz_min, remainder
        else:
            lo, hi = 0.0, remainder * (1.0 - 1.0 / scale_factor)
            remainder -= hi
        components.append(unit_to_hz(probs[..., i], hz_min=lo, hz_max=hi))
    return tf.add_n(components)


@gin.register(module='ddsp.core')
def frequencies_critical_bands(freqs, depth=1, depth_scale=10.0,
                               bandwidth_scale=1.0, hz_min=20.0, hz_max=8000.0,
                               scale='bark'):
    """Centre frequencies on a bark or mel grid, moved within their ERB.

    Sinusoid k is centred on the k-th of n_sinusoids points evenly spaced on
    the bark (or mel) scale between hz_min and hz_max, and moved by
    bandwidth_scale * ERB(centre) * sum_d tanh(freqs[..., d]) / depth_scale**d,
    then soft-limited to [hz_min, hz_max] (soft_limit of the offset above
    hz_min, so that frequencies well inside the range are not shifted).

    Args:
        freqs: Network outputs [batch, time, n_sinusoids * depth] or
            [batch, time, n_sinusoids, depth].
        depth: Number of components per sinusoid (3-D inputs only).
        depth_scale: Factor by which each further depth component counts less.
        bandwidth_scale: Multiplier of the ERB range of each sinusoid.
        hz_min: Lowest frequency.
        hz_max: Highest frequency.
        scale: 'bark' or 'mel'.

    Returns:
        Frequencies in Hz [batch, time, n_sinusoids].
    """
    if scale not in ('bark', 'mel'):
        raise ValueError(f"scale ({scale!r}) must be 'bark' or 'mel'.")
    freqs = _add_depth_axis(freqs, depth)
    depth = freqs.shape[-1]
    n_sinusoids = freqs.shape[-2]

    to_scale, from_scale = ((hz_to_bark, bark_to_hz) if scale == 'bark' else
                            (hz_to_mel, mel_to_hz))
    grid = tf.linspace(to_scale(hz_min), to_scale(hz_max), n_sinusoids)
    f_center = from_scale(grid)  # [N]
    bandwidth = hz_to_erb(f_center)

    depth_weights = depth_scale**-tf.range(depth, dtype=tf.float32)
    modifier = tf.reduce_sum(tf.nn.tanh(freqs) * depth_weights, axis=-1)
    f_modifier = bandwidth_scale * bandwidth * modifier
    return soft_limit(f_center + f_modifier - hz_min, hz_min, hz_max)
