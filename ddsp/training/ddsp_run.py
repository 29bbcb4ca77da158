r"""ddsp_run: train, evaluate or sample a DDSP model configured with gin.

Training a solo instrument model on TFRecords made by ddsp_prepare_tfrecord:

  ddsp_run --mode=train --save_dir=~/runs/violin \
    --gin_file=models/solo_instrument.gin --gin_file=datasets/tfrecord.gin \
    --gin_param="TFRecordProvider.file_pattern='~/data/violin.tfrecord*'" \
    --gin_param="batch_size=16" --alsologtostderr

Running the same command again resumes from the newest checkpoint. Gin files
are looked up in the working directory, then in the --gin_search_path
directories, then in the package's gin folder (`models/ae.gin`) and its
`models/` sub-folder (`ae.gin`).

Training copies the dataset's dataset_statistics.json (made by
ddsp_prepare_tfrecord beside the TFRecords) into --save_dir, so the run folder
is all timbre transfer needs.

Evaluating every new checkpoint of a run (in a second process next to the
training job; it stops when no new checkpoint comes for `evaluate.timeout_secs`
or after `evaluate.run_until_step`), or only the newest one with --run_once:

  ddsp_run --mode=eval --save_dir=~/runs/violin --run_once \
    --gin_file=datasets/tfrecord.gin --gin_file=eval/basic_f0_ld.gin

The file pattern comes from the run's operative config; datasets/tfrecord.gin
evaluates on the dataset's eval split. Metrics go to TensorBoard
(--save_dir/summaries/eval) and to JSON (--save_dir/eval/metrics-<step>.json
and --save_dir/eval/metrics.jsonl); --mode=sample writes audio and images to
--save_dir/summaries/sample.

The model is configured by the run's operative config (restored from
--restore_dir, which defaults to --save_dir), then by --gin_file/--gin_param.
"""
from __future__ import annotations

import importlib
import logging as logging_std
import os
import sys
import time

from absl import flags
from absl import logging
import gin
import tensorflow as tf

from ddsp.training import cli

# Modules whose gin registrations configs may use (imported before parsing).
_GIN_MODULES = (
    'ddsp.core', 'ddsp.dags', 'ddsp.effects', 'ddsp.losses', 'ddsp.processors',
    'ddsp.spectral_ops', 'ddsp.synths', 'ddsp.training.data',
    'ddsp.training.decoders', 'ddsp.training.encoders',
    'ddsp.training.eval_util', 'ddsp.training.evaluators',
    'ddsp.training.models', 'ddsp.training.nn',
    'ddsp.training.preprocessing', 'ddsp.training.train_util',
    'ddsp.training.trainers')

_ADDED_SEARCH_PATHS = set()

GIN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gin')

FLAGS = flags.FLAGS

flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sample'],
                  'Whether to train, evaluate or sample from the model.')
flags.DEFINE_string('save_dir', '/tmp/ddsp',
                    'Directory of checkpoints, summaries and gin configs.')
flags.DEFINE_string('restore_dir', '',
                    'Directory to restore the model (and operative config) '
                    'from; defaults to --save_dir.')
flags.DEFINE_string('tpu', '', 'Address of a TPU: use TPUStrategy.')
flags.DEFINE_string('cluster_config', '',
                    'TF_CONFIG-style JSON cluster description for '
                    'MultiWorkerMirroredStrategy (TF_CONFIG is also read).')
flags.DEFINE_boolean('allow_memory_growth', False,
                     'Let GPU memory grow as needed instead of taking it all.')
flags.DEFINE_float('early_stop_loss_value', None,
                   'Stop training once total_loss is at most this value.')
flags.DEFINE_multi_string('gin_search_path', [],
                          'Extra directories to look up gin files in.')
flags.DEFINE_multi_string('gin_file', [],
                          'Gin files: a path, or relative to a search path.')
flags.DEFINE_multi_string('gin_param', [],
                          'Gin bindings, e.g. "batch_size = 16".')
flags.DEFINE_boolean('run_once', False,
                     'eval/sample: process the newest checkpoint once and exit.')
flags.DEFINE_integer('initial_delay_secs', None,
                     'eval/sample: seconds to wait before starting.')


def import_gin_modules():
    """Imports every module with gin registrations that exists."""
    for name in _GIN_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # A module exists but an import in it fails.
                raise
            logging.debug('Optional module %s is not available.', name)


class _GinPathNotFoundFilter(logging_std.Filter):
    """Drops gin's "Path not found" errors for search-path misses.

    gin tries each search path in turn and logs an ERROR through the root
    logger for every path that does not hold the file, although it goes on to
    find the file in the next one.
    """

    def filter(self, record: logging_std.LogRecord) -> bool:
        return not (record.pathname.endswith(
            os.path.join('gin', 'resource_reader.py')) and
            str(record.msg).startswith('Path not found'))


def gin_search_paths(extra_paths=()) -> list[str]:
    """Search paths for gin files: extras, the package folder, its models/."""
    return [*(os.path.expanduser(p) for p in extra_paths), GIN_PATH,
            os.path.join(GIN_PATH, 'models')]


def add_gin_search_paths(extra_paths=()):
    """Adds `gin_search_paths` to gin's search path (once each)."""
    if not _ADDED_SEARCH_PATHS:
        logging_std.getLogger().addFilter(_GinPathNotFoundFilter())
    for path in gin_search_paths(extra_paths):
        if path not in _ADDED_SEARCH_PATHS:
            gin.add_config_file_search_path(path)
            _ADDED_SEARCH_PATHS.add(path)


def delay_start(delay_secs: int | None):
    """Waits, e.g. to let a training job write its first checkpoint."""
    if delay_secs:
        logging.info('Waiting %d s before starting.', delay_secs)
        time.sleep(delay_secs)


def allow_memory_growth():
    """Lets TensorFlow allocate GPU memory as needed (issue #29)."""
    for gpu in tf.config.list_physical_devices('GPU'):
        tf.config.experimental.set_memory_growth(gpu, True)


def parse_gin(restore_dir: str, gin_files=(), gin_params=(), tpu: str = '',
              search_paths=()):
    """Parses gin configs in order (later bindings win).

    1. optimization/base.gin (base_tpu.gin with a TPU) and eval/basic.gin;
    2. the newest operative config of `restore_dir`, if any (the model of a
       run being resumed or evaluated);
    3. `gin_files`, then `gin_params`.
    Unknown configurables are skipped in 2 and 3 (an operative config may name
    modules of a newer/older version), with a warning.
    """
    from ddsp.training import train_util  # pylint: disable=g-import-not-at-top
    import_gin_modules()
    add_gin_search_paths(search_paths)
    with gin.unlock_config():
        optimization = ('optimization/base_tpu.gin' if tpu
                        else 'optimization/base.gin')
        gin.parse_config_files_and_bindings(
            [optimization, 'eval/basic.gin'], None, finalize_config=False)
        if restore_dir:
            try:
                operative = train_util.get_latest_operative_config(restore_dir)
                logging.info('Using the operative config %s.', operative)
                gin.parse_config_file(operative, skip_unknown=True)
            except FileNotFoundError:
                logging.info('No operative config in %s.', restore_dir)
        gin_files = [_resolve_gin_file(f) for f in gin_files]
        gin.parse_config_files_and_bindings(gin_files, list(gin_params),
                                            finalize_config=False,
                                            skip_unknown=True)


def _resolve_gin_file(path: str) -> str:
    """`~` and $VARS expanded; relative paths are left to gin's search path."""
    expanded = os.path.expanduser(os.path.expandvars(path))
    return expanded if os.path.exists(expanded) else path


def run(mode: str, save_dir: str, restore_dir: str = '', tpu: str = '',
        cluster_config: str = '', early_stop_loss_value: float | None = None,
        run_once: bool = False):
    """Runs training, evaluation or sampling with the parsed gin config."""
    from ddsp.training import models  # pylint: disable=g-import-not-at-top
    from ddsp.training import train_util  # pylint: disable=g-import-not-at-top
    from ddsp.training import trainers  # pylint: disable=g-import-not-at-top
    restore_dir = restore_dir or save_dir
    if mode == 'train':
        strategy = train_util.get_strategy(tpu=tpu,
                                           cluster_config=cluster_config)
        with strategy.scope():
            model = models.get_model()
            trainer = trainers.get_trainer_class()(model, strategy)
        kwargs = {}
        if early_stop_loss_value is not None:
            kwargs['early_stop_loss_value'] = early_stop_loss_value
        return train_util.train(data_provider=gin.REQUIRED, trainer=trainer,
                                save_dir=save_dir, restore_dir=restore_dir,
                                **kwargs)
    from ddsp.training import eval_util  # pylint: disable=g-import-not-at-top
    function = eval_util.evaluate if mode == 'eval' else eval_util.sample
    return function(data_provider=gin.REQUIRED, model=models.get_model(),
                    save_dir=save_dir, restore_dir=restore_dir,
                    run_once=run_once)


def main(unused_argv):
    save_dir = os.path.expanduser(FLAGS.save_dir)
    restore_dir = os.path.expanduser(FLAGS.restore_dir) or save_dir
    if FLAGS.allow_memory_growth:
        allow_memory_growth()
    parse_gin(restore_dir, FLAGS.gin_file, FLAGS.gin_param, tpu=FLAGS.tpu,
              search_paths=FLAGS.gin_search_path)
    if FLAGS.mode != 'train':
        delay_start(FLAGS.initial_delay_secs)
    from ddsp.training import train_util  # pylint: disable=g-import-not-at-top
    try:
        run(FLAGS.mode, save_dir, restore_dir, tpu=FLAGS.tpu,
            cluster_config=FLAGS.cluster_config,
            early_stop_loss_value=FLAGS.early_stop_loss_value,
            run_once=FLAGS.run_once)
    except train_util.NonFiniteLossError as error:
        # Already logged with the details; a short line and a failing status.
        sys.exit(f'ddsp_run: {error}')


def console_entry_point():
    """The `ddsp_run` console script."""
    cli.run_with_global_flags(main, __name__, __doc__)


if __name__ == '__main__':
    console_entry_point()
