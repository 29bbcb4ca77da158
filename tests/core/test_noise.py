"""Tests of ddsp.core.counter_noise against a NumPy model of the hash."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import core


def _hash32(x):
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def _reference(start, n, seed):
    index = (np.arange(start, start + n, dtype=np.int64) & 0xFFFFFFFF)
    key = _hash32(np.array([(seed * 0x9E3779B9) & 0xFFFFFFFF], np.uint64))
    bits = _hash32(index.astype(np.uint32) ^ key)
    return (bits >> np.uint32(8)).astype(np.float64) * 2.0**-23 - 1.0


@pytest.mark.parametrize('start,seed', [(0, 0), (-7, 0), (2**32 - 3, 5),
                                        (123456789, 1)])
def test_counter_noise_matches_reference_hash(start, seed):
    noise = core.counter_noise(start, 50, seed=seed).numpy()
    assert noise.dtype == np.float32
    np.testing.assert_array_equal(noise, _reference(start, 50, seed))


def test_counter_noise_ranges_concatenate():
    whole = core.counter_noise(-100, 1000).numpy()
    parts = [core.counter_noise(s, n).numpy()
             for s, n in [(-100, 37), (-63, 400), (337, 563)]]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_counter_noise_is_white_uniform():
    noise = core.counter_noise(0, 200000).numpy()
    assert noise.min() >= -1.0 and noise.max() < 1.0
    assert abs(noise.mean()) < 0.01
    assert abs(noise.var() - 1.0 / 3.0) < 0.01
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.01
    other_seed = core.counter_noise(0, 200000, seed=1).numpy()
    assert abs(np.corrcoef(noise, other_seed)[0, 1]) < 0.01


def test_counter_noise_tensor_start_and_errors():
    np.testing.assert_array_equal(
        core.counter_noise(np.int32(5), 3).numpy(), _reference(5, 3, 0))
    # Only the index mod 2**32 matters, for tensors as for Python ints.
    np.testing.assert_array_equal(
        core.counter_noise(tf.constant(2**32 + 5, tf.int64), 3).numpy(),
        _reference(5, 3, 0))
    # A block across the int32 overflow continues the sequence.
    np.testing.assert_array_equal(
        core.counter_noise(tf.constant(2**31 - 2, tf.int32), 4).numpy(),
        _reference(2**31 - 2, 4, 0))
    assert core.counter_noise(0, 0).shape == (0,)
    with pytest.raises(ValueError, match='n_samples'):
        core.counter_noise(0, -1)


def test_counter_noise_graph_is_int32_and_float32_only():
    # TFLite builtins have xor / right shift on int32, not int64 or uint32.
    fn = tf.function(lambda start: core.counter_noise(start, 64, seed=3))
    graph = fn.get_concrete_function(tf.TensorSpec([], tf.int32)).graph
    dtypes = {t.dtype for op in graph.get_operations() for t in op.outputs}
    assert dtypes <= {tf.int32, tf.float32}
