"""Tests of ddsp.training.models: Autoencoder outputs, losses, restore."""
import os
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

import ddsp.losses
import ddsp.processors
import ddsp.synths
from ddsp.training import ddsp_run
from ddsp.training import decoders
from ddsp.training import models

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import trainers_testlib as tl  # noqa: E402


@pytest.fixture(scope='module')
def features():
    return {k: tf.constant(v) for k, v in tl.violin_examples(2).items()}


@pytest.fixture(scope='module')
def model_and_outputs(features):
    model = tl.tiny_model()
    outputs, losses = model(features, return_losses=True, training=True)
    return model, outputs, losses


def test_autoencoder_synthesizes_audio_of_the_input_length(model_and_outputs,
                                                           features):
    model, outputs, _ = model_and_outputs
    audio = model.get_audio_from_outputs(outputs)
    assert audio.shape == features['audio'].shape
    assert np.all(np.isfinite(audio))
    # Controls of every processor and the conditioning are in the outputs.
    assert outputs['harmonic']['controls']['f0_hz'].shape == (2, 50, 1)
    assert outputs['reverb']['controls']['ir'].shape == (1, 256)
    assert outputs['ld_scaled'].shape == (2, 50, 1)


def test_losses_and_total_loss(model_and_outputs):
    model, outputs, losses = model_and_outputs
    assert set(losses) == {'spectral_loss', 'total_loss'}
    np.testing.assert_allclose(losses['total_loss'], losses['spectral_loss'])
    # The loss compares the input audio with the synthesis.
    expected = model.spectral_loss(outputs['audio'], outputs['audio_synth'])
    np.testing.assert_allclose(losses['spectral_loss'], expected, rtol=1e-6)


def test_without_return_losses_returns_outputs_only(model_and_outputs,
                                                    features):
    model = model_and_outputs[0]
    outputs = model(features, training=False)
    assert isinstance(outputs, dict) and 'audio_synth' in outputs


def test_two_losses_sum_to_total(features):
    model = tl.tiny_model()
    extra = ddsp.losses.SpectralLoss(fft_sizes=(256,), name='small_fft_loss')
    model = models.Autoencoder(
        preprocessor=model.preprocessor, decoder=model.decoder,
        processor_group=model.processor_group,
        losses=[model.spectral_loss, extra])
    _, losses = model(features, return_losses=True)
    np.testing.assert_allclose(
        losses['total_loss'], losses['spectral_loss'] + losses['small_fft_loss'],
        rtol=1e-6)


def test_constructor_errors():
    decoder = decoders.RnnFcDecoder(input_keys=('f0_scaled',))
    group = ddsp.processors.ProcessorGroup(dag=[])
    with pytest.raises(ValueError, match='decoder'):
        models.Autoencoder(processor_group=group)
    with pytest.raises(ValueError, match='unique'):
        models.Autoencoder(decoder=decoder, processor_group=group,
                           losses=[ddsp.losses.SpectralLoss(),
                                   ddsp.losses.SpectralLoss()])


def test_model_without_losses_raises_when_asked_for_losses(features):
    model = tl.tiny_model()
    model = models.Autoencoder(preprocessor=model.preprocessor,
                               decoder=model.decoder,
                               processor_group=model.processor_group)
    with pytest.raises(ValueError, match='no losses'):
        model(features, return_losses=True)


def test_restore_checks_keys_and_paths(tmp_path, model_and_outputs):
    model = model_and_outputs[0]
    with pytest.raises(FileNotFoundError, match='No checkpoint'):
        model.restore(str(tmp_path))
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ckpt-1'))
    with pytest.raises(ValueError, match='not attributes'):
        model.restore(path, restore_keys=['no_such_module'])
    assert model.restore(str(tmp_path)) == path  # No state file: by number.


def test_get_model_from_gin():
    gin.clear_config()
    ddsp_run.parse_gin('', ['models/ae.gin'], tl.SMALL_GIN_PARAMS)
    model = models.get_model()
    gin.clear_config()
    assert isinstance(model, models.Autoencoder)
    assert model.encoder is not None and model.decoder is not None
    assert model.processor_group.module_names == ['harmonic', 'filtered_noise',
                                                  'add']
