"""Decoders: networks from conditioning features to synthesizer controls.

Both decoders return a dict keyed by `output_splits`, e.g. `amps`,
`harmonic_distribution`, `noise_magnitudes`, ready for a ProcessorGroup.
"""
import gin
import tensorflow as tf

from ddsp import core
from ddsp.training import nn

_MODULE = 'ddsp.training.decoders'


def _splits(output_splits) -> tuple:
    return tuple((str(k), int(n)) for k, n in output_splits)


@gin.register(module=_MODULE)
class RnnFcDecoder(nn.DictLayer):
    """The DDSP paper's decoder: FC stacks around a GRU.

    One FcStack per input -> concatenate -> RNN -> concatenate the stack
    outputs and the RNN output -> FcStack -> Dense -> split into a dict.

    With `stateless=True` the RNN state is explicit, for streaming and export:
    the decoder takes an optional `state` input ([batch, rnn_channels] for a
    GRU; zeros when missing) and returns the new `state` with the outputs.
    Running consecutive blocks, each with the state returned by the previous
    one, gives the same outputs as running the whole sequence at once.
    """

    def __init__(self,
                 rnn_channels=512,
                 rnn_type='gru',
                 ch=512,
                 layers_per_stack=3,
                 stateless=False,
                 input_keys=('ld_scaled', 'f0_scaled', 'z'),
                 output_splits=(('amps', 1), ('harmonic_distribution', 40)),
                 **kwargs):
        """Constructor.

        Args:
            rnn_channels: Units of the RNN.
            rnn_type: 'gru' or 'lstm'.
            ch: Channels of the fully connected layers.
            layers_per_stack: Fully connected layers per stack (0: none).
            stateless: Pass the RNN state in and out explicitly ('state').
            input_keys: Input features; each gets its own FcStack.
            output_splits: Sequence of (output_key, n_channels).
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        input_keys = [str(k) for k in core.make_iterable(input_keys)]
        self.output_splits = _splits(output_splits)
        output_keys = [k for k, _ in self.output_splits]
        if stateless:
            output_keys.append('state')
        super().__init__(input_keys=input_keys, output_keys=output_keys,
                         **kwargs)
        self.stateless = stateless
        self.rnn_channels = rnn_channels
        self.rnn_type = rnn_type
        if stateless:
            # Optional last input: the carried RNN state (zeros if missing).
            self.default_input_keys = ['state']
            self.default_input_values = [None]

        self.n_stacks = len(input_keys)
        for i in range(self.n_stacks):
            setattr(self, f'input_stack_{i}',
                    nn.FcStack(ch, layers_per_stack, name=f'input_stack_{i}'))
        rnn_class = nn.StatelessRnn if stateless else nn.Rnn
        self.rnn = rnn_class(rnn_channels, rnn_type, name='rnn')
        self.out_stack = nn.FcStack(ch, layers_per_stack, name='out_stack')
        self.dense_out = nn.Dense(sum(n for _, n in self.output_splits),
                                    name='dense_out')

    def zero_state(self, batch_size: int) -> tf.Tensor:
        """Initial state for `stateless=True`."""
        size = self.rnn_channels * (2 if self.rnn_type == 'lstm' else 1)
        return tf.zeros([batch_size, size], tf.float32)

    def call(self, *inputs, **unused_kwargs):
        inputs = list(inputs)
        state = inputs.pop() if self.stateless else None
        stacks = [getattr(self, f'input_stack_{i}')(x)
                  for i, x in enumerate(inputs)]
        x = tf.concat(stacks, axis=-1) if len(stacks) > 1 else stacks[0]
        if self.stateless:
            if state is None:
                state = self.zero_state(tf.shape(x)[0])
            x, new_state = self.rnn(x, state)
        else:
            x = self.rnn(x)
        x = self.out_stack(tf.concat(stacks + [x], axis=-1))
        outputs = nn.split_to_dict(self.dense_out(x), self.output_splits)
        if self.stateless:
            outputs['state'] = new_state
        return outputs


@gin.register(module=_MODULE)
class DilatedConvDecoder(nn.OutputSplitsLayer):
    """WaveNet-style dilated 1-D convolutions, optional FiLM conditioning.

    The `input_keys` are concatenated as the input; the `conditioning_keys`
    (if any) are concatenated, optionally run through `precondition_stack`,
    and condition every layer's normalization (FiLM).
    """

    def __init__(self,
                 ch=256,
                 kernel_size=3,
                 layers_per_stack=5,
                 stacks=2,
                 dilation=2,
                 norm_type='layer',
                 resample_stride=1,
                 stacks_per_resample=1,
                 resample_after_convolve=True,
                 input_keys=('ld_scaled', 'f0_scaled'),
                 output_splits=(('amps', 1), ('harmonic_distribution', 60)),
                 conditioning_keys=('z',),
                 precondition_stack=None,
                 spectral_norm=False,
                 ortho_init=False,
                 **kwargs):
        """Constructor.

        Args:
            ch: Channels of the convolutions.
            kernel_size: Convolution kernel size.
            layers_per_stack: Convolutions per stack.
            stacks: Number of stacks.
            dilation: Base of the dilation factor within a stack.
            norm_type: 'layer', 'instance', 'group' or None.
            resample_stride: Upsampling factor (> 1 adds transposed convs).
            stacks_per_resample: Stacks per upsampling layer.
            resample_after_convolve: Upsample after (True) or before stacks.
            input_keys: Input features (concatenated).
            output_splits: Sequence of (output_key, n_channels).
            conditioning_keys: Conditioning features (a key or a sequence of
                keys; None or () for no conditioning).
            precondition_stack: Optional layer applied to the conditioning.
            spectral_norm: Spectral normalization of the convolutions.
            ortho_init: Orthogonal kernel initialization.
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        self.conditioning_keys = [str(k) for k in
                                  core.make_iterable(conditioning_keys)]
        input_keys = ([str(k) for k in core.make_iterable(input_keys)] +
                      self.conditioning_keys)
        super().__init__(input_keys, output_splits, **kwargs)
        self.n_conditioning = len(self.conditioning_keys)
        self.conditional = bool(self.conditioning_keys)
        if not self.conditional and precondition_stack is not None:
            raise ValueError('DilatedConvDecoder: a precondition_stack needs '
                             'conditioning_keys.')
        self.precondition_stack = precondition_stack
        self.dilated_conv_stack = nn.DilatedConvStack(
            ch=ch,
            kernel_size=kernel_size,
            layers_per_stack=layers_per_stack,
            stacks=stacks,
            dilation=dilation,
            norm_type=norm_type,
            resample_type='upsample' if resample_stride > 1 else None,
            resample_stride=resample_stride,
            stacks_per_resample=stacks_per_resample,
            resample_after_convolve=resample_after_convolve,
            conditional=self.conditional,
            spectral_norm=spectral_norm,
            ortho_init=ortho_init,
            name='dilated_conv_stack')

    def _parse_inputs(self, inputs):
        """Concatenates inputs (and conditioning); runs preconditioning."""
        inputs = list(inputs)
        if not self.conditional:
            return tf.concat(inputs, axis=-1)
        x = tf.concat(inputs[:-self.n_conditioning], axis=-1)
        z = tf.concat(inputs[-self.n_conditioning:], axis=-1)
        if self.precondition_stack is not None:
            z = self.precondition_stack(z)
        return [x, z]

    def compute_output(self, *inputs):
        return self.dilated_conv_stack(self._parse_inputs(inputs))
