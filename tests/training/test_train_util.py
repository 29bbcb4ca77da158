"""Tests of ddsp.training.train_util: the training loop and its helpers."""
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp.training import train_util

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import trainers_testlib as tl  # noqa: E402


def _events(log_dir):
    """{tag: [steps]} of the TensorBoard event files in log_dir."""
    tags = {}
    for path in glob.glob(os.path.join(log_dir, 'events.out.tfevents.*')):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def _checkpoint_steps(directory):
    return sorted(int(os.path.basename(p)[5:-6])
                  for p in glob.glob(os.path.join(directory, 'ckpt-*.index')))


def _latest_step(directory):
    """Step of the checkpoint the `checkpoint` state file names (what a
    restore uses: a kill can land after a checkpoint's files are written and
    before the state file names it)."""
    path = tf.train.latest_checkpoint(directory)
    return int(path.rsplit('-', 1)[1]) if path else 0


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """Trains, resumes, fails on NaN data, then early-stops; one trace.

    The same trainer object is reused (tracing takes seconds); every call of
    `train` restores from the newest checkpoint in save_dir first.
    """
    save_dir = str(tmp_path_factory.mktemp('run'))
    examples = tl.violin_examples(8)
    provider = tl.ArrayProvider(examples)
    trainer = tl.make_trainer(learning_rate=3e-3)
    kwargs = dict(batch_size=4, steps_per_summary=3, steps_per_save=3,
                  save_dir=save_dir, restore_dir=save_dir)
    result = {'save_dir': save_dir}
    result['first'] = train_util.train(provider, trainer, num_steps=6, **kwargs)
    result['checkpoints_first'] = _checkpoint_steps(save_dir)
    result['resumed'] = train_util.train(provider, trainer, num_steps=8,
                                         **kwargs)
    bad = dict(examples, audio=np.full_like(examples['audio'], np.nan))
    with pytest.raises(train_util.NonFiniteLossError) as error:
        train_util.train(tl.ArrayProvider(bad), trainer, num_steps=12, **kwargs)
    result['nan_error'] = str(error.value)
    result['checkpoints_after_nan'] = _checkpoint_steps(save_dir)
    result['early'] = train_util.train(provider, trainer, num_steps=100,
                                       early_stop_loss_value=1e9, **kwargs)
    result['done'] = train_util.train(provider, trainer, num_steps=9, **kwargs)
    result['tracing_count'] = (
        trainer._train_step.experimental_get_tracing_count())
    return result


def test_train_saves_every_steps_per_save(run):
    assert run['first']['step'] == 6
    assert run['checkpoints_first'] == [3, 6]
    assert run['first']['checkpoint'] == os.path.join(run['save_dir'],
                                                      'ckpt-6')
    assert np.isfinite(run['first']['losses']['total_loss'])


def test_train_writes_operative_config(run):
    path = os.path.join(run['save_dir'], 'operative_config-0.gin')
    assert os.path.exists(path)
    with open(path) as f:
        config = f.read()
    # The configurables that ran are recorded, e.g. Trainer and train.
    assert 'Trainer.grad_clip_norm' in config
    assert 'train.early_stop_loss_value = None' in config
    assert train_util.get_latest_operative_config(run['save_dir']).endswith(
        'operative_config-9.gin')  # Written again by every resumed run.


def test_train_writes_summaries(run):
    tags = _events(os.path.join(run['save_dir'], 'summaries', 'train'))
    for tag in ('losses/total_loss', 'losses/spectral_loss', 'steps_per_sec',
                'learning_rate', 'audio/synthesized', 'audio/original',
                'spectrogram/original_vs_synthesized'):
        assert tag in tags, sorted(tags)
    assert sorted(set(tags['losses/total_loss'])) == [3, 6, 9]
    assert 'gin/operative_config' in tags


def test_train_resumes_from_checkpoint(run):
    assert run['resumed']['step'] == 8  # From 6, not from 0.
    assert run['resumed']['checkpoint'].endswith('ckpt-8')


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(run):
    message = run['nan_error']
    assert 'Non-finite loss at step 9' in message
    assert 'ckpt-8' in message
    assert run['checkpoints_after_nan'] == [3, 6, 8]


def test_training_continues_from_last_good_checkpoint_after_nan(run):
    # The NaN step was not saved: the next run restores good weights at 8.
    assert run['early']['step'] == 9
    assert np.isfinite(run['early']['losses']['total_loss'])
    assert run['early']['checkpoint'].endswith('ckpt-9')  # Early stop saves.


def test_train_at_num_steps_does_nothing(run):
    assert run['done']['step'] == 9
    assert run['done']['losses'] == {}


def test_train_step_traced_once_across_runs(run):
    assert run['tracing_count'] == 1


def test_train_rejects_batch_not_divisible_by_replicas():
    trainer = types.SimpleNamespace(
        strategy=types.SimpleNamespace(num_replicas_in_sync=3))
    with pytest.raises(ValueError, match='divisible'):
        train_util.train(None, trainer, batch_size=4)
    with pytest.raises(ValueError, match='steps_per_save'):
        train_util.train(None, trainer, batch_size=3, steps_per_save=0)


def test_get_latest_file_and_operative_config(tmp_path):
    for step in (3, 20, 100):
        (tmp_path / f'operative_config-{step}.gin').write_text('')
    (tmp_path / 'operative_config-x.gin').write_text('')
    assert train_util.get_latest_file(str(tmp_path)) == str(
        tmp_path / 'operative_config-100.gin')
    # A checkpoint prefix (or a sub-folder) finds its run's config.
    assert train_util.get_latest_operative_config(
        str(tmp_path / 'ckpt-100')) == str(tmp_path / 'operative_config-100.gin')
    with pytest.raises(FileNotFoundError, match='operative_config'):
        train_util.get_latest_operative_config(str(tmp_path / 'a' / 'b'))
    with pytest.raises(FileNotFoundError):
        train_util.get_latest_file(str(tmp_path), prefix='ckpt-')


def test_expand_path(monkeypatch):
    monkeypatch.setenv('DDSP_TEST_DIR', '/data/x')
    assert train_util.expand_path('$DDSP_TEST_DIR/run') == '/data/x/run'
    assert train_util.expand_path('~/run') == os.path.expanduser('~/run')


def test_write_gin_config(tmp_path):
    @gin.configurable('test_train_util_fn')
    def fn(value=1):
        return value

    with gin.unlock_config():
        gin.parse_config('test_train_util_fn.value = 7')
    assert fn() == 7
    writer = tf.summary.create_file_writer(str(tmp_path / 'summaries'))
    path = train_util.write_gin_config(writer, str(tmp_path), 42)
    writer.flush()
    assert path == str(tmp_path / 'operative_config-42.gin')
    with open(path) as f:
        assert 'test_train_util_fn.value = 7' in f.read()
    assert _events(str(tmp_path / 'summaries'))['gin/operative_config'] == [42]
    gin.clear_config()


_KILLABLE = """
    import sys
    from absl import logging
    import trainers_testlib as tl
    from ddsp.training import train_util
    logging.set_verbosity(logging.INFO)
    trainer = tl.make_trainer()
    result = train_util.train(
        tl.ArrayProvider(tl.violin_examples(4)), trainer, batch_size=4,
        num_steps=int(sys.argv[2]), steps_per_summary=1000, steps_per_save=5,
        save_dir=sys.argv[1], restore_dir=sys.argv[1])
    print('FINAL_STEP', result['step'])
"""


def _start(save_dir, num_steps):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1', TF_CPP_MIN_LOG_LEVEL='2')
    return subprocess.Popen(
        [sys.executable, '-c', textwrap.dedent(_KILLABLE), save_dir,
         str(num_steps)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env, cwd=HERE)


@pytest.mark.slow
def test_resume_after_sigkill_continues_step_count(tmp_path):
    save_dir = str(tmp_path)
    proc = _start(save_dir, 100000)
    deadline = time.time() + 300
    while _latest_step(save_dir) < 10:
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline, 'no checkpoint 10 within 300 s'
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    last = _latest_step(save_dir)
    assert last >= 10 and all(s % 5 == 0 for s in _checkpoint_steps(save_dir))
    proc = _start(save_dir, last + 3)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]
    assert f'at step {last}' in output  # "Restored ... at step <last>".
    assert f'FINAL_STEP {last + 3}' in output
    assert _checkpoint_steps(save_dir)[-1] == last + 3
