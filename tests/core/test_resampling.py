"""Tests of ddsp.core.resampling: shapes, accuracy, exact formulas, checks."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import core


@pytest.mark.parametrize('shape, expected', [
    ([10], [40]),
    ([2, 10], [2, 40]),
    ([2, 10, 3], [2, 40, 3]),
    ([2, 10, 3, 4], [2, 40, 3, 4]),
])
@pytest.mark.parametrize('method', ['nearest', 'linear', 'cubic'])
def test_multi_dimensional_inputs(shape, expected, method):
    x = np.random.randn(*shape).astype(np.float32)
    y = core.resample(x, 40, method=method)
    assert y.shape == tuple(expected)
    assert y.dtype == tf.float32


def test_window_only_allows_3d_inputs():
    for shape in ([10], [2, 10], [2, 10, 3, 4]):
        with pytest.raises(ValueError, match='inputs'):
            core.resample(np.zeros(shape), 40, method='window')
    assert core.resample(np.zeros([2, 10, 3]), 40, 'window').shape == (2, 40, 3)


def _smooth(n, end):
    t = np.linspace(0.0, end, n, endpoint=False)
    return np.sin(2 * np.pi * 0.5 * t) + 0.5 * np.cos(2 * np.pi * 0.3 * t)


@pytest.mark.parametrize('method', ['linear', 'cubic', 'window'])
@pytest.mark.parametrize('add_endpoint', [True, False])
def test_upsample_accuracy(method, add_endpoint):
    n_frames, factor = 1000, 4
    if add_endpoint:
        n_out = n_frames * factor
        fine = _smooth(n_out, 1.0)
        frames = fine[::factor]
    else:
        n_out = (n_frames - 1) * factor + 1
        t = np.linspace(0.0, 1.0, n_out)
        fine = np.sin(2 * np.pi * 0.5 * t) + 0.5 * np.cos(2 * np.pi * 0.3 * t)
        frames = fine[::factor]
        n_out = (n_frames - 1) * factor if method == 'window' else n_out
    x = frames[np.newaxis, :, np.newaxis].astype(np.float32)
    y = core.resample(x, n_out, method=method, add_endpoint=add_endpoint)
    y = y.numpy()[0, :, 0]
    # The held last interval (add_endpoint) is not an interpolation.
    valid = n_out - factor if add_endpoint else n_out
    np.testing.assert_allclose(y[:valid], fine[:valid], atol=1e-3)


@pytest.mark.parametrize('method', ['linear', 'cubic'])
def test_downsample_accuracy(method):
    fine = _smooth(4000, 1.0)
    x = fine[np.newaxis, :, np.newaxis].astype(np.float32)
    y = core.resample(x, 500, method=method).numpy()[0, :, 0]
    np.testing.assert_allclose(y, fine[::8], atol=1e-5)


@pytest.mark.parametrize('n_frames, n_out', [(5, 20), (7, 13), (6, 4), (3, 3)])
def test_linear_formula_with_endpoint(n_frames, n_out):
    x = np.random.randn(2, n_frames, 3).astype(np.float32)
    p = np.arange(n_out) * n_frames / n_out
    i0 = np.floor(p).astype(int)
    i1 = np.minimum(i0 + 1, n_frames - 1)
    w = (p - i0)[None, :, None]
    expected = x[:, i0] + (x[:, i1] - x[:, i0]) * w
    y = core.resample(x, n_out, 'linear', add_endpoint=True)
    np.testing.assert_allclose(y, expected, atol=1e-6)


@pytest.mark.parametrize('n_frames, n_out', [(5, 20), (5, 17), (7, 13),
                                             (6, 4)])
def test_linear_formula_without_endpoint(n_frames, n_out):
    x = np.random.randn(2, n_frames).astype(np.float32)
    t = np.arange(n_out) * (n_frames - 1) / (n_out - 1)
    expected = np.stack([np.interp(t, np.arange(n_frames), xi) for xi in x])
    y = core.resample(x, n_out, 'linear', add_endpoint=False)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    np.testing.assert_array_equal(y[:, 0], x[:, 0])
    np.testing.assert_allclose(y[:, -1], x[:, -1], atol=1e-6)


@pytest.mark.parametrize('method', ['nearest', 'linear', 'cubic'])
@pytest.mark.parametrize('add_endpoint, n_out', [(True, 24), (False, 25),
                                                 (True, 10)])
def test_4d_equals_per_channel_2d(method, add_endpoint, n_out):
    x = np.random.randn(2, 6, 3, 4).astype(np.float32)
    y = core.resample(x, n_out, method, add_endpoint).numpy()
    for c in range(3):
        for d in range(4):
            y2 = core.resample(x[:, :, c, d], n_out, method, add_endpoint)
            np.testing.assert_allclose(y[:, :, c, d], y2, atol=1e-6)


def test_nearest_holds_frames():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_array_equal(core.resample(x, 6, 'nearest'),
                                  [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(
        core.resample(x, 5, 'nearest', add_endpoint=False), [1, 2, 2, 3, 3])


@pytest.mark.parametrize('add_endpoint', [True, False])
def test_upsample_with_windows_formula(add_endpoint):
    n_frames, hop = 6, 5
    x = np.random.randn(2, n_frames, 3).astype(np.float32)
    n_intervals = n_frames if add_endpoint else n_frames - 1
    xe = np.concatenate([x, x[:, -1:]], axis=1) if add_endpoint else x
    s = np.sin(np.pi * np.arange(hop) / (2 * hop))**2
    expected = np.concatenate([
        (1 - s)[None, :, None] * xe[:, j:j + 1] +
        s[None, :, None] * xe[:, j + 1:j + 2] for j in range(n_intervals)
    ], axis=1)
    y = core.upsample_with_windows(x, n_intervals * hop, add_endpoint)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    # Same as overlap-add of periodic Hann windows centred on the frames.
    window = np.sin(np.pi * np.arange(2 * hop) / (2 * hop))**2
    ola = np.zeros([2, (n_intervals + 2) * hop, 3])
    for j in range(xe.shape[1]):
        ola[:, j * hop:(j + 2) * hop] += window[None, :, None] * xe[:, j:j + 1]
    np.testing.assert_allclose(y, ola[:, hop:-hop], atol=1e-6)


def test_window_checks_for_downsampling():
    with pytest.raises(ValueError, match='downsample'):
        core.resample(np.zeros([1, 20, 1]), 10, 'window')
    with pytest.raises(ValueError, match='downsample'):
        core.upsample_with_windows(np.zeros([1, 20, 1]), 20)


@pytest.mark.parametrize('add_endpoint, n_out', [(True, 30), (False, 18),
                                                 (True, 100)])
def test_window_allows_integer_upsampling_ratios(add_endpoint, n_out):
    y = core.resample(np.ones([1, 10, 2]), n_out, 'window', add_endpoint)
    assert y.shape == (1, n_out, 2)
    np.testing.assert_allclose(y, 1.0, atol=1e-6)


@pytest.mark.parametrize('add_endpoint, n_out', [(True, 35), (False, 30)])
def test_window_disallows_noninteger_upsampling_ratios(add_endpoint, n_out):
    with pytest.raises(ValueError, match='divisible'):
        core.resample(np.zeros([1, 10, 2]), n_out, 'window', add_endpoint)


@pytest.mark.parametrize('method', ['nearest', 'linear', 'cubic', 'window'])
def test_resample_allows_valid_method_arguments(method):
    assert core.resample(np.zeros([1, 10, 2]), 20, method).shape == (1, 20, 2)


@pytest.mark.parametrize('method', ['bilinear', 'sinc', '', None])
def test_resample_disallows_invalid_method_arguments(method):
    with pytest.raises(ValueError, match='method'):
        core.resample(np.zeros([1, 10, 2]), 20, method)


def test_resample_in_tf_function_and_gradients():
    x = tf.Variable(np.random.randn(2, 10, 3).astype(np.float32))

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            y = sum(tf.reduce_sum(core.resample(x, 40, m)**2)
                    for m in ['linear', 'cubic', 'window'])
        return tape.gradient(y, x)

    g = f()
    assert g.shape == x.shape
    assert np.all(np.isfinite(g.numpy()))


def test_center_crop():
    x = tf.reshape(tf.range(20.0), [1, 20])
    np.testing.assert_array_equal(core.center_crop(x, 8), x[:, 4:-4])
    np.testing.assert_array_equal(core.center_crop(x, 9), x[:, 4:-4])
    np.testing.assert_array_equal(core.center_crop(x, 1), x)
