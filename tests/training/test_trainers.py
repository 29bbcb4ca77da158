"""Tests of ddsp.training.trainers: optimization, distribution, checkpoints."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from ddsp.training import trainers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import trainers_testlib as tl  # noqa: E402


def _batch(n_examples=4, **kwargs):
    return {k: tf.constant(v)
            for k, v in tl.violin_examples(n_examples, **kwargs).items()}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny trainer after 30 steps on violin audio, saved once.

    One build and trace for the whole module (tracing takes seconds).
    """
    trainer = tl.make_trainer(learning_rate=3e-3)
    batch = _batch()
    trainer.build(batch)
    initial = tl.model_weights(trainer.model)
    losses = [float(trainer.train_step(batch)['total_loss'])
              for _ in range(30)]
    save_dir = str(tmp_path_factory.mktemp('ckpt'))
    path = trainer.save(save_dir)
    return {'trainer': trainer, 'batch': batch, 'initial': initial,
            'losses': losses, 'save_dir': save_dir, 'path': path,
            'saved': tl.model_weights(trainer.model),
            'saved_optimizer': [np.array(v)
                                for v in trainer.optimizer.variables]}


def test_loss_decreases_on_violin_audio(trained):
    losses = trained['losses']
    assert np.mean(losses[-5:]) < 0.6 * losses[0], losses
    assert int(trained['trainer'].step.numpy()) == 30


def test_train_step_returns_losses_and_is_traced_once(trained):
    trainer, batch = trained['trainer'], trained['batch']
    other = _batch(offset_s=3.0)
    count = trainer._train_step.experimental_get_tracing_count()
    losses = trainer.train_step(other)
    trainer.train_step(batch)
    assert set(losses) == {'spectral_loss', 'total_loss'}
    assert losses['total_loss'].shape == ()
    assert trainer._train_step.experimental_get_tracing_count() == count == 1


def test_learning_rate_decays_exponentially():
    trainer = tl.make_trainer(learning_rate=1e-3, lr_decay_steps=100,
                              lr_decay_rate=0.5)
    np.testing.assert_allclose(
        [float(trainer.learning_rate(s)) for s in (0, 50, 100, 200)],
        [1e-3, 1e-3 * 0.5 ** 0.5, 5e-4, 2.5e-4], rtol=1e-6)


def test_gradients_are_clipped_to_global_norm():
    # With clip c and a tiny learning rate, Adam's first update is
    # lr * g / (|g| + eps) per element whatever the clip; so check the clip
    # through the optimizer's gradient transformation instead.
    trainer = tl.make_trainer(grad_clip_norm=0.5)
    grads = [tf.constant([3.0, 4.0]), tf.constant([12.0])]
    clipped = trainer.optimizer._clip_gradients(grads)
    norm = np.sqrt(sum(np.sum(np.square(g)) for g in clipped))
    np.testing.assert_allclose(norm, 0.5, rtol=1e-6)
    np.testing.assert_allclose(clipped[0], [3 * 0.5 / 13, 4 * 0.5 / 13],
                               rtol=1e-6)


def test_save_restore_round_trip(trained):
    assert os.path.basename(trained['path']) == 'ckpt-30'
    fresh = tl.make_trainer()
    fresh.build(trained['batch'])
    assert fresh.restore(trained['save_dir']) == trained['path']
    assert int(fresh.step.numpy()) == 30
    tl.assert_same_weights(trained['saved'], tl.model_weights(fresh.model))
    restored = fresh.optimizer.variables
    assert len(restored) == len(trained['saved_optimizer'])
    for value, variable in zip(trained['saved_optimizer'], restored):
        np.testing.assert_array_equal(np.array(variable), value,
                                      err_msg=variable.path)


def test_model_only_restore_restores_every_weight_incl_reverb(trained):
    # KERAS3 trap 1: processors of a DAG must all be in the checkpoint.
    saved = trained['saved']
    reverb_ir = [i for i, (name, _) in enumerate(saved)
                 if name.endswith('reverb/ir')]
    assert len(reverb_ir) == 1
    assert not np.allclose(saved[reverb_ir[0]][1],
                           trained['initial'][reverb_ir[0]][1])
    model = tl.tiny_model()
    model(tl.violin_examples(1), training=False)
    model.restore(trained['save_dir'])
    tl.assert_same_weights(saved, tl.model_weights(model))


def test_restore_keys_restores_only_those_modules(trained):
    fresh = tl.make_trainer(restore_keys=['decoder'])
    fresh.build(trained['batch'])
    fresh.restore(trained['path'])
    saved = trained['saved']
    restored = tl.model_weights(fresh.model)
    for (name, value), (_, new_value) in zip(saved, restored):
        if name.startswith('reverb/'):
            assert not np.array_equal(new_value, value), name
        else:
            np.testing.assert_array_equal(new_value, value, err_msg=name)
    assert int(fresh.step.numpy()) == 0  # The optimizer is not restored.


def test_restore_missing_checkpoint_raises(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match='No checkpoint'):
        trained['trainer'].restore(str(tmp_path))


def test_latest_checkpoint_without_state_file(tmp_path, trained):
    trainer = trained['trainer']
    for step in (7, 12):
        trainer.checkpoint.write(str(tmp_path / f'ckpt-{step}'))
    assert trainers.latest_checkpoint(str(tmp_path)) == str(tmp_path /
                                                            'ckpt-12')


def test_use_before_build_raises():
    trainer = tl.make_trainer()
    with pytest.raises(ValueError, match='build'):
        trainer.train_step(_batch(1))


@pytest.mark.parametrize('kwargs, match', [
    ({'learning_rate': 0.0}, 'learning_rate'),
    ({'lr_decay_rate': 1.5}, 'lr_decay_rate'),
    ({'grad_clip_norm': -1.0}, 'grad_clip_norm'),
    ({'checkpoints_to_keep': 0}, 'checkpoints_to_keep'),
])
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tl.make_trainer(**kwargs)


def test_get_strategy_defaults_to_mirrored():
    strategy = trainers.get_strategy()
    assert isinstance(strategy, tf.distribute.MirroredStrategy)
    one_worker = json.dumps({'cluster': {'worker': ['127.0.0.1:1']},
                             'task': {'type': 'worker', 'index': 0}})
    assert isinstance(trainers.get_strategy(cluster_config=one_worker),
                      tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError, match='JSON'):
        trainers.get_strategy(cluster_config='{cluster')
    assert trainers.get_trainer_class() is trainers.Trainer


def _run_script(script: str, timeout: float = 240, env=None):
    full_env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1',
                    TF_CPP_MIN_LOG_LEVEL='2', **(env or {}))
    result = subprocess.run(
        [sys.executable, '-c', textwrap.dedent(script)], capture_output=True,
        text=True, timeout=timeout, env=full_env, cwd=HERE)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


# Adam with epsilon 1 updates by about lr * m / (|m| + 1), nearly linear in the
# (clipped, so small) gradients, so the weight changes show whether the clipped
# gradient is the single-device one. (With the usual epsilon, Adam's first updates are about
# lr * sign(gradient), blind to gradient scale and to clipping.)
_TWO_DEVICES = """
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import trainers_testlib as tl

    examples = tl.violin_examples(4)

    def run(strategy, init=None):
        trainer = tl.make_trainer(
            strategy, model_fn=lambda: tl.tiny_model(noise=False),
            learning_rate=0.1, grad_clip_norm=0.5)
        trainer.optimizer.epsilon = 1.0
        dataset = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensors(examples).repeat())
        batch = next(iter(dataset))
        trainer.build(batch)
        if init is not None:
            for variable, value in zip(trainer.model.weights, init):
                variable.assign(value)
        init = [np.array(v) for v in trainer.model.weights]
        losses = [float(trainer.train_step(batch)['total_loss'])
                  for _ in range(2)]
        deltas = [np.array(v) - w for v, w in zip(trainer.model.weights, init)]
        return losses, init, np.concatenate([d.ravel() for d in deltas])

    one = tf.distribute.MirroredStrategy(['/cpu:0'])
    two = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    assert two.num_replicas_in_sync == 2
    losses_1, init, delta_1 = run(one)
    losses_2, _, delta_2 = run(two, init)
    print(json.dumps({
        'losses_1': losses_1, 'losses_2': losses_2,
        'max_delta': float(np.max(np.abs(delta_1))),
        'delta_diff': float(np.max(np.abs(delta_1 - delta_2)))}))
"""


@pytest.mark.slow
def test_mirrored_two_devices_match_one_device():
    out = json.loads(_run_script(_TWO_DEVICES).splitlines()[-1])
    np.testing.assert_allclose(out['losses_2'], out['losses_1'], rtol=1e-5)
    assert out['max_delta'] > 1e-4  # The weights did change...
    # ...by the same clipped gradient (per-replica clipping differs by >10%;
    # the cross-replica sum's float32 rounding, whose order varies from run
    # to run, by up to ~0.3 %).
    assert out['delta_diff'] < 1e-2 * out['max_delta'], out


_JIT = """
    import json
    import numpy as np
    import trainers_testlib as tl
    import tensorflow as tf

    batch = {k: tf.constant(v) for k, v in tl.violin_examples(4).items()}
    results = []
    for jit in (False, True):
        tf.keras.utils.set_random_seed(0)
        trainer = tl.make_trainer(model_fn=lambda: tl.tiny_model(noise=False),
                                  jit_compile=jit)
        trainer.build(batch)
        if jit:
            for variable, value in zip(trainer.model.weights, init):
                variable.assign(value)
        init = [np.array(v) for v in trainer.model.weights]
        results.append([float(trainer.train_step(batch)['total_loss'])
                        for _ in range(3)])
    print(json.dumps(results))
"""


@pytest.mark.slow
def test_jit_compiled_step_matches():
    plain, jit = json.loads(_run_script(_JIT).splitlines()[-1])
    # Same weights: the first losses agree to float32 rounding. Later ones
    # differ by more: XLA's and oneDNN's matmuls round differently and Adam
    # turns tiny gradient differences into full-size steps for weights whose
    # gradients are near zero. A step that went wrong would differ by more
    # than the 5 % the loss falls per step.
    np.testing.assert_allclose(jit[0], plain[0], rtol=1e-5)
    np.testing.assert_allclose(jit[1:], plain[1:], rtol=1e-3)
    assert plain[2] < 0.95 * plain[0]


_WORKER = """
    import json, os, sys
    import tensorflow as tf
    import trainers_testlib as tl
    from ddsp.training import train_util, trainers

    strategy = trainers.get_strategy()
    assert isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    with strategy.scope():
        trainer = trainers.Trainer(tl.tiny_model(), strategy)
    result = train_util.train(
        tl.ArrayProvider(tl.violin_examples(4)), trainer, batch_size=4,
        num_steps=4, steps_per_summary=2, steps_per_save=2,
        save_dir=sys.argv[1], restore_dir=sys.argv[1])
    print(json.dumps({'step': result['step'],
                      'chief': trainers.is_chief(strategy),
                      'loss': result['losses']['total_loss']}))
"""


def _free_ports(n):
    import socket
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(('127.0.0.1', 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_two_processes(tmp_path):
    workers = [f'127.0.0.1:{p}' for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = json.dumps({'cluster': {'worker': workers},
                                'task': {'type': 'worker', 'index': index}})
        env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1',
                   TF_CPP_MIN_LOG_LEVEL='2', TF_CONFIG=tf_config)
        procs.append(subprocess.Popen(
            [sys.executable, '-c', textwrap.dedent(_WORKER),
             str(tmp_path / 'run')], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=env, cwd=HERE))
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, stderr[-4000:]
        outputs.append(json.loads(stdout.splitlines()[-1]))
    assert [o['step'] for o in outputs] == [4, 4]
    assert [o['chief'] for o in outputs] == [True, False]
    assert outputs[0]['loss'] == pytest.approx(outputs[1]['loss'], rel=1e-5)
    # Only the chief writes to save_dir.
    assert os.path.exists(tmp_path / 'run' / 'ckpt-4.index')
