"""Every gin config shipped in ddsp/training/gin parses, builds and trains."""
import glob
import importlib.util
import os
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp.training import ddsp_run
from ddsp.training import models
from ddsp.training import trainers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import trainers_testlib as tl  # noqa: E402

GIN_FILES = sorted(os.path.relpath(p, ddsp_run.GIN_PATH) for p in glob.glob(
    os.path.join(ddsp_run.GIN_PATH, '**', '*.gin'), recursive=True))
# Files that configure a model; the others are combined with models/tiny.gin.
MODEL_DIRS = ('models/', 'papers/')


def _missing_configurables():
    """Configurables of modules not written yet (bindings skipped, not typos)."""
    if importlib.util.find_spec('ddsp.training.eval_util') is None:
        return ['evaluate', 'sample']
    return []


def _parse(gin_file, gin_params=()):
    """Parses like ddsp_run, but unknown configurables are errors."""
    ddsp_run.import_gin_modules()
    ddsp_run.add_gin_search_paths()
    files = [gin_file]
    if not gin_file.startswith(MODEL_DIRS):
        files.insert(0, 'models/tiny.gin')
    gin.clear_config()
    gin.parse_config_files_and_bindings(
        files, list(gin_params), skip_unknown=_missing_configurables())


@pytest.fixture(autouse=True)
def _clear_gin():
    yield
    gin.clear_config()


def test_the_issue_list_of_configs_is_shipped():
    for name in ('optimization/base.gin', 'optimization/base_tpu.gin',
                 'datasets/base.gin', 'datasets/tfrecord.gin',
                 'datasets/nsynth.gin', 'eval/basic.gin', 'eval/basic_f0_ld.gin',
                 'models/ae.gin', 'models/solo_instrument.gin',
                 'models/harmonic_only.gin', 'models/harmonic_noise.gin',
                 'models/unsupervised_f0.gin', 'models/tiny.gin',
                 'papers/iclr2020/nsynth_ae.gin',
                 'papers/iclr2020/solo_instrument.gin',
                 'papers/iclr2020/tiny_instrument.gin'):
        assert name in GIN_FILES


def test_ae_gin_matches_the_paper_model():
    _parse('models/ae.gin')
    assert gin.query_parameter('F0LoudnessPreprocessor.time_steps') == 1000
    assert gin.query_parameter('RnnFcDecoder.output_splits') == (
        ('amps', 1), ('harmonic_distribution', 100), ('noise_magnitudes', 65))
    assert gin.query_parameter('MfccTimeDistributedRnnEncoder.z_dims') == 16
    assert gin.query_parameter('Harmonic.n_samples') == 64000
    assert gin.query_parameter('FilteredNoise.window_size') == 0
    assert gin.query_parameter('SpectralLoss.logmag_weight') == 1.0


def test_solo_instrument_gin_matches_the_paper_model():
    _parse('models/solo_instrument.gin')
    assert gin.query_parameter('Autoencoder.encoder') is None
    assert gin.query_parameter('RnnFcDecoder.input_keys') == ('ld_scaled',
                                                              'f0_scaled')
    assert gin.query_parameter('RnnFcDecoder.output_splits')[1] == (
        'harmonic_distribution', 60)
    assert gin.query_parameter('Reverb.reverb_length') == 48000
    assert gin.query_parameter('Reverb.trainable') is True
    model = models.get_model()
    names = model.processor_group.module_names
    assert names == ['harmonic', 'filtered_noise', 'add', 'reverb']


@pytest.mark.parametrize('gin_file', GIN_FILES)
def test_gin_file_parses_and_builds_a_model(gin_file):
    _parse(gin_file, tl.SMALL_GIN_PARAMS)
    model = models.get_model()
    assert isinstance(model, models.Model)
    with tf.distribute.get_strategy().scope():
        trainer = trainers.get_trainer_class()(model,
                                               tf.distribute.get_strategy())
    assert trainer.grad_clip_norm == 3.0  # optimization/base.gin or default.
    if gin_file.startswith('datasets/') and 'base' not in gin_file:
        assert gin.query_parameter('train.data_provider') is not None


@pytest.mark.slow
@pytest.mark.parametrize('gin_file', GIN_FILES)
def test_gin_file_model_runs_a_training_step(gin_file):
    _parse(gin_file, tl.SMALL_GIN_PARAMS)
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        trainer = trainers.Trainer(models.get_model(), strategy)
    batch = {k: tf.constant(v) for k, v in tl.violin_examples(2).items()}
    trainer.build(batch)
    losses = trainer.train_step(batch)
    assert np.isfinite(float(losses['total_loss']))
    outputs = trainer.predict(batch)
    audio = trainer.model.get_audio_from_outputs(outputs)
    assert audio.shape == batch['audio'].shape
