"""Network building blocks: dictionary layers, FC/RNN/conv stacks, ResNet.

The core API is `DictLayer`: a Keras layer whose `call()` argument names are
the keys it reads from input dictionaries, and whose return annotation
(`-> ['amps', 'harmonic_distribution']`) names the keys of the dictionary it
returns. Networks, encoders, decoders and preprocessors are all DictLayers, so
a model can pass one feature dictionary from stage to stage.

Every sub-layer is held in its own attribute (never only in a list), so that
`tf.train.Checkpoint` saves and restores all weights (KERAS3-NOTES trap 1).

GRUs run through `fused_gru` on machines without a GPU: the same weights and
maths as `keras.layers.GRU` (reset_after=True), but the input projection is
one matrix multiplication over all time steps, and the hand-written backward
pass computes the weight gradients with one matrix multiplication each instead
of one per time step. With a GPU, `keras.layers.GRU` (cuDNN) is used.
"""
import ast
import inspect

import gin
import keras
import tensorflow as tf

from ddsp import core

tfkl = keras.layers

# Arguments that Keras itself passes to `call()`; never dictionary keys.
_KERAS_CALL_ARGS = ('training', 'mask')
_MODULE = 'ddsp.training.nn'


def gin_register_keras_layers():
    """Makes `keras.Sequential` and every `keras.layers.X` referable in gin.

    Registered as `tf.keras.Sequential` and `tf.keras.layers.X` (the names used
    by magenta/ddsp's gin files), with `gin.register`, which leaves the classes
    unchanged (KERAS3-NOTES trap 2).
    """
    classes = [('tf.keras', 'Sequential', keras.Sequential)]
    for name, value in inspect.getmembers(keras.layers, inspect.isclass):
        if issubclass(value, keras.layers.Layer):
            classes.append(('tf.keras.layers', name, value))
    for module, name, cls in classes:
        try:
            gin.register(name, module=module)(cls)
        except ValueError:  # Already registered (e.g. module reloaded).
            pass


gin_register_keras_layers()
try:
    gin.register('Dense', module=_MODULE)(tfkl.Dense)
except ValueError:
    pass


# ------------------ Dictionary layers -----------------------------------------
def _parse_return_annotation(annotation) -> list:
    """Output keys from a return annotation: a key or a list of keys.

    String annotations (`from __future__ import annotations`) are parsed as
    Python literals. Anything else (e.g. `-> tf.Tensor`) gives no keys.
    """
    if annotation is inspect.Signature.empty:
        return []
    if isinstance(annotation, str):
        try:
            annotation = ast.literal_eval(annotation)
        except (ValueError, SyntaxError):
            return [annotation] if annotation.isidentifier() else []
    if isinstance(annotation, str):
        return [annotation]
    if (isinstance(annotation, (list, tuple)) and
            all(isinstance(k, str) for k in annotation)):
        return list(annotation)
    return []


class DictLayer(keras.layers.Layer):
    """A Keras layer that takes tensors or dictionaries and returns a dict.

    Input keys are the names of `call()`'s arguments (arguments with defaults
    are optional keys), or `input_keys` when given. Output keys are the
    return annotation of `call()`, or `output_keys` when given:

    ```
    class MyLayer(DictLayer):
        def call(self, f0_hz, loudness, power=None) -> ['amps', 'frequencies']:
            ...
            return amps, frequencies
    ```

    `MyLayer()` then accepts any of
      - tensors: `layer(f0_hz, loudness)` or `layer(f0_hz, loudness, power)`,
      - keyword arguments: `layer(f0_hz=..., loudness=...)`,
      - dictionaries (merged, extra keys ignored, '/'-nested keys allowed):
        `layer(features)` or `layer({'f0_hz': ...}, {'loudness': ...})`,
      - a mix: leading tensors fill the first inputs, keys fill the rest,
    and returns `{'amps': ..., 'frequencies': ...}` (a dict returned by
    `call()` is returned as is). Optional keys missing from the inputs get the
    argument's default. Keras arguments (`training`, `mask`) pass through.

    With explicit `input_keys`, the i-th key feeds the i-th argument of
    `call()` (keys can rename arguments); `call()`'s defaults are then not
    looked up.

    Raises TypeError when an input is missing, given twice (as a tensor and
    by key) or when there are too many tensors.
    """

    def __init__(self, input_keys=None, output_keys=None, **kwargs):
        """Constructor.

        Args:
            input_keys: Keys to read from input dictionaries, in the order of
                `call()`'s arguments. Inferred from `call()` when not given.
            output_keys: Keys naming the outputs of `call()` (ignored when
                `call()` returns a dict). Inferred from `call()`'s return
                annotation when not given.
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        super().__init__(**kwargs)
        if input_keys:
            self.input_keys = [str(k) for k in core.make_iterable(input_keys)]
            self.default_input_keys = []
            self.default_input_values = []
        else:
            self.input_keys = self.get_argument_names('call')
            self.default_input_keys = self.get_default_argument_names('call')
            self.default_input_values = self.get_default_argument_values(
                'call')
        if output_keys:
            self.output_keys = [str(k) for k in core.make_iterable(output_keys)]
        else:
            self.output_keys = self.get_return_annotations('call')

    # Signature inspection ---------------------------------------------------
    def _key_parameters(self, method: str) -> list:
        """Positional parameters of `method` that can be dictionary keys."""
        params = inspect.signature(getattr(self, method)).parameters.values()
        return [p for p in params
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and
                p.name not in _KERAS_CALL_ARGS]

    def get_argument_names(self, method: str) -> list:
        """Names of the required arguments of `method`."""
        return [p.name for p in self._key_parameters(method)
                if p.default is inspect.Parameter.empty]

    def get_default_argument_names(self, method: str) -> list:
        """Names of the arguments of `method` that have defaults."""
        return [p.name for p in self._key_parameters(method)
                if p.default is not inspect.Parameter.empty]

    def get_default_argument_values(self, method: str) -> list:
        """Default values of the arguments of `method`."""
        return [p.default for p in self._key_parameters(method)
                if p.default is not inspect.Parameter.empty]

    def get_return_annotations(self, method: str) -> list:
        """Output keys from the return annotation of `method`."""
        signature = inspect.signature(getattr(self, method))
        return _parse_return_annotation(signature.return_annotation)

    @property
    def all_input_keys(self) -> list:
        """Required input keys, then optional ones."""
        return list(self.input_keys) + list(self.default_input_keys)

    @property
    def n_inputs(self) -> int:
        """Number of inputs of `call()` (computed: subclasses may add keys)."""
        return len(self.all_input_keys)

    # Calling ----------------------------------------------------------------
    def _gather_inputs(self, inputs, kwargs) -> tuple:
        """Values for each input key, in order, and the remaining kwargs."""
        input_keys = list(self.input_keys)
        all_keys = self.all_input_keys
        defaults = list(self.default_input_values)
        input_dict = {}
        tensors = []
        for value in inputs:
            if isinstance(value, dict):
                input_dict.update(value)
            else:
                tensors.append(value)
        for key in all_keys:
            if key in kwargs:
                input_dict[key] = kwargs.pop(key)

        if len(tensors) > len(all_keys):
            raise TypeError(
                f'{self.name}: got {len(tensors)} input tensors, but the layer '
                f'takes at most {len(all_keys)} inputs {all_keys}.')
        values, missing, duplicate = [], [], []
        for i, key in enumerate(all_keys):
            try:
                value = core.nested_lookup(key, input_dict)
                found = True
            except KeyError:
                found = False
            if i < len(tensors):
                if found:
                    duplicate.append(key)
                values.append(tensors[i])
            elif found:
                values.append(value)
            elif i < len(input_keys):
                missing.append(key)
            else:
                values.append(defaults[i - len(input_keys)])
        if missing or duplicate:
            problems = []
            if missing:
                problems.append(f'missing inputs {missing}')
            if duplicate:
                problems.append(f'inputs {duplicate} given both as tensors '
                                'and by key')
            raise TypeError(
                f'{self.name}: {"; ".join(problems)}. The layer reads the keys '
                f'{input_keys} (optional: {list(self.default_input_keys)}); '
                f'got {len(tensors)} tensor(s) and the keys '
                f'{core.nested_keys(input_dict)}.')
        return values, kwargs

    def __call__(self, *inputs, **kwargs):
        """Reads the inputs from tensors/dicts/kwargs and returns a dict.

        Args:
            *inputs: Tensors (the first inputs of `call()`, in order) and/or
                dictionaries of tensors (merged; the input keys are read).
            **kwargs: Inputs by key, and Keras arguments such as `training`.

        Returns:
            Dictionary of outputs.
        """
        values, kwargs = self._gather_inputs(inputs, kwargs)
        # Keras 3 accepts only tensors (or None) as positional arguments, so
        # inputs are passed by argument name unless call() takes *args.
        params = self._key_parameters('call')
        if len(values) <= len(params):
            call_kwargs = {p.name: v for p, v in zip(params, values)}
            outputs = super().__call__(**call_kwargs, **kwargs)
        else:
            outputs = super().__call__(*values, **kwargs)
        if isinstance(outputs, dict):
            return outputs
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [
            outputs]
        if len(self.output_keys) != len(outputs):
            raise ValueError(
                f'{self.name}: output keys {self.output_keys} do not match the '
                f'{len(outputs)} outputs of call(); give `output_keys` or a '
                "return annotation such as `-> ['a', 'b']`.")
        return dict(zip(self.output_keys, outputs))

    def build(self, input_shape=None):
        """Sub-layers build on their first call.

        (Keras would otherwise trace `call()` symbolically once more before
        the first call just to build them.)
        """
        del input_shape
        self.built = True


class OutputSplitsLayer(DictLayer):
    """A DictLayer whose network output is split into named tensors.

    Subclasses implement `compute_output(*inputs)` returning one tensor; a
    final Dense layer maps it to `sum(sizes)` channels, split into a dict
    according to `output_splits`.
    """

    def __init__(self,
                 input_keys=None,
                 output_splits=(('amps', 1), ('harmonic_distribution', 40)),
                 **kwargs):
        """Constructor.

        Args:
            input_keys: Keys read from input dicts, in the order of
                `compute_output()`'s arguments (inferred from their names
                when not given).
            output_splits: Sequence of (output_key, n_channels).
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        self.output_splits = tuple((str(k), int(n)) for k, n in output_splits)
        self.n_out = sum(n for _, n in self.output_splits)
        input_keys = input_keys or self.get_argument_names('compute_output')
        super().__init__(input_keys=input_keys,
                         output_keys=[k for k, _ in self.output_splits],
                         **kwargs)
        self.dense_out = tfkl.Dense(self.n_out, name='dense_out')

    def call(self, *inputs, **unused_kwargs):
        """compute_output() -> Dense -> split into a dict."""
        output = self.compute_output(*inputs)
        return split_to_dict(self.dense_out(output), self.output_splits)

    def compute_output(self, *inputs):
        """Runs the network on the input tensors; returns one tensor."""
        raise NotImplementedError


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


# ------------------ Utilities -------------------------------------------------
@gin.register(module=_MODULE)
def split_to_dict(tensor, tensor_splits):
    """Splits the last axis of a tensor into a dict of named tensors.

    Args:
        tensor: Tensor [..., sum(sizes)].
        tensor_splits: Sequence of (key, size).

    Returns:
        Dict {key: tensor [..., size]}.
    """
    keys = [k for k, _ in tensor_splits]
    sizes = [int(n) for _, n in tensor_splits]
    return dict(zip(keys, tf.split(tensor, sizes, axis=-1)))


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
        self.dense = tfkl.Dense(ch, name='dense')

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


# ------------------ ResNet ----------------------------------------------------
@gin.register(module=_MODULE)
class NormReluConv(_LayerSequence):
    """Normalize -> ReLU -> Conv2D (k x k kernel, stride s in frequency)."""

    def __init__(self, ch, k, s, norm_type, **kwargs):
        super().__init__([
            Normalize(norm_type),
            tfkl.Activation('relu'),
            tfkl.Conv2D(ch, (k, k), (1, s), padding='same'),
        ], **kwargs)


@gin.register(module=_MODULE)
class ResidualLayer(_Container):
    """Bottleneck residual layer: strides frequency, 4x channels out."""

    def __init__(self, ch, stride, shortcut, norm_type, conditional=False,
                 shift_only=False, **kwargs):
        super().__init__(**kwargs)
        ch_out = 4 * ch
        self.shortcut = shortcut
        self.conditional = conditional
        self.norm_input = get_norm(norm_type, conditional, shift_only)
        if shortcut:
            self.conv_proj = tfkl.Conv2D(ch_out, (1, 1), (1, stride),
                                         padding='same', name='conv_proj')
        self.bottleneck = _LayerSequence([
            tfkl.Conv2D(ch, (1, 1), (1, 1), padding='same'),
            NormReluConv(ch, 3, stride, norm_type),
            NormReluConv(ch_out, 1, 1, norm_type),
        ], name='bottleneck')

    def call(self, inputs):
        if self.conditional:
            x, z = inputs
            r = x
            x = tf.nn.relu(self.norm_input([ensure_4d(x), ensure_4d(z)]))
        else:
            x = inputs
            r = x
            x = tf.nn.relu(self.norm_input(ensure_4d(x)))
        # The projection shortcut comes after the first norm and ReLU.
        r = self.conv_proj(x) if self.shortcut else r
        return self.bottleneck(x) + r


@gin.register(module=_MODULE)
class ResidualStack(_Container):
    """Stacks of ResidualLayers, then Normalize and a nonlinearity."""

    def __init__(self, filters, block_sizes, strides, norm_type,
                 conditional=False, shift_only=False, nonlinearity='relu',
                 **kwargs):
        super().__init__(**kwargs)
        self.conditional = conditional
        self._residual_names = []
        for ch, n_layers, stride in zip(filters, block_sizes, strides):
            # Only the first layer of each block has a shortcut and strides.
            for j in range(n_layers):
                name = f'residual_{len(self._residual_names)}'
                setattr(self, name, ResidualLayer(
                    ch, stride if j == 0 else 1, j == 0, norm_type,
                    conditional, shift_only))
                self._residual_names = self._residual_names + [name]
        self.norm_out = Normalize(norm_type)
        self.activation = tfkl.Activation(get_nonlinearity(nonlinearity))

    def call(self, inputs):
        x, z = inputs if self.conditional else (inputs, None)
        for name in self._residual_names:
            layer = getattr(self, name)
            x = layer([x, z] if self.conditional else x)
        return self.activation(self.norm_out(x))


@gin.register(module=_MODULE)
class ResNet(_Container):
    """2-D ResNet over [batch, time, freq, ch]; strides only frequency (/32).

    Sizes: 'small' (32 ch, blocks [2, 3, 4]), 'medium' (32, [3, 4, 6]),
    'large' (64, [3, 4, 6]); output channels 32 * ch.
    """

    SIZES = {
        'small': (32, [2, 3, 4]),
        'medium': (32, [3, 4, 6]),
        'large': (64, [3, 4, 6]),
    }

    def __init__(self, size='large', norm_type='layer', conditional=False,
                 shift_only=False, **kwargs):
        super().__init__(**kwargs)
        if size not in self.SIZES:
            raise ValueError(f'ResNet size must be one of {list(self.SIZES)}, '
                             f'got {size!r}.')
        self.conditional = conditional
        ch, blocks = self.SIZES[size]
        self.conv_in = tfkl.Conv2D(64, (7, 7), (1, 2), padding='same',
                                   name='conv_in')
        self.max_pool = tfkl.MaxPool2D(pool_size=(1, 3), strides=(1, 2),
                                       padding='same', name='max_pool')
        self.residual_stack_1 = ResidualStack(
            [ch, 2 * ch, 4 * ch], blocks, [1, 2, 2], norm_type, conditional,
            shift_only, name='residual_stack_1')
        self.residual_stack_2 = ResidualStack(
            [8 * ch], [3], [2], norm_type, conditional, shift_only,
            name='residual_stack_2')

    def call(self, inputs):
        x, z = inputs if self.conditional else (inputs, None)
        x = self.max_pool(self.conv_in(x))
        for stack in (self.residual_stack_1, self.residual_stack_2):
            x = stack([x, z] if self.conditional else x)
        return x


# ------------------ Fully connected stacks ------------------------------------
@gin.register(module=_MODULE)
class Fc(_LayerSequence):
    """Dense -> LayerNormalization -> nonlinearity (leaky ReLU)."""

    def __init__(self, ch=128, nonlinearity='leaky_relu', **kwargs):
        super().__init__([
            tfkl.Dense(ch),
            tfkl.LayerNormalization(),
            tfkl.Activation(get_nonlinearity(nonlinearity)),
        ], **kwargs)


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
        self.dense_out = tfkl.Dense(n_out, name='dense_out')

    def call(self, x):
        return self.dense_out(self.stack(x))


# ------------------ Recurrent layers ------------------------------------------
def _gru_recurrence(xw, recurrent_kernel, recurrent_bias, h0, units: int):
    """GRU recurrence over a precomputed input projection (time-major).

    The loops do only what is sequential (the recurrent matmul and the gates);
    the weight gradients are single matrix multiplications over all time
    steps after the backward loop.

    Args:
        xw: x @ kernel + input_bias, [time, batch, 3 * units] (z, r, h gates).
        recurrent_kernel: [units, 3 * units].
        recurrent_bias: [3 * units].
        h0: Initial state [batch, units].
        units: Units (a Python int, static even when shapes are relaxed).

    Returns:
        (states [time, batch, units], final state [batch, units]).
    """

    @tf.custom_gradient
    def recurrence(xw, rk, rb, h0):
        n_steps = xw.shape[0] if xw.shape[0] is not None else tf.shape(xw)[0]
        dtype = xw.dtype

        def array():
            return tf.TensorArray(dtype, size=n_steps)

        xs = array().unstack(xw)

        def step(t, h, hs, zs, rs, ns, hns):
            x_zr, x_n = tf.split(xs.read(t), [2 * units, units], axis=-1)
            hw = tf.matmul(h, rk) + rb
            hw_zr, hw_n = tf.split(hw, [2 * units, units], axis=-1)
            z, r = tf.split(tf.sigmoid(x_zr + hw_zr), 2, axis=-1)
            n = tf.tanh(x_n + r * hw_n)
            h = n + z * (h - n)
            return (t + 1, h, hs.write(t, h), zs.write(t, z), rs.write(t, r),
                    ns.write(t, n), hns.write(t, hw_n))

        _, h_last, hs, zs, rs, ns, hns = tf.while_loop(
            lambda t, *_: t < n_steps, step,
            (tf.constant(0), h0, array(), array(), array(), array(), array()))
        hs = hs.stack()

        def grad(d_hs, d_h_last):
            d_hs = tf.zeros_like(hs) if d_hs is None else d_hs
            d_h = tf.zeros_like(h0) if d_h_last is None else d_h_last
            rk_t = tf.transpose(rk)
            h_prev = tf.concat([h0[tf.newaxis], hs[:-1]], axis=0)
            h_prev_ta = array().unstack(h_prev)
            d_hs_ta = array().unstack(d_hs)

            def back_step(t, d_h, d_gates):
                d_h = d_h + d_hs_ta.read(t)
                z, r, n, hw_n = zs.read(t), rs.read(t), ns.read(t), hns.read(t)
                d_an = d_h * (1.0 - z) * (1.0 - n * n)
                d_az = d_h * (h_prev_ta.read(t) - n) * z * (1.0 - z)
                d_ar = d_an * hw_n * r * (1.0 - r)
                d_hw = tf.concat([d_az, d_ar, d_an * r], axis=-1)
                d_h = d_h * z + tf.matmul(d_hw, rk_t)
                return t - 1, d_h, d_gates.write(
                    t, tf.concat([d_az, d_ar, d_an], axis=-1))

            _, d_h0, d_gates = tf.while_loop(
                lambda t, *_: t >= 0, back_step, (n_steps - 1, d_h, array()))
            # Weight gradients: one matmul / reduction over all time steps.
            d_xw = d_gates.stack()
            d_zr, d_an = tf.split(d_xw, [2 * units, units], axis=-1)
            d_hw = tf.concat([d_zr, d_an * rs.stack()], axis=-1)
            d_rk = tf.einsum('tbu,tbk->uk', h_prev, d_hw)
            d_rb = tf.reduce_sum(d_hw, axis=[0, 1])
            return d_xw, d_rk, d_rb, d_h0

        return (hs, h_last), grad

    return recurrence(xw, recurrent_kernel, recurrent_bias, h0)


_gru_recurrence_graph = tf.function(_gru_recurrence, autograph=False,
                                    reduce_retracing=True)


def fused_gru(inputs, kernel, recurrent_kernel, bias, initial_state=None):
    """Runs a GRU with the weights of `keras.layers.GRU(reset_after=True)`.

    Same maths (tanh, sigmoid, gates z, r, h; reset applied after the
    recurrent matmul) and weight layout as Keras, computed faster on CPU: the
    input projection is one matmul over all time steps, and the custom
    backward pass loops only over what is sequential.

    Args:
        inputs: [batch, time, ch].
        kernel: [ch, 3 * units].
        recurrent_kernel: [units, 3 * units].
        bias: [2, 3 * units] (input bias, recurrent bias).
        initial_state: [batch, units] or None (zeros).

    Returns:
        (outputs [batch, time, units], final state [batch, units]).
    """
    dtype = inputs.dtype
    # The input projection runs in the input dtype (e.g. bfloat16 under a
    # mixed-precision policy); the recurrence always in float32, since
    # rounding errors would accumulate over time steps.
    xw = tf.einsum('btc,ck->tbk', inputs, tf.cast(kernel, dtype))
    xw = tf.cast(xw, tf.float32) + tf.cast(bias[0], tf.float32)
    recurrent_kernel = tf.cast(recurrent_kernel, tf.float32)
    units = recurrent_kernel.shape[0]
    if initial_state is None:
        initial_state = tf.zeros([tf.shape(inputs)[0], units], tf.float32)
    else:
        initial_state = tf.cast(initial_state, tf.float32)
    # Eagerly, tf.while_loop would run step by step in Python: use a graph.
    recurrence = (_gru_recurrence_graph if tf.executing_eagerly() else
                  _gru_recurrence)
    hs, h_last = recurrence(xw, recurrent_kernel,
                            tf.cast(bias[1], tf.float32), initial_state,
                            units=int(units))
    return tf.cast(tf.transpose(hs, [1, 0, 2]), dtype), h_last


def _gpu_available() -> bool:
    return bool(tf.config.list_logical_devices('GPU'))


class _RnnBase(tfkl.Layer):
    """Holds a Keras GRU/LSTM; GRUs run with `fused_gru` unless on a GPU."""

    def __init__(self, dims, rnn_type, return_sequences=True,
                 return_state=False, fused=None, **kwargs):
        super().__init__(**kwargs)
        rnn_classes = {'gru': tfkl.GRU, 'lstm': tfkl.LSTM}
        if rnn_type not in rnn_classes:
            raise ValueError(
                f"rnn_type must be 'gru' or 'lstm', got {rnn_type!r}.")
        self.dims = dims
        self.rnn_type = rnn_type
        self.return_sequences = return_sequences
        self.fused = fused
        self.rnn = rnn_classes[rnn_type](dims, return_sequences=True,
                                         return_state=return_state,
                                         name=rnn_type)

    def build(self, input_shape):
        self.rnn.build(input_shape)

    def _use_fused(self) -> bool:
        if self.rnn_type != 'gru' or not isinstance(self.rnn, tfkl.GRU):
            return False
        return (not _gpu_available()) if self.fused is None else self.fused

    def _run_fused(self, x, initial_state=None):
        cell = self.rnn.cell
        return fused_gru(x, cell.kernel, cell.recurrent_kernel, cell.bias,
                         initial_state)


@gin.register(module=_MODULE)
class Rnn(_RnnBase):
    """One GRU or LSTM layer (optionally bidirectional) over [b, t, ch].

    Args:
        dims: Units.
        rnn_type: 'gru' or 'lstm'.
        return_sequences: Return all time steps (else the last one).
        bidir: Bidirectional (concatenated) RNN.
        fused: GRU only: use `fused_gru` (True), `keras.layers.GRU` (False),
            or decide automatically (None: fused unless a GPU is available,
            where Keras uses cuDNN). Both use the same weights.
    """

    def __init__(self, dims, rnn_type, return_sequences=True, bidir=False,
                 fused=None, **kwargs):
        super().__init__(dims, rnn_type, return_sequences, fused=fused,
                         **kwargs)
        self.bidir = bidir
        if bidir:
            self.rnn = tfkl.Bidirectional(self.rnn, name='bidirectional')

    def call(self, x):
        if self._use_fused():
            y, _ = self._run_fused(x)
        else:
            y = self.rnn(x)
        return y if self.return_sequences else y[:, -1]


@gin.register(module=_MODULE)
class StatelessRnn(_RnnBase):
    """Unidirectional GRU/LSTM with the state carried explicitly (streaming).

    `call(x, state) -> (y, new_state)`; `x` [batch, time, ch], `y`
    [batch, time, dims]. The state is [batch, dims] for a GRU and
    [batch, 2 * dims] (h and c concatenated) for an LSTM.
    """

    def __init__(self, dims, rnn_type, fused=None, **kwargs):
        super().__init__(dims, rnn_type, return_sequences=True,
                         return_state=True, fused=fused, **kwargs)

    @property
    def state_size(self) -> int:
        return self.dims * (2 if self.rnn_type == 'lstm' else 1)

    def call(self, x, state):
        if self._use_fused():
            return self._run_fused(x, state)
        if self.rnn_type == 'lstm':
            h, c = tf.split(state, 2, axis=-1)
            y, h, c = self.rnn(x, initial_state=[h, c])
            return y, tf.concat([h, c], axis=-1)
        y, new_state = self.rnn(x, initial_state=state)
        return y, new_state


@gin.register(module=_MODULE)
class RnnFc(_LayerSequence):
    """`n_rnn` RNN layers -> Fc (Dense -> LayerNorm -> nonlinearity)."""

    def __init__(self, rnn_feat, out_feat, rnn_type='lstm',
                 nonlinearity='sigmoid', bidir=False, n_rnn=1, **kwargs):
        layers = [Rnn(rnn_feat, rnn_type, bidir=bidir) for _ in range(n_rnn)]
        layers.append(Fc(out_feat, nonlinearity=nonlinearity))
        super().__init__(layers, **kwargs)


@gin.register(module=_MODULE)
class RnnSandwich(_LayerSequence):
    """FcStack -> RNN -> FcStack."""

    def __init__(self, fc_stack_ch=256, fc_stack_layers=2, rnn_ch=512,
                 rnn_type='gru', **kwargs):
        super().__init__([
            FcStack(fc_stack_ch, fc_stack_layers),
            Rnn(rnn_ch, rnn_type),
            FcStack(fc_stack_ch, fc_stack_layers),
        ], **kwargs)


@gin.register(module=_MODULE)
class Identity(tfkl.Layer):
    """Returns its input."""

    def call(self, x):
        return x


# ------------------ Dilated convolutions --------------------------------------
@gin.register(module=_MODULE)
class DilatedConvStack(_Container):
    """WaveNet-like stacks of residual dilated 1-D convolutions.

    Each layer: x += norm(conv(relu(x))), the dilation growing as
    `dilation ** depth` within a stack (negative `dilation`: shrinking).
    Optional FiLM conditioning (`conditional=True`, inputs `[x, z]`) and
    resampling layers every `stacks_per_resample` stacks.
    """

    def __init__(self,
                 ch=256,
                 layers_per_stack=5,
                 stacks=2,
                 kernel_size=3,
                 dilation=2,
                 norm_type=None,
                 resample_type=None,
                 resample_stride=1,
                 stacks_per_resample=1,
                 resample_after_convolve=True,
                 spectral_norm=False,
                 ortho_init=False,
                 shift_only=False,
                 conditional=False,
                 **kwargs):
        """Constructor.

        Args:
            ch: Channels of every convolution.
            layers_per_stack: Convolutions per stack.
            stacks: Number of stacks.
            kernel_size: Convolution kernel size (time).
            dilation: Base of the dilation factor within a stack.
            norm_type: 'layer', 'instance', 'group' or None.
            resample_type: 'upsample', 'downsample' or None.
            resample_stride: Resampling factor.
            stacks_per_resample: Stacks per resampling layer.
            resample_after_convolve: Resample after (True) or before the
                stacks.
            spectral_norm: Spectral normalization of the convolution weights.
            ortho_init: Orthogonal kernel initialization.
            shift_only: FiLM conditions only the shift.
            conditional: FiLM conditioning with a second input z.
            **kwargs: Other Keras layer arguments.
        """
        super().__init__(**kwargs)
        if resample_type not in (None, 'upsample', 'downsample'):
            raise ValueError(f"resample_type must be 'upsample', 'downsample' "
                             f'or None, got {resample_type!r}.')
        self.conditional = conditional
        self.norm_type = norm_type
        self.resample_after_convolve = resample_after_convolve
        initializer = 'orthogonal' if ortho_init else 'glorot_uniform'

        def conv(n_ch, k, stride=1, dilation_rate=1, transpose=False):
            layer_class = tfkl.Conv2DTranspose if transpose else tfkl.Conv2D
            layer = layer_class(n_ch, (k, 1), (stride, 1),
                                dilation_rate=(dilation_rate, 1),
                                padding='same',
                                kernel_initializer=initializer)
            return tfkl.SpectralNormalization(layer) if spectral_norm else layer

        def dilated_conv(i):
            if dilation > 0:
                rate = int(dilation ** i)
            else:
                rate = int((-dilation) ** (layers_per_stack - i - 1))
            return _LayerSequence([tfkl.Activation('relu'),
                                   conv(ch, kernel_size, 1, rate)],
                                  name='dilated_conv')

        def resample_layer():
            if resample_type == 'downsample':
                return conv(ch, resample_stride, resample_stride)
            return conv(ch, resample_stride * 2, resample_stride,
                        transpose=True)

        self.conv_in = conv(ch, kernel_size)
        self._conv_names, self._norm_names, self._resample_names = [], [], []

        def add(names, prefix, layer):
            name = f'{prefix}_{len(names)}'
            setattr(self, name, layer)
            names.append(name)

        for i in range(stacks):
            if (resample_type and not resample_after_convolve and
                    i % stacks_per_resample == 0):
                add(self._resample_names, 'resample', resample_layer())
            for j in range(layers_per_stack):
                add(self._conv_names, 'conv', dilated_conv(j))
                add(self._norm_names, 'norm',
                    get_norm(norm_type, conditional, shift_only))
            if (resample_type and resample_after_convolve and
                    (i + 1) % stacks_per_resample == 0):
                add(self._resample_names, 'resample', resample_layer())
        self._conv_names = tuple(self._conv_names)
        self._norm_names = tuple(self._norm_names)
        self._resample_names = tuple(self._resample_names)
        n_resample = len(self._resample_names)
        self.layers_per_resample = (len(self._conv_names) // n_resample
                                    if n_resample else 0)

    def call(self, inputs):
        if self.conditional:
            x, z = inputs
            z = ensure_4d(z)
        else:
            x, z = inputs, None
        x = self.conv_in(ensure_4d(x))
        resample = [getattr(self, n) for n in self._resample_names]
        per = self.layers_per_resample
        for i, (conv_name, norm_name) in enumerate(
                zip(self._conv_names, self._norm_names)):
            if resample and not self.resample_after_convolve and i % per == 0:
                x = resample[i // per](x)
            y = getattr(self, conv_name)(x)
            norm = getattr(self, norm_name)
            x = x + (norm([y, z]) if self.conditional else norm(y))
            if resample and self.resample_after_convolve and (i + 1) % per == 0:
                x = resample[i // per](x)
        return x[:, :, 0, :]
