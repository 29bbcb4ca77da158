"""Tests of ddsp.training.nn: DictLayer, splits, resampling, stacks, GRU."""
import gin
import keras
import numpy as np
import pytest
import tensorflow as tf

from ddsp.training import nn

N_OUT = 10
X = tf.ones([2, 5])


# ------------------ DictLayer -------------------------------------------------
class ExplicitKeys(nn.DictLayer):
    """Sets input/output keys in the constructor."""

    def __init__(self, input_keys=('x1', 'x2'), output_keys=('y1', 'y2', 'y3'),
                 **kwargs):
        super().__init__(input_keys, output_keys, **kwargs)
        self.dense = keras.layers.Dense(N_OUT)

    def call(self, x1, x2):
        return self.dense(x1), self.dense(x2), self.dense(x1)


class AnnotatedKeys(nn.DictLayer):
    """Input keys from argument names, output keys from the annotation."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(N_OUT)

    def call(self, x1, x2) -> ['y1', 'y2', 'y3']:
        return self.dense(x1), self.dense(x2), self.dense(x1)


class DefaultArgs(nn.DictLayer):
    """An optional input."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(N_OUT)

    def call(self, x1, x2=None) -> ['y1', 'y2', 'y3']:
        y2 = self.dense(x2) if x2 is not None else self.dense(x1)
        return self.dense(x1), y2, self.dense(x1)


class Optionals(nn.DictLayer):
    """Several optional inputs."""

    def call(self, x1, x2=None, x3=None) -> ['y']:
        y = x1
        if x2 is not None:
            y = y + 2.0 * x2
        if x3 is not None:
            y = y + 3.0 * x3
        return y


LAYER_CLASSES = {'explicit': ExplicitKeys, 'annotated': AnnotatedKeys,
                 'defaults': DefaultArgs}


def assert_outputs(layer, outputs):
    assert list(outputs) == list(layer.output_keys)
    for value in outputs.values():
        assert value.shape[-1] == N_OUT


@pytest.mark.parametrize('name', ['explicit', 'annotated'])
def test_dict_layer_accepts_tensors_kwargs_and_dicts(name):
    layer = LAYER_CLASSES[name]()
    assert_outputs(layer, layer(X, X))
    assert_outputs(layer, layer({'x1': X, 'x2': X}))
    assert_outputs(layer, layer(x1=X, x2=X))
    # Dicts are merged; extra keys are ignored.
    assert_outputs(layer, layer({'x1': X, 'ignore': 0}, {'x2': X, 'other': 1}))
    # Tensors first, the rest by key.
    assert_outputs(layer, layer(X, {'x2': X}))


@pytest.mark.parametrize('name', ['explicit', 'annotated'])
def test_dict_layer_raises_type_error_on_bad_inputs(name):
    layer = LAYER_CLASSES[name]()
    with pytest.raises(TypeError, match='missing'):
        layer(X)
    with pytest.raises(TypeError, match='missing'):
        layer({'x1': X})
    with pytest.raises(TypeError, match='missing'):
        layer({'asdf': X, 'x2': X})
    with pytest.raises(TypeError, match='both'):
        layer(X, {'x1': X, 'x2': X})
    with pytest.raises(TypeError, match='at most'):
        layer(X, X, X)


def test_duplicate_input_with_default_args_raises():
    # magenta/ddsp silently fed the dict's x1 into x2 here.
    with pytest.raises(TypeError, match='both'):
        DefaultArgs()(X, {'x1': X})


def test_explicit_and_annotated_keys_agree():
    explicit, annotated = ExplicitKeys(), AnnotatedKeys()
    assert explicit.input_keys == annotated.input_keys == ['x1', 'x2']
    assert explicit.output_keys == annotated.output_keys == ['y1', 'y2', 'y3']
    assert DefaultArgs().input_keys == ['x1']
    assert DefaultArgs().default_input_keys == ['x2']


@pytest.mark.parametrize('name', ['explicit', 'annotated', 'defaults'])
def test_renaming_input_and_output_keys(name):
    input_keys = ['input_1', 'input_2']
    output_keys = ['output_1', 'output_2', 'output_3']
    layer = LAYER_CLASSES[name](input_keys=input_keys, output_keys=output_keys)
    assert_outputs(layer, layer(X, X))
    assert_outputs(layer, layer({'input_1': X, 'input_2': X}))
    assert list(layer({'input_1': X, 'input_2': X})) == output_keys
    with pytest.raises(TypeError):
        layer({'x1': X, 'x2': X})


def assert_outputs_equal(outputs_1, outputs_2):
    assert set(outputs_1) == set(outputs_2)
    for key in outputs_1:
        np.testing.assert_allclose(outputs_1[key], outputs_2[key], rtol=1e-6)


def test_default_args_give_the_same_outputs():
    layer = DefaultArgs()
    assert_outputs_equal(layer(X, X), layer(X))
    assert_outputs_equal(layer({'x1': X, 'x2': X}), layer({'x1': X}))


def test_optional_args_are_read_in_the_right_order():
    layer = Optionals()
    np.testing.assert_allclose(layer({'x1': X})['y'], X)
    np.testing.assert_allclose(layer({'x1': X, 'x2': X})['y'], 3.0 * X)
    np.testing.assert_allclose(layer({'x1': X, 'x3': X})['y'], 4.0 * X)
    np.testing.assert_allclose(layer({'x1': X, 'x2': X, 'x3': X})['y'],
                               6.0 * X)
    np.testing.assert_allclose(layer(X, x3=X)['y'], 4.0 * X)


def test_nested_keys_are_looked_up():
    layer = ExplicitKeys(input_keys=['a/x', 'b'])
    assert_outputs(layer, layer({'a': {'x': X}, 'b': X}))


def test_string_return_annotation_and_keras_arguments():
    # `from __future__ import annotations` turns annotations into strings.
    class Layer(nn.DictLayer):

        def call(self, x, training=False) -> "['double', 'was_training']":
            return 2.0 * x, tf.cast(training, tf.float32)

    layer = Layer()
    assert layer.input_keys == ['x'] and layer.default_input_keys == []
    out = layer({'x': X}, training=True)
    np.testing.assert_allclose(out['double'], 2.0 * X)
    assert float(out['was_training']) == 1.0
    assert float(layer(X)['was_training']) == 0.0


def test_output_keys_must_match_outputs():
    class Layer(nn.DictLayer):

        def call(self, x) -> ['a', 'b']:
            return x

    with pytest.raises(ValueError, match='output keys'):
        Layer()(X)


def test_dict_layer_in_tf_function_and_keras_models():
    layer = AnnotatedKeys()
    eager = layer({'x1': X, 'x2': 2 * X})
    traced = tf.function(lambda d: layer(d, training=True))({'x1': X,
                                                              'x2': 2 * X})
    assert_outputs_equal(eager, traced)

    # Functional model.
    x1, x2 = keras.Input((5,)), keras.Input((5,))
    model = keras.Model([x1, x2], layer({'x1': x1, 'x2': x2}))
    assert_outputs_equal(eager, model([X, 2 * X]))

    # Subclassed model chaining two DictLayers through a dict.
    class Model(keras.Model):

        def __init__(self):
            super().__init__()
            self.first = Optionals()
            self.second = ExplicitKeys(input_keys=['y', 'x2'])

        def call(self, features, training=False):
            features = dict(features)
            features.update(self.first(features, training=training))
            return self.second(features, training=training)

    model = Model()
    out = tf.function(model)({'x1': X, 'x2': X})
    assert list(out) == ['y1', 'y2', 'y3']
    assert len(model.trainable_variables) == 2


def test_output_splits_layer():
    class Layer(nn.OutputSplitsLayer):

        def compute_output(self, a, b):
            return tf.concat([a, b], axis=-1)

    layer = Layer(output_splits=(('u', 2), ('v', 3)))
    assert layer.input_keys == ['a', 'b']
    out = layer({'a': X, 'b': X})
    assert out['u'].shape == (2, 2) and out['v'].shape == (2, 3)


# ------------------ Utilities -------------------------------------------------
def test_split_to_dict():
    tensor_splits = (('x1', 1), ('x2', 2), ('x3', 3))
    x1 = np.zeros((2, 3, 1), np.float32) + 1.0
    x2 = np.zeros((2, 3, 2), np.float32) + 2.0
    x3 = np.zeros((2, 3, 3), np.float32) + 3.0
    output = nn.split_to_dict(tf.constant(np.concatenate([x1, x2, x3], 2)),
                              tensor_splits)
    assert set(output) == {'x1', 'x2', 'x3'}
    np.testing.assert_array_equal(output['x1'], x1)
    np.testing.assert_array_equal(output['x2'], x2)
    np.testing.assert_array_equal(output['x3'], x3)


@pytest.mark.parametrize('n_t, stride', [(4, 2), (5, 5), (4, 1), (6, 4)])
def test_polyphase_resample_is_lossless(n_t, stride):
    x = tf.tile(tf.reshape(tf.range(n_t), [1, n_t, 1]), [2, 1, 3])
    layer_down = nn.PolyphaseResample(stride, 'down', 'pad')
    layer_up = nn.PolyphaseResample(stride, 'up', 'pad')
    x_down = layer_down(x)
    n_down = -(-n_t // stride)
    assert x_down.shape == (2, n_down, 3 * stride)
    x_recon = layer_up(x_down)
    np.testing.assert_array_equal(x_recon[:, :n_t], x)
    np.testing.assert_array_equal(x_recon[:, n_t:], 0)


def test_polyphase_resample_trim_and_4d():
    x = tf.reshape(tf.range(2 * 5 * 4, dtype=tf.float32), [2, 5, 1, 4])
    down = nn.polyphase_resample(x, 2, 'down', trim_or_pad='trim')
    assert down.shape == (2, 2, 1, 8)
    up = nn.polyphase_resample(tf.ones([2, 3, 5]), 2, 'up', trim_or_pad='trim')
    assert up.shape == (2, 6, 2)
    with pytest.raises(ValueError):
        nn.polyphase_resample(x, 2, 'sideways')


def test_get_nonlinearity():
    x = tf.constant([-1.0, 2.0])
    np.testing.assert_allclose(nn.get_nonlinearity('relu')(x), [0.0, 2.0])
    np.testing.assert_allclose(nn.get_nonlinearity('leaky_relu')(x),
                               [-0.2, 2.0], rtol=1e-6)
    np.testing.assert_allclose(nn.get_nonlinearity('softplus')(x),
                               np.log1p(np.exp([-1.0, 2.0])), rtol=1e-6)
    assert nn.get_nonlinearity(tf.sin) is tf.sin
    with pytest.raises(ValueError):
        nn.get_nonlinearity('not_a_nonlinearity')


@pytest.mark.parametrize('norm_type, axes, groups', [
    ('layer', (1, 2, 3), 1), ('instance', (1, 2), 8), ('group', None, 32)])
def test_normalize_op(norm_type, axes, groups):
    x = tf.random.normal([2, 5, 3, 64]) * 3.0 + 1.0
    y = nn.normalize_op(x, norm_type).numpy()
    if axes is None:  # Group: statistics per group of channels.
        y = y.reshape(2, 5, 3, groups, 64 // groups)
        axes = (1, 2, 4)
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=axes), 1.0, atol=1e-3)
    assert nn.normalize_op(x, None) is x
    layer = nn.Normalize(norm_type)
    assert layer(tf.ones([2, 5, 64])).shape == (2, 5, 64)
    assert len(layer.trainable_variables) == 2


def test_ensure_4d_round_trip():
    for shape in ([2, 3], [2, 3, 4], [2, 3, 1, 4]):
        x = tf.zeros(shape)
        y = nn.ensure_4d(x)
        assert len(y.shape) == 4
        assert nn.inv_ensure_4d(y, len(shape)).shape == x.shape


# ------------------ Stacks ----------------------------------------------------
# ------------------ Matrix product precision ----------------------------------
def test_matmul_precision_resolution(monkeypatch):
    from ddsp.training.nn import precision
    for has_amx, expected in [(True, 'bfloat16'), (False, 'float32')]:
        monkeypatch.setattr(precision, '_cpu_has_amx_bf16', lambda v=has_amx: v)
        assert nn.matmul_precision() == expected  # 'auto', no GPU here.
    gin.parse_config(
        "ddsp.training.nn.matmul_precision.precision = 'float32'")
    assert nn.matmul_precision() == 'float32'
    with nn.matmul_precision_scope('bfloat16'):  # The scope wins over gin.
        assert nn.matmul_precision() == 'bfloat16'
    assert nn.matmul_precision() == 'float32'
    with pytest.raises(ValueError, match='float16'):
        with nn.matmul_precision_scope('float16'):
            pass
    with pytest.raises(ValueError, match='float64'):
        nn.Dense(3, precision='float64')


def test_matmul_in_bfloat16_and_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal([2, 30, 64]).astype(np.float32)
    kernel = rng.standard_normal([64, 8]).astype(np.float32)
    exact = np.asarray(x, np.float64) @ kernel
    y32 = nn.matmul(tf.constant(x), tf.constant(kernel), 'float32')
    y16 = nn.matmul(tf.constant(x), tf.constant(kernel), 'bfloat16')
    assert y32.dtype == y16.dtype == tf.float32 and y16.shape == (2, 30, 8)
    np.testing.assert_allclose(y32, exact, atol=1e-4)
    error = np.abs(y16 - exact).max() / np.abs(exact).max()
    assert 1e-4 < error < 1e-2  # bfloat16 operands: 8 significant bits.


def test_dense_multiplies_in_bfloat16_only_in_training():
    tf.keras.utils.set_random_seed(0)
    x = tf.random.normal([3, 7, 5])
    ours = nn.Dense(4, activation='tanh')
    reference = keras.layers.Dense(4, activation='tanh')
    ours(x)
    reference(x)
    _copy_weights(ours, reference)
    expected = reference(x)
    with nn.matmul_precision_scope('bfloat16'):
        np.testing.assert_allclose(ours(x), expected, atol=1e-6)
        rounded = ours(x, training=True)
        assert 1e-5 < np.abs(rounded - expected).max() < 0.03
        explicit = nn.Dense(4, activation='tanh', precision='float32')
        explicit(x)
        _copy_weights(ours, explicit)
        np.testing.assert_allclose(explicit(x, training=True), expected,
                                   atol=1e-6)
    assert nn.Dense.from_config(explicit.get_config()).precision == 'float32'


@pytest.mark.parametrize('nonlinearity', ['leaky_relu', 'sigmoid'])
def test_fc_training_path_equals_layers(monkeypatch, nonlinearity):
    """In training, Fc runs fused_fc: same outputs and gradients."""
    from ddsp.training.nn import dense
    calls = []
    monkeypatch.setattr(dense, 'fused_fc', lambda *a, **k: calls.append(1)
                        or FUSED_FC(*a, **k))
    tf.keras.utils.set_random_seed(0)
    x = tf.random.normal([2, 9, 6])
    fc = nn.Fc(5, nonlinearity)
    fc(x)
    fc.layer_1.gamma.assign(tf.random.normal([5]))  # Not the identity.
    fc.layer_1.beta.assign(tf.random.normal([5]))

    def outputs_and_grads(training):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fc(x, training=training)
            loss = tf.reduce_sum(tf.sin(3.0 * y))
        return [y] + tape.gradient(loss, [x] + fc.trainable_variables)

    with nn.matmul_precision_scope('float32'):
        expected = outputs_and_grads(False)
        assert not calls
        for a, b in zip(outputs_and_grads(True), expected):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        assert calls
    with nn.matmul_precision_scope('bfloat16'):
        # Rounding to 8 significant bits, amplified by the normalization over
        # only 5 channels: up to ~3 % over random seeds.
        for a, b in zip(outputs_and_grads(True), expected):
            assert np.abs(a - b).max() < 0.05 * np.abs(b).max()


FUSED_FC = nn.dense.fused_fc


def test_fc_builds_on_a_first_training_call():
    x = tf.random.normal([2, 4, 3])
    fc = nn.Fc(5)
    with nn.matmul_precision_scope('float32'):
        y = fc(x, training=True)
    assert y.shape == (2, 4, 5)
    assert sorted(tuple(v.shape) for v in fc.trainable_variables) == [
        (3, 5), (5,), (5,), (5,)]
    np.testing.assert_allclose(fc(x), y, atol=1e-5)


def test_fc_stacks_shapes_and_variables():
    x = tf.random.normal([2, 7, 3])
    assert nn.Fc(16)(x).shape == (2, 7, 16)
    stack = nn.FcStack(16, 3)
    assert stack(x).shape == (2, 7, 16)
    assert len(stack.trainable_variables) == 3 * 4
    assert nn.FcStack(16, 0)(x) is x
    assert nn.FcStackOut(8, 2, 5)(x).shape == (2, 7, 5)
    assert nn.Identity()(x) is x


def test_rnn_layers_shapes():
    x = tf.random.normal([2, 7, 3])
    assert nn.Rnn(8, 'gru')(x).shape == (2, 7, 8)
    assert nn.Rnn(8, 'gru', return_sequences=False)(x).shape == (2, 8)
    assert nn.Rnn(8, 'lstm')(x).shape == (2, 7, 8)
    assert nn.Rnn(8, 'gru', bidir=True)(x).shape == (2, 7, 16)
    assert nn.RnnFc(8, 4, 'gru')(x).shape == (2, 7, 4)
    assert nn.RnnFc(8, 4, 'lstm', bidir=True, n_rnn=2)(x).shape == (2, 7, 4)
    assert nn.RnnSandwich(8, 1, 6)(x).shape == (2, 7, 8)
    lstm = nn.StatelessRnn(8, 'lstm')
    y, state = lstm(x, tf.zeros([2, 16]))
    assert y.shape == (2, 7, 8) and state.shape == (2, 16)
    with pytest.raises(ValueError):
        nn.Rnn(8, 'transformer')


def _copy_weights(src, dst):
    for a, b in zip(src.weights, dst.weights):
        assert a.shape == b.shape
        b.assign(a)


@pytest.mark.parametrize('training', [False, True])  # True: XLA loops.
def test_fused_gru_matches_keras_gru_with_gradients(training):
    """The fused GRU computes exactly what keras.layers.GRU computes."""
    with nn.matmul_precision_scope('float32'):
        _check_fused_gru_matches_keras_gru(training)


def _check_fused_gru_matches_keras_gru(training):
    x = tf.random.normal([3, 11, 5])
    h0 = tf.random.normal([3, 8])
    fused = nn.StatelessRnn(8, 'gru', fused=True)
    keras_gru = nn.StatelessRnn(8, 'gru', fused=False)
    fused(x, h0)
    keras_gru(x, h0)
    _copy_weights(fused, keras_gru)
    weights = [1.0 + tf.range(8, dtype=tf.float32)]

    def loss_and_grads(layer):
        with tf.GradientTape() as tape:
            tape.watch([x, h0])
            y, h = layer(x, h0, training=training)
            loss = tf.reduce_sum(tf.sin(y) * weights) + tf.reduce_sum(h * h)
        return [y, h] + tape.gradient(loss, [x, h0] +
                                      layer.trainable_variables)

    results_fused = tf.function(loss_and_grads)(fused)
    results_keras = loss_and_grads(keras_gru)
    for a, b in zip(results_fused, results_keras):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    # Eager execution gives the same outputs as tf.function.
    np.testing.assert_allclose(fused(x, h0)[0], results_fused[0], atol=1e-6)


def test_fused_gru_bfloat16_products_stay_close_to_float32():
    """bfloat16 input projection and weight gradients: ~1 % of float32."""
    tf.keras.utils.set_random_seed(0)
    x = tf.random.normal([4, 50, 16])
    rnn = nn.Rnn(32, 'gru', fused=True)

    def outputs_and_grads(precision):
        with nn.matmul_precision_scope(precision):
            with tf.GradientTape() as tape:
                y = rnn(x, training=True)
                loss = tf.reduce_sum(tf.sin(y))
            return [y] + tape.gradient(loss, rnn.trainable_variables)

    exact = outputs_and_grads('float32')
    rounded = outputs_and_grads('bfloat16')
    for a, b in zip(rounded, exact):
        error = np.abs(a - b).max() / np.abs(b).max()
        assert 1e-6 < error < 0.02  # Rounded, but only just.


def test_fused_gru_under_xla_and_mixed_precision():
    x = tf.random.normal([2, 6, 3])
    rnn = nn.Rnn(4, 'gru', fused=True)
    expected = rnn(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(rnn(x))
    expected_grads = tape.gradient(loss, rnn.trainable_variables)

    @tf.function(jit_compile=True)
    def jitted():
        with tf.GradientTape() as tape:
            y = rnn(x)
            loss = tf.reduce_sum(y)
        return y, tape.gradient(loss, rnn.trainable_variables)

    y, grads = jitted()
    np.testing.assert_allclose(y, expected, atol=1e-5)
    for a, b in zip(grads, expected_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    y16 = nn.fused_gru(tf.cast(x, tf.bfloat16), *rnn.rnn.cell.weights)[0]
    assert y16.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y16, tf.float32), expected, atol=0.05)


def test_dilated_conv_stack_shapes():
    x = tf.random.normal([2, 16, 3])
    z = tf.random.normal([2, 16, 4])
    stack = nn.DilatedConvStack(ch=8, layers_per_stack=2, stacks=2,
                                norm_type='layer')
    assert stack(x).shape == (2, 16, 8)
    conditional = nn.DilatedConvStack(ch=8, layers_per_stack=2, stacks=1,
                                      conditional=True, norm_type='instance')
    assert conditional([x, z]).shape == (2, 16, 8)
    up = nn.DilatedConvStack(ch=8, layers_per_stack=1, stacks=2,
                             resample_type='upsample', resample_stride=2)
    assert up(x).shape == (2, 64, 8)
    down = nn.DilatedConvStack(ch=8, layers_per_stack=1, stacks=2,
                               resample_type='downsample', resample_stride=2,
                               resample_after_convolve=False)
    assert down(x).shape == (2, 4, 8)
    # Every sub-layer is tracked: 1 + 2 * 2 convs (kernel, bias) and 4 norms.
    assert len(stack.trainable_variables) == 2 * 5 + 2 * 4


def test_resnet_shapes():
    x = tf.random.normal([1, 3, 64, 1])
    resnet = nn.ResNet('small')
    assert resnet(x).shape == (1, 3, 2, 1024)
    with pytest.raises(ValueError):
        nn.ResNet('tiny')


@gin.configurable
def nn_test_holder(stack=None, dense=None):
    return stack, dense


def test_gin_references():
    gin.clear_config()
    try:
        gin.parse_config("""
            nn_test_holder.stack = @nn.FcStack()
            nn_test_holder.dense = @tf.keras.layers.Dense()
            nn.FcStack.ch = 4
            tf.keras.layers.Dense.units = 3
        """)
        stack, dense = nn_test_holder()
        assert isinstance(stack, nn.FcStack)
        assert stack(tf.zeros([1, 2, 5])).shape == (1, 2, 4)
        assert type(dense) is keras.layers.Dense and dense.units == 3
    finally:
        gin.clear_config()
