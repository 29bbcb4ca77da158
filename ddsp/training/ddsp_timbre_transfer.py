r"""Timbre transfer of a recording through a trained model.

Usage:
================================================================================
ddsp_timbre_transfer --model_dir=/path/to/model --input=voice.wav \
--output=violin.wav [--pitch_shift=-1] [--loudness_shift=3] [--no_reverb]
================================================================================

Reads any audio file (wav, flac, ogg, mp3, ...; mixed to mono, resampled to
the model's rate), computes f0 (CREPE) and loudness as the training data were
computed, adjusts them toward the training data (like the timbre-transfer
notebook's controls) and resynthesizes the whole file with the model in
`--model_dir` (a `ddsp_run` save_dir). Writes the output audio and a PNG of
the features before/after adjustment and both spectrograms.

  --adjust / --noadjust   automatic octave shift, loudness normalisation of
                          notes and `--quiet` dB on the rest (needs the
                          model's dataset_statistics.json)
  --no_reverb             leave out the learned room (dereverberation)
  --acoustic_transfer     write the input with the model's room applied
                          instead of resynthesizing it

Faster f0: `--crepe_model_capacity=tiny --crepe_frame_rate=50`.
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from ddsp.training import cli  # noqa: E402

# Flags of this tool only (ddsp.training.cli).
FLAGS = flags.FlagValues()

flags.DEFINE_string('model_dir', None, 'Trained model directory (a ddsp_run '
                    'save_dir with checkpoints and the operative config).',
                    flag_values=FLAGS)
flags.DEFINE_string('checkpoint', None, 'Checkpoint prefix to restore '
                    '(default: the latest in --model_dir).', flag_values=FLAGS)
flags.DEFINE_string('input', None, 'Input audio file.', flag_values=FLAGS)
flags.DEFINE_string('output', None, 'Output audio file (.wav, .flac, ...).',
                    flag_values=FLAGS)
flags.DEFINE_string('plot', None, 'PNG summary path (default: --output with '
                    '.png; empty: no plot).', flag_values=FLAGS)
flags.DEFINE_boolean('adjust', True, 'Automatic adjustment toward the '
                     'training data (octave, loudness, quiet).',
                     flag_values=FLAGS)
flags.DEFINE_float('threshold', 1.0, 'Note detection threshold (0-2).',
                   flag_values=FLAGS)
flags.DEFINE_float('quiet', 20.0, 'dB of attenuation of frames without a '
                   'detected note (with --adjust).', flag_values=FLAGS)
flags.DEFINE_float('autotune', 0.0, 'Auto-tune amount in [0, 1] (with '
                   '--adjust).', flag_values=FLAGS)
flags.DEFINE_float('pitch_shift', 0.0, 'Pitch shift in octaves.',
                   flag_values=FLAGS)
flags.DEFINE_float('loudness_shift', 0.0, 'Loudness shift in dB.',
                   flag_values=FLAGS)
flags.DEFINE_boolean('no_reverb', False, 'Leave out the learned reverb '
                     '(dereverberation).', flag_values=FLAGS)
flags.DEFINE_boolean('acoustic_transfer', False, 'Write the input audio with '
                     "the model's learned room applied instead of "
                     'resynthesizing it.', flag_values=FLAGS)
cli.define_crepe_flags(FLAGS)
flags.DEFINE_integer('output_sample_rate', None, 'Sample rate of the output '
                     "file (default: the model's).", flag_values=FLAGS)

_NAME = 'ddsp_timbre_transfer'


def _flag_errors() -> list:
    """Problems with the flags, as messages (empty when all is well)."""
    errors = [f'--{name} is required.' for name in ('model_dir', 'input',
                                                    'output')
              if not getattr(FLAGS, name)]
    if not 0.0 <= FLAGS.threshold <= 2.0:
        errors.append(f'--threshold must be in [0, 2], got {FLAGS.threshold}.')
    if FLAGS.quiet < 0:
        errors.append(f'--quiet must be >= 0 dB, got {FLAGS.quiet}.')
    if not 0.0 <= FLAGS.autotune <= 1.0:
        errors.append(f'--autotune must be in [0, 1], got {FLAGS.autotune}.')
    if FLAGS.output_sample_rate is not None and FLAGS.output_sample_rate <= 0:
        errors.append(f'--output_sample_rate must be > 0, got '
                      f'{FLAGS.output_sample_rate}.')
    if FLAGS.acoustic_transfer and FLAGS.no_reverb:
        errors.append('--acoustic_transfer applies the reverb: it cannot be '
                      'combined with --no_reverb.')
    errors += cli.audio_output_errors('output', FLAGS.output)
    if FLAGS.plot and not FLAGS.plot.lower().endswith('.png'):
        errors.append(f'--plot must be a .png path, got {FLAGS.plot!r}.')
    return errors


def plot_path() -> str:
    """--plot, or --output with the extension .png."""
    if FLAGS.plot is not None:
        return FLAGS.plot
    return os.path.splitext(FLAGS.output)[0] + '.png'


def run() -> int:
    """Runs the transfer from FLAGS; returns the exit status."""
    errors = _flag_errors()
    if errors:
        return cli.print_errors(_NAME, errors)
    # Imported on use: the model stack is only needed for a transfer.
    import tensorflow as tf
    from ddsp.training import inference
    from ddsp.training import timbre_transfer as tt
    if not tf.io.gfile.exists(FLAGS.input):  # Before the slow model load.
        return cli.print_errors(
            _NAME, [f'--input: {FLAGS.input} does not exist.'], status=1)
    try:
        logging.info('Loading the model in %s', FLAGS.model_dir)
        trained = inference.load_model(FLAGS.model_dir, FLAGS.checkpoint)
        audio = tt.load_input_audio(FLAGS.input, trained.sample_rate)
        result = tt.transfer(
            trained, audio, adjust=FLAGS.adjust, threshold=FLAGS.threshold,
            quiet=FLAGS.quiet, autotune=FLAGS.autotune,
            pitch_shift=FLAGS.pitch_shift,
            loudness_shift=FLAGS.loudness_shift,
            use_reverb=not FLAGS.no_reverb,
            acoustic_transfer=FLAGS.acoustic_transfer,
            model_capacity=FLAGS.crepe_model_capacity,
            crepe_frame_rate=FLAGS.crepe_frame_rate)
    except (FileNotFoundError, ValueError) as e:
        return cli.print_errors(_NAME, [e], status=1)
    tt.write_audio(FLAGS.output, result.audio_gen, result.sample_rate,
                   FLAGS.output_sample_rate)
    logging.info('Wrote %s', FLAGS.output)
    png = plot_path()
    if png:
        tt.save_plot(result, png)
        logging.info('Wrote %s', png)
    return 0


def console_entry_point():
    """From pip installed script."""
    cli.run_tool(run, FLAGS, _NAME, __doc__)


if __name__ == '__main__':
    console_entry_point()
