"""Tests of ddsp.processors: ProcessorGroup (incl. the gin DAG), Add, Mix, Crop."""
import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp import effects, processors, synths  # noqa: F401 (gin registrations)

N_FRAMES, N_SAMPLES = 20, 1280

GIN_DAG = """
ProcessorGroup.dag = [
    (@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz']),
    (@synths.FilteredNoise(), ['noise_magnitudes']),
    (@processors.Add(), ['filtered_noise/signal', 'harmonic/signal']),
    (@effects.Reverb(), ['add/signal'])]
Harmonic.n_samples = %d
FilteredNoise.n_samples = %d
Reverb.trainable = True
Reverb.reverb_length = 400
""" % (N_SAMPLES, N_SAMPLES)


def _features(batch=2):
    rng = np.random.default_rng(0)
    return {
        'amps': tf.constant(rng.standard_normal([batch, N_FRAMES, 1]), tf.float32),
        'harmonic_distribution': tf.constant(
            rng.standard_normal([batch, N_FRAMES, 10]), tf.float32),
        'f0_hz': tf.fill([batch, N_FRAMES, 1], 220.0),
        'noise_magnitudes': tf.constant(
            rng.standard_normal([batch, N_FRAMES, 17]), tf.float32),
    }


def test_gin_processor_group_builds_runs_and_exposes_nested_keys():
    gin.clear_config()
    gin.parse_config(GIN_DAG)
    try:
        group = processors.ProcessorGroup()
        out = group(_features(), return_outputs_dict=True)
    finally:
        gin.clear_config()
    controls = out['controls']
    assert out['signal'].shape == (2, N_SAMPLES)
    for key in ('harmonic/controls/amplitudes', 'harmonic/controls/f0_hz',
                'harmonic/signal', 'filtered_noise/controls/magnitudes',
                'add/signal', 'reverb/controls/ir', 'reverb/signal',
                'out/signal', 'inputs/f0_hz'):
        first, *rest = key.split('/')
        value = controls[first]
        for part in rest:
            value = value[part]
        assert value is not None, key
    np.testing.assert_allclose(out['signal'], controls['out']['signal'])
    # The trainable reverb's IR is tracked through the group.
    assert [v.name for v in group.trainable_variables] == ['ir']


def test_nested_processor_group_is_a_processor():
    inner = processors.ProcessorGroup(
        dag=[(processors.Add(), ['a', 'b'])], name='inner')
    outer = processors.ProcessorGroup(
        dag=[(inner, ['inputs']), (processors.Add(name='add2'),
                                   ['inner/signal', 'a'])])
    out = outer({'a': tf.ones([1, 3]), 'b': tf.ones([1, 3])})
    np.testing.assert_allclose(out, 3 * np.ones([1, 3]))


def test_add_is_exact_sum():
    a, b = np.random.rand(2, 50).astype(np.float32), np.random.rand(2, 50)
    np.testing.assert_allclose(processors.Add()(a, b), a + b, rtol=1e-6)


@pytest.mark.parametrize('logit', [0.0, 3.0, -20.0])
def test_mix_is_constant_power_crossfade(logit):
    weight_one = 1.0 / (1.0 + np.exp(-logit))
    s1 = np.random.rand(2, 64).astype(np.float32)
    s2 = np.random.rand(2, 64).astype(np.float32)
    mix = np.full([2, 4, 1], logit, np.float32)
    out = processors.Mix()(s1, s2, mix).numpy()
    expected = np.sqrt(weight_one) * s1 + np.sqrt(1 - weight_one) * s2
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_mix_rejects_wrong_mix_level_rank():
    with pytest.raises(ValueError, match='nn_out_mix_level'):
        processors.Mix()(tf.ones([1, 8]), tf.ones([1, 8]), tf.ones([1, 8]))


@pytest.mark.parametrize('location, start', [('front', 4), ('center', 2),
                                             ('back', 0)])
def test_crop_removes_padding_at_location(location, start):
    audio = np.arange(20, dtype=np.float32)[np.newaxis]
    out = processors.Crop(frame_size=5, crop_location=location)(audio).numpy()
    np.testing.assert_array_equal(out[0], np.arange(start, start + 16))


def test_crop_rejects_unknown_location():
    with pytest.raises(ValueError, match='crop_location'):
        processors.Crop(frame_size=4, crop_location='middle')
