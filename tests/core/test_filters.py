"""Tests of ddsp.core.filters: FFT convolution and FIR filter design."""
import numpy as np
import pytest
import scipy.signal
import tensorflow as tf

from ddsp import core


def test_get_fft_size():
    assert core.get_fft_size(1000, 100) == 2048
    assert core.get_fft_size(1024, 1) == 1024
    assert core.get_fft_size(1024, 2) == 2048
    assert core.get_fft_size(1, 1) == 1
    n = core.get_fft_size(1000, 100, power_of_2=False)
    assert n >= 1099 and n < 2048
    m = n
    for p in (2, 3, 5):
        while m % p == 0:
            m //= p
    assert m == 1


@pytest.mark.parametrize('padding', ['same', 'valid'])
@pytest.mark.parametrize('ir_size', [1, 64, 501])
def test_fft_convolve_is_accurate(padding, ir_size):
    audio = np.random.randn(3, 2000).astype(np.float32)
    ir = np.random.randn(3, ir_size).astype(np.float32)
    out = core.fft_convolve(audio, ir, padding=padding).numpy()
    full = np.stack([scipy.signal.fftconvolve(a, h) for a, h in zip(audio, ir)])
    if padding == 'same':
        start = ir_size // 2
        expected = full[:, start:start + 2000]
    else:
        expected = full
    assert out.shape == expected.shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(out / scale, expected / scale, atol=1e-5)


def test_fft_convolve_explicit_delay_compensation():
    audio = np.random.randn(2, 300).astype(np.float32)
    ir = np.random.randn(2, 40).astype(np.float32)
    full = np.stack([np.convolve(a, h) for a, h in zip(audio, ir)])
    for delay in (0, 7, 39):
        out = core.fft_convolve(audio, ir, delay_compensation=delay)
        np.testing.assert_allclose(out, full[:, delay:delay + 300], atol=1e-4)
    with pytest.raises(ValueError, match='delay_compensation'):
        core.fft_convolve(audio, ir, delay_compensation=40)


def test_fft_convolve_broadcasts_ir_batch():
    audio = np.random.randn(4, 500).astype(np.float32)
    ir = np.random.randn(1, 3, 32).astype(np.float32)
    out = core.fft_convolve(audio, ir)
    expected = core.fft_convolve(audio, np.tile(ir, [4, 1, 1]))
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_fft_convolve_checks_batch_size():
    with pytest.raises(ValueError, match=r'\(4\).*\(2\)'):
        core.fft_convolve(np.zeros([4, 100]), np.zeros([2, 10]))
    with pytest.raises(ValueError, match=r'\(1\).*\(2\)'):
        core.fft_convolve(np.zeros([1, 100]), np.zeros([2, 3, 10]))


@pytest.mark.parametrize('padding', ['same', 'valid'])
def test_fft_convolve_allows_valid_padding_arguments(padding):
    out = core.fft_convolve(np.zeros([2, 100]), np.zeros([2, 4, 11]), padding)
    assert out.shape == ((2, 100) if padding == 'same' else (2, 110))


@pytest.mark.parametrize('padding', ['full', 'SAME', '', None])
def test_fft_convolve_disallows_invalid_padding_arguments(padding):
    with pytest.raises(ValueError, match='padding'):
        core.fft_convolve(np.zeros([2, 100]), np.zeros([2, 11]), padding)


def test_fft_convolve_checks_number_of_frames():
    with pytest.raises(ValueError, match='frames'):
        core.fft_convolve(np.zeros([1, 10]), np.zeros([1, 11, 5]))
    # 100 samples in 60 frames: hop 2 covers only 50 frames.
    with pytest.raises(ValueError, match='frames'):
        core.fft_convolve(np.zeros([1, 100]), np.zeros([1, 60, 5]))
    # Non-integer hop with less than a hop of padding is fine.
    assert core.fft_convolve(np.zeros([1, 100]),
                             np.zeros([1, 7, 5])).shape == (1, 100)


@pytest.mark.parametrize('n_samples, n_frames', [(1000, 10), (1003, 10),
                                                 (1000, 1000), (999, 7)])
@pytest.mark.parametrize('padding', ['same', 'valid'])
def test_constant_time_varying_ir_equals_plain_convolution(
        n_samples, n_frames, padding):
    audio = np.random.randn(2, n_samples).astype(np.float32)
    ir = np.random.randn(2, 33).astype(np.float32)
    ir_frames = np.tile(ir[:, np.newaxis], [1, n_frames, 1])
    plain = core.fft_convolve(audio, ir, padding=padding)
    varying = core.fft_convolve(audio, ir_frames, padding=padding)
    np.testing.assert_allclose(varying, plain, atol=1e-5)


def _crossfade(n_samples, n_frames, switch_frame):
    """Weight of the IR frames >= switch_frame at each sample (hop integer)."""
    hop = n_samples // n_frames
    onehot = (np.arange(n_frames) >= switch_frame).astype(np.float32)
    weight = core.upsample_with_windows(onehot[None, :, None], n_samples)
    return weight.numpy()[0, :, 0], hop


def test_step_change_of_ir_is_a_smooth_crossfade():
    n_samples, n_frames, ir_size = 4000, 20, 31
    t = np.arange(n_samples) / 16000.0
    audio = np.sin(2 * np.pi * 440.0 * t)[np.newaxis].astype(np.float32)
    ir_a = core.sinc_impulse_response([[0.3]], window_size=ir_size - 1)
    ir_b = 0.3 * core.sinc_impulse_response([[0.9]], window_size=ir_size - 1)
    switch = 10
    ir_frames = np.concatenate([np.tile(ir_a, [switch, 1]),
                                np.tile(ir_b, [n_frames - switch, 1])])
    out = core.fft_convolve(audio, ir_frames[np.newaxis]).numpy()[0]

    # Equal to the crossfade of the two stationary filters' inputs.
    weight, _ = _crossfade(n_samples, n_frames, switch)
    expected = (core.fft_convolve(audio * (1.0 - weight), ir_a) +
                core.fft_convolve(audio * weight, ir_b)).numpy()[0]
    np.testing.assert_allclose(out, expected, atol=1e-5)

    # No discontinuity: the second difference stays at the level of the
    # stationary filters (a hard switch at sample 2000 gives 3x that here).
    stationary = max(
        np.abs(np.diff(core.fft_convolve(audio, h).numpy()[0], 2)).max()
        for h in (ir_a, ir_b))
    assert np.abs(np.diff(out, 2)).max() <= 1.05 * stationary


def test_hard_switch_would_be_detected():
    # Sanity check of the discontinuity measure used above.
    x = np.sin(np.arange(1000) * 2 * np.pi * 440 / 16000)
    y = np.concatenate([x[:500], 0.3 * x[500:]])
    assert np.abs(np.diff(y, 2)).max() > 10 * np.abs(np.diff(x, 2)).max()


@pytest.mark.parametrize('window_size', [0, 64, 65, 33, 1000])
@pytest.mark.parametrize('n_frames', [1, 5])
def test_delay_compensation_corrects_group_delay(window_size, n_frames):
    n_samples, n0 = 1000, 437
    audio = np.zeros([1, n_samples], np.float32)
    audio[0, n0] = 1.0
    freqs = np.linspace(0.0, 1.0, 65)
    mags = np.stack([np.exp(-3.0 * freqs * (k + 1)) for k in range(n_frames)])
    out = core.frequency_filter(audio, mags[np.newaxis].astype(np.float32),
                                window_size=window_size).numpy()[0]
    assert np.argmax(np.abs(out)) == n0


def test_sinc_filter_has_no_delay():
    audio = np.zeros([1, 1000], np.float32)
    audio[0, 300] = 1.0
    for window_size in (128, 129, 512):
        out = core.sinc_filter(audio, [[[0.2]]], window_size=window_size)
        assert np.argmax(np.abs(out.numpy()[0])) == 300


@pytest.mark.parametrize('shape', [[2, 65], [2, 10, 65]])
@pytest.mark.parametrize('window_size', [0, 63, 64, 200])
def test_frequency_impulse_response_gives_correct_size(shape, window_size):
    ir = core.frequency_impulse_response(np.random.rand(*shape), window_size)
    size = 128 if window_size in (0, 200) else window_size
    assert ir.shape == tuple(shape[:-1]) + (size,)


@pytest.mark.parametrize('window_size', [0, 63, 64])
def test_frequency_impulse_response_is_linear_phase(window_size):
    mags = np.random.rand(3, 65).astype(np.float32)
    ir = core.frequency_impulse_response(mags, window_size).numpy()
    size = ir.shape[-1]
    center = size // 2
    k = np.arange(1, (size + 1) // 2)
    np.testing.assert_allclose(ir[:, center + k], ir[:, center - k], atol=1e-7)
    if size % 2 == 0:
        np.testing.assert_array_equal(ir[:, 0], 0.0)


def test_frequency_impulse_response_matches_magnitudes():
    n_freqs = 129
    f = np.linspace(0.0, 1.0, n_freqs)
    mags = (0.5 + 0.4 * np.cos(2 * np.pi * f) + 0.3 * f)[np.newaxis]
    ir = core.frequency_impulse_response(mags.astype(np.float32)).numpy()
    response = np.abs(np.fft.rfft(ir[0]))
    # The full-length Hann window smooths by [1/4, 1/2, 1/4] across bins.
    ext = np.concatenate([mags[0, 1:2], mags[0], mags[0, -2:-1]])
    smoothed = 0.25 * ext[:-2] + 0.5 * ext[1:-1] + 0.25 * ext[2:]
    np.testing.assert_allclose(response, smoothed, atol=1e-5)
    np.testing.assert_allclose(response, mags[0], atol=2e-3)


def test_apply_window_to_impulse_response_causal_round_trip():
    ir = np.random.randn(2, 3, 64).astype(np.float32)
    zero_phase = core.apply_window_to_impulse_response(ir)
    causal = np.fft.fftshift(ir, axes=-1)
    np.testing.assert_allclose(
        core.apply_window_to_impulse_response(causal, causal=True),
        zero_phase, atol=1e-7)
    odd = np.random.randn(2, 63).astype(np.float32)
    np.testing.assert_allclose(
        core.apply_window_to_impulse_response(np.fft.fftshift(odd, axes=-1),
                                              causal=True),
        core.apply_window_to_impulse_response(odd), atol=1e-7)


def test_sinc_impulse_response_gain():
    n_fft = 8192
    for cutoff in (0.1, 0.25, 0.5):
        ir = core.sinc_impulse_response([[[cutoff]]], window_size=256).numpy()
        assert ir.shape == (1, 1, 257)
        response = np.abs(np.fft.rfft(ir[0, 0], n_fft))
        f = np.linspace(0.0, 1.0, n_fft // 2 + 1)
        np.testing.assert_allclose(response[0], 1.0, atol=1e-5)
        assert np.all(response[f < 0.8 * cutoff] > 0.99)
        assert np.all(response[f > 1.2 * cutoff] < 1e-2)
        high = core.sinc_impulse_response([[[cutoff]]], window_size=256,
                                          high_pass=True).numpy()
        response = np.abs(np.fft.rfft(high[0, 0], n_fft))
        assert response[0] < 1e-5
        assert np.all(response[f > 1.2 * cutoff] > 0.99)


def test_sinc_impulse_response_with_sample_rate():
    a = core.sinc_impulse_response(np.array([[[4000.0]]]), 64,
                                   sample_rate=16000)
    b = core.sinc_impulse_response([[[0.5]]], 64)
    np.testing.assert_allclose(a, b, atol=1e-7)


@pytest.mark.parametrize('padding', ['same', 'valid'])
def test_sinc_filter_attenuates_above_cutoff(padding):
    n = 16000
    t = np.arange(n) / 16000.0
    low = np.sin(2 * np.pi * 500.0 * t)
    high = np.sin(2 * np.pi * 6000.0 * t)
    audio = (low + high)[np.newaxis].astype(np.float32)
    out = core.sinc_filter(audio, np.full([1, 4, 1], 2000.0), window_size=512,
                           sample_rate=16000, padding=padding).numpy()[0]
    assert out.shape == ((n,) if padding == 'same' else (n + 512,))
    if padding == 'same':
        np.testing.assert_allclose(out[600:-600], low[600:-600], atol=1e-2)


@pytest.mark.parametrize('padding', ['same', 'valid'])
def test_frequency_filter_gives_correct_size(padding):
    out = core.frequency_filter(np.zeros([2, 1000]), np.ones([2, 10, 65]),
                                window_size=32, padding=padding)
    assert out.shape == ((2, 1000) if padding == 'same' else (2, 1031))


def test_sinc_filter_gives_correct_size():
    out = core.sinc_filter(np.zeros([2, 1000]), np.ones([2, 10, 1]) * 0.5,
                           window_size=100)
    assert out.shape == (2, 1000)


def test_gradients_are_finite():
    audio = tf.Variable(np.random.randn(2, 800).astype(np.float32))
    mags = tf.Variable(np.random.rand(2, 8, 33).astype(np.float32))
    ir = tf.Variable(np.random.randn(2, 50).astype(np.float32))
    cutoff = tf.Variable(np.random.rand(2, 8, 1).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = (tf.reduce_sum(core.frequency_filter(audio, mags)**2) +
                tf.reduce_sum(core.fft_convolve(audio, ir, 'valid')**2) +
                tf.reduce_sum(core.sinc_filter(audio, cutoff, 64)**2))
    grads = tape.gradient(loss, [audio, mags, ir, cutoff])
    for g in grads:
        assert g is not None
        assert np.all(np.isfinite(g.numpy()))
        assert np.any(g.numpy() != 0.0)


def test_fft_convolve_in_tf_function():
    f = tf.function(lambda a, h: core.fft_convolve(a, h))
    audio = np.random.randn(2, 640).astype(np.float32)
    ir = np.random.randn(2, 4, 17).astype(np.float32)
    np.testing.assert_allclose(f(audio, ir), core.fft_convolve(audio, ir),
                               atol=1e-6)


# DFT method -------------------------------------------------------------------
def _graph_dtypes(fn, *args):
    graph = tf.function(fn, autograph=False).get_concrete_function(*args).graph
    return {t.dtype for op in graph.get_operations() for t in op.outputs}


@pytest.mark.parametrize('fft_size', [8, 9, 64])
@pytest.mark.parametrize('method', ['fft', 'matmul'])
def test_circular_convolve_equals_numpy(fft_size, method):
    rng = np.random.default_rng(0)
    x = rng.standard_normal([2, 3, 6]).astype(np.float32)
    y = rng.standard_normal([1, 3, 5]).astype(np.float32)
    expected = np.fft.irfft(np.fft.rfft(x, fft_size) * np.fft.rfft(y, fft_size),
                            fft_size)
    with core.dft_method(method):
        out = core.circular_convolve(x, y, fft_size)
    assert out.shape == (2, 3, fft_size)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_matmul_dft_filters_equal_fft_without_complex_ops():
    rng = np.random.default_rng(1)
    audio = rng.standard_normal([2, 640]).astype(np.float32)
    mags = rng.uniform(0, 1, [2, 10, 65]).astype(np.float32)
    ir = rng.standard_normal([2, 37]).astype(np.float32)

    def filters(audio, mags, ir):
        return (core.frequency_filter(audio, mags, window_size=101),
                core.fft_convolve(audio, ir, padding='valid'))

    expected = filters(audio, mags, ir)
    with core.dft_method('matmul'):
        out = filters(audio, mags, ir)
        dtypes = _graph_dtypes(filters, audio, mags, ir)
    assert not {tf.complex64, tf.complex128} & dtypes
    for a, b in zip(out, expected):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The context ends with the block: the default is FFTs again.
    assert tf.complex64 in _graph_dtypes(filters, audio, mags, ir)


def test_dft_method_rejects_unknown_methods():
    with pytest.raises(ValueError, match='matmul'):
        with core.dft_method('dct'):
            pass
