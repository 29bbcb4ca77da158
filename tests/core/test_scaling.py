"""Tests of ddsp.core.scaling: output nonlinearities."""
import gin
import numpy as np
import pytest
from ddsp import core


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_exp_sigmoid_values():
    x = np.linspace(-10.0, 10.0, 41).astype(np.float32)
    expected = 2.0 * _sigmoid(x)**np.log(10.0) + 1e-7
    np.testing.assert_allclose(core.exp_sigmoid(x), expected, rtol=1e-5)
    np.testing.assert_allclose(core.exp_sigmoid(0.0), 2.0 * 0.5**np.log(10.0)
                               + 1e-7, rtol=1e-6)
    np.testing.assert_allclose(core.exp_sigmoid(100.0), 2.0, rtol=1e-6)
    np.testing.assert_allclose(core.exp_sigmoid(-100.0), 1e-7, rtol=1e-3)
    out = core.exp_sigmoid(x, exponent=2.0, max_value=1.0, threshold=0.0)
    np.testing.assert_allclose(out, _sigmoid(x)**np.log(2.0), rtol=1e-5)
    # In the exponential regime the output changes by `exponent` per unit.
    ratio = core.exp_sigmoid(-20.0, threshold=0.0) / core.exp_sigmoid(
        -21.0, threshold=0.0)
    np.testing.assert_allclose(ratio, 10.0, rtol=1e-4)


def test_sym_exp_sigmoid():
    x = np.linspace(-10.0, 10.0, 41).astype(np.float32)
    out = core.sym_exp_sigmoid(x)
    np.testing.assert_allclose(out, out[::-1], rtol=1e-6)
    expected = 2.0 * _sigmoid(8.0 * (np.abs(x) / 2.0 - 1.0))**np.log(10.0)
    np.testing.assert_allclose(out, expected + 1e-7, rtol=1e-5)


@pytest.mark.parametrize('shape, depth', [([2, 5, 12], 4), ([2, 5, 3, 4], 1),
                                          ([2, 5, 3], 1)])
def test_frequencies_softmax_in_range(shape, depth):
    freqs = 10.0 * np.random.randn(*shape).astype(np.float32)
    out = core.frequencies_softmax(freqs, depth=depth, hz_min=20.0,
                                   hz_max=8000.0).numpy()
    n = 3 if len(shape) == 4 or depth > 1 else shape[-1]
    assert out.shape == (2, 5, n)
    assert np.all(out >= 20.0 * (1 - 1e-5)) and np.all(out <= 8000.0 * 1.00001)


def test_frequencies_softmax_expected_unit_value():
    logits = np.log(np.array([[[[0.5, 0.0, 0.5]]]]) + 1e-30).astype(np.float32)
    out = core.frequencies_softmax(logits, hz_min=20.0, hz_max=8000.0)
    np.testing.assert_allclose(out, [[[np.sqrt(20.0 * 8000.0)]]], rtol=1e-4)
    logits = np.array([[[100.0, 0.0, 0.0, 0.0, 0.0, 100.0]]], np.float32)
    out = core.frequencies_softmax(logits, depth=3, hz_min=20.0, hz_max=8000.0)
    np.testing.assert_allclose(out, [[[20.0, 8000.0]]], rtol=1e-4)


@pytest.mark.parametrize('depth', [1, 2, 3])
def test_frequencies_sigmoid_is_bounded(depth):
    freqs = 20.0 * np.random.randn(2, 10, 4 * depth).astype(np.float32)
    out = core.frequencies_sigmoid(freqs, depth=depth).numpy()
    assert out.shape == (2, 10, 4)
    assert np.all(out >= 0.0) and np.all(out <= 8000.0 * 1.0001)
    top = core.frequencies_sigmoid(np.full([1, 1, depth], 100.0), depth=depth)
    np.testing.assert_allclose(top, [[[8000.0]]], rtol=1e-4)


@pytest.mark.parametrize('scale', ['bark', 'mel'])
def test_frequencies_critical_bands(scale):
    freqs = np.zeros([2, 3, 10], np.float32)
    out = core.frequencies_critical_bands(freqs, scale=scale).numpy()
    assert out.shape == (2, 3, 10)
    to_scale = core.hz_to_bark if scale == 'bark' else core.hz_to_mel
    from_scale = core.bark_to_hz if scale == 'bark' else core.mel_to_hz
    centres = from_scale(np.linspace(to_scale(20.0), to_scale(8000.0), 10))
    # Zero input gives the centre frequencies (inside the range).
    np.testing.assert_allclose(out[0, 0, 1:-1], centres.numpy()[1:-1],
                               rtol=1e-3)
    extreme = core.frequencies_critical_bands(
        np.random.randn(2, 3, 20).astype(np.float32) * 100.0, depth=2,
        scale=scale).numpy()
    assert extreme.shape == (2, 3, 10)
    assert np.all(extreme >= 20.0) and np.all(extreme <= 8000.0 * 1.0001)
    with pytest.raises(ValueError, match='scale'):
        core.frequencies_critical_bands(freqs, scale='erb')


def test_depth_must_divide_channels():
    with pytest.raises(ValueError, match='depth'):
        core.frequencies_softmax(np.zeros([1, 2, 10]), depth=3)


def test_gin_registration():
    for name in ('exp_sigmoid', 'sym_exp_sigmoid', 'frequencies_softmax',
                 'frequencies_sigmoid', 'frequencies_critical_bands'):
        for ref in (f'@ddsp.core.{name}', f'@{name}'):
            configurable = gin.config.parse_value(ref).configurable
            assert configurable.wrapped is getattr(core, name)
