"""Tests of ddsp.core.synthesis against float64 NumPy references.

Conventions checked here (see the module docstring): the phase at sample n
sums the angular frequencies of the samples before n; frequencies are
interpolated linearly between frames and amplitudes with the 'linear' or
'window' weights of `resample`; oscillators at or above Nyquist are silent.
"""
import re

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp import core
from ddsp.core import synthesis


# NumPy references ------------------------------------------------------------
def np_envelope(frames, n_samples, method='linear', add_endpoint=True):
    """Frames [batch, n_frames, channels] -> samples with integer hops."""
    frames = np.asarray(frames, np.float64)
    n_intervals = frames.shape[1] if add_endpoint else frames.shape[1] - 1
    hop = n_samples // n_intervals
    assert hop * n_intervals == n_samples
    if add_endpoint:
        frames = np.concatenate([frames, frames[:, -1:]], axis=1)
    m = np.arange(hop)
    s = np.sin(np.pi * m / (2 * hop))**2 if method == 'window' else m / hop
    x0, x1 = frames[:, :-1, np.newaxis], frames[:, 1:, np.newaxis]
    out = x0 + s[:, np.newaxis] * (x1 - x0)
    return out.reshape(frames.shape[0], n_samples, frames.shape[2])


def np_oscillators(freq_env, amp_env, sample_rate, initial_phase=None):
    """Sum of sinusoids; returns (audio, final_phase mod 2 pi)."""
    omegas = 2 * np.pi * np.asarray(freq_env, np.float64) / sample_rate
    phase = np.cumsum(omegas, axis=1) - omegas
    if initial_phase is not None:
        phase = phase + initial_phase
    amp = np.where(np.asarray(freq_env) >= sample_rate / 2, 0.0, amp_env)
    final = np.mod(phase[:, -1:] + omegas[:, -1:], 2 * np.pi)
    return np.sum(amp * np.sin(phase), axis=-1), final


def np_harmonic(f0, amps, dist, n_samples, sample_rate, method='window',
                add_endpoint=True, initial_phase=None, shifts=None):
    n_harmonics = dist.shape[-1]
    freqs = np.asarray(f0, np.float64) * np.arange(1, n_harmonics + 1)
    if shifts is not None:
        freqs = freqs * (1.0 + shifts)
    freq_env = np_envelope(freqs, n_samples, 'linear', add_endpoint)
    amp_env = np_envelope(np.asarray(amps, np.float64) * dist, n_samples,
                          method, add_endpoint)
    return np_oscillators(freq_env, amp_env, sample_rate, initial_phase)


def phase_error(a, b):
    return np.max(np.abs(np.angle(np.exp(1j * (np.asarray(a) - b)))))


def random_controls(batch, n_frames, n_harmonics, f0_lo=100.0, f0_hi=400.0,
                    seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, n_frames)[np.newaxis, :, np.newaxis]
    base = rng.uniform(f0_lo, f0_hi, (batch, 1, 1))
    f0 = base * (1.0 + 0.05 * np.sin(2 * np.pi * 3 * t))
    amps = rng.uniform(0.2, 1.0, (batch, n_frames, 1))
    dist = rng.uniform(0.0, 1.0, (batch, n_frames, n_harmonics))
    dist /= dist.sum(-1, keepdims=True)
    return [x.astype(np.float32) for x in (f0, amps, dist)]


@pytest.fixture
def small_chunks():
    """angular_cumsum with 64-sample float32 chunks (error ~1e-6 rad)."""
    with gin.unlock_config():
        gin.bind_parameter('ddsp.core.angular_cumsum.chunk_size', 64)
    yield
    gin.clear_config()


# Conversions -----------------------------------------------------------------
def test_get_harmonic_frequencies():
    f0 = np.array([[[100.0], [220.0]]], np.float32)
    out = core.get_harmonic_frequencies(f0, 3).numpy()
    np.testing.assert_allclose(out, [[[100, 200, 300], [220, 440, 660]]])


def test_remove_above_nyquist_is_inclusive():
    freqs = np.array([7999.0, 8000.0, 9000.0], np.float32)
    out = core.remove_above_nyquist(freqs, np.ones(3), 16000).numpy()
    np.testing.assert_array_equal(out, [1.0, 0.0, 0.0])


def test_normalize_harmonics():
    dist = np.array([[[1.0, 2.0, 1.0, 4.0], [0.0, 0.0, 0.0, 0.0]]],
                    np.float32)
    np.testing.assert_allclose(core.normalize_harmonics(dist).numpy(),
                               [[[0.125, 0.25, 0.125, 0.5], [0, 0, 0, 0]]],
                               rtol=1e-6)
    # f0 3000 Hz at 16 kHz: harmonics 3 and 4 (9, 12 kHz) are removed.
    f0 = np.full([1, 2, 1], 3000.0, np.float32)
    out = core.normalize_harmonics(dist, f0, 16000).numpy()
    np.testing.assert_allclose(out, [[[1 / 3, 2 / 3, 0, 0], [0, 0, 0, 0]]],
                               rtol=1e-6)


def test_harmonic_to_sinusoidal():
    f0 = np.array([[[1000.0], [5000.0], [9000.0]]], np.float32)
    dist = np.full([1, 3, 3], 1 / 3, np.float32)
    amps, freqs = core.harmonic_to_sinusoidal(np.full([1, 3, 1], 2.0), dist,
                                              f0, sample_rate=16000)
    np.testing.assert_allclose(freqs.numpy()[0, 1], [5000, 10000, 15000])
    np.testing.assert_allclose(amps.numpy()[0],
                               [[2 / 3] * 3, [2, 0, 0], [0, 0, 0]], rtol=1e-6)


@pytest.mark.parametrize('normalize', [False, True])
def test_sinusoidal_to_harmonic_recovers_harmonic_amplitudes(normalize):
    f0 = np.full([2, 4, 1], 200.0, np.float32)
    true_amps = np.random.uniform(0.1, 1.0, [2, 4, 5]).astype(np.float32)
    freqs = f0 * np.arange(1, 6)
    amp, dist = core.sinusoidal_to_harmonic(true_amps, freqs, f0,
                                            n_harmonics=8,
                                            normalize=normalize)
    np.testing.assert_allclose(amp.numpy()[..., 0], true_amps.sum(-1),
                               rtol=1e-5)
    expected = np.concatenate([true_amps, np.zeros([2, 4, 3])], -1)
    expected /= true_amps.sum(-1, keepdims=True)
    np.testing.assert_allclose(dist.numpy(), expected, atol=1e-6)
    # Round trip back to sinusoids.
    amps2, freqs2 = core.harmonic_to_sinusoidal(amp, dist, f0)
    np.testing.assert_allclose(amps2.numpy()[..., :5], true_amps, rtol=1e-5)


def test_sinusoidal_to_harmonic_weights_detuned_sinusoids():
    f0 = np.full([1, 1, 1], 100.0, np.float32)
    # 205 Hz is 0.05 f0 from harmonic 2: weight exp(-(0.05 / 0.1)**2).
    amp, dist = core.sinusoidal_to_harmonic(np.ones([1, 1, 1]),
                                            np.full([1, 1, 1], 205.0), f0,
                                            n_harmonics=3)
    np.testing.assert_allclose(amp.numpy()[0, 0, 0], np.exp(-0.25),
                               rtol=1e-5)
    np.testing.assert_allclose(dist.numpy()[0, 0], [0, 1, 0], atol=1e-6)


# angular_cumsum ---------------------------------------------------------------
def test_angular_cumsum_matches_float64_cumsum():
    omegas = np.random.uniform(0.0, np.pi, [2, 2500, 3]).astype(np.float32)
    out = core.angular_cumsum(omegas, chunk_size=100).numpy()
    expected = np.cumsum(omegas.astype(np.float64), axis=1)
    assert out.shape == omegas.shape
    assert out.min() >= 0.0 and out.max() <= 2 * np.pi + 1e-6
    assert phase_error(out, expected) < 1e-4
    # Rank 1 (no batch) and a length that is not a multiple of chunk_size.
    out1 = core.angular_cumsum(omegas[0, :777, 0], chunk_size=100).numpy()
    assert phase_error(out1, expected[0, :777, 0]) < 1e-4


def test_angular_cumsum_uses_chunk_size():
    # float32 error grows with the chunk length; offsets never drift.
    omegas = np.random.uniform(2.0, 3.0, [1, 50000]).astype(np.float32)
    expected = np.cumsum(omegas.astype(np.float64), axis=1)
    errors = [phase_error(core.angular_cumsum(omegas, chunk_size=c).numpy(),
                          expected) for c in (50000, 1000, 20)]
    assert errors[0] > 3 * errors[1] > 3 * errors[2]
    assert errors[2] < 5e-5


# oscillator_bank ------------------------------------------------------------
@pytest.mark.parametrize('use_angular_cumsum', [False, True])
@pytest.mark.parametrize('sample_rate', [16000, 44100])
@pytest.mark.parametrize('n_harmonics', [1, 20, 40])
@pytest.mark.parametrize('f0', [110.0, 440.0])
def test_oscillator_bank_is_accurate(f0, n_harmonics, sample_rate,
                                     use_angular_cumsum, small_chunks):
    n_samples = int(0.1 * sample_rate)
    freqs = np.full([2, n_samples, n_harmonics], f0) * np.arange(
        1, n_harmonics + 1)
    amps = np.full([2, n_samples, n_harmonics], 1.0 / n_harmonics)
    audio = core.oscillator_bank(freqs, amps, sample_rate,
                                 use_angular_cumsum=use_angular_cumsum)
    expected, _ = np_oscillators(freqs.astype(np.float32), amps, sample_rate)
    assert audio.shape == (2, n_samples)
    # Exact float64 phase, or float32 within 64-sample chunks.
    atol = 1e-4 if use_angular_cumsum else 1e-5
    np.testing.assert_allclose(audio.numpy(), expected, atol=atol)


@pytest.mark.parametrize('sum_sinusoids, shape', [(True, (2, 300)),
                                                  (False, (2, 300, 5))])
def test_oscillator_bank_shape_is_correct(sum_sinusoids, shape):
    freqs = np.random.uniform(100, 1000, [2, 300, 5]).astype(np.float32)
    audio = core.oscillator_bank(freqs, np.ones_like(freqs),
                                 sum_sinusoids=sum_sinusoids)
    assert audio.shape == shape


@pytest.mark.parametrize('sample_rate', [16000, 44100])
def test_oscillator_bank_silent_above_nyquist(sample_rate):
    nyquist = sample_rate / 2
    freqs = np.stack([np.full([1000], nyquist), np.full([1000], nyquist * 1.3),
                      np.full([1000], nyquist * 2.2)], -1)[np.newaxis]
    audio = core.oscillator_bank(freqs, np.ones_like(freqs), sample_rate)
    np.testing.assert_array_equal(audio.numpy(), 0.0)


def test_oscillator_bank_is_gin_configurable():
    freqs = np.full([1, 50000, 1], 3000.0, np.float32)
    exact = core.oscillator_bank(freqs, np.ones_like(freqs))
    with gin.unlock_config():
        gin.bind_parameter('ddsp.core.oscillator_bank.use_angular_cumsum',
                           True)
        # One float32 chunk over 50000 samples: phase errors ~1e-2 rad.
        gin.bind_parameter('ddsp.core.angular_cumsum.chunk_size', 50000)
    try:
        chunked = core.oscillator_bank(freqs, np.ones_like(freqs))
    finally:
        gin.clear_config()
    expected = np.sin(2 * np.pi * (3000 * np.arange(50000) % 16000) / 16000)
    assert np.abs(exact.numpy()[0] - expected).max() < 1e-5
    assert np.abs(chunked.numpy()[0] - expected).max() > 1e-3


# harmonic_synthesis ---------------------------------------------------------
@pytest.mark.parametrize('n_harmonics, sample_rate, f0_hi', [
    (1, 16000, 400.0), (20, 44100, 1500.0), (40, 16000, 400.0)])
@pytest.mark.parametrize('method', ['window', 'linear'])
@pytest.mark.parametrize('add_endpoint', [True, False])
def test_harmonic_synthesis_is_accurate(n_harmonics, sample_rate, f0_hi,
                                        method, add_endpoint):
    n_frames, hop = 21, 100
    n_samples = (n_frames if add_endpoint else n_frames - 1) * hop
    f0, amps, dist = random_controls(2, n_frames, n_harmonics, 100.0, f0_hi)
    audio = core.harmonic_synthesis(
        f0, amps, harmonic_distribution=dist, n_samples=n_samples,
        sample_rate=sample_rate, amp_resample_method=method,
        add_endpoint=add_endpoint)
    expected, _ = np_harmonic(f0, amps, dist, n_samples, sample_rate, method,
                              add_endpoint)
    assert audio.shape == (2, n_samples) and audio.dtype == tf.float32
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-5)


def test_harmonic_synthesis_with_shifts_and_initial_phase():
    f0, amps, dist = random_controls(3, 11, 8)
    shifts = np.random.uniform(-0.02, 0.02, [3, 11, 8]).astype(np.float32)
    phase0 = np.random.uniform(0, 2 * np.pi, [3, 1, 8]).astype(np.float32)
    audio, final = core.harmonic_synthesis(
        f0, amps, harmonic_shifts=shifts, harmonic_distribution=dist,
        n_samples=11 * 64, initial_phase=phase0, return_final_phase=True)
    expected, expected_final = np_harmonic(f0, amps, dist, 11 * 64, 16000,
                                           initial_phase=phase0,
                                           shifts=shifts)
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-5)
    assert final.shape == (3, 1, 8)
    assert phase_error(final.numpy(), expected_final) < 1e-5


def test_harmonic_synthesis_without_distribution_is_one_oscillator():
    f0, amps, _ = random_controls(1, 10, 1)
    audio = core.harmonic_synthesis(f0, amps, n_samples=640)
    expected, _ = np_harmonic(f0, amps, np.ones([1, 10, 1]), 640, 16000)
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize('sample_rate, n_frames, f0, n_audible', [
    (16000, 250, 3000.0, 2), (44100, 225, 8000.0, 2), (16000, 250, 7000.0, 1)])
def test_harmonic_synthesis_silent_above_nyquist(sample_rate, n_frames, f0,
                                                 n_audible):
    n_harmonics = 6
    f0s = np.full([1, n_frames, 1], f0, np.float32)
    dist = np.full([1, n_frames, n_harmonics], 1.0, np.float32)
    # One second: every harmonic and every alias falls on an FFT bin.
    audio = core.harmonic_synthesis(f0s, np.ones_like(f0s),
                                    harmonic_distribution=dist,
                                    n_samples=sample_rate,
                                    sample_rate=sample_rate).numpy()[0]
    n = np.arange(sample_rate)
    expected = sum(np.sin(2 * np.pi * (k * f0 * n % sample_rate) /
                          sample_rate) for k in range(1, n_audible + 1))
    # float32 phase inside a hop of ~200 samples: ~1e-5 rad per harmonic.
    np.testing.assert_allclose(audio, expected, atol=1e-4)
    magnitudes = np.abs(np.fft.rfft(audio)) * 2 / sample_rate
    for k in range(1, n_harmonics + 1):
        alias = abs((k * f0 + sample_rate / 2) % sample_rate - sample_rate / 2)
        expected_magnitude = 1.0 if k <= n_audible else 0.0
        assert abs(magnitudes[int(alias)] - expected_magnitude) < 1e-4, k


def test_harmonic_amplitude_ratios_in_spectrum():
    # 250 Hz at 16 kHz over 1 s: whole periods, every harmonic on a bin.
    dist = np.array([0.5, 0.1, 0.25, 0.0, 0.15], np.float32)
    f0 = np.full([1, 250, 1], 250.0, np.float32)
    audio = core.harmonic_synthesis(
        f0, np.full_like(f0, 0.8),
        harmonic_distribution=np.broadcast_to(dist, [1, 250, 5]),
        n_samples=16000, sample_rate=16000).numpy()[0]
    magnitudes = np.abs(np.fft.rfft(audio)) * 2 / 16000
    np.testing.assert_allclose(magnitudes[250 * np.arange(1, 6)], 0.8 * dist,
                               atol=1e-5)


@pytest.mark.parametrize('method', ['window', 'linear'])
@pytest.mark.parametrize('add_endpoint', [True, False])
def test_fast_path_equals_generic_path(method, add_endpoint, small_chunks):
    n_frames, hop, n_harmonics = 16, 160, 30
    n_samples = (n_frames if add_endpoint else n_frames - 1) * hop
    f0, amps, dist = random_controls(2, n_frames, n_harmonics)
    fast = core.harmonic_synthesis(f0, amps, harmonic_distribution=dist,
                                   n_samples=n_samples,
                                   amp_resample_method=method,
                                   add_endpoint=add_endpoint)
    # Generic: resample to audio rate (frame j at sample j * hop), then the
    # oscillator bank.
    n_resampled = n_frames * hop
    freq_env = core.resample(core.get_harmonic_frequencies(f0, n_harmonics),
                             n_resampled)[:, :n_samples]
    amp_env = core.resample(amps * dist, n_resampled, method)[:, :n_samples]
    generic = core.oscillator_bank(freq_env, amp_env, use_angular_cumsum=True)
    np.testing.assert_allclose(fast.numpy(), generic.numpy(), atol=1e-4)


def test_generic_path_for_other_methods_and_hops(small_chunks):
    f0, amps, dist = random_controls(2, 30, 10)
    kwargs = dict(harmonic_distribution=dist, use_angular_cumsum=True)
    # 'nearest' and 'cubic' amplitudes: resample + oscillator bank.
    for method in ('nearest', 'cubic'):
        audio = core.harmonic_synthesis(f0, amps, n_samples=1800,
                                        amp_resample_method=method, **kwargs)
        freq_env = core.resample(core.get_harmonic_frequencies(f0, 10), 1800)
        amp_env = core.resample(amps * dist, 1800, method)
        expected, _ = np_oscillators(freq_env.numpy(), amp_env.numpy(), 16000)
        np.testing.assert_allclose(audio.numpy(), expected, atol=1e-4)
    # A non-integer hop (1000 / 30) with linear amplitudes, vs NumPy.
    audio = core.harmonic_synthesis(f0, amps, n_samples=1000,
                                    amp_resample_method='linear', **kwargs)
    position = np.arange(1000) * 30 / 1000
    index = np.floor(position).astype(int)
    frac = (position - index)[:, np.newaxis]
    nxt = np.minimum(index + 1, 29)
    interp = lambda x: x[:, index] + frac * (x[:, nxt] - x[:, index])
    expected, _ = np_oscillators(
        interp(f0.astype(np.float64) * np.arange(1, 11)),
        interp(amps.astype(np.float64) * dist), 16000)
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-4)


def test_sinusoidal_synthesis_is_accurate():
    rng = np.random.default_rng(1)
    freqs = rng.uniform(50.0, 7000.0, [2, 1, 12]) * np.linspace(
        1.0, 1.2, 9)[:, np.newaxis]
    freqs = freqs.astype(np.float32)
    amps = rng.uniform(0.0, 0.2, [2, 9, 12]).astype(np.float32)
    audio = core.sinusoidal_synthesis(freqs, amps, n_samples=9 * 128)
    expected, _ = np_oscillators(np_envelope(freqs, 9 * 128),
                                 np_envelope(amps, 9 * 128, 'window'), 16000)
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-5)


# Gradients -------------------------------------------------------------------
def _generic_float64_phase(f0, amps, dist, shifts, phase0, n_samples,
                           method):
    """Differentiable reference: resampling + oscillators, float64 phase."""
    freqs = core.get_harmonic_frequencies(f0, dist.shape[-1]) * (1 + shifts)
    freq_env = core.resample(freqs, n_samples)
    amp_env = core.resample(amps * dist, n_samples, method)
    omegas = tf.cast(freq_env, tf.float64) * (2 * np.pi / 16000)
    phase = tf.cumsum(omegas, axis=1, exclusive=True)
    phase = tf.cast(phase + tf.cast(phase0, tf.float64), tf.float32)
    amp_env = core.remove_above_nyquist(freq_env, amp_env, 16000)
    return tf.reduce_sum(amp_env * tf.sin(phase), axis=-1)


@pytest.mark.parametrize('method', ['window', 'linear'])
def test_gradients_match_autodiff_of_generic_path(method):
    n_frames, n_harmonics, n_samples = 12, 10, 12 * 80
    f0, amps, dist = [tf.constant(x) for x in
                      random_controls(2, n_frames, n_harmonics, 300, 700)]
    shifts = tf.constant(np.random.uniform(-0.01, 0.01, dist.shape),
                         tf.float32)
    phase0 = tf.constant(np.random.uniform(0, 6, [2, 1, n_harmonics]),
                         tf.float32)
    target = tf.constant(np.random.randn(2, n_samples), tf.float32)
    sources = [f0, amps, dist, shifts, phase0]

    def gradients(synth):
        with tf.GradientTape() as tape:
            tape.watch(sources)
            loss = tf.reduce_mean(tf.square(synth() - target))
        return tape.gradient(loss, sources)

    fast = gradients(lambda: core.harmonic_synthesis(
        f0, amps, harmonic_shifts=shifts, harmonic_distribution=dist,
        n_samples=n_samples, amp_resample_method=method,
        initial_phase=phase0))
    reference = gradients(lambda: _generic_float64_phase(
        f0, amps, dist, shifts, phase0, n_samples, method))
    for name, g, ref in zip(['f0', 'amps', 'dist', 'shifts', 'phase0'], fast,
                            reference):
        g, ref = g.numpy(), ref.numpy()
        assert np.all(np.isfinite(g)) and np.abs(g).max() > 0, name
        np.testing.assert_allclose(g, ref, atol=2e-4 * np.abs(ref).max(),
                                   err_msg=name)


def test_gradients_without_shifts_match_finite_differences():
    f0, amps, dist = random_controls(1, 6, 5, 200, 300)
    f0 = f0.astype(np.float64)

    def loss(f0_value):
        audio = core.harmonic_synthesis(f0_value, amps,
                                        harmonic_distribution=dist,
                                        n_samples=6 * 64)
        return tf.reduce_sum(tf.sin(tf.range(384, dtype=tf.float32)) * audio)

    f0_t = tf.constant(f0, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(f0_t)
        value = loss(f0_t)
    grad = tape.gradient(value, f0_t).numpy()
    eps = 1e-2
    for j in (0, 2, 5):
        bump = np.zeros_like(f0)
        bump[0, j, 0] = eps
        numeric = (loss(f0 + bump) - loss(f0 - bump)).numpy() / (2 * eps)
        np.testing.assert_allclose(grad[0, j, 0], numeric, rtol=2e-2,
                                   atol=1e-3 * np.abs(grad).max())


def test_graph_mode_and_new_shapes():
    """tf.function (unknown batch), XLA and eager give the same audio."""
    spec = [tf.TensorSpec([None, 10, 1]), tf.TensorSpec([None, 10, 1]),
            tf.TensorSpec([None, 10, 7])]

    def synth(f0, amps, dist):
        return core.harmonic_synthesis(f0, amps, harmonic_distribution=dist,
                                       n_samples=640)

    graph = tf.function(synth, input_signature=spec)
    for batch in (1, 3):
        controls = random_controls(batch, 10, 7, seed=batch)
        eager = synth(*controls).numpy()
        np.testing.assert_allclose(graph(*controls).numpy(), eager,
                                   atol=1e-6)
    # Inside a user's XLA function too.
    xla = tf.function(synth, jit_compile=True)
    np.testing.assert_allclose(xla(*controls).numpy(), eager, atol=1e-5)


@pytest.mark.parametrize('hop, n_harmonics', [(64, 100), (320, 20), (1, 60),
                                              (37, 33)])
def test_kernels_never_materialise_samples_times_oscillators(hop,
                                                             n_harmonics):
    """Every buffer of the compiled kernels is at most controls/audio size.

    Guards the XLA fusion that keeps memory O(batch * samples): a kernel
    rewrite that makes XLA store [batch, frames, hop, oscillators] fails.
    """
    batch, n_intervals = 2, 8
    phase = tf.zeros([batch, n_intervals, n_harmonics])
    bounds = tf.zeros([batch, n_intervals + 1, n_harmonics])
    d_audio = tf.zeros([batch, n_intervals * hop])
    kernels = synthesis._frame_kernels(hop, 'window')
    inputs = [(phase, bounds, bounds), (d_audio, phase, bounds),
              (d_audio, phase, bounds, bounds)]
    limit = 2 * max(batch * n_intervals * hop,
                    batch * (n_intervals + 1) * n_harmonics)
    for kernel, args in zip(kernels, inputs):
        hlo = kernel.experimental_get_compiler_ir(*args)(
            stage='optimized_hlo')
        entry = hlo[hlo.index('\nENTRY'):]
        sizes = [int(np.prod([int(d) for d in dims.split(',') if d]))
                 for dims in re.findall(r'= (?:f32|pred|s32)\[([\d,]*)\]',
                                        entry)]
        assert max(sizes) <= limit, (kernel, max(sizes))


# Drift and streaming ---------------------------------------------------------
def test_no_phase_drift_over_60_seconds():
    sample_rate, seconds, frame_rate = 16000, 60, 250
    n_frames, n_samples = seconds * frame_rate, seconds * sample_rate
    f0 = np.full([1, n_frames, 1], 220.0, np.float32)
    dist = np.full([1, n_frames, 20], 1 / 20, np.float32)
    audio = core.harmonic_synthesis(f0, np.ones_like(f0),
                                    harmonic_distribution=dist,
                                    n_samples=n_samples,
                                    sample_rate=sample_rate).numpy()[0]
    n = np.arange(n_samples)
    expected = sum(np.sin(2 * np.pi * (220.0 * k * n % sample_rate) /
                          sample_rate) for k in range(1, 21)) / 20
    assert np.abs(audio - expected).max() < 1e-3


def test_angular_cumsum_oscillator_bank_does_not_drift():
    n_samples = 60 * 16000
    freqs = np.full([1, n_samples, 1], 220.0, np.float32)
    audio = core.oscillator_bank(freqs, np.ones_like(freqs),
                                 use_angular_cumsum=True).numpy()[0]
    n = np.arange(n_samples)
    expected = np.sin(2 * np.pi * (220 * n % 16000) / 16000)
    assert np.abs(audio - expected).max() < 1e-3


@pytest.mark.parametrize('method', ['window', 'linear'])
def test_block_streaming_equals_one_shot(method):
    n_frames, hop, n_harmonics = 41, 64, 12
    f0, amps, dist = random_controls(2, n_frames, n_harmonics)
    shifts = np.random.uniform(-0.01, 0.01, dist.shape).astype(np.float32)
    kwargs = dict(amp_resample_method=method, add_endpoint=False)
    one_shot = core.harmonic_synthesis(
        f0, amps, harmonic_shifts=shifts, harmonic_distribution=dist,
        n_samples=(n_frames - 1) * hop, **kwargs)
    blocks, phase = [], None
    bounds = [0, 7, 8, 25, 40]  # Frames [a..b] per block, sharing b.
    for a, b in zip(bounds[:-1], bounds[1:]):
        block, phase = core.harmonic_synthesis(
            f0[:, a:b + 1], amps[:, a:b + 1],
            harmonic_shifts=shifts[:, a:b + 1],
            harmonic_distribution=dist[:, a:b + 1], n_samples=(b - a) * hop,
            initial_phase=phase, return_final_phase=True, **kwargs)
        blocks.append(block)
    np.testing.assert_allclose(tf.concat(blocks, 1).numpy(),
                               one_shot.numpy(), atol=1e-4)


def test_streaming_harmonic_synthesis():
    n_frames, hop, n_harmonics = 31, 50, 16
    f0, amps, dist = random_controls(2, n_frames, n_harmonics, 300, 900)
    kwargs = dict(sample_rate=16000, add_endpoint=False)
    one_shot, final = core.streaming_harmonic_synthesis(
        f0, amps, dist, n_samples=(n_frames - 1) * hop, **kwargs)
    assert final.shape == (2, 1, 1)
    # Equals harmonic_synthesis with the distribution renormalised below
    # Nyquist, and the final phase is the fundamental's.
    _, harmonic_final = core.harmonic_synthesis(
        f0, amps, harmonic_distribution=dist, n_samples=(n_frames - 1) * hop,
        amp_resample_method='linear', return_final_phase=True, **kwargs)
    assert phase_error(final.numpy(), harmonic_final.numpy()[..., :1]) < 1e-6
    normalized = core.normalize_harmonics(dist, f0, 16000).numpy()
    expected, expected_final = np_harmonic(
        f0, amps, normalized, (n_frames - 1) * hop, 16000, 'linear', False)
    np.testing.assert_allclose(one_shot.numpy(), expected, atol=1e-5)
    assert phase_error(final.numpy(), expected_final[..., :1]) < 1e-5
    blocks, phase = [], None
    for a, b in [(0, 10), (10, 11), (11, 30)]:
        block, phase = core.streaming_harmonic_synthesis(
            f0[:, a:b + 1], amps[:, a:b + 1], dist[:, a:b + 1],
            initial_phase=phase, n_samples=(b - a) * hop, **kwargs)
        blocks.append(block)
    np.testing.assert_allclose(tf.concat(blocks, 1).numpy(),
                               one_shot.numpy(), atol=1e-4)


def test_streaming_harmonic_synthesis_default_holds_last_frame():
    f0, amps, dist = random_controls(1, 10, 4)
    audio, final = core.streaming_harmonic_synthesis(f0, amps, dist,
                                                     n_samples=10 * 32)
    expected, expected_final = np_harmonic(f0, amps, dist, 320, 16000,
                                           'linear', True)
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-5)
    assert phase_error(final.numpy(), expected_final[..., :1]) < 1e-5


def test_harmonic_oscillator_bank_streams_and_matches_numpy():
    rng = np.random.default_rng(3)
    n_samples, n_harmonics = 900, 6
    freq = (300 + 100 * np.sin(np.linspace(0, 3, n_samples)))[
        np.newaxis, :, np.newaxis].astype(np.float32)
    amps = rng.uniform(0, 1, [1, n_samples, n_harmonics]).astype(np.float32)
    audio, final = core.harmonic_oscillator_bank(freq, amps)
    expected, expected_final = np_oscillators(
        freq.astype(np.float64) * np.arange(1, n_harmonics + 1), amps, 16000)
    np.testing.assert_allclose(audio.numpy(), expected, atol=1e-5)
    assert final.shape == (1, 1, 1)
    assert phase_error(final.numpy(), expected_final[..., :1]) < 1e-5
    blocks, phase = [], None
    for a, b in [(0, 100), (100, 450), (450, 900)]:
        block, phase = core.harmonic_oscillator_bank(
            freq[:, a:b], amps[:, a:b], initial_phase=phase)
        blocks.append(block)
    np.testing.assert_allclose(tf.concat(blocks, 1).numpy(), audio.numpy(),
                               atol=1e-5)


# Argument checks -------------------------------------------------------------
def test_harmonic_synthesis_checks_arguments():
    f0, amps, dist = random_controls(1, 10, 4)
    call = lambda **kw: core.harmonic_synthesis(
        **{**dict(frequencies=f0, amplitudes=amps,
                  harmonic_distribution=dist, n_samples=640), **kw})
    cases = [
        (dict(frequencies=f0[..., 0]), 'frequencies'),
        (dict(frequencies=np.concatenate([f0, f0], -1)), 'frequencies'),
        (dict(amplitudes=amps[..., 0]), 'amplitudes'),
        (dict(amplitudes=np.ones([1, 10, 3])), 'amplitudes'),
        (dict(harmonic_distribution=dist[0]), 'harmonic_distribution'),
        (dict(harmonic_shifts=np.zeros([1, 10, 5])), 'harmonic_shifts'),
        (dict(sample_rate=0), 'sample_rate'),
        (dict(sample_rate=-16000), 'sample_rate'),
        (dict(n_samples=0), 'n_samples'),
        (dict(amp_resample_method='sinc'), 'amp_resample_method'),
        (dict(initial_phase=np.zeros([1, 1, 3])), 'initial_phase'),
        (dict(initial_phase=np.zeros([1, 4])), 'initial_phase'),
        (dict(frequencies=f0[:, :1], amplitudes=amps[:, :1],
              harmonic_distribution=dist[:, :1], add_endpoint=False),
         'add_endpoint'),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=name):
            call(**kwargs)


def test_other_functions_check_arguments():
    ones = np.ones([1, 100, 2], np.float32)
    with pytest.raises(ValueError, match='frequency_envelopes'):
        core.oscillator_bank(ones[0], ones)
    with pytest.raises(ValueError, match='amplitude_envelopes'):
        core.oscillator_bank(ones, ones[0])
    with pytest.raises(ValueError, match='sample_rate'):
        core.oscillator_bank(ones, ones, sample_rate=0)
    with pytest.raises(ValueError, match='frequency'):
        core.harmonic_oscillator_bank(ones, ones)
    with pytest.raises(ValueError, match='initial_phase'):
        core.harmonic_oscillator_bank(ones[..., :1], ones,
                                      initial_phase=np.zeros([1, 1, 2]))
    with pytest.raises(ValueError, match='frequencies'):
        core.streaming_harmonic_synthesis(ones, ones[..., :1], n_samples=200)
    with pytest.raises(ValueError, match='amplitudes'):
        core.sinusoidal_synthesis(ones, np.ones([1, 100, 3]), n_samples=200)
    with pytest.raises(ValueError, match='chunk_size'):
        core.angular_cumsum(ones, chunk_size=0)
    with pytest.raises(ValueError, match='sample_rate'):
        core.remove_above_nyquist(ones, ones, sample_rate=-1)
