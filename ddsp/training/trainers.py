"""Trainer: optimizer, distributed train step and checkpoints of a ddsp model.

The Trainer runs on any `tf.distribute` strategy (one device, several local
devices, several workers, TPU) and gives the same result for the same global
batch whatever the number of replicas: each replica scales its loss by
1 / num_replicas, the gradients are summed over replicas *before* global-norm
clipping, and the optimizer then applies exactly the single-device update.
(Keras 3 optimizers clip each replica's gradients before their all-reduce, so
with several replicas their `global_clipnorm` alone would clip the wrong norm.)
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Sequence

from absl import logging
import gin
import keras
import numpy as np
import tensorflow as tf

from ddsp.training.models.model import latest_checkpoint

__all__ = ['Trainer', 'get_trainer_class', 'get_strategy', 'is_chief',
           'count_parameters', 'first_replica']

TensorDict = dict[str, Any]


def get_strategy(tpu: str = '',
                 cluster_config: str = '') -> tf.distribute.Strategy:
    """The tf.distribute strategy for the machine(s) at hand.

    Args:
        tpu: Address of a TPU ('grpc://...' or a Cloud TPU name): TPUStrategy.
        cluster_config: A TF_CONFIG-style JSON string, e.g.
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]},
              "task": {"type": "worker", "index": 0}}'. It is also read from
            the TF_CONFIG environment variable when not given. With more than
            one task in the cluster: MultiWorkerMirroredStrategy.

    Returns:
        TPUStrategy, MultiWorkerMirroredStrategy, or MirroredStrategy over all
        local GPUs (or the CPU).
    """
    if tpu:
        logging.info('Using TPUStrategy on %s.', tpu)
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    config_str = cluster_config or os.environ.get('TF_CONFIG', '')
    if config_str:
        try:
            config = json.loads(config_str)
        except json.JSONDecodeError as error:
            raise ValueError(f'get_strategy: `cluster_config` (or TF_CONFIG) is '
                             f'not valid JSON: {error}') from error
        cluster = config.get('cluster', {}) if isinstance(config, dict) else {}
        n_tasks = sum(len(tasks) for name, tasks in cluster.items()
                      if name in ('chief', 'worker'))
        if n_tasks > 1:
            if 'task' not in config:
                raise ValueError('get_strategy: the cluster config needs a '
                                 '"task": {"type": ..., "index": ...} entry.')
            os.environ['TF_CONFIG'] = json.dumps(config)
            logging.info('Using MultiWorkerMirroredStrategy, task %s of %s.',
                         config['task'], cluster)
            return tf.distribute.MultiWorkerMirroredStrategy()
    strategy = tf.distribute.MirroredStrategy()
    logging.info('Using MirroredStrategy on %s.',
                 strategy.extended.worker_devices)
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the one process that writes checkpoints and summaries.

    That is the only process of a single-machine strategy, the 'chief' task of a
    multi-worker cluster, or worker 0 when the cluster has no 'chief'.
    """
    resolver = getattr(strategy, 'cluster_resolver', None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == 'chief':
        return True
    has_chief = 'chief' in resolver.cluster_spec().as_dict()
    return (not has_chief and resolver.task_type == 'worker'
            and resolver.task_id == 0)


def count_parameters(module) -> int:
    """Number of trainable scalars of a Keras layer (0 for None)."""
    if module is None or not hasattr(module, 'trainable_variables'):
        return 0
    return int(sum(np.prod(v.shape) for v in module.trainable_variables))


def first_replica(batch: TensorDict, strategy: tf.distribute.Strategy,
                   n_examples: int | None = None) -> TensorDict:
    """The first replica's part of a (distributed) batch, as plain tensors."""
    def local(x):
        x = strategy.experimental_local_results(x)[0]
        return x if n_examples is None else x[:n_examples]
    return tf.nest.map_structure(local, batch)


@gin.configurable(module='ddsp.training.trainers')
class Trainer:
    """Trains a `ddsp.training.models.Model` with Adam on a tf.distribute strategy.

    Usage:
        strategy = train_util.get_strategy()
        with strategy.scope():
            model = models.Autoencoder(...)
            trainer = Trainer(model, strategy)
        batch = next(iterator)          # from strategy.experimental_distribute_dataset
        trainer.build(batch)            # creates the variables; once
        losses = trainer.train_step(batch)
        trainer.save(save_dir)          # checkpoint number = trainer.step
    """

    def __init__(self,
                 model: keras.Model,
                 strategy: tf.distribute.Strategy,
                 checkpoints_to_keep: int = 100,
                 learning_rate: float = 0.001,
                 lr_decay_steps: int = 10000,
                 lr_decay_rate: float = 0.98,
                 grad_clip_norm: float | None = 3.0,
                 restore_keys: Sequence[str] | None = None,
                 jit_compile: bool = False):
        """Constructor.

        Args:
            model: The model; its `__call__(batch, return_losses=True)` returns
                `(outputs, losses)` with losses['total_loss'].
            strategy: The tf.distribute strategy the model was built under.
            checkpoints_to_keep: Checkpoints kept by `save` (older ones deleted).
            learning_rate: Initial learning rate of Adam.
            lr_decay_steps: Steps over which the learning rate decays by
                `lr_decay_rate` (smooth exponential decay, not staircase).
            lr_decay_rate: Decay factor per `lr_decay_steps`.
            grad_clip_norm: Clip the global norm of the gradients (summed over
                replicas) to this value; None or 0 for no clipping.
            restore_keys: Restore only these sub-modules of the model (e.g.
                ['decoder']) and not the optimizer: for fine-tuning. None
                restores model and optimizer (resuming).
            jit_compile: XLA-compile the forward pass and gradient computation
                (gradients are applied outside the compiled function: KERAS3
                trap 4).
        """
        if checkpoints_to_keep < 1:
            raise ValueError(f'Trainer: `checkpoints_to_keep` must be >= 1, got '
                             f'{checkpoints_to_keep}.')
        if learning_rate <= 0:
            raise ValueError(f'Trainer: `learning_rate` must be > 0, got '
                             f'{learning_rate}.')
        if lr_decay_steps <= 0 or not 0 < lr_decay_rate <= 1:
            raise ValueError(
                f'Trainer: need `lr_decay_steps` > 0 and 0 < `lr_decay_rate` <= 1,'
                f' got {lr_decay_steps} and {lr_decay_rate}.')
        if grad_clip_norm is not None and grad_clip_norm < 0:
            raise ValueError(f'Trainer: `grad_clip_norm` must be >= 0 or None, '
                             f'got {grad_clip_norm}.')
        self.model = model
        self.strategy = strategy
        self.checkpoints_to_keep = checkpoints_to_keep
        self.grad_clip_norm = grad_clip_norm
        self.restore_keys = list(restore_keys) if restore_keys else None
        self.jit_compile = jit_compile
        self.n_replicas = strategy.num_replicas_in_sync
        with strategy.scope():
            self.learning_rate = keras.optimizers.schedules.ExponentialDecay(
                initial_learning_rate=learning_rate,
                decay_steps=lr_decay_steps,
                decay_rate=lr_decay_rate)
            # Each replica hands the optimizer (sum of gradients) / n_replicas,
            # which the optimizer clips and then sums again over replicas:
            # clipping that at clip_norm / n_replicas is clipping the sum at
            # clip_norm (the norm is linear in the scale).
            clipnorm = (grad_clip_norm / self.n_replicas if grad_clip_norm
                        else None)
            self.optimizer = keras.optimizers.Adam(
                learning_rate=self.learning_rate, global_clipnorm=clipnorm)
        self.checkpoint = None
        self._managers = {}
        self._train_step = None
        self._forward = None

    # ---------------------------------------------------------------- state
    @property
    def step(self) -> tf.Variable:
        """The number of optimizer updates so far (saved in checkpoints)."""
        return self.optimizer.iterations

    @property
    def built(self) -> bool:
        return self._train_step is not None

    def build(self, batch: TensorDict):
        """Creates model and optimizer variables and the compiled train step.

        Args:
            batch: A batch as given to `train_step` (a dict of tensors, or of
                per-replica values from a distributed dataset). Its type spec
                becomes the fixed input signature of the train step.
        """
        example = first_replica(batch, self.strategy, n_examples=1)
        with self.strategy.scope():
            self.model(example, training=True)  # Creates the model's variables.
            # Before the first step, inside the scope (KERAS3 trap 3).
            self.optimizer.build(self.model.trainable_variables)
        self.checkpoint = tf.train.Checkpoint(model=self.model,
                                              optimizer=self.optimizer)
        signature = tf.nest.map_structure(tf.type_spec_from_value, batch)
        # No autograph: nothing here branches on tensors, and converting every
        # layer's `call` to graph code would double the tracing time.
        self._train_step = tf.function(self._distributed_step,
                                       input_signature=[signature],
                                       autograph=False)
        self._log_model_size()

    def _log_model_size(self):
        parts = {name: count_parameters(getattr(self.model, name, None))
                 for name in ('preprocessor', 'encoder', 'decoder',
                              'processor_group')}
        detail = ', '.join(f'{k} {v:,}' for k, v in parts.items() if v)
        logging.info('Model %s: %s trainable parameters (%s); %d replica(s).',
                     self.model.name, f'{count_parameters(self.model):,}',
                     detail or 'no sub-modules', self.n_replicas)

    def _check_built(self, what: str):
        if not self.built:
            raise ValueError(f'Trainer.{what}: call `trainer.build(batch)` first.')

    # ------------------------------------------------------------- training
    def _forward_and_gradients(self, batch: TensorDict):
        """Per replica: losses and gradients of the replica's share of the loss."""
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            _, losses = self.model(batch, return_losses=True, training=True)
            # Mean over the global batch = sum over replicas of local mean / n.
            scaled_loss = losses['total_loss'] / self.n_replicas
        grads = tape.gradient(scaled_loss, variables)
        # Unused variables get zero gradients, so that all-reduce has tensors.
        grads = [tf.zeros_like(v) if g is None else g
                 for g, v in zip(grads, variables)]
        return losses, grads

    def _replica_step(self, batch: TensorDict) -> TensorDict:
        compute = self._forward_and_gradients
        if self.jit_compile:
            compute = tf.function(compute, jit_compile=True, autograph=False)
        losses, grads = compute(batch)
        if self.n_replicas > 1:
            context = tf.distribute.get_replica_context()
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            # The optimizer sums over replicas once more (see class docstring).
            grads = [g / self.n_replicas for g in grads]
        self.optimizer.apply_gradients(zip(grads,
                                           self.model.trainable_variables))
        return losses

    def _distributed_step(self, batch: TensorDict) -> TensorDict:
        losses = self.strategy.run(self._replica_step, args=(batch,))
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value,
                                           axis=None)
                for name, value in losses.items()}

    def train_step(self, batch: TensorDict) -> TensorDict:
        """One optimizer update on a (distributed) batch.

        Returns:
            Dict of scalar losses (means over the global batch), including
            'total_loss'.
        """
        self._check_built('train_step')
        return self._train_step(batch)

    def predict(self, batch: TensorDict) -> TensorDict:
        """Model outputs (training=False) for a plain, non-distributed batch.

        Used for summaries; compiled once per input signature.
        """
        self._check_built('predict')
        if self._forward is None:
            self._forward = tf.function(
                lambda features: self.model(features, training=False),
                reduce_retracing=True, autograph=False)
        return self._forward(batch)

    # ---------------------------------------------------------- checkpoints
    def _manager(self, directory: str) -> tf.train.CheckpointManager:
        if directory not in self._managers:
            self._managers[directory] = tf.train.CheckpointManager(
                self.checkpoint, directory=directory,
                max_to_keep=self.checkpoints_to_keep)
        return self._managers[directory]

    def save(self, save_dir: str) -> str:
        """Writes model and optimizer to `save_dir/ckpt-<step>`.

        In a multi-worker cluster every worker must call this (variables are
        read collectively); only the chief writes to `save_dir`, the others to
        a temporary directory that is deleted.

        Returns:
            The checkpoint prefix written (by this process).
        """
        self._check_built('save')
        step = int(self.step.numpy())
        start = time.time()
        if is_chief(self.strategy):
            tf.io.gfile.makedirs(save_dir)
            path = self._manager(save_dir).save(checkpoint_number=step)
            logging.info('Saved checkpoint %s (%.1f s).', path,
                         time.time() - start)
            return path
        with tempfile.TemporaryDirectory() as tmp_dir:
            return self.checkpoint.write(os.path.join(tmp_dir, f'ckpt-{step}'))

    def restore(self, checkpoint_path: str,
                restore_keys: Sequence[str] | None = None) -> str:
        """Restores from a checkpoint prefix or the newest one in a directory.

        Args:
            checkpoint_path: A checkpoint prefix (`.../ckpt-300`) or directory.
            restore_keys: Restore only these model sub-modules and not the
                optimizer (the step stays 0). Defaults to the constructor's.

        Returns:
            The checkpoint prefix that was read.

        Raises:
            FileNotFoundError: when there is no checkpoint at the path.
        """
        self._check_built('restore')
        restore_keys = restore_keys or self.restore_keys
        path = latest_checkpoint(checkpoint_path)
        start = time.time()
        if restore_keys:
            self.model.restore(path, restore_keys=restore_keys)
        else:
            status = self.checkpoint.restore(path)
            status.assert_existing_objects_matched()
        logging.info('Restored %s from %s at step %d (%.1f s).',
                     restore_keys or 'model and optimizer', path,
                     int(self.step.numpy()), time.time() - start)
        return path


@gin.configurable(module='ddsp.training.trainers')
def get_trainer_class(trainer_class=Trainer):
    """The trainer class `ddsp_run` uses (bind in gin to swap it)."""
    return trainer_class
