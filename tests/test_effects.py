"""Tests of ddsp.effects against closed-form expectations."""
import numpy as np
import pytest
import tensorflow as tf

from ddsp import effects

N = 2000


def _audio(batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal([batch, N]).astype(
        np.float32)


def _delayed(audio, delay):
    out = np.zeros_like(audio)
    out[:, delay:] = audio[:, :-delay]
    return out


@pytest.mark.parametrize('add_dry', [False, True])
def test_reverb_with_delayed_impulse_is_a_delayed_copy(add_dry):
    audio, delay = _audio(), 37
    ir = np.zeros([2, 100], np.float32)
    ir[:, delay] = 0.5
    out = effects.Reverb(add_dry=add_dry)(audio, ir).numpy()
    expected = 0.5 * _delayed(audio, delay) + (audio if add_dry else 0)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_reverb_zeroes_the_dry_sample_of_the_ir():
    ir = np.zeros([1, 50], np.float32)
    ir[0, 0] = 1.0
    out = effects.Reverb(add_dry=False)(_audio(1), ir)
    np.testing.assert_allclose(out, 0.0, atol=1e-6)


def test_reverb_accepts_3d_ir_and_broadcasts_batch_one():
    ir = np.zeros([1, 10, 1], np.float32)
    ir[0, 3, 0] = 1.0
    out = effects.Reverb(add_dry=False)(_audio(3), ir).numpy()
    np.testing.assert_allclose(out, _delayed(_audio(3), 3), atol=1e-4)


def test_trainable_reverbs_own_variables_and_others_need_controls():
    for cls, names in [(effects.Reverb, ['ir']),
                       (effects.ExpDecayReverb, ['gain', 'decay']),
                       (effects.FilteredNoiseReverb, ['magnitudes'])]:
        kwargs = dict(reverb_length=400)
        if cls is effects.FilteredNoiseReverb:
            kwargs.update(n_frames=10, n_filter_banks=4)
        trainable = cls(trainable=True, **kwargs)
        assert trainable(_audio()).shape == (2, N)
        assert sorted(v.name for v in trainable.trainable_variables) == sorted(names)
        fixed = cls(trainable=False, **kwargs)
        assert not fixed.trainable_variables
        with pytest.raises(ValueError, match='must be given'):
            fixed(_audio())


def test_parametric_reverb_irs_are_deterministic():
    exp = effects.ExpDecayReverb(reverb_length=1000)
    gain, decay = tf.fill([1, 1], 1.0), tf.fill([1, 1], 1.0)
    ir1 = exp.get_controls(_audio(1), gain, decay)['ir']
    ir2 = exp.get_controls(_audio(1), gain, decay)['ir']
    np.testing.assert_array_equal(ir1, ir2)
    # Exponential decay envelope: the tail is much quieter than the head.
    head, tail = np.abs(ir1[0, :100]).mean(), np.abs(ir1[0, -100:]).mean()
    assert tail < 0.1 * head
    noise = effects.FilteredNoiseReverb(reverb_length=640, n_frames=10,
                                        n_filter_banks=4)
    mags = tf.zeros([1, 10, 4])
    np.testing.assert_array_equal(noise.get_controls(_audio(1), mags)['ir'],
                                  noise.get_controls(_audio(1), mags)['ir'])


def test_fir_filter_with_flat_response_is_identity():
    audio = _audio()
    mags = np.ones([2, 10, 33], np.float32)
    out = effects.FIRFilter(window_size=0, scale_fn=None)(audio, mags).numpy()
    # A flat magnitude response is a (delay-compensated) unit impulse.
    np.testing.assert_allclose(out[:, 64:-64], audio[:, 64:-64], atol=1e-4)


def test_mod_delay_with_constant_phase_is_fixed_delay():
    audio = _audio(1)
    sample_rate, center_ms, depth_ms = 16000, 2.0, 1.0
    # phase 0.75 -> delay = 2 + 1 * 0.5 = 2.5 ms = 40 samples.
    delay = effects.ModDelay(center_ms=center_ms, depth_ms=depth_ms,
                             sample_rate=sample_rate, gain_scale_fn=None,
                             phase_scale_fn=None, add_dry=False)
    out = delay(audio, np.full([1, N, 1], 0.5, np.float32),
                np.full([1, N, 1], 0.75, np.float32)).numpy()
    np.testing.assert_allclose(out[:, 48:], 0.5 * _delayed(audio, 40)[:, 48:],
                               atol=1e-4)


def test_mod_delay_rejects_negative_delays():
    with pytest.raises(ValueError, match='center_ms'):
        effects.ModDelay(center_ms=1.0, depth_ms=5.0)


@pytest.mark.parametrize('make, controls', [
    (lambda: effects.Reverb(trainable=True, reverb_length=300), lambda a, r: []),
    (lambda: effects.ExpDecayReverb(trainable=True, reverb_length=300),
     lambda a, r: []),
    (lambda: effects.FilteredNoiseReverb(trainable=True, reverb_length=320,
                                         n_frames=5, n_filter_banks=4),
     lambda a, r: []),
    (lambda: effects.FIRFilter(), lambda a, r: [r([2, 10, 17])]),
    (lambda: effects.ModDelay(), lambda a, r: [r([2, N, 1]), r([2, N, 1])]),
], ids=['reverb', 'exp_decay', 'filtered_noise_reverb', 'fir', 'mod_delay'])
def test_gradients_are_finite_and_nonzero(make, controls):
    effect = make()
    rng = np.random.default_rng(1)
    rand = lambda shape: tf.constant(rng.standard_normal(shape), tf.float32)
    audio = rand([2, N])
    values = [audio] + controls(audio, rand)
    effect(*values)  # Builds variables.
    sources = values + list(effect.trainable_variables)
    with tf.GradientTape() as tape:
        tape.watch(values)
        loss = tf.reduce_mean(tf.square(effect(*values)))
    grads = tape.gradient(loss, sources)
    for source, grad in zip(sources, grads):
        assert grad is not None, source.name if hasattr(source, 'name') else ''
        grad = tf.convert_to_tensor(grad)
        assert np.all(np.isfinite(grad))
        assert np.abs(grad).max() > 0
