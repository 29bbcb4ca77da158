r"""Prepares a TFRecord dataset of audio, f0 and loudness for training.

Usage:
================================================================================
ddsp_prepare_tfrecord \
--input_audio_filepatterns=/path/to/wavs/*wav,/path/to/mp3s/*mp3 \
--output_tfrecord_path=/path/to/output.tfrecord \
--num_shards=10 \
--pipeline_options=--direct_num_workers=2,--direct_running_mode=multi_processing
================================================================================

Reads wav, flac, ogg and mp3 files (any `tf.io.gfile` path or glob, e.g.
gs://), mixes them to mono, resamples them (soxr), computes CREPE f0 and
confidence and A-weighted loudness, and writes sliding-window examples with
the reference's feature keys and lengths (`audio`, `audio_16k`, `f0_hz`,
`f0_confidence`, `loudness_db`) to sharded TFRecords, plus
`<name>.metadata.json` (read by `TFRecordProvider`: no gin parameter has to
match the data) and `dataset_statistics.json` (for timbre transfer).

Bad files (unreadable, empty, silent, NaN/Inf, too short, not audio) are
skipped with their reason in the closing summary; the command fails (exit
status 1) only if no file gives an example.

The pipeline runs on Apache Beam: locally on the DirectRunner (in parallel with
the options above) or unchanged on Flink, Spark or Dataflow through
`--pipeline_options` (e.g. `--runner=DataflowRunner,--project=...,
--temp_location=gs://...,--setup_file=./setup.py`).

Faster f0: `--crepe_model_capacity=tiny --crepe_frame_rate=50` (CREPE tiny on
a 50 Hz grid, interpolated to --frame_rate); the default is the reference's
(CREPE full at the frame rate).
"""
import logging as std_logging
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from ddsp.training import cli  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_list('input_audio_filepatterns', [],
                  'Comma-separated list of audio file globs (tf.io.gfile: '
                  'local paths, gs://, ...).')
flags.DEFINE_string('output_tfrecord_path', None,
                    'Output prefix; shards get -SSSSS-of-NNNNN appended '
                    '(-train-/-eval- with an eval split).')
flags.DEFINE_integer('num_shards', None,
                     'Number of shards per split (default: Beam decides).')
flags.DEFINE_integer('sample_rate', 16000,
                     'Sample rate of the stored `audio` (audio_16k, f0 and '
                     'loudness always use 16 kHz).')
flags.DEFINE_float('frame_rate', 250,
                   'Frame rate of f0 and loudness; 0: audio only.')
flags.DEFINE_float('example_secs', 4,
                   'Length of each example in seconds; 0: one example per '
                   'chunk (variable length).')
flags.DEFINE_float('hop_secs', 1, 'Hop between examples in seconds.')
flags.DEFINE_float('eval_split_fraction', 0.0,
                   'Fraction of chunks (chosen by content hash) held out for '
                   'evaluation.')
flags.DEFINE_float('chunk_secs', 20.0,
                   'Files are cut into chunks of this length before feature '
                   'extraction (bounded memory, parallelism, leak-free '
                   'splits); 0: no chunking.')
flags.DEFINE_boolean('center', False,
                     'Centred frames (one more frame per example, e.g. 1001).')
flags.DEFINE_boolean('viterbi', True, 'CREPE Viterbi decoding.')
cli.define_crepe_flags(flags.FLAGS, frame_rate_default_help='--frame_rate')
flags.DEFINE_list('pipeline_options', '--runner=DirectRunner',
                  'Comma-separated Apache Beam pipeline options, e.g. '
                  '--direct_num_workers=2,--direct_running_mode='
                  'multi_processing or --runner=DataflowRunner,...')



def run() -> int:
    """Runs the preparation from FLAGS; returns the exit status."""
    # Beam logs every stage at INFO; keep its warnings only.
    std_logging.getLogger('apache_beam').setLevel(std_logging.WARNING)
    # Imported here so that --help is instant.
    try:
        from ddsp.training.data_preparation import prepare_tfrecord_lib as lib
    except ImportError as e:
        print(f'ddsp_prepare_tfrecord: {e}; install the extra: pip install '
              '"ddsp[data_preparation]"', file=sys.stderr)
        return 1
    if not FLAGS.output_tfrecord_path:
        print('ddsp_prepare_tfrecord: --output_tfrecord_path is required.',
              file=sys.stderr)
        return 2
    settings = dict(
        sample_rate=FLAGS.sample_rate,
        frame_rate=FLAGS.frame_rate,
        example_secs=FLAGS.example_secs,
        hop_secs=FLAGS.hop_secs,
        eval_split_fraction=FLAGS.eval_split_fraction,
        chunk_secs=FLAGS.chunk_secs,
        center=FLAGS.center,
        viterbi=FLAGS.viterbi,
        crepe_model_capacity=FLAGS.crepe_model_capacity,
        crepe_frame_rate=FLAGS.crepe_frame_rate)
    try:
        lib.PrepareConfig(**settings).validate()
    except ValueError as e:
        print(f'ddsp_prepare_tfrecord: {e}', file=sys.stderr)
        return 2
    paths, unmatched = lib.expand_filepatterns(FLAGS.input_audio_filepatterns)
    for pattern in unmatched:
        logging.warning('No file matches %s', pattern)
    if not paths:
        patterns = ','.join(FLAGS.input_audio_filepatterns)
        print('ddsp_prepare_tfrecord: no input files: '
              f'--input_audio_filepatterns={patterns!r} matches nothing.',
              file=sys.stderr)
        return 1
    pipeline_options = list(FLAGS.pipeline_options)
    if not any(o.startswith('--runner') for o in pipeline_options):
        pipeline_options.insert(0, '--runner=DirectRunner')
    logging.info('Preparing %d file(s) into %s', len(paths),
                 FLAGS.output_tfrecord_path)
    try:
        meta = lib.prepare_tfrecord(
            paths, FLAGS.output_tfrecord_path, num_shards=FLAGS.num_shards,
            pipeline_options=pipeline_options, **settings)
    except (lib.NoUsableAudioError, ImportError) as e:
        print(f'ddsp_prepare_tfrecord: {e}', file=sys.stderr)
        return 1
    from ddsp.training.data_preparation import dataset_metadata as dm
    print(lib.format_summary(meta))
    print(f'Metadata: {dm.metadata_path(FLAGS.output_tfrecord_path)}')
    return 0


def main(unused_argv):
    sys.exit(run())


def console_entry_point():
    """From pip installed script."""
    cli.run_with_global_flags(main, __name__, __doc__,
                              ['crepe_model_capacity', 'crepe_frame_rate'])


if __name__ == '__main__':
    console_entry_point()
