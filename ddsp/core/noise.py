"""Counter-based noise: white noise as a pure function of the sample index.

`tf.random` noise depends on how a signal is cut into calls, so block-wise
(streaming) synthesis could not reproduce one-shot synthesis. Here sample n of
the noise is a hash of (n, seed), so any range of samples can be generated on
its own and equals the same range of a longer signal.
"""
import numpy as np
import tensorflow as tf

__all__ = ['counter_noise']

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9  # Spreads consecutive seeds over the 32-bit range.


def _hash32(x):
    """A 32-bit integer finalizer (xor-shift-multiply), uint32 -> uint32."""
    def xorshift(v, shift):
        return tf.bitwise.bitwise_xor(
            v, tf.bitwise.right_shift(v, tf.constant(shift, tf.uint32)))
    x = xorshift(x, 16) * tf.constant(0x7FEB352D, tf.uint32)
    x = xorshift(x, 15) * tf.constant(0x846CA68B, tf.uint32)
    return xorshift(x, 16)


def counter_noise(start, n_samples: int, seed: int = 0) -> tf.Tensor:
    """Uniform white noise in [-1, 1) for samples start ... start + n - 1.

    Sample n's value depends only on (n mod 2**32, seed): generating [a, b)
    and then [b, c) gives exactly the noise of [a, c). Values are multiples of
    2**-23 (24 random bits).

    Args:
        start: Index of the first sample (int or int32/int64 scalar tensor;
            may be negative).
        n_samples: Number of samples (a static Python int).
        seed: Selects an independent noise sequence (Python int).

    Returns:
        float32 noise [n_samples].
    """
    n_samples = int(n_samples)
    if n_samples < 0:
        raise ValueError(f'n_samples must be >= 0, got {n_samples}.')
    start = tf.cast(start, tf.int64)
    index = start + tf.range(n_samples, dtype=tf.int64)
    # Two's complement: the low 32 bits of index, also for negative indices.
    index = tf.cast(tf.bitwise.bitwise_and(index, _MASK32), tf.uint32)
    key = _hash32(tf.constant((int(seed) * _GOLDEN) & _MASK32, tf.uint32))
    bits = _hash32(tf.bitwise.bitwise_xor(index, key))
    top24 = tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32))
    return tf.cast(top24, tf.float32) * np.float32(2.0**-23) - 1.0
