"""Small utilities and safe math used throughout ddsp.

Everything here is pure TensorFlow (or pure Python for the dict helpers) and
returns float32 tensors where it returns tensors.
"""
import collections.abc
import copy
from typing import Any, Dict, List, Sequence, Text, Union

import numpy as np
import tensorflow as tf

__all__ = [
    'Number',
    'tf_float32',
    'make_iterable',
    'to_dict',
    'copy_if_tf_function',
    'nested_keys',
    'nested_lookup',
    'leaf_key',
    'map_shape',
    'pad_axis',
    'diff',
    'nan_to_num',
    'safe_divide',
    'safe_log',
    'logb',
    'log10',
    'log_scale',
    'soft_limit',
    'gradient_reversal',
]

Number = Union[int, float, np.ndarray, tf.Tensor]


# Utilities --------------------------------------------------------------------
def tf_float32(x) -> tf.Tensor:
    """Returns `x` as a float32 tf.Tensor (a no-op for float32 tensors)."""
    if isinstance(x, (tf.Tensor, tf.Variable)):
        return tf.cast(x, dtype=tf.float32)
    return tf.convert_to_tensor(x, tf.float32)


def make_iterable(x) -> Any:
    """Wraps `x` in a list if it is not iterable; None becomes [].

    Arrays and tensors are wrapped too (iterating over them would iterate over
    the batch), and so are strings (a string is one item, not a sequence).
    """
    if x is None:
        return []
    if isinstance(x, (np.ndarray, tf.Tensor, tf.Variable, str, bytes)):
        return [x]
    return x if isinstance(x, collections.abc.Iterable) else [x]


def to_dict(x, keys: Sequence[Text]) -> Dict[Text, Any]:
    """Converts a list of values (or a single value) to a dict with `keys`.

    A dict is returned unchanged.

    Raises:
        ValueError: If the number of `keys` differs from the number of values.
    """
    if isinstance(x, dict):
        return x
    x = make_iterable(x)
    keys = list(keys)
    if len(keys) != len(x):
        raise ValueError(f'keys ({keys}) must have the same length as the '
                         f'values x ({len(x)} values).')
    return dict(zip(keys, x))


def copy_if_tf_function(x):
    """Shallow copy of `x` inside a tf.function; `x` itself when eager.

    Prevents a traced function from mutating its (dict) inputs, without paying
    for copies eagerly.
    """
    return copy.copy(x) if not tf.executing_eagerly() else x


def nested_keys(nested_dict: Dict[Text, Any],
                delimiter: Text = '/',
                prefix: Text = '') -> List[Text]:
    """Flattened list of the keys of a nested dict, e.g. ['a/b/c', 'a/d'].

    Args:
        nested_dict: Nested dictionary.
        delimiter: String that joins the levels of a nested key.
        prefix: Key prepended to every key (used for recursion).

    Returns:
        List of nested key strings.
    """
    keys = []
    for k, v in nested_dict.items():
        key = k if not prefix else f'{prefix}{delimiter}{k}'
        if isinstance(v, dict):
            keys += nested_keys(v, delimiter=delimiter, prefix=key)
        else:
            keys.append(key)
    return keys


def nested_lookup(nested_key: Text,
                  nested_dict: Dict[Text, Any],
                  delimiter: Text = '/') -> Any:
    """Value of a nested dict at a key of the form 'key/key/key'.

    Raises:
        KeyError: If a part of the key is missing; the message lists the
            available nested keys.
    """
    value = nested_dict
    for key in nested_key.split(delimiter):
        try:
            value = value[key]
        except (KeyError, TypeError, IndexError):
            available = (nested_keys(nested_dict, delimiter=delimiter)
                         if isinstance(nested_dict, dict) else [])
            raise KeyError(
                f"Key '{key}' of nested_key '{nested_key}' not found in "
                f'nested_dict; available keys: {available}') from None
    return value


def leaf_key(nested_key: Text, delimiter: Text = '/') -> Text:
    """Last component of a nested key: 'a/b/c' -> 'c'."""
    return nested_key.split(delimiter)[-1]


def map_shape(x: Dict[Text, Any]) -> Dict[Text, List[int]]:
    """Replaces every tensor of a nested structure by its shape (eager only)."""
    return tf.nest.map_structure(lambda t: list(tf.shape(t).numpy()), x)


def pad_axis(x, padding=(0, 0), axis=0, **pad_kwargs) -> tf.Tensor:
    """Pads a single axis of a tensor.

    Args:
        x: Input tensor.
        padding: (before, after) number of entries to pad.
        axis: Axis to pad (negative values count from the end).
        **pad_kwargs: Passed on to tf.pad (e.g. mode, constant_values).

    Returns:
        The padded tensor.
    """
    x = tf.convert_to_tensor(x)
    ndim = len(x.shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f'axis ({axis}) out of range for a tensor of rank '
                         f'{ndim}.')
    axis %= ndim
    paddings = [[0, 0]] * axis + [list(padding)] + [[0, 0]] * (ndim - axis - 1)
    return tf.pad(x, paddings, **pad_kwargs)


def diff(x, axis: int = -1) -> tf.Tensor:
    """First finite difference x[i + 1] - x[i] along `axis` (one shorter).

    Raises:
        ValueError: If `axis` is not an axis of `x`.
    """
    x = tf_float32(x)
    ndim = len(x.shape)
    if not -ndim <= axis < ndim:
        raise ValueError(f'axis ({axis}) must be smaller than the number of '
                         f'dimensions of x ({ndim}).')
    axis %= ndim
    front = [slice(None)] * axis + [slice(1, None)]
    back = [slice(None)] * axis + [slice(None, -1)]
    return x[tuple(front)] - x[tuple(back)]


# Math -------------------------------------------------------------------------
def nan_to_num(x, value: float = 0.0) -> tf.Tensor:
    """Replaces NaNs of `x` by `value`."""
    x = tf_float32(x)
    return tf.where(tf.math.is_nan(x), tf.cast(value, tf.float32), x)


def safe_divide(numerator, denominator, eps: float = 1e-7) -> tf.Tensor:
    """numerator / denominator, with denominator == 0 replaced by `eps`."""
    numerator = tf_float32(numerator)
    denominator = tf_float32(denominator)
    safe_denominator = tf.where(tf.equal(denominator, 0.0), eps, denominator)
    return numerator / safe_denominator


def safe_log(x, eps: float = 1e-5) -> tf.Tensor:
    """log(max(x, eps)): finite for x <= 0, and so are its gradients."""
    x = tf_float32(x)
    safe_x = tf.where(x <= eps, eps, x)
    return tf.math.log(safe_x)


def logb(x, base=2.0, eps: float = 1e-5) -> tf.Tensor:
    """Logarithm of `x` in base `base`, with safe_log for both."""
    return safe_divide(safe_log(x, eps), safe_log(base, eps))


def log10(x, eps: float = 1e-5) -> tf.Tensor:
    """Base-10 logarithm with safe_log."""
    return logb(x, 10.0, eps)


def log_scale(x, min_x, max_x) -> tf.Tensor:
    """Maps x in [-1, 1] logarithmically to [min_x, max_x]."""
    x = tf_float32(x)
    x = (x + 1.0) / 2.0
    log_min = tf.math.log(tf_float32(min_x))
    log_max = tf.math.log(tf_float32(max_x))
    return tf.exp((1.0 - x) * log_min + x * log_max)


def soft_limit(x, x_min=0.0, x_max=1.0) -> tf.Tensor:
    """Softplus-based smooth clamp of `x` to [x_min, x_max]."""
    x = tf_float32(x)
    return tf.nn.softplus(x) + x_min - tf.nn.softplus(x - (x_max - x_min))


@tf.custom_gradient
def _gradient_reversal(x):
    def grad(dy):
        return -dy
    return tf.identity(x), grad


def gradient_reversal(x) -> tf.Tensor:
    """Identity in the forward pass; negated gradient in the backward pass."""
    return _gradient_reversal(tf_float32(x))
