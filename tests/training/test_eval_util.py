"""Tests of ddsp.training.eval_util: checkpoints, evaluators, JSON reports."""
import json
import logging
import os
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp.training import ddsp_run
from ddsp.training import eval_util
from ddsp.training import evaluators
from ddsp.training import models

sys.path.insert(0, os.path.dirname(__file__))
import model_dir_testlib as mdl  # noqa: E402
from eval_testlib import read_events  # noqa: E402


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return mdl.make_model_dir(str(tmp_path_factory.mktemp('run')))


def _model(model_dir):
    """The run's model (from its operative config), not restored."""
    gin.clear_config()
    try:
        ddsp_run.parse_gin(model_dir)
        return models.get_model()
    finally:
        gin.clear_config()


@pytest.fixture(scope='module')
def model(model_dir):
    """One model for the tests: each evaluation restores the checkpoint."""
    return _model(model_dir)


@pytest.fixture(scope='module')
def provider():
    return mdl.ArrayProvider(mdl.tone_features(4))


def _direct_mean_total_loss(model_dir, provider, batch_size):
    """Mean total_loss of the restored model over one pass of the data."""
    model = _model(model_dir)
    losses = []
    for i, batch in enumerate(provider.get_batch(batch_size, shuffle=False,
                                                 repeats=1)):
        if i == 0:
            model(batch, training=False)
            model.restore(model_dir)
        losses.append(float(model(batch, training=False,
                                  return_losses=True)[1]['total_loss']))
    return np.mean(losses)


def test_evaluate_run_once_writes_reports_with_the_model_losses(
        tmp_path, model_dir, model, provider):
    save_dir = str(tmp_path / 'eval_out')
    record = eval_util.evaluate(provider, model, [evaluators.BasicEvaluator],
                                save_dir=save_dir, restore_dir=model_dir,
                                batch_size=2, num_batches=5, run_once=True)
    # One pass over 4 examples: 2 batches of 2, although 5 were allowed.
    assert record['step'] == 1 and record['mode'] == 'eval'
    assert record['checkpoint'] == os.path.join(model_dir, 'ckpt-1')
    assert (record['n_batches'], record['n_examples']) == (2, 4)
    assert set(record['metrics']) == {'losses/spectral_loss',
                                      'losses/total_loss'}
    # Not exact: the noise synthesizer draws new noise on every call.
    assert record['metrics']['losses/total_loss'] == pytest.approx(
        _direct_mean_total_loss(model_dir, provider, 2), rel=1e-3)

    with open(os.path.join(save_dir, 'eval', 'metrics-1.json')) as f:
        assert json.load(f) == record
    tags = read_events(os.path.join(save_dir, 'summaries', 'eval'))
    step, value = tags['losses/total_loss'][0]
    assert step == 1
    assert float(tf.make_ndarray(value.tensor)) == pytest.approx(
        record['metrics']['losses/total_loss'], rel=1e-6)

    # Evaluating again appends to metrics.jsonl, on the same batches.
    again = eval_util.evaluate(provider, model, [evaluators.BasicEvaluator],
                               save_dir=save_dir, restore_dir=model_dir,
                               batch_size=2, num_batches=5, run_once=True)
    assert again['metrics'] == pytest.approx(record['metrics'], rel=1e-3)
    with open(os.path.join(save_dir, 'eval', eval_util.METRICS_JSONL)) as f:
        lines = [json.loads(line) for line in f]
    assert lines == [record, again]


def test_repeats_fill_num_batches(tmp_path, model_dir, model, provider):
    record = eval_util.evaluate_or_sample(
        provider, model, None, save_dir=str(tmp_path), restore_dir=model_dir,
        batch_size=3, num_batches=3, repeats=-1, run_once=True)
    assert (record['n_batches'], record['n_examples']) == (3, 9)
    assert np.isfinite(record['metrics']['losses/total_loss'])


def test_sample_mode_writes_media_and_no_report(tmp_path, model_dir, model,
                                                provider):
    save_dir = str(tmp_path)
    record = eval_util.sample(provider, model, [evaluators.BasicEvaluator],
                              save_dir=save_dir, restore_dir=model_dir,
                              batch_size=2, run_once=True)
    assert record['metrics'] == {} and record['n_batches'] == 1
    assert not os.path.exists(os.path.join(save_dir, 'sample'))
    tags = read_events(os.path.join(save_dir, 'summaries', 'sample'))
    assert {'audio_generated', 'audio_original', 'spectrogram'} <= set(tags)
    assert 'losses/total_loss' not in tags

    # Evaluating into the same save_dir keeps the two apart.
    evaluated = eval_util.evaluate(provider, model,
                                   [evaluators.BasicEvaluator],
                                   save_dir=save_dir, restore_dir=model_dir,
                                   batch_size=2, num_batches=1, run_once=True)
    assert np.isfinite(evaluated['metrics']['losses/total_loss'])
    assert os.path.exists(os.path.join(save_dir, 'eval', 'metrics-1.json'))
    assert not os.path.exists(os.path.join(save_dir, 'sample'))


def test_polling_stops_at_run_until_step_or_timeout(tmp_path, model_dir,
                                                    model, provider):
    kwargs = dict(save_dir=str(tmp_path), restore_dir=model_dir,
                  batch_size=2, num_batches=1)
    record = eval_util.evaluate(provider, model, run_until_step=1,
                                timeout_secs=None, **kwargs)
    assert record['step'] == 1
    record = eval_util.evaluate(provider, model, timeout_secs=0.5, **kwargs)
    assert record['step'] == 1


def test_missing_checkpoint(tmp_path, model, provider, caplog):
    empty = str(tmp_path / 'empty')
    os.makedirs(empty)
    with pytest.raises(FileNotFoundError, match='restore_dir') as error:
        eval_util.evaluate(provider, model, save_dir=str(tmp_path),
                           restore_dir=empty, run_once=True)
    assert empty in str(error.value)
    # Without run_once: a logged wait, then nothing evaluated.
    caplog.set_level(logging.INFO, logger='absl')
    assert eval_util.evaluate(provider, model, save_dir=str(tmp_path),
                              restore_dir=empty, timeout_secs=0.5) is None
    assert f'No checkpoint in {empty} yet: waiting' in caplog.text


def test_invalid_arguments(tmp_path, model, provider):
    with pytest.raises(ValueError, match='mode'):
        eval_util.evaluate_or_sample(provider, model, mode='train',
                                     save_dir=str(tmp_path))
    with pytest.raises(ValueError, match='num_batches'):
        eval_util.evaluate(provider, model, save_dir=str(tmp_path),
                           num_batches=0)


def test_checkpoint_step(tmp_path):
    assert eval_util.checkpoint_step('/run/ckpt-300') == 300
    counter = tf.train.Checkpoint(
        iterations=tf.Variable(7, dtype=tf.int64))
    path = tf.train.Checkpoint(optimizer=counter).write(
        str(tmp_path / 'model'))
    assert eval_util.checkpoint_step(path) == 7


def test_non_finite_values_become_null(caplog):
    # pylint: disable=protected-access
    assert eval_util._json_value('losses/x', float('nan')) is None
    assert 'losses/x is nan' in caplog.text
    assert eval_util._json_value('losses/x', np.float32(2.5)) == 2.5
    assert eval_util._json_value('losses/x', None) is None
