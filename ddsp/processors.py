"""Processors: differentiable DSP layers, and groups of them wired as a DAG.

A Processor turns network outputs into a signal in two steps: `get_controls`
scales/normalizes its inputs into synthesis controls, `get_signal` renders the
controls. Calling a processor does both; with `return_outputs_dict=True` it
returns `{'signal': ..., 'controls': {...}}` so a ProcessorGroup can expose the
controls of every node.
"""
from __future__ import annotations

from typing import Any

import gin
import keras
import tensorflow as tf

from ddsp import core
from ddsp import dags
from ddsp.gin_utils import configurable_layer

TensorDict = dags.TensorDict


class Processor(keras.layers.Layer):
    """Base class: `__call__(*inputs) == get_signal(**get_controls(*inputs))`.

    Processors run in float32 whatever the Keras dtype policy (no autocast):
    phase accumulation and filtering are audibly wrong in low precision.
    """

    def __init__(self, name: str | None = None, trainable: bool = False,
                 **kwargs):
        super().__init__(name=name, trainable=trainable, autocast=False,
                         **kwargs)

    def build(self, *args, **kwargs):
        # Weights (if any) are made in __init__; nothing depends on shapes.
        self.built = True

    def call(self, *args, return_outputs_dict: bool = False, **kwargs):
        controls = self.get_controls(*args, **kwargs)
        signal = self.get_signal(**controls)
        if return_outputs_dict:
            return {'signal': signal, 'controls': controls}
        return signal

    def get_controls(self, *args, **kwargs) -> TensorDict:
        """Converts inputs (e.g. network outputs) into a dict of controls."""
        raise NotImplementedError

    def get_signal(self, *args, **kwargs) -> tf.Tensor:
        """Renders the controls into a signal."""
        raise NotImplementedError


@configurable_layer(module='ddsp.processors')
class ProcessorGroup(dags.DAGLayer):
    """Runs a DAG of processors (and other modules) on a dictionary of inputs.

    Example gin:
        ProcessorGroup.dag = [
            (@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz']),
            (@synths.FilteredNoise(), ['noise_magnitudes']),
            (@processors.Add(), ['filtered_noise/signal', 'harmonic/signal']),
        ]
    The signal is that of the last node; `return_outputs_dict=True` also
    returns every node's controls and signal ('harmonic/controls/f0_hz', ...).
    """

    def __init__(self, dag: dags.DAG, name: str = 'processor_group',
                 **kwarg_processors):
        super().__init__(dag=dag, name=name, **kwarg_processors)

    def call(self, inputs: TensorDict, return_outputs_dict: bool = False,
             **kwargs):
        outputs = self.get_controls(inputs, **kwargs)
        signal = self.get_signal(outputs)
        if return_outputs_dict:
            return {'signal': signal, 'controls': outputs}
        return signal

    def get_controls(self, inputs: TensorDict, **kwargs) -> TensorDict:
        """Runs the DAG; returns every node's outputs plus 'inputs' and 'out'."""
        return self.run_dag(inputs, **kwargs)

    def get_signal(self, outputs: TensorDict) -> tf.Tensor:
        """The signal of the last node of the DAG."""
        return core.nested_lookup('out/signal', outputs)


@gin.register(module='ddsp.processors')
class Add(Processor):
    """Sums two signals."""

    def __init__(self, name: str = 'add'):
        super().__init__(name=name)

    def get_controls(self, signal_one, signal_two) -> TensorDict:
        return {'signal_one': core.tf_float32(signal_one),
                'signal_two': core.tf_float32(signal_two)}

    def get_signal(self, signal_one, signal_two) -> tf.Tensor:
        return signal_one + signal_two


@gin.register(module='ddsp.processors')
class Mix(Processor):
    """Constant-power crossfade of two signals by a time-varying mix level.

    mix = sigmoid(nn_out_mix_level) resampled to the signal length;
    output = sqrt(mix) * signal_one + sqrt(1 - mix) * signal_two, so the power of
    two uncorrelated signals is kept through the whole crossfade.
    """

    def __init__(self, name: str = 'mix'):
        super().__init__(name=name)

    def get_controls(self, signal_one, signal_two, nn_out_mix_level
                     ) -> TensorDict:
        """Args: signals `[batch, n_samples]` (or `[batch, n_samples, ch]`),
        nn_out_mix_level `[batch, n_frames, 1]` (network output, unbounded)."""
        signal_one = core.tf_float32(signal_one)
        signal_two = core.tf_float32(signal_two)
        mix_level = tf.nn.sigmoid(core.tf_float32(nn_out_mix_level))
        if mix_level.shape.rank != 3:
            raise ValueError(
                f'Mix: `nn_out_mix_level` must be [batch, n_frames, 1], got '
                f'shape {mix_level.shape}.')
        n_samples = signal_one.shape[1]
        mix_level = core.resample(mix_level, n_samples)
        if signal_one.shape.rank == 2:
            mix_level = mix_level[..., 0]
        return {'signal_one': signal_one, 'signal_two': signal_two,
                'mix_level': mix_level}

    def get_signal(self, signal_one, signal_two, mix_level) -> tf.Tensor:
        return (tf.sqrt(mix_level) * signal_one
                + tf.sqrt(1.0 - mix_level) * signal_two)


@gin.register(module='ddsp.processors')
class Crop(Processor):
    """Removes `2 * (frame_size // 2)` samples of padding from audio.

    crop_location: 'front' (all from the start), 'back' (all from the end) or
    'center' (half from each end).
    """

    _LOCATIONS = ('front', 'center', 'back')

    def __init__(self, frame_size: int, crop_location: str = 'back',
                 name: str = 'crop'):
        super().__init__(name=name)
        if crop_location not in self._LOCATIONS:
            raise ValueError(
                f'Crop: `crop_location` must be one of {self._LOCATIONS}, got '
                f'{crop_location!r}.')
        if frame_size < 0:
            raise ValueError(f'Crop: `frame_size` must be >= 0, got {frame_size}.')
        self.frame_size = frame_size
        self.crop_location = crop_location

    def get_controls(self, audio) -> TensorDict:
        return {'audio': core.tf_float32(audio)}

    def get_signal(self, audio) -> tf.Tensor:
        half = self.frame_size // 2
        n_samples = tf.shape(audio)[1]
        start = {'front': 2 * half, 'center': half, 'back': 0}[self.crop_location]
        return audio[:, start:n_samples - 2 * half + start]
