"""Effects: processors that transform audio `[batch, n_samples]`."""
from __future__ import annotations

from typing import Callable

import gin
import keras
import numpy as np
import tensorflow as tf

from ddsp import core
from ddsp import processors
from ddsp import synths

TensorDict = processors.TensorDict


@gin.register(module='ddsp.effects')
class Reverb(processors.Processor):
    """Convolution reverb with a given or learned impulse response.

    The first sample of the impulse response is forced to zero: the dry signal
    is added separately (`add_dry`), so the IR models only the room, and a model
    can bypass it (dereverberation) or apply it to other audio.
    With `trainable=True` the IR is a variable of `reverb_length` samples
    (initialized near zero); otherwise `ir` is an input.
    """

    def __init__(self,
                 trainable: bool = False,
                 reverb_length: int = 48000,
                 add_dry: bool = True,
                 name: str = 'reverb'):
        super().__init__(name=name, trainable=trainable)
        if reverb_length < 2:
            raise ValueError(
                f'{type(self).__name__}: `reverb_length` must be >= 2, got '
                f'{reverb_length}.')
        self.reverb_length = reverb_length
        self.add_dry = add_dry
        self._create_weights()
        self.built = True

    def _create_weights(self):
        if self.trainable:
            self.ir = self.add_weight(
                name='ir', shape=[self.reverb_length],
                initializer=keras.initializers.RandomNormal(0.0, 1e-6),
                trainable=True)

    def _check_audio(self, audio) -> tf.Tensor:
        audio = core.tf_float32(audio)
        if audio.shape.rank != 2:
            raise ValueError(
                f'{type(self).__name__}: `audio` must be [batch, n_samples], got '
                f'shape {audio.shape}.')
        return audio

    def get_controls(self, audio, ir=None) -> TensorDict:
        """Args: audio `[batch, n_samples]`; ir `[batch, ir_size]` or
        `[batch, ir_size, 1]` (ignored and not needed when trainable)."""
        audio = self._check_audio(audio)
        if self.trainable:
            ir = self.ir[tf.newaxis, :]  # Batch 1 broadcasts in fft_convolve.
        elif ir is None:
            raise ValueError(
                f'{type(self).__name__}: `ir` must be given when the reverb is '
                f'not trainable.')
        return {'audio': audio, 'ir': self._ir_to_2d(ir)}

    def _ir_to_2d(self, ir) -> tf.Tensor:
        ir = core.tf_float32(ir)
        if ir.shape.rank == 3 and ir.shape[-1] == 1:
            ir = ir[..., 0]
        if ir.shape.rank != 2:
            raise ValueError(
                f'{type(self).__name__}: `ir` must be [batch, ir_size] or '
                f'[batch, ir_size, 1], got shape {ir.shape}.')
        return ir

    @staticmethod
    def wet_ir(ir) -> tf.Tensor:
        """ir `[batch, ir_size]` with its first sample zeroed: the room alone,
        as applied (the dry path is the `add_dry` sum, see `mix`)."""
        return tf.concat([tf.zeros_like(ir[:, :1]), ir[:, 1:]], axis=1)

    def mix(self, audio, wet):
        """The output for dry `audio` and its `wet` (audio * wet_ir)."""
        return wet + audio if self.add_dry else wet

    def get_signal(self, audio, ir) -> tf.Tensor:
        wet = core.fft_convolve(audio, self.wet_ir(ir), padding='same',
                                delay_compensation=0)
        return self.mix(audio, wet)


@gin.register(module='ddsp.effects')
class ExpDecayReverb(Reverb):
    """Reverb whose IR is noise under an exponential decay envelope.

    ir(t) = scale_fn(gain) * exp(-(2 + exp(decay)) * t) * noise(t), t in [0, 1)
    over `reverb_length` samples. The noise is a fixed sequence, so the IR is a
    deterministic function of (gain, decay) and can be exported.
    """

    def __init__(self,
                 trainable: bool = False,
                 reverb_length: int = 48000,
                 scale_fn: Callable | None = core.exp_sigmoid,
                 add_dry: bool = True,
                 name: str = 'exp_decay_reverb'):
        self.scale_fn = scale_fn
        super().__init__(trainable=trainable, reverb_length=reverb_length,
                         add_dry=add_dry, name=name)
        rng = np.random.default_rng(0)
        self._noise = tf.constant(
            rng.uniform(-1.0, 1.0, [1, reverb_length]).astype(np.float32))
        self._time = tf.constant(
            np.arange(reverb_length, dtype=np.float32)[np.newaxis]
            / reverb_length)

    def _create_weights(self):
        if self.trainable:
            self.gain = self.add_weight(
                name='gain', shape=[1],
                initializer=keras.initializers.Constant(2.0), trainable=True)
            self.decay = self.add_weight(
                name='decay', shape=[1],
                initializer=keras.initializers.Constant(4.0), trainable=True)

    def get_controls(self, audio, gain=None, decay=None) -> TensorDict:
        """Args: audio `[batch, n_samples]`; gain, decay `[batch, 1]` (ignored
        when trainable)."""
        audio = self._check_audio(audio)
        if self.trainable:
            gain, decay = self.gain[tf.newaxis, :], self.decay[tf.newaxis, :]
        elif gain is None or decay is None:
            raise ValueError(
                'ExpDecayReverb: `gain` and `decay` must be given when the '
                'reverb is not trainable.')
        gain, decay = core.tf_float32(gain), core.tf_float32(decay)
        if self.scale_fn is not None:
            gain = self.scale_fn(gain)
        envelope = tf.exp(-(2.0 + tf.exp(decay)) * self._time)
        return {'audio': audio, 'ir': gain * envelope * self._noise}


@gin.register(module='ddsp.effects')
class FilteredNoiseReverb(Reverb):
    """Reverb whose IR is time-varying filtered noise (learned per-band decay).

    `magnitudes` `[batch, n_frames, n_filter_banks]` shape the noise spectrum
    over the IR's duration. The noise sequence is fixed (seeded), so the IR is a
    deterministic function of the magnitudes.
    """

    def __init__(self,
                 trainable: bool = False,
                 reverb_length: int = 48000,
                 window_size: int = 257,
                 n_frames: int = 1000,
                 n_filter_banks: int = 16,
                 scale_fn: Callable | None = core.exp_sigmoid,
                 initial_bias: float = -3.0,
                 add_dry: bool = True,
                 name: str = 'filtered_noise_reverb'):
        self.n_frames = n_frames
        self.n_filter_banks = n_filter_banks
        super().__init__(trainable=trainable, reverb_length=reverb_length,
                         add_dry=add_dry, name=name)
        self.noise_synth = synths.FilteredNoise(
            n_samples=reverb_length, window_size=window_size,
            scale_fn=scale_fn, initial_bias=initial_bias, seed=0,
            name='noise_ir')

    def _create_weights(self):
        if self.trainable:
            self.magnitudes = self.add_weight(
                name='magnitudes', shape=[self.n_frames, self.n_filter_banks],
                initializer=keras.initializers.RandomNormal(0.0, 1e-2),
                trainable=True)

    def get_controls(self, audio, magnitudes=None) -> TensorDict:
        """Args: audio `[batch, n_samples]`; magnitudes
        `[batch, n_frames, n_filter_banks]` (ignored when trainable)."""
        audio = self._check_audio(audio)
        if self.trainable:
            magnitudes = self.magnitudes[tf.newaxis, ...]
        elif magnitudes is None:
            raise ValueError(
                'FilteredNoiseReverb: `magnitudes` must be given when the reverb '
                'is not trainable.')
        return {'audio': audio, 'ir': self.noise_synth(magnitudes)}


@gin.register(module='ddsp.effects')
class FIRFilter(processors.Processor):
    """Time-varying linear-phase FIR filter on audio."""

    def __init__(self,
                 window_size: int = 257,
                 scale_fn: Callable | None = core.exp_sigmoid,
                 name: str = 'fir_filter'):
        super().__init__(name=name)
        self.window_size = window_size
        self.scale_fn = scale_fn

    def get_controls(self, audio, magnitudes) -> TensorDict:
        """Args: audio `[batch, n_samples]`, magnitudes
        `[batch, n_frames, n_bands]` (network outputs, scaled by scale_fn)."""
        magnitudes = core.tf_float32(magnitudes)
        if self.scale_fn is not None:
            magnitudes = self.scale_fn(magnitudes)
        return {'audio': core.tf_float32(audio), 'magnitudes': magnitudes}

    def get_signal(self, audio, magnitudes) -> tf.Tensor:
        return core.frequency_filter(audio, magnitudes,
                                     window_size=self.window_size)


@gin.register(module='ddsp.effects')
class ModDelay(processors.Processor):
    """Modulated delay line: chorus, flanger and vibrato.

    The delay at each sample is center_ms + depth_ms * (2 * phase - 1), where
    phase in [0, 1] comes from `phase_scale_fn` of the input.
    """

    def __init__(self,
                 center_ms: float = 15.0,
                 depth_ms: float = 10.0,
                 sample_rate: int = 16000,
                 gain_scale_fn: Callable | None = core.exp_sigmoid,
                 phase_scale_fn: Callable | None = tf.nn.sigmoid,
                 add_dry: bool = True,
                 name: str = 'mod_delay'):
        super().__init__(name=name)
        if center_ms < depth_ms:
            raise ValueError(
                f'ModDelay: `center_ms` ({center_ms}) must be >= `depth_ms` '
                f'({depth_ms}): delays cannot be negative.')
        self.center_ms = center_ms
        self.depth_ms = depth_ms
        self.sample_rate = sample_rate
        self.gain_scale_fn = gain_scale_fn
        self.phase_scale_fn = phase_scale_fn
        self.add_dry = add_dry

    def get_controls(self, audio, gain, phase) -> TensorDict:
        """Args: audio `[batch, n_samples]`; gain and phase
        `[batch, n_samples, 1]` (or frame-rate, resampled to n_samples)."""
        audio = core.tf_float32(audio)
        gain, phase = core.tf_float32(gain), core.tf_float32(phase)
        if self.gain_scale_fn is not None:
            gain = self.gain_scale_fn(gain)
        if self.phase_scale_fn is not None:
            phase = self.phase_scale_fn(phase)
        n_samples = audio.shape[1]
        return {'audio': audio,
                'gain': core.resample(gain, n_samples),
                'phase': core.resample(phase, n_samples)}

    def get_signal(self, audio, gain, phase) -> tf.Tensor:
        max_delay_ms = self.center_ms + self.depth_ms
        max_length = int(round(self.sample_rate * max_delay_ms / 1000.0))
        delay_ms = self.center_ms + self.depth_ms * (2.0 * phase - 1.0)
        # variable_length_delay takes the delay as a fraction of max_length.
        wet = core.variable_length_delay(delay_ms / max_delay_ms, audio,
                                         max_length=max_length)
        wet = gain[..., 0] * wet
        return wet + audio if self.add_dry else wet
