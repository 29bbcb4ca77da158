"""Dense and normalization layers, shapes, resampling and layer containers.

`Fc`/`FcStack`/`FcStackOut` (Dense -> LayerNorm -> nonlinearity stacks),
`Normalize`/`ConditionalNorm` (instance/layer/group normalization, FiLM),
`PolyphaseResample`, `Identity`, the 4-D shape helpers and the `_Container`
and `_LayerSequence` bases used by the other network modules.
"""
import functools
from typing import Optional

import gin
import keras
import tensorflow as tf

from ddsp.training.nn.precision import Dense
from ddsp.training.nn.precision import resolve_precision

tfkl = keras.layers

# Gin module of the registered layers: they stay `ddsp.training.nn.X`.
_MODULE = 'ddsp.training.nn'


# ------------------ Containers ------------------------------------------------
class _Container(tfkl.Layer):
    """A layer made of sub-layers, which build on their first call.

    Without a `build` method, Keras 3 traces `call()` symbolically before the
    first call to build the sub-layers, and does so again at every level of
    nesting; this saves those extra traces (KERAS3-NOTES trap 11).
    """

    def build(self, input_shape=None):
        del input_shape
        self.built = True


# ------------------ Shapes ----------------------------------------------------
def ensure_4d(x):
    """[b, ch] -> [b, 1, 1, ch]; [b, t, ch] -> [b, t, 1, ch]; 4-D unchanged."""
    if len(x.shape) == 2:
        return x[:, tf.newaxis, tf.newaxis, :]
    if len(x.shape) == 3:
        return x[:, :, tf.newaxis, :]
    return x


def inv_ensure_4d(x, n_dims: int):
    """Removes the dimensions added by `ensure_4d` to an `n_dims` tensor."""
    if n_dims == 2:
        return x[:, 0, 0, :]
    if n_dims == 3:
        return x[:, :, 0, :]
    return x


def get_nonlinearity(nonlinearity):
    """A Keras activation or `tf.nn` function by name (callables unchanged)."""
    if callable(nonlinearity):
        return nonlinearity
    try:
        return keras.activations.get(nonlinearity)
    except ValueError:
        pass
    try:
        return getattr(tf.nn, nonlinearity)
    except AttributeError:
        raise ValueError(
            f'Unknown nonlinearity {nonlinearity!r}: not a Keras activation or '
            'a tf.nn function.') from None


# ------------------ Normalization ---------------------------------------------
def normalize_op(x, norm_type='layer', eps=1e-5):
    """Instance, layer or group (32 groups) normalization of a 4-D tensor.

    Statistics are taken over height, width and the channels of each group
    (for 'layer', over [h, w, all channels]; 'instance', per channel).
    `norm_type=None` returns x unchanged.
    """
    if norm_type is None:
        return x
    n_ch = x.shape[-1]
    n_groups = {'instance': n_ch, 'layer': 1, 'group': 32}.get(norm_type)
    if n_groups is None:
        raise ValueError(f"norm_type must be 'instance', 'layer', 'group' or "
                         f'None, got {norm_type!r}.')
    if n_ch % n_groups:
        raise ValueError(f'{n_ch} channels cannot be split into {n_groups} '
                         'groups for group normalization.')
    shape = tf.shape(x)
    grouped = tf.reshape(x, tf.concat(
        [shape[:-1], [n_groups, n_ch // n_groups]], axis=0))
    mean, var = tf.nn.moments(grouped, [1, 2, 4], keepdims=True)
    grouped = (grouped - mean) * tf.math.rsqrt(var + eps)
    return tf.reshape(grouped, shape)


@gin.register(module=_MODULE)
class Normalize(tfkl.Layer):
    """Normalization (`normalize_op`) with a learned scale and shift."""

    def __init__(self, norm_type='layer', **kwargs):
        super().__init__(**kwargs)
        self.norm_type = norm_type

    def build(self, x_shape):
        ch = int(x_shape[-1])
        self.scale = self.add_weight(name='scale', shape=[1, 1, 1, ch],
                                     initializer='ones')
        self.shift = self.add_weight(name='shift', shape=[1, 1, 1, ch],
                                     initializer='zeros')

    def call(self, x):
        n_dims = len(x.shape)
        x = normalize_op(ensure_4d(x), self.norm_type)
        x = x * self.scale + self.shift
        return inv_ensure_4d(x, n_dims)


class ConditionalScaleAndShift(tfkl.Layer):
    """FiLM: x * scale(z) + shift(z), with a Dense layer on z."""

    def __init__(self, shift_only=False, **kwargs):
        super().__init__(**kwargs)
        self.shift_only = shift_only
        self.dense = None

    def build(self, inputs_shape):
        x_shape = inputs_shape[0]
        self.x_ch = int(x_shape[-1])
        ch = self.x_ch if self.shift_only else 2 * self.x_ch
        self.dense = Dense(ch, name='dense')

    def call(self, inputs):
        x, z = inputs
        if self.shift_only:
            return x + self.dense(z)
        scale_shift = self.dense(z)
        return x * scale_shift[..., :self.x_ch] + scale_shift[..., self.x_ch:]


@gin.register(module=_MODULE)
class ConditionalNorm(_Container):
    """Normalization followed by a conditional (FiLM) scale and shift."""

    def __init__(self, norm_type='instance', shift_only=False, **kwargs):
        super().__init__(**kwargs)
        self.norm_type = norm_type
        self.conditional_scale_and_shift = ConditionalScaleAndShift(
            shift_only=shift_only, name='conditional_scale_and_shift')

    def call(self, inputs):
        """inputs: (x [b, h, w, ch], z broadcastable to [b, h, w, n_z])."""
        x, z = inputs
        x = normalize_op(x, norm_type=self.norm_type)
        return self.conditional_scale_and_shift([x, z])


def get_norm(norm_type, conditional, shift_only):
    """ConditionalNorm if `conditional`, else Normalize."""
    if conditional:
        return ConditionalNorm(norm_type=norm_type, shift_only=shift_only)
    return Normalize(norm_type)


# ------------------ Resampling ------------------------------------------------
def polyphase_resample(x, stride=2, resample_type='down', trim_or_pad='pad'):
    """Resamples time by moving samples into channels ('space to depth').

    Down: [batch, time, ch] -> [batch, time / stride, ch * stride].
    Up:   [batch, time, ch] -> [batch, time * stride, ch / stride].
    Down then up is lossless (up to the padding of time).

    Args:
        x: Tensor [batch, time, ch] (or [batch, time, 1, ch]).
        stride: Resampling factor.
        resample_type: 'down' or 'up'.
        trim_or_pad: What to do when time ('down') or channels ('up') are not
            a multiple of stride: 'pad' with zeros or 'trim'.

    Returns:
        The resampled tensor (4-D if x was 4-D).
    """
    if resample_type not in ('down', 'up'):
        raise ValueError(
            f"resample_type must be 'up' or 'down', got {resample_type!r}.")
    if trim_or_pad not in ('trim', 'pad'):
        raise ValueError(
            f"trim_or_pad must be 'trim' or 'pad', got {trim_or_pad!r}.")
    is_4d = len(x.shape) == 4
    if is_4d:
        x = x[:, :, 0, :]
    n_time, n_ch = int(x.shape[1]), int(x.shape[2])
    axis = 1 if resample_type == 'down' else 2
    size = n_time if resample_type == 'down' else n_ch
    if size % stride:
        if trim_or_pad == 'pad':
            paddings = [[0, 0], [0, 0], [0, 0]]
            paddings[axis][1] = stride - size % stride
            x = tf.pad(x, paddings)
        else:
            x = x[:, :size - size % stride] if axis == 1 else x[
                ..., :size - size % stride]
    n_time, n_ch = int(x.shape[1]), int(x.shape[2])
    if resample_type == 'down':
        x = tf.reshape(x, [-1, n_time // stride, n_ch * stride])
    else:
        x = tf.reshape(x, [-1, n_time * stride, n_ch // stride])
    return x[:, :, tf.newaxis, :] if is_4d else x


@gin.register(module=_MODULE)
class PolyphaseResample(tfkl.Layer):
    """Layer version of `polyphase_resample`."""

    def __init__(self, stride=2, resample_type='down', trim_or_pad='pad',
                 **kwargs):
        super().__init__(**kwargs)
        self.stride = stride
        self.resample_type = resample_type
        self.trim_or_pad = trim_or_pad

    def call(self, x):
        return polyphase_resample(x, self.stride, self.resample_type,
                                  self.trim_or_pad)


# ------------------ Sequences of layers ---------------------------------------
class _LayerSequence(_Container):
    """Runs sub-layers in order; each one held in its own attribute."""

    def __init__(self, layers=(), **kwargs):
        super().__init__(**kwargs)
        self._sequence_names = []
        for layer in layers:
            self.append_layer(layer)

    def append_layer(self, layer):
        name = f'layer_{len(self._sequence_names)}'
        setattr(self, name, layer)
        self._sequence_names = self._sequence_names + [name]

    @property
    def sequence(self) -> list:
        """The sub-layers, in order."""
        return [getattr(self, name) for name in self._sequence_names]

    def call(self, x):
        for layer in self.sequence:
            x = layer(x)
        return x


# ------------------ Fully connected stacks ------------------------------------
@functools.lru_cache(maxsize=None)
def _norm_activation_kernels(epsilon: float, activation):
    """XLA-fused layer normalization + activation, forward and backward.

    Fused, each pass reads and writes the `[n, ch]` activations once instead
    of once per elementwise op; the backward pass recomputes the forward.
    """
    def norm_activation(z, gamma, beta):
        return activation(keras.ops.layer_normalization(
            z, gamma, beta, axis=-1, epsilon=epsilon))

    @tf.function(jit_compile=True, autograph=False)
    def forward(z, gamma, beta):
        return norm_activation(z, gamma, beta)

    @tf.function(jit_compile=True, autograph=False)
    def backward(d_out, z, gamma, beta):
        with tf.GradientTape() as tape:
            tape.watch([z, gamma, beta])
            out = norm_activation(z, gamma, beta)
        return tape.gradient(out, [z, gamma, beta], output_gradients=d_out)

    return forward, backward


def fused_fc(x, kernel, bias, gamma, beta, epsilon: float = 1e-3,
             activation=keras.activations.leaky_relu,
             precision: Optional[str] = None) -> tf.Tensor:
    """activation(LayerNorm(x @ kernel + bias)) with a memory-lean gradient.

    The same maths as `Fc` (Keras Dense -> LayerNormalization -> activation),
    for training: autodiff would keep about five `[batch, time, ch]` float32
    tensors per layer for the backward pass; this keeps only x in the matmul
    precision and recomputes the rest in the backward pass (one extra
    matrix product, cheap in bfloat16), and the normalization and activation
    run as one XLA kernel each way.

    Args:
        x: float32 `[..., ch_in]`.
        kernel: `[ch_in, ch]`; bias, gamma, beta: `[ch]`.
        epsilon: Layer normalization epsilon.
        activation: Elementwise function.
        precision: Matrix product precision (None: `matmul_precision()`).

    Returns:
        float32 `[..., ch]`.
    """
    compute = (tf.bfloat16 if resolve_precision(precision) == 'bfloat16'
               else tf.float32)
    forward, backward = _norm_activation_kernels(float(epsilon), activation)
    ch_in, ch = kernel.shape
    out_shape = tf.concat([tf.shape(x)[:-1], [ch]], axis=0)

    @tf.custom_gradient
    def fc(x, kernel, bias, gamma, beta):
        x_flat = tf.cast(tf.reshape(x, [-1, ch_in]), compute)
        kernel_c = tf.cast(kernel, compute)

        def dense():
            return tf.cast(tf.matmul(x_flat, kernel_c), tf.float32) + bias

        def grad(d_out):
            d_z, d_gamma, d_beta = backward(
                tf.reshape(d_out, [-1, ch]), dense(), gamma, beta)
            d_z_c = tf.cast(d_z, compute)
            d_x = tf.matmul(d_z_c, kernel_c, transpose_b=True)
            d_kernel = tf.matmul(x_flat, d_z_c, transpose_a=True)
            return (tf.reshape(tf.cast(d_x, x.dtype), tf.shape(x)),
                    tf.cast(d_kernel, kernel.dtype), tf.reduce_sum(d_z, 0),
                    d_gamma, d_beta)

        return tf.reshape(forward(dense(), gamma, beta), out_shape), grad

    return fc(x, kernel, bias, gamma, beta)


@gin.register(module=_MODULE)
class Fc(_LayerSequence):
    """Dense -> LayerNormalization -> nonlinearity (leaky ReLU).

    In training (`training=True`) float32 inputs go through `fused_fc` (same
    weights and maths, less memory); otherwise through the three layers.
    """

    def __init__(self, ch=128, nonlinearity='leaky_relu', **kwargs):
        super().__init__([
            Dense(ch),
            tfkl.LayerNormalization(),
            tfkl.Activation(get_nonlinearity(nonlinearity)),
        ], **kwargs)

    def call(self, x, training=None):
        dense, norm, activation = self.sequence
        axes = list(norm.axis) if isinstance(norm.axis, (list, tuple)) \
            else [norm.axis]
        if not (training and x.dtype == tf.float32 and norm.center
                and norm.scale and not norm.rms_scaling
                and axes in ([-1], [len(x.shape) - 1])):
            return super().call(x)
        if not dense.built:
            dense.build(x.shape)
            norm.build(x.shape[:-1] + (dense.units,))
        # Variable reads as tensors: a custom gradient must not see variables
        # (which under a distribution strategy are read inside it otherwise).
        weights = [tf.convert_to_tensor(v) for v in (
            dense.kernel, dense.bias, norm.gamma, norm.beta)]
        return fused_fc(x, *weights, norm.epsilon, activation.activation,
                        dense.precision)


@gin.register(module=_MODULE)
class FcStack(_LayerSequence):
    """`layers` Fc layers of `ch` channels (0 layers: identity)."""

    def __init__(self, ch=256, layers=2, nonlinearity='leaky_relu', **kwargs):
        super().__init__([Fc(ch, nonlinearity) for _ in range(layers)],
                         **kwargs)


@gin.register(module=_MODULE)
class FcStackOut(_Container):
    """FcStack, then a Dense layer to `n_out` channels."""

    def __init__(self, ch, layers, n_out, **kwargs):
        super().__init__(**kwargs)
        self.stack = FcStack(ch, layers, name='stack')
        self.dense_out = Dense(n_out, name='dense_out')

    def call(self, x):
        return self.dense_out(self.stack(x))


@gin.register(module=_MODULE)
class Identity(tfkl.Layer):
    """Returns its input."""

    def call(self, x):
        return x
