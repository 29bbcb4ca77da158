"""Tests of ddsp.core.utils: dict helpers, padding, diff and safe math."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import core


def test_tf_float32_casts_arrays_and_tensors():
    assert core.tf_float32(np.arange(3)).dtype == tf.float32
    assert core.tf_float32(tf.constant([1, 2], tf.int32)).dtype == tf.float32
    assert core.tf_float32(2.0).dtype == tf.float32


def test_make_iterable():
    assert core.make_iterable(None) == []
    assert core.make_iterable(3) == [3]
    assert core.make_iterable('abc') == ['abc']
    arr = np.zeros(4)
    assert len(core.make_iterable(arr)) == 1
    assert core.make_iterable([1, 2]) == [1, 2]


def test_to_dict():
    assert core.to_dict([1, 2], ['a', 'b']) == {'a': 1, 'b': 2}
    d = {'x': 1}
    assert core.to_dict(d, ['a', 'b']) is d
    with pytest.raises(ValueError, match='keys'):
        core.to_dict([1, 2, 3], ['a', 'b'])


def test_copy_if_tf_function():
    d = {'a': 1}
    assert core.copy_if_tf_function(d) is d

    @tf.function
    def f(x):
        assert core.copy_if_tf_function(d) is not d
        return x

    f(tf.constant(1.0))


def test_nested_keys_and_lookup():
    d = {'a': {'b': {'c': 1}, 'd': 2}, 'e': 3}
    assert core.nested_keys(d) == ['a/b/c', 'a/d', 'e']
    assert core.nested_keys(d, delimiter='.') == ['a.b.c', 'a.d', 'e']
    assert core.nested_lookup('a/b/c', d) == 1
    assert core.nested_lookup('a/d', d) == 2
    assert core.nested_lookup('a.b', d, delimiter='.') == {'c': 1}
    with pytest.raises(KeyError, match='a/b/c'):
        core.nested_lookup('a/x', d)
    assert core.leaf_key('a/b/c') == 'c'


def test_map_shape():
    shapes = core.map_shape({'a': tf.zeros([2, 3]), 'b': {'c': np.zeros(4)}})
    assert shapes == {'a': [2, 3], 'b': {'c': [4]}}


def test_pad_axis():
    x = tf.ones([2, 3, 4])
    assert core.pad_axis(x, (1, 2), axis=1).shape == (2, 6, 4)
    assert core.pad_axis(x, (0, 3), axis=-1).shape == (2, 3, 7)
    y = core.pad_axis(x, (1, 0), axis=0, constant_values=5.0)
    np.testing.assert_array_equal(y[0], 5.0 * np.ones([3, 4]))


@pytest.mark.parametrize('axis', [0, 1, 2, -1])
def test_diff_shape_and_values(axis):
    x = np.random.randn(4, 5, 6).astype(np.float32)
    d = core.diff(x, axis=axis)
    np.testing.assert_allclose(d, np.diff(x, axis=axis), atol=1e-6)


def test_diff_raises_for_invalid_axis():
    with pytest.raises(ValueError, match='axis'):
        core.diff(np.zeros([3, 4]), axis=2)


def test_safe_math():
    np.testing.assert_allclose(core.nan_to_num([1.0, np.nan], 7.0), [1, 7])
    np.testing.assert_allclose(core.safe_divide([1.0, 2.0], [0.0, 4.0]),
                               [1e7, 0.5], rtol=1e-6)
    np.testing.assert_allclose(core.safe_log([-1.0, 0.0, np.e]),
                               [np.log(1e-5), np.log(1e-5), 1.0], rtol=1e-6)
    np.testing.assert_allclose(core.logb([8.0, 0.5]), [3.0, -1.0], rtol=1e-6)
    np.testing.assert_allclose(core.log10([100.0]), [2.0], rtol=1e-6)
    np.testing.assert_allclose(core.log_scale([-1.0, 0.0, 1.0], 1.0, 100.0),
                               [1.0, 10.0, 100.0], rtol=1e-5)
    y = core.soft_limit(np.array([-100.0, 0.5, 100.0]), 0.0, 1.0)
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0], atol=1e-6)


def test_gradient_reversal():
    x = tf.constant([1.0, -2.0, 3.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = core.gradient_reversal(x)
        loss = tf.reduce_sum(3.0 * y)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(tape.gradient(loss, x), [-3.0, -3.0, -3.0])
