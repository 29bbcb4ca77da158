"""Tests of ddsp.synths against closed-form expectations."""
import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp import synths

SR = 16000
N_FRAMES, HOP = 50, 64
N_SAMPLES = N_FRAMES * HOP


def _spectrum(audio):
    """Magnitude spectrum of a Hann-windowed signal, and its bin frequencies."""
    audio = np.asarray(audio, np.float64)
    window = np.hanning(len(audio))
    mags = np.abs(np.fft.rfft(audio * window)) / (window.sum() / 2)
    return np.fft.rfftfreq(len(audio), 1 / SR), mags


def _harmonic_inputs(f0=250.0, distribution=(1.0, 0.5, 0.25), amp=0.8,
                     batch=1):
    hd = np.tile(np.asarray(distribution, np.float32), [batch, N_FRAMES, 1])
    return (np.full([batch, N_FRAMES, 1], amp, np.float32), hd,
            np.full([batch, N_FRAMES, 1], f0, np.float32))


def test_harmonic_matches_numpy_sum_of_sines():
    amps, hd, f0 = _harmonic_inputs()
    synth = synths.Harmonic(n_samples=N_SAMPLES, sample_rate=SR, scale_fn=None)
    audio = synth(amps, hd, f0).numpy()[0]
    t = np.arange(N_SAMPLES) / SR
    weights = np.array([1.0, 0.5, 0.25]) / 1.75  # normalized distribution
    expected = 0.8 * sum(w * np.sin(2 * np.pi * 250.0 * (k + 1) * t)
                         for k, w in enumerate(weights))
    np.testing.assert_allclose(audio, expected, atol=2e-4)


def test_harmonic_amplitude_ratios_in_spectrum():
    amps, hd, f0 = _harmonic_inputs(f0=250.0, distribution=(1.0, 0.5, 0.25))
    synth = synths.Harmonic(n_samples=N_SAMPLES, sample_rate=SR, scale_fn=None)
    freqs, mags = _spectrum(synth(amps, hd, f0).numpy()[0])
    peaks = [mags[np.argmin(np.abs(freqs - 250.0 * k))] for k in (1, 2, 3)]
    np.testing.assert_allclose(np.array(peaks) / peaks[0], [1.0, 0.5, 0.25],
                               rtol=0.02)


def test_harmonic_normalizes_below_nyquist():
    # f0 = 3 kHz: harmonics 3+ (9 kHz, ...) are above Nyquist (8 kHz).
    amps, hd, f0 = _harmonic_inputs(f0=3000.0, distribution=(1.0, 1.0, 1.0, 1.0))
    synth = synths.Harmonic(n_samples=N_SAMPLES, sample_rate=SR, scale_fn=None)
    controls = synth.get_controls(amps, hd, f0)
    np.testing.assert_allclose(controls['harmonic_distribution'][0, 0],
                               [0.5, 0.5, 0.0, 0.0], atol=1e-6)
    freqs, mags = _spectrum(synth(amps, hd, f0).numpy()[0])
    # All energy at 3 and 6 kHz: nothing folded back from 9 or 12 kHz.
    folded = [mags[np.argmin(np.abs(freqs - f))] for f in (7000.0, 4000.0)]
    assert max(folded) < 1e-3


def test_additive_is_harmonic_and_gin_registered():
    from ddsp import processors
    assert synths.Additive is synths.Harmonic
    gin.clear_config()
    try:
        gin.parse_config("""
            ProcessorGroup.dag = [(@synths.Additive(), ['a', 'h', 'f0'])]
            Additive.n_samples = 128
        """)
        group = processors.ProcessorGroup()
    finally:
        gin.clear_config()
    (synth,) = group.modules
    assert isinstance(synth, synths.Harmonic) and synth.n_samples == 128


def test_filtered_noise_is_seeded_and_shaped():
    mags = np.zeros([2, N_FRAMES, 17], np.float32)
    seeded = synths.FilteredNoise(n_samples=N_SAMPLES, seed=3)
    np.testing.assert_array_equal(seeded(mags), seeded(mags))
    unseeded = synths.FilteredNoise(n_samples=N_SAMPLES)
    assert unseeded(mags).shape == (2, N_SAMPLES)
    assert not np.allclose(unseeded(mags), unseeded(mags))


def test_filtered_noise_follows_magnitude_response():
    # Low-pass: bands below 2 kHz pass, bands above are silent.
    n_bands = 65
    band_hz = np.linspace(0, SR / 2, n_bands)
    mags = np.tile((band_hz < 2000).astype(np.float32), [1, N_FRAMES, 1])
    synth = synths.FilteredNoise(n_samples=N_SAMPLES, window_size=0,
                                 scale_fn=None, seed=0)
    freqs, spec = _spectrum(synth(mags).numpy()[0])
    passband = np.mean(spec[(freqs > 200) & (freqs < 1500)] ** 2)
    stopband = np.mean(spec[freqs > 3000] ** 2)
    assert 10 * np.log10(passband / stopband) > 30


def test_wavetable_with_sine_table_is_a_sine():
    table = np.sin(2 * np.pi * np.arange(256) / 256).astype(np.float32)
    wavetables = np.tile(table, [1, N_FRAMES, 1])
    synth = synths.Wavetable(n_samples=N_SAMPLES, sample_rate=SR, scale_fn=None)
    audio = synth(np.full([1, N_FRAMES, 1], 0.5, np.float32), wavetables,
                  np.full([1, N_FRAMES, 1], 500.0, np.float32)).numpy()[0]
    freqs, mags = _spectrum(audio)
    assert abs(freqs[np.argmax(mags)] - 500.0) <= freqs[1]
    np.testing.assert_allclose(np.sqrt(np.mean(audio[HOP:] ** 2)),
                               0.5 / np.sqrt(2), rtol=0.02)


def test_sinusoidal_places_sinusoids_and_bounds_frequencies():
    synth = synths.Sinusoidal(n_samples=N_SAMPLES, sample_rate=SR,
                              amp_scale_fn=None, freq_scale_fn=None)
    freqs_in = np.tile(np.float32([440.0, 1320.0]), [1, N_FRAMES, 1])
    amps_in = np.tile(np.float32([0.5, 0.25]), [1, N_FRAMES, 1])
    freqs, mags = _spectrum(synth(amps_in, freqs_in).numpy()[0])
    peaks = [mags[np.argmin(np.abs(freqs - f))] for f in (440.0, 1320.0)]
    np.testing.assert_allclose(peaks, [0.5, 0.25], rtol=0.03)
    bounded = synths.Sinusoidal(n_samples=N_SAMPLES).get_controls(
        tf.random.normal([1, N_FRAMES, 4]), 10 * tf.random.normal([1, N_FRAMES, 4]))
    assert np.all(bounded['frequencies'] >= 0)
    assert np.all(bounded['frequencies'] <= 8000)


@pytest.mark.parametrize('make, inputs', [
    (lambda: synths.Harmonic(n_samples=N_SAMPLES),
     lambda r: [r([1, N_FRAMES, 1]), r([1, N_FRAMES, 8]),
                tf.fill([1, N_FRAMES, 1], 200.0)]),
    (lambda: synths.FilteredNoise(n_samples=N_SAMPLES, seed=1),
     lambda r: [r([1, N_FRAMES, 9])]),
    (lambda: synths.Wavetable(n_samples=N_SAMPLES),
     lambda r: [r([1, N_FRAMES, 1]), r([1, N_FRAMES, 64]),
                tf.fill([1, N_FRAMES, 1], 200.0)]),
    (lambda: synths.Sinusoidal(n_samples=N_SAMPLES),
     lambda r: [r([1, N_FRAMES, 3]), r([1, N_FRAMES, 3])]),
    (lambda: synths.TensorToAudio(), lambda r: [r([1, N_SAMPLES, 1])]),
], ids=['harmonic', 'filtered_noise', 'wavetable', 'sinusoidal', 'tensor'])
def test_gradients_are_finite_and_nonzero(make, inputs):
    synth = make()
    rng = np.random.default_rng(0)
    values = inputs(lambda shape: tf.constant(rng.standard_normal(shape),
                                              tf.float32))
    with tf.GradientTape() as tape:
        tape.watch(values)
        loss = tf.reduce_mean(tf.square(synth(*values)))
    grads = tape.gradient(loss, values)
    trainable = [g for g, v in zip(grads, values) if g is not None]
    assert trainable, 'no gradient reached any input'
    for grad in trainable:
        assert np.all(np.isfinite(grad))
    assert any(np.abs(g).max() > 0 for g in trainable)


def test_bad_shapes_raise_value_errors():
    with pytest.raises(ValueError, match='magnitudes'):
        synths.FilteredNoise(n_samples=64)(tf.ones([1, 65]))
    with pytest.raises(ValueError, match='samples'):
        synths.TensorToAudio()(tf.ones([1, 64, 2]))
