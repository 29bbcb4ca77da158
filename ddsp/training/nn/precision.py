"""Precision of the networks' matrix products in training, and `Dense`.

A training step's time goes mostly into matrix products of
`[batch * time, channels]` activations. On CPUs with AMX (Intel Sapphire
Rapids and later), oneDNN multiplies bfloat16 matrices 4-5x faster than
float32 ones, so with `'auto'` (the default) on such a CPU, and no GPU, the
`Dense` layers, `Fc` stacks and GRU weight products here multiply in
bfloat16 in training (`training=True`: operands rounded to bfloat16, sums
accumulated in float32, results rounded to bfloat16 and cast back), and
everything else (biases, normalization, nonlinearities, the GRU recurrence,
the synthesizers, the losses, the variables and the optimizer) stays float32.
This is the trade GPUs make with TensorFloat-32 and TPUs with bfloat16
passes, which TensorFlow enables by default there. Elsewhere `'auto'` means
float32. Inference, evaluation and export (`training` False or None) always
multiply in float32, unless a layer's own `precision` argument says
otherwise.

Set it in gin (`ddsp.training.nn.matmul_precision.precision = 'float32'`) or
for a block of code (`with nn.matmul_precision_scope('float32'): ...`).
"""
import contextlib
import functools
from typing import Optional

import gin
import keras
import tensorflow as tf

MATMUL_PRECISIONS = ('auto', 'float32', 'bfloat16')

_MODULE = 'ddsp.training.nn'
_scopes = []  # Innermost `matmul_precision_scope` last.


@functools.lru_cache(maxsize=None)
def _cpu_has_amx_bf16() -> bool:
    try:
        with open('/proc/cpuinfo', encoding='ascii', errors='ignore') as f:
            for line in f:
                if line.startswith('flags'):
                    return 'amx_bf16' in line.split()
    except OSError:
        pass
    return False


def _resolve(precision: str) -> str:
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(f'matmul precision must be one of '
                         f'{MATMUL_PRECISIONS}, got {precision!r}.')
    if precision != 'auto':
        return precision
    has_gpu = bool(tf.config.list_logical_devices('GPU'))
    return 'bfloat16' if _cpu_has_amx_bf16() and not has_gpu else 'float32'


@gin.configurable(module=_MODULE)
def matmul_precision(precision: str = 'auto') -> str:
    """The precision of matrix products in training: 'float32' or
    'bfloat16'.

    Args:
        precision: 'auto' (bfloat16 on CPUs with AMX when there is no GPU,
            else float32), 'float32' or 'bfloat16'; bind it with gin. An
            enclosing `matmul_precision_scope` takes precedence.
    """
    return _resolve(_scopes[-1] if _scopes else precision)


def resolve_precision(precision: Optional[str] = None,
                      training=True) -> str:
    """'float32' or 'bfloat16': a layer's own `precision` if given, else
    `matmul_precision()` in training and float32 otherwise."""
    if precision is not None:
        return _resolve(precision)
    return matmul_precision() if training else 'float32'


@contextlib.contextmanager
def matmul_precision_scope(precision: str):
    """Uses `precision` ('auto', 'float32', 'bfloat16') for layers traced or
    run inside the block, whatever gin says."""
    _resolve(precision)  # Validate before entering.
    _scopes.append(precision)
    try:
        yield
    finally:
        _scopes.pop()


def matmul(x: tf.Tensor, kernel: tf.Tensor,
           precision: Optional[str] = None) -> tf.Tensor:
    """x @ kernel over the last axis of x, in the given precision.

    Args:
        x: `[..., in_channels]`.
        kernel: `[in_channels, out_channels]`.
        precision: 'float32', 'bfloat16', 'auto' or None (`matmul_precision()`).

    Returns:
        `[..., out_channels]`, in x's dtype (in bfloat16, oneDNN accumulates
        in float32 and rounds the result to bfloat16 once).
    """
    precision = resolve_precision(precision)
    dtype = x.dtype
    compute = tf.bfloat16 if precision == 'bfloat16' else dtype
    # A 2-D matmul: oneDNN's bfloat16 kernels are fastest on plain matrices.
    shape = tf.shape(x)
    flat = tf.reshape(tf.cast(x, compute), [-1, tf.shape(kernel)[0]])
    y = tf.matmul(flat, tf.cast(kernel, compute))
    out_shape = tf.concat([shape[:-1], tf.shape(kernel)[-1:]], axis=0)
    return tf.cast(tf.reshape(y, out_shape), dtype)


@gin.register(module=_MODULE)
class Dense(keras.layers.Dense):
    """`keras.layers.Dense` (same weights) multiplying in `matmul_precision`.

    Args:
        units, activation, use_bias, ...: As `keras.layers.Dense`.
        precision: None (`matmul_precision()` in training, else float32),
            'auto', 'float32' or 'bfloat16' (always).
    """

    def __init__(self, units, precision: Optional[str] = None, **kwargs):
        super().__init__(units, **kwargs)
        if precision is not None:
            _resolve(precision)
        self.precision = precision

    def call(self, inputs, training=None):
        y = matmul(inputs, self.kernel,
                   resolve_precision(self.precision, training))
        if self.use_bias:
            y = y + tf.cast(self.bias, y.dtype)
        return y if self.activation is None else self.activation(y)

    def get_config(self) -> dict:
        return {**super().get_config(), 'precision': self.precision}
