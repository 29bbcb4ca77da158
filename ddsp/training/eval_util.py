"""Evaluation and sampling of a model's checkpoints (`ddsp_run --mode=eval`).

`evaluate_or_sample` restores each new checkpoint of a run directory, runs
the model (`training=False`) on evaluation batches and hands batch, outputs
and losses to evaluators (`ddsp.training.evaluators`). The batches are the
same for every checkpoint (the data in order, not shuffled), so metrics of
different checkpoints compare.

Outputs, in `save_dir`:

* TensorBoard summaries in `summaries/eval` (or `summaries/sample`): scalars
  `losses/{name}` and `metrics/{family}/{metric}`, audio and images.
* When evaluating, one JSON report per checkpoint, `eval/metrics-<step>.json`,
  and the same report appended as one line to `eval/metrics.jsonl`::

    {"step": 300, "checkpoint": "/run/ckpt-300", "mode": "eval",
     "time": "2025-01-01T12:00:00+00:00", "n_batches": 5, "n_examples": 160,
     "metrics": {"losses/total_loss": 4.2, "losses/spectral_loss": 4.2,
                 "metrics/loudness/loudness_db": 3.1,
                 "metrics/f0_crepe/f0_dist": 0.4,
                 "metrics/f0_crepe/outlier_ratio": 0.0}}

  Keys of "metrics" are the TensorBoard tags; a value is null when the metric
  had no data (e.g. no confident f0 frames) or was not finite.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import re
import time
from typing import Any, Dict, Optional, Sequence

from absl import logging
import gin
import tensorflow as tf

from ddsp.training import evaluators as evaluators_lib
from ddsp.training.data_preparation import dataset_metadata as dm
from ddsp.training.models.model import latest_checkpoint

__all__ = ['evaluate_or_sample', 'evaluate', 'sample', 'checkpoint_step',
           'METRICS_JSONL']

# The appended per-checkpoint reports (one JSON object per line).
METRICS_JSONL = 'metrics.jsonl'
_MODES = ('eval', 'sample')


def checkpoint_step(checkpoint: str) -> int:
    """The training step of a checkpoint: N of `ckpt-N` (the Trainer names
    checkpoints by step), else the optimizer's iteration count stored in it,
    else 0."""
    match = re.search(r'-(\d+)$', checkpoint)
    if match:
        return int(match.group(1))
    reader = tf.train.load_checkpoint(checkpoint)
    for name in reader.get_variable_to_shape_map():
        if name.startswith('optimizer/') and 'iterations' in name:
            return int(reader.get_tensor(name))
    return 0


def _checkpoints(restore_dir: str, run_once: bool, ckpt_delay_secs: float,
                 timeout_secs: Optional[float]):
    """Checkpoint prefixes to process: the newest one (run_once), or each new
    one as it appears until none comes for timeout_secs."""
    if run_once:
        try:
            yield latest_checkpoint(restore_dir)
        except FileNotFoundError:
            raise FileNotFoundError(
                f'No checkpoint to evaluate in restore_dir {restore_dir!r}: '
                'train first, or point --restore_dir (default --save_dir) at '
                'a run directory with ckpt-<N> files.') from None
        return
    if tf.train.latest_checkpoint(restore_dir) is None:
        logging.info('No checkpoint in %s yet: waiting for one%s.',
                     restore_dir, f' (at most {timeout_secs} s)'
                     if timeout_secs else '')
    yield from tf.train.checkpoints_iterator(
        restore_dir, min_interval_secs=ckpt_delay_secs, timeout=timeout_secs)
    logging.info('No new checkpoint in %s for %s s: stopping.', restore_dir,
                 timeout_secs)


def _json_value(tag: str, value) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        logging.warning('%s is %s; written as null in the JSON report.', tag,
                        value)
        return None
    return value


def _write_report(report_dir: str, record: Dict[str, Any]):
    """metrics-<step>.json (atomic) and a line appended to metrics.jsonl."""
    tf.io.gfile.makedirs(report_dir)
    path = os.path.join(report_dir, f'metrics-{record["step"]}.json')
    dm.write_json_atomic(path, record)
    jsonl = os.path.join(report_dir, METRICS_JSONL)
    line = json.dumps(record, allow_nan=False) + '\n'
    with tf.io.gfile.GFile(jsonl, 'a') as f:
        f.write(line)
    logging.info('Wrote the metrics of step %d to %s.', record['step'], path)


def evaluate_or_sample(data_provider,
                       model,
                       evaluator_classes: Optional[Sequence[type]] = None,
                       mode: str = 'eval',
                       save_dir: str = '/tmp/ddsp/training',
                       restore_dir: str = '',
                       batch_size: int = 32,
                       num_batches: int = 50,
                       repeats: int = 1,
                       ckpt_delay_secs: float = 0,
                       run_once: bool = False,
                       run_until_step: int = 0,
                       timeout_secs: Optional[float] = 7200
                       ) -> Optional[Dict[str, Any]]:
    """Evaluates or samples each new checkpoint of a run.

    Args:
        data_provider: A `ddsp.training.data.DataProvider` of evaluation data.
        model: A `ddsp.training.models.Model` (not restored yet).
        evaluator_classes: `evaluators.BaseEvaluator` subclasses, created with
            the data's rates; default (BasicEvaluator,).
        mode: 'eval' (metrics) or 'sample' (audio and image summaries).
        save_dir: Output folder (see the module docstring).
        restore_dir: Run folder with the checkpoints; '' means save_dir.
        batch_size: Examples per batch.
        num_batches: At most this many batches per checkpoint.
        repeats: Passes over the data: 1 evaluates every example once (fewer
            than num_batches batches if the data is short); -1 repeats it
            (the reference's behaviour) so that num_batches are always run.
        ckpt_delay_secs: At least this many seconds between checkpoints.
        run_once: Only the newest checkpoint (FileNotFoundError naming
            restore_dir if there is none), then return.
        run_until_step: Stop after a checkpoint of this step or later (0:
            no limit).
        timeout_secs: Stop when no new checkpoint appears for this long
            (None: wait forever). Not used with run_once.

    Returns:
        The report of the last checkpoint processed (the JSON layout of the
        module docstring; in sample mode "metrics" is empty), or None if none
        was.

    Raises:
        ValueError: for invalid arguments or data without examples.
        FileNotFoundError: run_once without a checkpoint in restore_dir.
    """
    if mode not in _MODES:
        raise ValueError(f'mode must be one of {_MODES}, got {mode!r}.')
    for name, value in (('batch_size', batch_size),
                        ('num_batches', num_batches)):
        if value < 1:
            raise ValueError(f'{name} must be >= 1, got {value}.')
    evaluator_classes = list(evaluator_classes or
                             [evaluators_lib.BasicEvaluator])
    save_dir = os.path.expanduser(save_dir)
    restore_dir = os.path.expanduser(restore_dir) or save_dir
    do_evaluate = mode == 'eval'

    evaluators = [cls(data_provider.sample_rate, data_provider.frame_rate)
                  for cls in evaluator_classes]
    for evaluator in evaluators:
        evaluator.set_model(model)
    dataset = data_provider.get_batch(batch_size, shuffle=False,
                                      repeats=repeats, drop_remainder=False)
    dataset = dataset.take(num_batches)
    # Built once per call, before the checkpoint loop: every checkpoint
    # runs the same batches through the same compiled step.
    forward = tf.function(
        lambda batch: model(batch, training=False, return_losses=True),
        reduce_retracing=True, autograph=False)
    writer = tf.summary.create_file_writer(
        os.path.join(save_dir, 'summaries', mode))
    record = None
    for checkpoint in _checkpoints(restore_dir, run_once, ckpt_delay_secs,
                                   timeout_secs):
        start = time.time()
        step = checkpoint_step(checkpoint)
        n_batches = n_examples = 0
        for batch in dataset:
            if n_batches == 0:
                if not model.weights:  # Variables must exist to restore them.
                    model(batch, training=False)
                model.restore(checkpoint)
            outputs, losses = forward(batch)
            outputs = dict(outputs)
            outputs['audio_gen'] = model.get_audio_from_outputs(outputs)
            with writer.as_default():
                for evaluator in evaluators:
                    if do_evaluate:
                        evaluator.evaluate(batch, outputs, losses)
                    else:
                        evaluator.sample(batch, outputs, step)
            n_batches += 1
            n_examples += int(tf.shape(outputs['audio_gen'])[0])
        if not n_batches:
            raise ValueError(f'{type(data_provider).__name__} gave no '
                             'examples to evaluate.')
        results = {}
        if do_evaluate:  # Sampling accumulates nothing to flush.
            with writer.as_default():
                for evaluator in evaluators:
                    results.update(evaluator.flush(step))
        writer.flush()
        record = {
            'step': step, 'checkpoint': checkpoint, 'mode': mode,
            'time': datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec='seconds'),
            'n_batches': n_batches, 'n_examples': n_examples,
            'metrics': {k: _json_value(k, v) for k, v in results.items()},
        }
        if do_evaluate:
            _write_report(os.path.join(save_dir, mode), record)
        logging.info('%s of step %d: %d examples in %.1f s.',
                     'Evaluation' if do_evaluate else 'Sampling', step,
                     n_examples, time.time() - start)
        if run_until_step and step >= run_until_step:
            logging.info('Reached step %d >= run_until_step %d: stopping.',
                         step, run_until_step)
            break
    return record


@gin.configurable(module='ddsp.training.eval_util')
def evaluate(data_provider,
             model,
             evaluator_classes: Optional[Sequence[type]] = None,
             save_dir: str = '/tmp/ddsp/training',
             restore_dir: str = '',
             batch_size: int = 32,
             num_batches: int = 50,
             repeats: int = 1,
             ckpt_delay_secs: float = 0,
             run_once: bool = False,
             run_until_step: int = 0,
             timeout_secs: Optional[float] = 7200
             ) -> Optional[Dict[str, Any]]:
    """Metrics of each new checkpoint (`evaluate_or_sample`, mode 'eval')."""
    return evaluate_or_sample(
        data_provider, model, evaluator_classes, mode='eval',
        save_dir=save_dir, restore_dir=restore_dir, batch_size=batch_size,
        num_batches=num_batches, repeats=repeats,
        ckpt_delay_secs=ckpt_delay_secs, run_once=run_once,
        run_until_step=run_until_step, timeout_secs=timeout_secs)


@gin.configurable(module='ddsp.training.eval_util')
def sample(data_provider,
           model,
           evaluator_classes: Optional[Sequence[type]] = None,
           save_dir: str = '/tmp/ddsp/training',
           restore_dir: str = '',
           batch_size: int = 16,
           num_batches: int = 1,
           repeats: int = 1,
           ckpt_delay_secs: float = 0,
           run_once: bool = False,
           run_until_step: int = 0,
           timeout_secs: Optional[float] = 7200
           ) -> Optional[Dict[str, Any]]:
    """Audio and image summaries of each new checkpoint
    (`evaluate_or_sample`, mode 'sample')."""
    return evaluate_or_sample(
        data_provider, model, evaluator_classes, mode='sample',
        save_dir=save_dir, restore_dir=restore_dir, batch_size=batch_size,
        num_batches=num_batches, repeats=repeats,
        ckpt_delay_secs=ckpt_delay_secs, run_once=run_once,
        run_until_step=run_until_step, timeout_secs=timeout_secs)
