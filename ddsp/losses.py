"""Losses: the multi-scale spectral loss, embedding and parameter losses.

A loss is a Keras layer with `get_losses_dict(*inputs) -> {name: scalar}`; a
LossGroup runs a DAG of losses over a model's outputs dictionary.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import gin
import keras
import tensorflow as tf

from ddsp import core
from ddsp import crepe
from ddsp import dags
from ddsp import spectral_ops

_LOSS_TYPES = ('L1', 'L2', 'COSINE')


def mean_difference(target, value, loss_type: str = 'L1',
                    weights=None) -> tf.Tensor:
    """Mean elementwise difference between two tensors of the same shape.

    Args:
        target: Tensor, any shape.
        value: Tensor of the same shape.
        loss_type: 'L1' (mean absolute difference), 'L2' (mean squared
            difference) or 'COSINE' (mean of 1 - cosine similarity along the
            last axis).
        weights: Optional tensor broadcastable to the difference, e.g. a mask.

    Returns:
        Scalar float32 tensor.
    """
    target, value = core.tf_float32(target), core.tf_float32(value)
    if loss_type not in _LOSS_TYPES:
        raise ValueError(f'mean_difference: `loss_type` must be one of '
                         f'{_LOSS_TYPES}, got {loss_type!r}.')
    if loss_type == 'COSINE':
        similarity = tf.reduce_sum(
            tf.math.l2_normalize(target, axis=-1)
            * tf.math.l2_normalize(value, axis=-1), axis=-1)
        difference = 1.0 - similarity
    elif loss_type == 'L1':
        difference = tf.abs(target - value)
    else:
        difference = tf.square(target - value)
    if weights is not None:
        difference *= core.tf_float32(weights)
    return tf.reduce_mean(difference)


class Loss(keras.layers.Layer):
    """Base class: a layer returning a scalar; `get_losses_dict` names it."""

    def __init__(self, name: str | None = None, **kwargs):
        super().__init__(name=name, trainable=False, autocast=False, **kwargs)

    def get_losses_dict(self, *args, **kwargs) -> dict[str, tf.Tensor]:
        return {self.name: self(*args, **kwargs)}


@gin.register(module='ddsp.losses')
class LossGroup(dags.DAGLayer):
    """A DAG of losses over a dictionary of outputs.

    `LossGroup(dag=[(SpectralLoss(), ['audio', 'audio_synth']), ...])` called on
    an outputs dict returns `{loss name: scalar}` for every loss in the DAG.
    """

    def __init__(self, dag: dags.DAG, name: str = 'loss_group',
                 **kwarg_losses):
        super().__init__(dag=dag, name=name, **kwarg_losses)

    def call(self, outputs: dict, **kwargs) -> dict[str, tf.Tensor]:
        results = self.run_dag(outputs, **kwargs)
        losses = {}
        for name, _, _ in self.dag_nodes:
            losses.update(results[name])
        return losses


@gin.register(module='ddsp.losses')
class SpectralLoss(Loss):
    """Multi-scale spectrogram loss.

    For each FFT size, compares the magnitude spectrograms of target and audio
    (overlap 0.75) with weighted terms: magnitude, its differences along time
    and along frequency, its cumulative sum along frequency, the log magnitude;
    plus, optionally, the difference of A-weighted loudness curves. Each term is
    a `mean_difference` (a mean over elements, not a sum).
    """

    def __init__(self,
                 fft_sizes: Sequence[int] = (2048, 1024, 512, 256, 128, 64),
                 loss_type: str = 'L1',
                 mag_weight: float = 1.0,
                 delta_time_weight: float = 0.0,
                 delta_freq_weight: float = 0.0,
                 cumsum_freq_weight: float = 0.0,
                 logmag_weight: float = 0.0,
                 loudness_weight: float = 0.0,
                 name: str = 'spectral_loss'):
        super().__init__(name=name)
        if loss_type not in _LOSS_TYPES:
            raise ValueError(f'SpectralLoss: `loss_type` must be one of '
                             f'{_LOSS_TYPES}, got {loss_type!r}.')
        if not fft_sizes:
            raise ValueError('SpectralLoss: `fft_sizes` must not be empty.')
        self.fft_sizes = tuple(int(size) for size in fft_sizes)
        self.loss_type = loss_type
        self.mag_weight = mag_weight
        self.delta_time_weight = delta_time_weight
        self.delta_freq_weight = delta_freq_weight
        self.cumsum_freq_weight = cumsum_freq_weight
        self.logmag_weight = logmag_weight
        self.loudness_weight = loudness_weight

    def _term_weights(self) -> tuple:
        return (self.mag_weight, self.delta_time_weight,
                self.delta_freq_weight, self.cumsum_freq_weight,
                self.logmag_weight)

    def call(self, target_audio, audio, weights=None) -> tf.Tensor:
        """Args: target_audio, audio `[batch, n_samples]`; weights (optional)
        broadcastable to each `[batch, time, freq]` spectrogram."""
        target_audio = core.tf_float32(target_audio)
        audio = core.tf_float32(audio)
        if target_audio.shape.rank != 2 or audio.shape.rank != 2:
            raise ValueError(
                f'SpectralLoss: `target_audio` and `audio` must be '
                f'[batch, n_samples], got shapes {target_audio.shape} and '
                f'{audio.shape}.')
        # The target needs no gradient: keep it out of the tape.
        target_audio = tf.stop_gradient(target_audio)
        if weights is None and _fusable(target_audio, audio, self.fft_sizes):
            loss = _fused_spectrogram_loss(target_audio, audio, self.fft_sizes,
                                           self.loss_type,
                                           self._term_weights())
        else:
            loss = 0.0
            for size in self.fft_sizes:
                loss += _spectrogram_terms(
                    spectral_ops.compute_mag(target_audio, size),
                    spectral_ops.compute_mag(audio, size), self.loss_type,
                    self._term_weights(), weights)
        if self.loudness_weight > 0:
            target_db = spectral_ops.compute_loudness(target_audio, n_fft=2048,
                                                      use_tf=True)
            value_db = spectral_ops.compute_loudness(audio, n_fft=2048,
                                                     use_tf=True)
            loss += self.loudness_weight * mean_difference(
                target_db, value_db, self.loss_type)
        return loss


def _spectrogram_terms(target_mag, value_mag, loss_type: str,
                       term_weights: tuple, weights=None) -> tf.Tensor:
    """SpectralLoss's weighted terms for one FFT size; mags are
    [batch, time, freq]; term_weights as `SpectralLoss._term_weights`."""
    mag_w, delta_time_w, delta_freq_w, cumsum_freq_w, logmag_w = term_weights
    diff = lambda t, v: mean_difference(t, v, loss_type, weights)
    loss = 0.0
    if mag_w > 0:
        loss += mag_w * diff(target_mag, value_mag)
    if delta_time_w > 0:
        loss += delta_time_w * diff(core.diff(target_mag, axis=1),
                                    core.diff(value_mag, axis=1))
    if delta_freq_w > 0:
        loss += delta_freq_w * diff(core.diff(target_mag, axis=2),
                                    core.diff(value_mag, axis=2))
    if cumsum_freq_w > 0:
        loss += cumsum_freq_w * diff(tf.cumsum(target_mag, axis=2),
                                     tf.cumsum(value_mag, axis=2))
    if logmag_w > 0:
        loss += logmag_w * diff(core.safe_log(target_mag),
                                core.safe_log(value_mag))
    return loss


def _fusable(target_audio, audio, fft_sizes) -> bool:
    """Whether `_fused_spectrogram_loss` applies: same static shapes, every
    frame at least a few samples long, integer hops (size divisible by 4)."""
    shape = audio.shape
    return (shape.is_fully_defined() and shape == target_audio.shape
            and all(size % 4 == 0 and size <= shape[-1]
                    for size in fft_sizes))


@functools.lru_cache(maxsize=None)
def _spectrogram_loss_kernel(size: int, loss_type: str, term_weights: tuple):
    """XLA-compiled (loss, d loss / d audio) for one FFT size (one cluster
    per size ran 20 % faster than one cluster for all sizes)."""

    def terms(target_mag, value_mag):
        return _spectrogram_terms(target_mag, value_mag, loss_type,
                                  term_weights)

    @tf.function(jit_compile=True, autograph=False)
    def kernel(target_audio, audio):
        return spectral_ops.magnitude_loss_and_gradient(target_audio, audio,
                                                        terms, size)

    return kernel


def _fused_spectrogram_loss(target_audio, audio, fft_sizes: tuple,
                            loss_type: str, term_weights: tuple) -> tf.Tensor:
    """The spectrogram terms of SpectralLoss, computed with their gradient.

    XLA computes each size's loss and its gradient w.r.t. `audio` together;
    a training step then keeps one `[batch, n_samples]` gradient per size
    instead of every spectrogram until its backward pass, and the fused
    STFTs, terms and adjoints run about 30 % faster than op by op. The sizes
    run one after the other: in parallel they were 8 % faster but held
    150 MB more at batch 16, 4 s. Without a gradient tape the gradient is
    computed anyway (evaluation costs about 1.4x the forward pass).
    """
    term_weights = tuple(float(w) for w in term_weights)
    kernels = [_spectrogram_loss_kernel(int(size), loss_type, term_weights)
               for size in fft_sizes]

    @tf.custom_gradient
    def loss_fn(audio):
        results = []
        for kernel in kernels:
            # One size at a time (see above).
            with tf.control_dependencies(results[-1] if results else []):
                results.append(kernel(target_audio, audio))
        grad = tf.add_n([g for _, g in results])
        return (tf.add_n([loss for loss, _ in results]),
                lambda d_loss: d_loss * grad)

    return loss_fn(audio)


@gin.register(module='ddsp.losses')
class EmbeddingLoss(Loss):
    """Distance between embeddings of target and audio by a pretrained model."""

    def __init__(self,
                 weight: float = 1.0,
                 loss_type: str = 'L1',
                 pretrained_model: Callable | None = None,
                 name: str = 'embedding_loss'):
        super().__init__(name=name)
        if pretrained_model is None:
            raise ValueError(f'{type(self).__name__}: `pretrained_model` must be '
                             f'given (a callable audio -> embedding).')
        self.weight = weight
        self.loss_type = loss_type
        self.pretrained_model = pretrained_model

    def call(self, target_audio, audio) -> tf.Tensor:
        target_embedding = tf.stop_gradient(self.pretrained_model(target_audio))
        embedding = self.pretrained_model(audio)
        return self.weight * mean_difference(target_embedding, embedding,
                                             self.loss_type)


class PretrainedCREPE(keras.layers.Layer):
    """Frozen CREPE truncated at a layer: 16 kHz audio -> frame embeddings.

    Audio `[batch, n_samples]` is cut into 1024-sample frames (hop
    `hop_size`, centred: zero padding of half a frame at each end), each frame
    is normalized as CREPE expects, and the activations of `activation_layer`
    (e.g. 'conv5-maxpool' or 'classifier') are returned as
    `[batch, n_frames, features]`. Differentiable with respect to the audio.
    """

    def __init__(self, model_capacity: str = 'tiny',
                 activation_layer: str = 'conv5-maxpool',
                 hop_size: int = crepe.FRAME_SIZE,
                 name: str = 'pretrained_crepe'):
        super().__init__(name=name, trainable=False, autocast=False)
        model = crepe.get_model(model_capacity)
        try:
            output = model.get_layer(activation_layer).output
        except ValueError as error:
            layers = [layer.name for layer in model.layers]
            raise ValueError(f'PretrainedCREPE: `activation_layer` '
                             f'{activation_layer!r} is not a CREPE layer; '
                             f'choose one of {layers}.') from error
        self.embedding_model = keras.Model(model.inputs, output)
        self.embedding_model.trainable = False
        self.hop_size = hop_size

    def call(self, audio) -> tf.Tensor:
        audio = core.tf_float32(audio)
        if audio.shape.rank != 2:
            raise ValueError(f'PretrainedCREPE: `audio` must be [batch, '
                             f'n_samples], got shape {audio.shape}.')
        audio = spectral_ops.pad(audio, crepe.FRAME_SIZE, self.hop_size,
                                 'center', axis=-1)
        frames = tf.signal.frame(audio, crepe.FRAME_SIZE, self.hop_size)
        batch, n_frames = tf.shape(frames)[0], tf.shape(frames)[1]
        frames = crepe.normalize_frames_tf(frames)
        embeddings = self.embedding_model(
            tf.reshape(frames, [-1, crepe.FRAME_SIZE]), training=False)
        return tf.reshape(embeddings, [batch, n_frames, -1])


@gin.register(module='ddsp.losses')
class PretrainedCREPEEmbeddingLoss(EmbeddingLoss):
    """Perceptual loss: distance between frozen-CREPE embeddings of the audio.

    Used by the paper's unsupervised-f0 autoencoder. Unlike the reference, no
    hidden per-layer scale factors: `weight` is the weight.
    """

    def __init__(self,
                 weight: float = 1.0,
                 loss_type: str = 'L1',
                 model_capacity: str = 'tiny',
                 activation_layer: str = 'classifier',
                 name: str = 'pretrained_crepe_embedding_loss'):
        super().__init__(weight=weight, loss_type=loss_type,
                         pretrained_model=PretrainedCREPE(
                             model_capacity=model_capacity,
                             activation_layer=activation_layer),
                         name=name)


@gin.register(module='ddsp.losses')
class ParamLoss(Loss):
    """Weighted mean difference between any two tensors (e.g. synth params)."""

    def __init__(self, weight: float = 1.0, loss_type: str = 'L1',
                 name: str = 'param_loss'):
        super().__init__(name=name)
        self.weight = weight
        self.loss_type = loss_type

    def call(self, target, value, weights=None) -> tf.Tensor:
        return self.weight * mean_difference(target, value, self.loss_type,
                                             weights)


def amp_loss(amp, amp_target, loss_type: str = 'L1', weights=None,
             log: bool = False, amin: float = 1e-5) -> tf.Tensor:
    """Difference of amplitudes, optionally of their logs (floored at amin).

    Args:
        amp, amp_target: Amplitudes, same shape.
        loss_type: As `mean_difference`.
        weights: Optional mask broadcastable to the amplitudes.
        log: Compare log amplitudes.
        amin: Floor for the log.
    """
    if log:
        amp = core.safe_log(amp, eps=amin)
        amp_target = core.safe_log(amp_target, eps=amin)
    return mean_difference(amp_target, amp, loss_type, weights)


def freq_loss(f_hz, f_hz_target, loss_type: str = 'L1',
              weights=None) -> tf.Tensor:
    """Difference of frequencies in MIDI (semitones), so octaves weigh equally."""
    return mean_difference(core.hz_to_midi(f_hz_target), core.hz_to_midi(f_hz),
                           loss_type, weights)
