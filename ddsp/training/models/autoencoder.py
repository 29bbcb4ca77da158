"""The DDSP autoencoder: preprocessor -> encoder -> decoder -> processor group."""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from ddsp import core
from ddsp import losses as ddsp_losses
from ddsp.gin_utils import configurable_layer
from ddsp.training.models.model import Model


@configurable_layer(module='ddsp.training.models')
class Autoencoder(Model):
    """Audio features -> (optional z) -> synthesizer controls -> audio.

    The preprocessor turns features (f0, loudness) into network inputs, the
    optional encoder adds a latent z, the decoder predicts synthesizer controls
    and the processor group renders them. Losses compare `features['audio']`
    with the synthesized audio.
    """

    def __init__(self,
                 preprocessor=None,
                 encoder=None,
                 decoder=None,
                 processor_group=None,
                 losses: Sequence | None = None,
                 name: str = 'autoencoder',
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if decoder is None or processor_group is None:
            raise ValueError('Autoencoder: `decoder` and `processor_group` are '
                             'required.')
        self.preprocessor = preprocessor
        self.encoder = encoder
        self.decoder = decoder
        self.processor_group = processor_group
        # Each loss its own attribute, so checkpoints track them (KERAS3 trap 1).
        self.loss_names = []
        for loss in core.make_iterable(losses):
            if hasattr(type(self), loss.name) or loss.name in self.loss_names:
                raise ValueError(f'Autoencoder: loss name {loss.name!r} is '
                                 f'taken; give each loss a unique `name`.')
            setattr(self, loss.name, loss)
            self.loss_names.append(loss.name)

    def encode(self, features: dict, training: bool = True) -> dict:
        """Features -> conditioning: preprocessed features and z, merged."""
        conditioning = dict(features)
        if self.preprocessor is not None:
            conditioning.update(self.preprocessor(conditioning, training=training))
        if self.encoder is not None:
            conditioning.update(self.encoder(conditioning, training=training))
        return conditioning

    def decode(self, conditioning: dict, training: bool = True) -> tf.Tensor:
        """Conditioning -> audio `[batch, n_samples]`."""
        return self.get_audio_from_outputs(self._synthesize(conditioning, training))

    def _synthesize(self, conditioning: dict, training: bool) -> dict:
        controls = dict(conditioning)
        controls.update(self.decoder(conditioning, training=training))
        outputs = self.processor_group(controls, return_outputs_dict=True)
        result = dict(outputs['controls'])
        result['audio_synth'] = outputs['signal']
        return result

    def call(self, features: dict, training: bool = True) -> dict:
        return self._synthesize(self.encode(features, training), training)

    def compute_losses(self, outputs: dict) -> dict[str, tf.Tensor]:
        losses = {}
        for name in self.loss_names:
            loss = getattr(self, name)
            if isinstance(loss, ddsp_losses.LossGroup):  # Reads its own keys.
                losses.update(loss(outputs))
            else:
                losses.update(loss.get_losses_dict(outputs['audio'],
                                                   outputs['audio_synth']))
        return losses

    def get_audio_from_outputs(self, outputs: dict) -> tf.Tensor:
        return outputs['audio_synth']
