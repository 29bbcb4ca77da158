"""Tests of the ddsp_run CLI: gin parsing order, search paths, train, eval
and sample modes, the dataset statistics copy."""
import glob
import json
import logging
import math
import os
import subprocess
import sys

import gin
import pytest

from ddsp.training import data
from ddsp.training import ddsp_run
from ddsp.training import models
from ddsp.training import train_util

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import trainers_testlib as tl  # noqa: E402
import eval_testlib  # noqa: E402
import model_dir_testlib as mdl  # noqa: E402
from eval_testlib import read_events  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_gin():
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.fixture
def tfrecord(tmp_path):
    """A TFRecord of 4 violin examples of 0.2 s (no metadata: gin sets length)."""
    path = str(tmp_path / 'violin.tfrecord-00000-of-00001')
    tl.write_tfrecord(path, tl.violin_examples(4))
    # Training copies the statistics beside the TFRecords into the run.
    (tmp_path / 'dataset_statistics.json').write_text('{"copied": true}')
    return [f"TFRecordProvider.file_pattern = '{tmp_path}/violin.tfrecord*'",
            'TFRecordProvider.example_secs = 0.2']


def test_gin_files_resolve_in_package_and_its_models_folder():
    ddsp_run.parse_gin('', ['ae.gin'])
    assert gin.query_parameter('RnnFcDecoder.output_splits')[1] == (
        'harmonic_distribution', 100)
    gin.clear_config()
    ddsp_run.parse_gin('', ['models/solo_instrument.gin',
                            'datasets/tfrecord.gin'])
    assert gin.query_parameter('Reverb.trainable') is True
    assert gin.query_parameter('train.data_provider') is not None
    # optimization/base.gin is always loaded first.
    assert gin.query_parameter('%learning_rate') == 3e-4
    assert gin.query_parameter('%batch_size') == 32


def test_gin_file_from_extra_search_path(tmp_path):
    (tmp_path / 'mine.gin').write_text("include 'models/tiny.gin'\n"
                                       'RnnFcDecoder.ch = 5\n')
    ddsp_run.parse_gin('', ['mine.gin'], search_paths=[str(tmp_path)])
    assert gin.query_parameter('RnnFcDecoder.ch') == 5


def test_parse_gin_order_operative_config_then_user(tmp_path):
    (tmp_path / 'operative_config-5.gin').write_text(
        "include 'models/solo_instrument.gin'\n"
        'Trainer.learning_rate = 0.123\n'
        'RnnFcDecoder.ch = 7\n'
        'UnknownThing.value = 1\n')  # Skipped (e.g. from another version).
    (tmp_path / 'operative_config-1.gin').write_text('RnnFcDecoder.ch = 1\n')
    ddsp_run.parse_gin(str(tmp_path), [], ['RnnFcDecoder.ch = 9'])
    # The run's operative config beats optimization/base.gin...
    assert gin.query_parameter('Trainer.learning_rate') == 0.123
    # ...and the user's bindings beat the operative config.
    assert gin.query_parameter('RnnFcDecoder.ch') == 9
    assert gin.query_parameter('Reverb.trainable') is True


def test_tpu_loads_base_tpu_gin():
    ddsp_run.parse_gin('', [], tpu='grpc://nowhere')
    assert gin.query_parameter('%batch_size') == 64


def test_gin_path_not_found_errors_are_filtered(caplog):
    ddsp_run.parse_gin('', ['models/ae.gin'])
    assert 'Path not found' not in caplog.text


def _small(extra=()):
    return tl.SMALL_GIN_PARAMS + ['batch_size = 2', 'train.steps_per_save = 1',
                                  'train.steps_per_summary = 1', *extra]


@pytest.mark.slow
def test_train_mode_trains_and_resumes_with_operative_config(tmp_path,
                                                             tfrecord):
    save_dir = str(tmp_path / 'run')
    ddsp_run.parse_gin(save_dir, ['models/tiny.gin', 'datasets/tfrecord.gin'],
                       _small(tfrecord + ['train.num_steps = 2']))
    result = ddsp_run.run('train', save_dir)
    assert result['step'] == 2
    assert os.path.exists(os.path.join(save_dir, 'ckpt-2.index'))
    with open(os.path.join(save_dir, 'dataset_statistics.json')) as f:
        assert json.load(f) == {'copied': True}
    with open(os.path.join(save_dir, 'operative_config-0.gin')) as f:
        config = f.read()
    assert 'violin.tfrecord*' in config and 'RnnFcDecoder.ch = 16' in config

    # Resume with only the run directory: model and data come from the
    # operative config.
    gin.clear_config()
    ddsp_run.parse_gin(save_dir, [], ['train.num_steps = 3'])
    assert gin.query_parameter('RnnFcDecoder.ch') == 16
    result = ddsp_run.run('train', save_dir)
    assert result['step'] == 3
    assert isinstance(models.get_model(), models.Autoencoder)


@pytest.mark.slow
def test_console_script_trains(tmp_path, tfrecord):
    save_dir = str(tmp_path / 'run')
    script = os.path.join(os.path.dirname(sys.executable), 'ddsp_run')
    args = [script, '--mode=train', f'--save_dir={save_dir}',
            '--gin_file=models/tiny.gin', '--gin_file=datasets/tfrecord.gin',
            '--early_stop_loss_value=1e9', '--alsologtostderr']
    args += [f'--gin_param={p}' for p in _small(tfrecord)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=400,
                            env=dict(os.environ, CUDA_VISIBLE_DEVICES='-1',
                                     TF_CPP_MIN_LOG_LEVEL='2'))
    assert result.returncode == 0, result.stderr[-4000:]
    assert 'step: 1  total_loss:' in result.stderr
    assert 'Early stop at step 1' in result.stderr
    assert glob.glob(os.path.join(save_dir, 'ckpt-1.index'))
    assert glob.glob(os.path.join(save_dir, 'summaries', 'train', 'events*'))


def test_console_script_help_lists_its_flags():
    script = os.path.join(os.path.dirname(sys.executable), 'ddsp_run')
    result = subprocess.run([script, '--help'], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode in (0, 1)  # absl's --help exits with 1.
    assert 'train, evaluate or sample a DDSP model' in result.stdout
    for flag in ('mode', 'save_dir', 'restore_dir', 'tpu', 'cluster_config',
                 'gin_file', 'gin_param', 'gin_search_path', 'run_once'):
        assert f'--{flag}:' in result.stdout


# ------------------------------------------------------------- eval / sample
@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return mdl.make_model_dir(str(tmp_path_factory.mktemp('run')))


@pytest.fixture(scope='module')
def tones(tmp_path_factory):
    """Tone TFRecords: train shard (examples 0, 1), eval shard (2, 3)."""
    return eval_testlib.write_tone_dataset(
        str(tmp_path_factory.mktemp('tones')))


@pytest.fixture
def absl_flags():
    """absl FLAGS to parse; unparsed afterwards. Unparsing resets absl's
    verbosity flag, which sets the 'absl' logger to WARNING: restore its
    level so that later tests still capture absl INFO logs."""
    level = logging.getLogger('absl').level
    yield ddsp_run.FLAGS
    ddsp_run.FLAGS.unparse_flags()
    logging.getLogger('absl').setLevel(level)


def test_eval_run_once_from_the_command_line(tmp_path, model_dir, tones,
                                              absl_flags, monkeypatch):
    delays = []
    monkeypatch.setattr(ddsp_run.time, 'sleep', delays.append)
    save_dir = str(tmp_path / 'eval')
    absl_flags([
        'ddsp_run', '--mode=eval', '--run_once', '--initial_delay_secs=7',
        f'--save_dir={save_dir}', f'--restore_dir={model_dir}',
        '--gin_file=datasets/tfrecord.gin', '--gin_file=eval/basic_f0_ld.gin',
        f"--gin_param=TFRecordProvider.file_pattern = '{tones}*'",
        "--gin_param=F0LdEvaluator.crepe_model_capacity = 'tiny'",
        '--gin_param=evaluate.batch_size = 2'])
    ddsp_run.main([])
    assert delays == [7]
    with open(os.path.join(save_dir, 'eval', 'metrics-1.json')) as f:
        record = json.load(f)
    # The eval split only: 2 examples.
    assert (record['step'], record['n_examples']) == (1, 2)
    expected = {'losses/total_loss', 'losses/spectral_loss',
                'metrics/loudness/loudness_db', 'metrics/f0_crepe/f0_dist',
                'metrics/f0_crepe/outlier_ratio'}
    assert set(record['metrics']) == expected
    assert all(math.isfinite(v) for v in record['metrics'].values())
    tags = read_events(os.path.join(save_dir, 'summaries', 'eval'))
    assert expected <= set(tags)


def test_sample_mode_writes_audio_summaries(tmp_path, model_dir, tones):
    save_dir = str(tmp_path / 'sample')
    ddsp_run.parse_gin(model_dir, ['datasets/tfrecord.gin'], [
        f"TFRecordProvider.file_pattern = '{tones}*'",
        'sample.batch_size = 2'])
    record = ddsp_run.run('sample', save_dir, model_dir, run_once=True)
    assert (record['step'], record['n_examples']) == (1, 2)
    tags = read_events(os.path.join(save_dir, 'summaries', 'sample'))
    assert {'audio_generated', 'audio_original', 'waveform',
            'spectrogram'} <= set(tags)


def test_eval_without_checkpoint_names_the_dir(tmp_path, tones):
    ddsp_run.parse_gin('', ['models/tiny.gin', 'datasets/tfrecord.gin'], [
        f"TFRecordProvider.file_pattern = '{tones}*'"])
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        ddsp_run.run('eval', str(tmp_path), run_once=True)


def test_copy_dataset_statistics(tmp_path, tones):
    save_dir = str(tmp_path / 'run')
    provider = data.TFRecordProvider(tones + '*')
    copied = train_util.copy_dataset_statistics(provider, save_dir)
    assert copied == os.path.join(save_dir, 'dataset_statistics.json')
    source = os.path.join(os.path.dirname(tones), 'dataset_statistics.json')
    with open(copied, 'rb') as a, open(source, 'rb') as b:
        assert a.read() == b.read()
    # Skipped: a dataset without statistics, a provider without files.
    bare = eval_testlib.write_tone_dataset(
        str(tmp_path / 'bare'), splits={None: [0]}, statistics=False)
    for provider in (data.TFRecordProvider(bare + '*'),
                     mdl.ArrayProvider(mdl.tone_features(n_examples=1))):
        assert train_util.copy_dataset_statistics(
            provider, str(tmp_path / 'x')) is None
    assert not os.path.exists(tmp_path / 'x')
