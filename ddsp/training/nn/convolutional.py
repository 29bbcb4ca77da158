"""Convolutional networks: 2-D `ResNet` and 1-D `DilatedConvStack`."""
import gin
import keras
import tensorflow as tf

from ddsp.training.nn.dense import Normalize
from ddsp.training.nn.dense import _Container
from ddsp.training.nn.dense import _LayerSequence
from ddsp.training.nn.dense import ensure_4d
from ddsp.training.nn.dense import get_nonlinearity
from ddsp.training.nn.dense import get_norm

tfkl = keras.layers

# Gin module of the registered layers: they stay `ddsp.training.nn.X`.
_MODULE = 'ddsp.training.nn'


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
