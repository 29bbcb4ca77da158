"""The training loop (`train`) and helpers for checkpoints and gin configs.

`train` resumes from the newest checkpoint in `restore_dir`, writes the
operative gin config to `save_dir`, logs progress, writes TensorBoard summaries
(losses, steps/s, learning rate, audio and spectrograms of target vs
synthesis) to `save_dir/summaries/train`, saves a checkpoint every
`steps_per_save` steps, and stops early on a target loss or with a clear error
on a non-finite loss (without saving it, so the newest checkpoint stays good).
"""
from __future__ import annotations

import math
import os
import re
import time
from typing import Any

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from ddsp.training import summaries
from ddsp.training import trainers
from ddsp.training.models.model import latest_checkpoint
from ddsp.training.trainers import get_strategy  # noqa: F401 (public API)

__all__ = ['train', 'get_strategy', 'expand_path', 'get_latest_file',
           'get_latest_checkpoint', 'get_latest_operative_config',
           'write_gin_config', 'NonFiniteLossError']

# Examples of the first batch rendered to audio/spectrogram summaries.
N_MEDIA_EXAMPLES = 2
# A progress line at least this often (every step for slow steps).
_LOG_INTERVAL_SECS = 1.0


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


def expand_path(file_path: str) -> str:
    """Expands `~` and environment variables ($HOME, ${DATA}) in a path."""
    return os.path.expanduser(os.path.expandvars(file_path))


def get_latest_file(dir_path: str, prefix: str = 'operative_config-',
                    suffix: str = '.gin') -> str:
    """The file `<prefix><N><suffix>` in `dir_path` with the largest N.

    Raises:
        FileNotFoundError: when there is none.
    """
    dir_path = expand_path(dir_path)
    pattern = re.compile(re.escape(prefix) + r'(\d+)' + re.escape(suffix))
    found = []
    if tf.io.gfile.isdir(dir_path):
        for name in tf.io.gfile.listdir(dir_path):
            match = pattern.fullmatch(name)
            if match:
                found.append((int(match.group(1)), name))
    if not found:
        raise FileNotFoundError(
            f'No file {prefix}<N>{suffix} in {dir_path!r}.')
    return os.path.join(dir_path, max(found)[1])


def get_latest_checkpoint(checkpoint_path: str) -> str:
    """A checkpoint prefix as is, or the newest checkpoint in a directory.

    Raises:
        FileNotFoundError: when there is no checkpoint.
    """
    return latest_checkpoint(expand_path(checkpoint_path))


def get_latest_operative_config(restore_dir: str) -> str:
    """The newest operative_config-<N>.gin of a run directory.

    `restore_dir` may also be a checkpoint prefix or a sub-directory of the
    run: the parent directory is searched too.

    Raises:
        FileNotFoundError: when there is none.
    """
    restore_dir = expand_path(restore_dir)
    for directory in (restore_dir, os.path.dirname(restore_dir.rstrip('/'))):
        try:
            return get_latest_file(directory)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(
        f'No operative_config-<N>.gin in {restore_dir!r} or its parent.')


def copy_dataset_statistics(data_provider, save_dir: str) -> str | None:
    """Copies the training data's dataset_statistics.json into save_dir.

    A TFRecordProvider of a dataset made by ddsp_prepare_tfrecord finds the
    file beside its TFRecords; with the copy, the run folder alone is enough
    for timbre transfer. Other providers and datasets without statistics:
    nothing happens.

    Returns:
        The path of the copy, or None.
    """
    find = getattr(data_provider, 'dataset_statistics_path', None)
    source = find() if find else None
    if source is None:
        return None
    target = os.path.join(save_dir, os.path.basename(source))
    if os.path.abspath(target) != os.path.abspath(source):
        tf.io.gfile.makedirs(save_dir)
        tf.io.gfile.copy(source, target, overwrite=True)
        logging.info('Copied the dataset statistics %s to %s.', source,
                     target)
    return target


def write_gin_config(summary_writer, save_dir: str, step: int) -> str:
    """Writes the operative gin config to `save_dir/operative_config-<step>.gin`.

    Also writes it as a text summary (markdown) for TensorBoard. Uses core gin
    only (`gin.tf` does not import on TF >= 2.16: KERAS3 trap 9).

    Returns:
        The path of the file.
    """
    config_str = gin.operative_config_str()
    save_dir = expand_path(save_dir)
    tf.io.gfile.makedirs(save_dir)
    path = os.path.join(save_dir, f'operative_config-{step}.gin')
    with tf.io.gfile.GFile(path, 'w') as f:
        f.write(config_str)
    # Markdown: gin comments ('#') would become headers; indent as code.
    markdown = '\n'.join('    ' + line for line in config_str.splitlines())
    with summary_writer.as_default():
        tf.summary.text('gin/operative_config', markdown, step=step)
    return path


def _format_losses(losses: dict[str, float]) -> str:
    # total_loss first, then the others alphabetically.
    names = sorted(losses, key=lambda k: (k != 'total_loss', k))
    return '  '.join(f'{k}: {losses[k]:.4f}' for k in names)


def _distribute(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy):
    """A distributed dataset; sharded by example across workers.

    Sharding by file (the default) fails when a dataset has fewer files than
    workers; by example it always works (each worker reads all files).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    return strategy.experimental_distribute_dataset(
        dataset.with_options(options))


class _SummaryWriter:
    """Train summaries: window means of losses, speed, learning rate, media."""

    def __init__(self, trainer: trainers.Trainer, log_dir: str | None,
                 sample_rate: int):
        self.trainer = trainer
        self.sample_rate = sample_rate
        self.writer = (tf.summary.create_file_writer(log_dir) if log_dir
                       else tf.summary.create_noop_writer())
        self.loss_sums: dict[str, float] = {}
        self.n_steps = 0
        self.window_start = time.time()
        self.media_batch = None
        # Calling the model outside `strategy.run` needs variables readable in
        # cross-replica context, which TPU variables are not.
        self.media = (log_dir is not None and not isinstance(
            trainer.strategy, tf.distribute.TPUStrategy))

    def add(self, losses: dict[str, float]):
        for name, value in losses.items():
            self.loss_sums[name] = self.loss_sums.get(name, 0.0) + value
        self.n_steps += 1

    def write(self, step: int):
        elapsed = time.time() - self.window_start
        with self.writer.as_default():
            for name, total in self.loss_sums.items():
                tf.summary.scalar(f'losses/{name}', total / self.n_steps,
                                  step=step)
            tf.summary.scalar('steps_per_sec', self.n_steps / elapsed, step=step)
            tf.summary.scalar('learning_rate',
                              float(self.trainer.learning_rate(step - 1)),
                              step=step)
            if self.media and self.media_batch is not None:
                self._write_media(step)
        self.writer.flush()
        self.loss_sums, self.n_steps = {}, 0
        self.window_start = time.time()

    def _write_media(self, step: int):
        outputs = self.trainer.predict(self.media_batch)
        audio_gen = self.trainer.model.get_audio_from_outputs(outputs).numpy()
        audio = self.media_batch['audio'].numpy()
        summaries.audio_summary(audio_gen, step, self.sample_rate,
                                name='audio/synthesized')
        summaries.audio_summary(audio, step, self.sample_rate,
                                name='audio/original')
        summaries.spectrogram_summary(audio, audio_gen, step,
                                      tag='spectrogram/original_vs_synthesized')


@gin.configurable(module='ddsp.training.train_util')
def train(data_provider,
          trainer: trainers.Trainer,
          batch_size: int = 32,
          num_steps: int = 1000000,
          steps_per_summary: int = 300,
          steps_per_save: int = 300,
          save_dir: str = '/tmp/ddsp',
          restore_dir: str = '/tmp/ddsp',
          early_stop_loss_value: float | None = None) -> dict[str, Any]:
    """Trains until `num_steps` (counted across restarts) or early stop.

    Args:
        data_provider: A `ddsp.training.data.DataProvider`.
        trainer: A `Trainer` (not built yet, or built on this data).
        batch_size: Global batch size (split across replicas).
        num_steps: Total number of optimizer steps; a resumed run continues
            from the checkpoint's step.
        steps_per_summary: Steps between TensorBoard summaries.
        steps_per_save: Steps between checkpoints (a killed run loses at most
            this many steps).
        save_dir: Checkpoints, operative gin configs and summaries.
        restore_dir: Resume from the newest checkpoint here, if any.
        early_stop_loss_value: Stop (and save) once total_loss <= this.

    Returns:
        Dict with 'step' (the final step), 'losses' (of the last step) and
        'checkpoint' (the newest checkpoint written or restored, or None).

    Raises:
        NonFiniteLossError: when a loss becomes NaN or infinite; no checkpoint
            is written for that step.
        ValueError: for invalid arguments.
    """
    for name, value in (('batch_size', batch_size), ('num_steps', num_steps),
                        ('steps_per_summary', steps_per_summary),
                        ('steps_per_save', steps_per_save)):
        if value < 1:
            raise ValueError(f'train: `{name}` must be >= 1, got {value}.')
    strategy = trainer.strategy
    if batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f'train: `batch_size` ({batch_size}) must be divisible by the number '
            f'of replicas ({strategy.num_replicas_in_sync}).')
    save_dir, restore_dir = expand_path(save_dir), expand_path(restore_dir)
    chief = trainers.is_chief(strategy)

    dataset = _distribute(
        data_provider.get_batch(batch_size, shuffle=True, repeats=-1), strategy)
    iterator = iter(dataset)
    first_batch = next(iterator)
    if not trainer.built:
        trainer.build(first_batch)

    checkpoint = None
    try:
        checkpoint = trainer.restore(restore_dir)
    except FileNotFoundError:
        logging.info('No checkpoint in %s: training from scratch.', restore_dir)
    step = int(trainer.step.numpy())

    log_dir = os.path.join(save_dir, 'summaries', 'train') if chief else None
    writer = _SummaryWriter(trainer, log_dir, data_provider.sample_rate)
    writer.media_batch = trainers.first_replica(first_batch, strategy,
                                                N_MEDIA_EXAMPLES)
    if chief:
        config_path = write_gin_config(writer.writer, save_dir, step)
        logging.info('Wrote the operative gin config to %s.', config_path)
        copy_dataset_statistics(data_provider, save_dir)

    if step >= num_steps:
        logging.info('Step %d >= num_steps %d: nothing to train.', step,
                     num_steps)
        return {'step': step, 'losses': {}, 'checkpoint': checkpoint}

    logging.info('Training from step %d to %d, batch size %d, saving to %s.',
                 step, num_steps, batch_size, save_dir)
    losses = {}
    last_log_time, last_log_step = time.time(), step
    batch = first_batch
    while step < num_steps:
        losses = {k: float(v) for k, v in trainer.train_step(batch).items()}
        step += 1
        if not all(math.isfinite(v) for v in losses.values()):
            kept = (f'The newest checkpoint, {checkpoint}, is from before the '
                    f'failure.' if checkpoint else 'No checkpoint was written.')
            message = (f'Non-finite loss at step {step} ({_format_losses(losses)}'
                       f'). Training stopped; no checkpoint was written for this '
                       f'step. {kept} Try a lower learning rate or '
                       f'grad_clip_norm, or check the data for NaNs.')
            logging.error(message)
            raise NonFiniteLossError(message)
        writer.add(losses)

        now = time.time()
        if now - last_log_time >= _LOG_INTERVAL_SECS or step == num_steps:
            rate = (step - last_log_step) / max(now - last_log_time, 1e-9)
            logging.info('step: %d  %s  (%.2f steps/s)', step,
                         _format_losses(losses), rate)
            last_log_time, last_log_step = now, step
        if step % steps_per_summary == 0:
            writer.write(step)
        stop = (early_stop_loss_value is not None and
                losses['total_loss'] <= early_stop_loss_value)
        if step % steps_per_save == 0 or stop or step == num_steps:
            checkpoint = trainer.save(save_dir)
        if stop:
            logging.info('Early stop at step %d: total_loss %.4f <= %.4f.',
                         step, losses['total_loss'], early_stop_loss_value)
            break
        batch = next(iterator)
    logging.info('Training finished at step %d.', step)
    return {'step': step, 'losses': losses, 'checkpoint': checkpoint}
