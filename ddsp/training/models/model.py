"""Base class of ddsp models: losses on request, (partial) checkpoint restore."""
from __future__ import annotations

import os
import re
from typing import Sequence

from absl import logging
import keras
import tensorflow as tf


def latest_checkpoint(checkpoint_path: str) -> str:
    """Resolves a checkpoint prefix, or a directory to its newest checkpoint.

    A directory's newest checkpoint is the one its `checkpoint` state file
    names or, without a state file (e.g. checkpoints copied by hand), the
    `ckpt-<N>.index` with the largest N.

    Raises:
        FileNotFoundError: naming the path, when there is no checkpoint.
    """
    checkpoint_path = os.path.expanduser(os.path.expandvars(checkpoint_path))
    if tf.io.gfile.isdir(checkpoint_path):
        latest = tf.train.latest_checkpoint(checkpoint_path)
        if latest is not None:
            return latest
        numbered = []
        for index in tf.io.gfile.glob(os.path.join(checkpoint_path,
                                                   'ckpt-*.index')):
            match = re.fullmatch(r'ckpt-(\d+)\.index', os.path.basename(index))
            if match:
                numbered.append((int(match.group(1)), index[:-len('.index')]))
        if not numbered:
            raise FileNotFoundError(
                f'No checkpoint found in directory {checkpoint_path!r}.')
        return max(numbered)[1]
    if not tf.io.gfile.exists(checkpoint_path + '.index'):
        raise FileNotFoundError(f'No checkpoint at {checkpoint_path!r}.')
    return checkpoint_path


class Model(keras.Model):
    """A Keras model whose call returns an outputs dict, with losses on request.

    `model(features, return_losses=True, training=True)` returns
    `(outputs, losses)` where `losses` maps each loss name to a scalar and adds
    'total_loss', their sum. Subclasses implement `call` and `compute_losses`.
    """

    def build(self, input_shape=None):
        """Marks the model built; sub-layers build on the first call.

        Without this, Keras would first trace the whole model symbolically to
        build it (slow, and noisy for layers with `**kwargs` in `call`).
        """
        self.built = True

    def __call__(self, *args, return_losses: bool = False, **kwargs):
        outputs = super().__call__(*args, **kwargs)
        if not return_losses:
            return outputs
        losses = dict(self.compute_losses(outputs))
        if not losses:
            raise ValueError(f'{type(self).__name__} has no losses to return.')
        losses['total_loss'] = tf.add_n(list(losses.values()))
        return outputs, losses

    def compute_losses(self, outputs: dict) -> dict[str, tf.Tensor]:
        """Named scalar losses from the outputs of `call`."""
        raise NotImplementedError

    def get_audio_from_outputs(self, outputs: dict) -> tf.Tensor:
        """The synthesized audio `[batch, n_samples]` in the outputs dict."""
        raise NotImplementedError

    def restore(self, checkpoint_path: str, verbose: bool = True,
                restore_keys: Sequence[str] | None = None) -> str:
        """Restores weights from a checkpoint written by the Trainer.

        Args:
            checkpoint_path: A checkpoint prefix or a directory (its newest
                checkpoint is used).
            verbose: Log what was restored; also asserts that every variable of
                the restored objects was found in the checkpoint.
            restore_keys: Restore only these sub-modules (attribute names such as
                'decoder', 'processor_group'); None restores the whole model.

        Returns:
            The checkpoint prefix that was read.
        """
        path = latest_checkpoint(checkpoint_path)
        if restore_keys:
            missing = [k for k in restore_keys if not hasattr(self, k)]
            if missing:
                raise ValueError(
                    f'restore_keys {missing} are not attributes of '
                    f'{type(self).__name__}.')
            # The Trainer saves the model under 'model'; mirror that nesting.
            target = tf.train.Checkpoint(**{k: getattr(self, k)
                                            for k in restore_keys})
            status = tf.train.Checkpoint(model=target).read(path)
        else:
            status = tf.train.Checkpoint(model=self).read(path)
        if verbose:
            status.assert_existing_objects_matched()
            logging.info('Restored %s from %s', restore_keys or 'the model', path)
        # The checkpoint may hold more (the optimizer, other sub-modules): no
        # warnings about those.
        status.expect_partial()
        return path
