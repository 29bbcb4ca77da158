"""Tests of ddsp.core.wavetables against NumPy interpolation references."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import core


def np_lookup(phase, table):
    """Linear interpolation in one period of `table` at phase (cycles)."""
    n = len(table)
    return np.interp(np.mod(phase, 1.0) * n, np.arange(n + 1),
                     np.append(table, table[0]))


def np_window_envelope(frames, n_samples):
    hop = n_samples // len(frames)
    m = np.arange(hop)
    s = np.sin(np.pi * m / (2 * hop))**2
    ext = np.append(frames, frames[-1])
    return (ext[:-1, None] + s * (ext[1:, None] - ext[:-1, None])).ravel()


def np_linear_envelope(frames, n_samples):
    """Frame j at sample j * N / T, last frame held ([T, ...] -> [N, ...])."""
    position = np.arange(n_samples) * len(frames) / n_samples
    index = np.floor(position).astype(int)
    frac = (position - index).reshape([-1] + [1] * (frames.ndim - 1))
    nxt = np.minimum(index + 1, len(frames) - 1)
    return frames[index] + frac * (frames[nxt] - frames[index])


# linear_lookup ---------------------------------------------------------------
@pytest.mark.parametrize('channel_axis', [True, False])
def test_linear_lookup_one_table_per_example(channel_axis):
    rng = np.random.default_rng(0)
    phase = rng.uniform(0.0, 1.0, [3, 500]).astype(np.float32)
    tables = rng.standard_normal([3, 64]).astype(np.float32)
    out = core.linear_lookup(phase[..., None] if channel_axis else phase,
                             tables)
    expected = np.stack([np_lookup(p, t) for p, t in zip(phase, tables)])
    assert out.shape == (3, 500)
    np.testing.assert_allclose(out.numpy(), expected, atol=2e-6)


def test_linear_lookup_one_table_per_sample():
    rng = np.random.default_rng(1)
    phase = rng.uniform(0.0, 1.0, [2, 50, 1]).astype(np.float32)
    tables = rng.standard_normal([2, 50, 16]).astype(np.float32)
    out = core.linear_lookup(phase, tables).numpy()
    expected = [[np_lookup(phase[b, n, 0], tables[b, n]) for n in range(50)]
                for b in range(2)]
    np.testing.assert_allclose(out, expected, atol=2e-6)


def test_linear_lookup_wraps_around():
    table = np.array([[0.0, 1.0, 2.0, 3.0]], np.float32)
    phase = np.array([[0.0, 0.125, 0.875, 1.0, 1.25, -0.25]], np.float32)
    out = core.linear_lookup(phase, table).numpy()
    # 0.875 lies between the last entry and the first (wrap): 3 -> 0.
    np.testing.assert_allclose(out, [[0.0, 0.5, 1.5, 0.0, 1.0, 3.0]],
                               atol=1e-6)


def test_linear_lookup_gradients():
    table = tf.constant(np.random.randn(2, 32), tf.float32)
    phase = tf.constant(np.random.uniform(0, 1, [2, 40, 1]), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([table, phase])
        out = tf.reduce_sum(core.linear_lookup(phase, table)**2)
    d_table, d_phase = tape.gradient(out, [table, phase])
    assert np.all(np.isfinite(d_table)) and np.abs(d_table).max() > 0
    assert np.all(np.isfinite(d_phase)) and np.abs(d_phase).max() > 0


# harmonic_distribution_to_wavetable -----------------------------------------
@pytest.mark.parametrize('n_wavetable', [64, 63, 2048])
def test_harmonic_distribution_to_wavetable(n_wavetable):
    dist = np.random.uniform(0, 1, [2, 3, 10]).astype(np.float32)
    out = core.harmonic_distribution_to_wavetable(dist, n_wavetable).numpy()
    t = np.arange(n_wavetable)
    basis = np.cos(2 * np.pi * np.outer(np.arange(1, 11), t) / n_wavetable)
    assert out.shape == (2, 3, n_wavetable)
    np.testing.assert_allclose(out, dist @ basis, atol=2e-6)


def test_harmonic_distribution_to_wavetable_checks_length():
    with pytest.raises(ValueError, match='n_wavetable'):
        core.harmonic_distribution_to_wavetable(np.ones([1, 1, 32]), 64)


# wavetable_synthesis ---------------------------------------------------------
def test_wavetable_synthesis_single_table():
    n_frames, n_samples, sr = 20, 2000, 16000
    rng = np.random.default_rng(2)
    f0 = np.linspace(200, 300, n_frames, dtype=np.float32)
    amps = rng.uniform(0.2, 1.0, n_frames).astype(np.float32)
    table = rng.standard_normal(128).astype(np.float32)
    out = core.wavetable_synthesis(f0[None, :, None], amps[None, :, None],
                                   table[None], n_samples, sr).numpy()[0]
    freq = np_linear_envelope(f0.astype(np.float64), n_samples)
    phase = np.cumsum(freq / sr) - freq / sr
    expected = np_window_envelope(amps, n_samples) * np_lookup(phase, table)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_wavetable_synthesis_frame_wise_tables():
    n_frames, n_samples, sr = 10, 1000, 16000
    rng = np.random.default_rng(3)
    f0 = np.full([1, n_frames, 1], 440.0, np.float32)
    amps = np.ones([1, n_frames, 1], np.float32)
    tables = rng.standard_normal([1, 5, 64]).astype(np.float32)
    out = core.wavetable_synthesis(f0, amps, tables, n_samples, sr).numpy()[0]
    # Tables interpolated to the samples, then looked up.
    per_sample = np_linear_envelope(tables[0].astype(np.float64), n_samples)
    phase = 440.0 * np.arange(n_samples) / sr
    expected = [np_lookup(p, t) for p, t in zip(phase, per_sample)]
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_wavetable_synthesis_of_sine_does_not_drift():
    sr, seconds = 16000, 30
    table = core.harmonic_distribution_to_wavetable(
        np.array([[[1.0]]], np.float32), 2048)[:, 0]
    f0 = np.full([1, seconds * 50, 1], 220.0, np.float32)
    out = core.wavetable_synthesis(f0, np.ones_like(f0), table,
                                   seconds * sr, sr).numpy()[0]
    n = np.arange(seconds * sr)
    expected = np.cos(2 * np.pi * (220 * n % sr) / sr)
    # Linear interpolation of a 2048-point cosine: error ~ (pi / 2048)**2 / 2.
    assert np.abs(out - expected).max() < 2e-5


def test_wavetable_synthesis_checks_arguments():
    ones = np.ones([1, 10, 1], np.float32)
    with pytest.raises(ValueError, match='frequencies'):
        core.wavetable_synthesis(ones[..., 0], ones, np.ones([1, 8]), 100)
    with pytest.raises(ValueError, match='amplitudes'):
        core.wavetable_synthesis(ones, np.ones([1, 10, 2]), np.ones([1, 8]),
                                 100)
    with pytest.raises(ValueError, match='wavetables'):
        core.wavetable_synthesis(ones, ones, np.ones([8]), 100)
    with pytest.raises(ValueError, match='sample_rate'):
        core.wavetable_synthesis(ones, ones, np.ones([1, 8]), 100,
                                 sample_rate=0)


# variable_length_delay -------------------------------------------------------
def np_delay(phase, audio, max_length):
    delay = np.clip(phase, 0, 1) * max_length
    n = np.arange(len(audio))
    past = lambda i: np.where(i >= 0, audio[np.maximum(i, 0)], 0.0)
    whole = np.floor(delay).astype(int)
    frac = delay - whole
    return (1 - frac) * past(n - whole) + frac * past(n - whole - 1)


def test_variable_length_delay_is_accurate():
    rng = np.random.default_rng(4)
    audio = rng.standard_normal([2, 3000]).astype(np.float32)
    # A slowly modulated delay (chorus-like) spanning the whole range.
    phase = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(3000) / 3000 +
                                np.array([[0.0], [1.0]])))
    phase = phase.astype(np.float32)
    out = core.variable_length_delay(phase[..., None], audio, max_length=40)
    expected = [np_delay(p, a, 40) for p, a in zip(phase, audio)]
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-5)


def test_variable_length_delay_integer_delays_are_shifts():
    audio = np.random.randn(1, 100).astype(np.float32)
    for delay, max_length in [(0, 8), (3, 8), (8, 8)]:
        phase = np.full([1, 100, 1], delay / max_length, np.float32)
        out = core.variable_length_delay(phase, audio, max_length).numpy()
        expected = np.concatenate([np.zeros([1, delay]),
                                   audio[:, :100 - delay]], 1)
        np.testing.assert_allclose(out, expected, atol=1e-6)


def test_variable_length_delay_gradients_and_checks():
    audio = tf.constant(np.random.randn(1, 200), tf.float32)
    phase = tf.constant(np.random.uniform(0.1, 0.9, [1, 200, 1]), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([audio, phase])
        out = tf.reduce_sum(core.variable_length_delay(phase, audio, 20)**2)
    for grad in tape.gradient(out, [audio, phase]):
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    with pytest.raises(ValueError, match='audio'):
        core.variable_length_delay(phase, audio[..., None], 20)
    with pytest.raises(ValueError, match='phase'):
        core.variable_length_delay(phase[0], audio, 20)
    with pytest.raises(ValueError, match='max_length'):
        core.variable_length_delay(phase, audio, 0)
