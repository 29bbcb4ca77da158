"""Counter-based noise: white noise as a pure function of the sample index.

`tf.random` noise depends on how a signal is cut into calls, so block-wise
(streaming) synthesis could not reproduce one-shot synthesis. Here sample n of
the noise is a hash of (n, seed), so any range of samples can be generated on
its own and equals the same range of a longer signal.

The hash is a 32-bit xor-shift-multiply finalizer. It is computed on int32
tensors (two's complement, wrap-around add and multiply) with xor and shifts
only, the integer ops TFLite builtins have, so an exported streaming step
needs no TF select ops; the bits equal those of the same hash on uint32.
"""
from typing import Union

import numpy as np
import tensorflow as tf

__all__ = ['counter_noise']


def _to_int32(value: int) -> int:
    """The int32 with the low 32 bits of a Python integer."""
    return (int(value) + 2**31) % 2**32 - 2**31


_GOLDEN = 0x9E3779B9  # Spreads consecutive seeds over the 32-bit range.
# The finalizer's multipliers as int32 (the same 32 bits as the uint32 ones).
_MULTIPLIERS = (_to_int32(0x7FEB352D), _to_int32(0x846CA68B))


def _logical_right_shift(x: tf.Tensor, shift: int) -> tf.Tensor:
    """x >> shift filling with zeros, for int32 x (1 < shift < 32).

    tf.bitwise.right_shift on int32 is arithmetic (copies the sign bit in);
    xor with the sign mask moved to the top `shift` bits clears those copies.
    (-1 * 2**(32 - shift) has exactly the top `shift` bits set.)
    """
    sign = tf.bitwise.right_shift(x, 31)  # 0 or -1 (all bits set).
    return tf.bitwise.bitwise_xor(tf.bitwise.right_shift(x, shift),
                                  sign * (1 << (32 - shift)))


def _hash32(x: tf.Tensor) -> tf.Tensor:
    """A 32-bit integer finalizer (xor-shift-multiply), int32 -> int32.

    Args:
        x: int32 tensor, any shape (read as 32-bit patterns).

    Returns:
        int32 tensor of the same shape: the hashed bits.
    """
    def xorshift(v, shift):
        return tf.bitwise.bitwise_xor(v, _logical_right_shift(v, shift))
    x = xorshift(x, 16) * _MULTIPLIERS[0]
    x = xorshift(x, 15) * _MULTIPLIERS[1]
    return xorshift(x, 16)


def counter_noise(start: Union[int, tf.Tensor], n_samples: int,
                  seed: int = 0) -> tf.Tensor:
    """Uniform white noise in [-1, 1) for samples start ... start + n - 1.

    Sample n's value depends only on (n mod 2**32, seed): generating [a, b)
    and then [b, c) gives exactly the noise of [a, c). Values are multiples of
    2**-23 (24 random bits).

    Args:
        start: Index of the first sample (int or int32/int64 scalar tensor;
            may be negative; only its value mod 2**32 matters).
        n_samples: Number of samples (a static Python int).
        seed: Selects an independent noise sequence (Python int).

    Returns:
        float32 noise [n_samples].
    """
    n_samples = int(n_samples)
    if n_samples < 0:
        raise ValueError(f'n_samples must be >= 0, got {n_samples}.')
    if isinstance(start, (int, np.integer)):
        start = _to_int32(start)
    # int64 -> int32 keeps the low 32 bits; int32 additions wrap around, so
    # the index is n mod 2**32 (as a two's complement pattern) throughout.
    index = tf.cast(start, tf.int32) + tf.range(n_samples, dtype=tf.int32)
    key = _hash32(tf.constant(_to_int32(int(seed) * _GOLDEN), tf.int32))
    bits = _hash32(tf.bitwise.bitwise_xor(index, key))
    top24 = _logical_right_shift(bits, 8)
    return tf.cast(top24, tf.float32) * np.float32(2.0**-23) - 1.0
