"""Synthesizers: processors that turn controls into audio `[batch, n_samples]`."""
from __future__ import annotations

from typing import Callable

import gin
import tensorflow as tf

from ddsp import core
from ddsp import processors

TensorDict = processors.TensorDict


@gin.register(module='ddsp.synths')
class TensorToAudio(processors.Processor):
    """Passes a network output `[batch, n_samples, 1]` through as audio."""

    def __init__(self, name: str = 'tensor_to_audio'):
        super().__init__(name=name)

    def get_controls(self, samples) -> TensorDict:
        samples = core.tf_float32(samples)
        if samples.shape.rank != 3 or samples.shape[-1] != 1:
            raise ValueError(
                f'TensorToAudio: `samples` must be [batch, n_samples, 1], got '
                f'shape {samples.shape}.')
        return {'samples': samples}

    def get_signal(self, samples) -> tf.Tensor:
        return samples[..., 0]


@gin.register(module='ddsp.synths')
class Harmonic(processors.Processor):
    """Harmonic (additive) synthesizer: a sum of sinusoids at multiples of f0.

    Controls: overall amplitude `[batch, n_frames, 1]`, harmonic distribution
    `[batch, n_frames, n_harmonics]` (normalized to sum to 1, optionally only
    over harmonics below Nyquist) and f0 `[batch, n_frames, 1]` in Hz.
    """

    def __init__(self,
                 n_samples: int = 64000,
                 sample_rate: int = 16000,
                 scale_fn: Callable | None = core.exp_sigmoid,
                 normalize_below_nyquist: bool = True,
                 amp_resample_method: str = 'window',
                 use_angular_cumsum: bool = False,
                 name: str = 'harmonic'):
        super().__init__(name=name)
        self.n_samples = n_samples
        self.sample_rate = sample_rate
        self.scale_fn = scale_fn
        self.normalize_below_nyquist = normalize_below_nyquist
        self.amp_resample_method = amp_resample_method
        self.use_angular_cumsum = use_angular_cumsum

    def get_controls(self, amplitudes, harmonic_distribution, f0_hz
                     ) -> TensorDict:
        """Args: amplitudes `[batch, n_frames, 1]`, harmonic_distribution
        `[batch, n_frames, n_harmonics]` (network outputs, scaled by
        `scale_fn`), f0_hz `[batch, n_frames, 1]`."""
        amplitudes = core.tf_float32(amplitudes)
        harmonic_distribution = core.tf_float32(harmonic_distribution)
        f0_hz = core.tf_float32(f0_hz)
        if self.scale_fn is not None:
            amplitudes = self.scale_fn(amplitudes)
            harmonic_distribution = self.scale_fn(harmonic_distribution)
        if self.normalize_below_nyquist:
            harmonic_distribution = core.normalize_harmonics(
                harmonic_distribution, f0_hz, self.sample_rate)
        else:
            harmonic_distribution = core.normalize_harmonics(
                harmonic_distribution)
        return {'amplitudes': amplitudes,
                'harmonic_distribution': harmonic_distribution,
                'f0_hz': f0_hz}

    def get_signal(self, amplitudes, harmonic_distribution, f0_hz
                   ) -> tf.Tensor:
        return core.harmonic_synthesis(
            frequencies=f0_hz,
            amplitudes=amplitudes,
            harmonic_distribution=harmonic_distribution,
            n_samples=self.n_samples,
            sample_rate=self.sample_rate,
            amp_resample_method=self.amp_resample_method,
            use_angular_cumsum=self.use_angular_cumsum)


# The reference's older name; the same class, registered under both names.
Additive = Harmonic
gin.register('Additive', module='ddsp.synths')(Harmonic)


@gin.register(module='ddsp.synths')
class FilteredNoise(processors.Processor):
    """Uniform white noise through a time-varying linear-phase FIR filter.

    `magnitudes` `[batch, n_frames, n_bands]` are the filter's magnitude
    response per frame, on n_bands linearly spaced frequencies from 0 Hz to
    Nyquist. With `seed` set, the same noise is used on every call, which makes
    the output a deterministic function of the magnitudes (used by
    FilteredNoiseReverb, whose impulse response must not change between calls).
    """

    def __init__(self,
                 n_samples: int = 64000,
                 window_size: int = 257,
                 scale_fn: Callable | None = core.exp_sigmoid,
                 initial_bias: float = -5.0,
                 seed: int | None = None,
                 name: str = 'filtered_noise'):
        super().__init__(name=name)
        self.n_samples = n_samples
        self.window_size = window_size
        self.scale_fn = scale_fn
        self.initial_bias = initial_bias
        self.seed = seed

    def get_controls(self, magnitudes) -> TensorDict:
        magnitudes = core.tf_float32(magnitudes)
        if magnitudes.shape.rank != 3:
            raise ValueError(
                f'FilteredNoise: `magnitudes` must be [batch, n_frames, n_bands], '
                f'got shape {magnitudes.shape}.')
        if self.scale_fn is not None:
            magnitudes = self.scale_fn(magnitudes + self.initial_bias)
        return {'magnitudes': magnitudes}

    def get_signal(self, magnitudes) -> tf.Tensor:
        batch_size = tf.shape(magnitudes)[0]
        shape = [batch_size, self.n_samples]
        if self.seed is None:
            noise = tf.random.uniform(shape, minval=-1.0, maxval=1.0)
        else:
            noise = tf.random.stateless_uniform(
                shape, seed=[self.seed, 0], minval=-1.0, maxval=1.0)
        return core.frequency_filter(noise, magnitudes,
                                     window_size=self.window_size)


@gin.register(module='ddsp.synths')
class Wavetable(processors.Processor):
    """Wavetable synthesizer: one (time-varying) waveform read at f0."""

    def __init__(self,
                 n_samples: int = 64000,
                 sample_rate: int = 16000,
                 scale_fn: Callable | None = core.exp_sigmoid,
                 name: str = 'wavetable'):
        super().__init__(name=name)
        self.n_samples = n_samples
        self.sample_rate = sample_rate
        self.scale_fn = scale_fn

    def get_controls(self, amplitudes, wavetables, f0_hz) -> TensorDict:
        """Args: amplitudes `[batch, n_frames, 1]`, wavetables
        `[batch, n_frames, n_wavetable]` (waveforms, not scaled), f0_hz
        `[batch, n_frames, 1]`."""
        amplitudes = core.tf_float32(amplitudes)
        if self.scale_fn is not None:
            amplitudes = self.scale_fn(amplitudes)
        return {'amplitudes': amplitudes,
                'wavetables': core.tf_float32(wavetables),
                'f0_hz': core.tf_float32(f0_hz)}

    def get_signal(self, amplitudes, wavetables, f0_hz) -> tf.Tensor:
        return core.wavetable_synthesis(
            frequencies=f0_hz, amplitudes=amplitudes, wavetables=wavetables,
            n_samples=self.n_samples, sample_rate=self.sample_rate)


@gin.register(module='ddsp.synths')
class Sinusoidal(processors.Processor):
    """A bank of freely moving sinusoids (not constrained to harmonics)."""

    def __init__(self,
                 n_samples: int = 64000,
                 sample_rate: int = 16000,
                 amp_scale_fn: Callable | None = core.exp_sigmoid,
                 amp_resample_method: str = 'window',
                 freq_scale_fn: Callable | None = core.frequencies_sigmoid,
                 name: str = 'sinusoidal'):
        super().__init__(name=name)
        self.n_samples = n_samples
        self.sample_rate = sample_rate
        self.amp_scale_fn = amp_scale_fn
        self.amp_resample_method = amp_resample_method
        self.freq_scale_fn = freq_scale_fn

    def get_controls(self, amplitudes, frequencies) -> TensorDict:
        """Args: amplitudes and frequencies `[batch, n_frames, n_sinusoids]`
        (network outputs, scaled by the scale functions; frequencies in Hz)."""
        amplitudes = core.tf_float32(amplitudes)
        frequencies = core.tf_float32(frequencies)
        if self.amp_scale_fn is not None:
            amplitudes = self.amp_scale_fn(amplitudes)
        if self.freq_scale_fn is not None:
            frequencies = self.freq_scale_fn(frequencies)
        amplitudes = core.remove_above_nyquist(frequencies, amplitudes,
                                               self.sample_rate)
        return {'amplitudes': amplitudes, 'frequencies': frequencies}

    def get_signal(self, amplitudes, frequencies) -> tf.Tensor:
        return core.sinusoidal_synthesis(
            frequencies=frequencies, amplitudes=amplitudes,
            n_samples=self.n_samples, sample_rate=self.sample_rate,
            amp_resample_method=self.amp_resample_method)
