r"""Generates audio from notes with a trained model: no input audio.

Usage:
================================================================================
# 1. Models with an encoder (models/ae.gin): fit a GMM over the z of a
#    prepared dataset (once).
ddsp_generate --model_dir=/path/to/model \
--fit_gmm_on='/path/to/data/train.tfrecord*' --gmm=/path/to/z_gmm.npz

# 2. Play a MIDI file or a CSV of notes (onset_s,offset_s,midi_pitch,velocity).
ddsp_generate --model_dir=/path/to/model --gmm=/path/to/z_gmm.npz \
--notes=song.mid --output=song.wav [--seed=0]
================================================================================

Notes become f0 and loudness curves (attack / release envelopes, optional
vibrato; velocities mapped into the training data's note-on loudness with the
model's dataset_statistics.json). Models without an encoder need no GMM. For
models with one, a z is drawn from the GMM for every note and held through it
(crossfaded between notes over --crossfade_s): the timbre varies from note to
note but does not flicker within one. The same --seed gives the same audio.
Both steps can run in one call (fit, then generate).
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from ddsp.training import cli  # noqa: E402
from ddsp.training import generation  # noqa: E402
from ddsp.training import inference  # noqa: E402

# Flags of this tool only (ddsp.training.cli).
FLAGS = flags.FlagValues()


flags.DEFINE_string('model_dir', None, 'Trained model directory (a ddsp_run '
                    'save_dir).', flag_values=FLAGS)
flags.DEFINE_string('checkpoint', None, 'Checkpoint prefix to restore '
                    '(default: the latest in --model_dir).', flag_values=FLAGS)
flags.DEFINE_string('gmm', None, 'z GMM file (.npz or .json): written with '
                    '--fit_gmm_on, read otherwise.', flag_values=FLAGS)
flags.DEFINE_string('fit_gmm_on', None, 'File pattern of a prepared dataset '
                    '(ddsp_prepare_tfrecord output) to fit the z GMM on.',
                    flag_values=FLAGS)
flags.DEFINE_integer('max_examples', None, 'Fit on at most this many '
                     'examples.', flag_values=FLAGS)
flags.DEFINE_integer('max_components', 8, 'Largest number of GMM components '
                     'tried.', flag_values=FLAGS)
flags.DEFINE_enum('gmm_criterion', 'bic', ['bic', 'heldout'], 'How the '
                  'number of components is chosen.', flag_values=FLAGS)
flags.DEFINE_enum('covariance_type', 'full', ['full', 'diag', 'tied',
                                              'spherical'],
                  'GMM covariance type.', flag_values=FLAGS)
flags.DEFINE_float('segment_secs', 1.0, 'Longest segment (a detected note '
                   'or a piece of one) whose mean z is one GMM sample.',
                   flag_values=FLAGS)
flags.DEFINE_string('notes', None, 'Notes to play: a MIDI file (.mid) or a '
                    'CSV of onset_s,offset_s,midi_pitch,velocity'
                    '[,vibrato_cents].', flag_values=FLAGS)
flags.DEFINE_string('output', None, 'Output audio file (.wav, .flac, ...).',
                    flag_values=FLAGS)
flags.DEFINE_integer('seed', 0, 'Seed of the z draws.', flag_values=FLAGS)
flags.DEFINE_float('attack_s', generation.DEFAULT_ATTACK_S,
                   'Attack time of every note.',
                   flag_values=FLAGS)
flags.DEFINE_float('release_s', generation.DEFAULT_RELEASE_S,
                   'Release time of every note.',
                   flag_values=FLAGS)
flags.DEFINE_float('vibrato_cents', 0.0, 'Vibrato depth (a vibrato_cents '
                   'column of the CSV overrides it per note).',
                   flag_values=FLAGS)
flags.DEFINE_float('vibrato_hz', generation.DEFAULT_VIBRATO_HZ,
                   'Vibrato rate.', flag_values=FLAGS)
flags.DEFINE_float('vibrato_delay_s', generation.DEFAULT_VIBRATO_DELAY_S,
                   'Vibrato fade-in time.',
                   flag_values=FLAGS)
flags.DEFINE_float('crossfade_s', generation.DEFAULT_CROSSFADE_S,
                   'z crossfade between notes.',
                   flag_values=FLAGS)
flags.DEFINE_boolean('no_reverb', False, 'Leave out the learned reverb.',
                     flag_values=FLAGS)
flags.DEFINE_integer('output_sample_rate', None, 'Sample rate of the output '
                     "file (default: the model's).", flag_values=FLAGS)

_NAME = 'ddsp_generate'


def _flag_errors() -> list:
    """Problems with the flags, as messages (empty when all is well)."""
    errors = []
    if not FLAGS.model_dir:
        errors.append('--model_dir is required.')
    if not FLAGS.fit_gmm_on and not FLAGS.notes:
        errors.append('Nothing to do: give --fit_gmm_on (fit a z GMM) and/or '
                      '--notes with --output (generate).')
    if FLAGS.fit_gmm_on and not FLAGS.gmm:
        errors.append('--fit_gmm_on needs --gmm (where to write the GMM).')
    if FLAGS.gmm and not FLAGS.gmm.lower().endswith(('.npz', '.json')):
        errors.append(f'--gmm must end in .npz or .json, got {FLAGS.gmm!r}.')
    if bool(FLAGS.notes) != bool(FLAGS.output):
        errors.append('--notes and --output go together.')
    if FLAGS.max_components < 1:
        errors.append(f'--max_components must be >= 1, got '
                      f'{FLAGS.max_components}.')
    if FLAGS.max_examples is not None and FLAGS.max_examples < 1:
        errors.append(f'--max_examples must be >= 1, got '
                      f'{FLAGS.max_examples}.')
    # The note curve options (--attack_s, ...) are checked by
    # generation.notes_to_curves (a ValueError: exit status 1).
    if FLAGS.crossfade_s < 0:
        errors.append(f'--crossfade_s must be >= 0, got {FLAGS.crossfade_s}.')
    if FLAGS.segment_secs <= 0:
        errors.append(f'--segment_secs must be > 0, got '
                      f'{FLAGS.segment_secs}.')
    errors += cli.audio_output_errors('output', FLAGS.output)
    return errors


def fit(trained) -> None:
    """Collects z over --fit_gmm_on, fits the GMM and writes --gmm."""
    from ddsp.training import data
    provider = data.TFRecordProvider(FLAGS.fit_gmm_on)
    collection = generation.collect_z(trained, provider, FLAGS.max_examples,
                                      segment_secs=FLAGS.segment_secs)
    gmm = generation.fit_gmm(collection.segments, FLAGS.max_components,
                             FLAGS.gmm_criterion, FLAGS.covariance_type,
                             seed=FLAGS.seed)
    gmm.metadata.update(
        model_dir=trained.model_dir, checkpoint=trained.checkpoint,
        dataset=FLAGS.fit_gmm_on, n_examples=collection.n_examples,
        segment_secs=FLAGS.segment_secs, unit='note segment mean z')
    gmm.save(FLAGS.gmm)
    logging.info('Wrote a %d-component z GMM to %s.', gmm.n_components,
                 FLAGS.gmm)


def generate(trained) -> None:
    """Plays --notes with the model and writes --output."""
    from ddsp.training import timbre_transfer
    gmm = generation.load_gmm(FLAGS.gmm) if (
        FLAGS.gmm and trained.uses_z) else None
    notes = generation.read_notes(FLAGS.notes)
    logging.info('Generating %d notes (%.2f s).', len(notes),
                 notes[-1].offset_s)
    result = generation.generate(
        trained, notes, gmm, seed=FLAGS.seed,
        use_reverb=not FLAGS.no_reverb, crossfade_s=FLAGS.crossfade_s,
        attack_s=FLAGS.attack_s, release_s=FLAGS.release_s,
        vibrato_cents=FLAGS.vibrato_cents, vibrato_hz=FLAGS.vibrato_hz,
        vibrato_delay_s=FLAGS.vibrato_delay_s)
    timbre_transfer.write_audio(FLAGS.output, result.audio,
                                result.sample_rate, FLAGS.output_sample_rate)
    logging.info('Wrote %s', FLAGS.output)


def run() -> int:
    """Fits and/or generates from FLAGS; returns the exit status."""
    errors = _flag_errors()
    if errors:
        return cli.print_errors(_NAME, errors)
    try:
        trained = inference.load_model(FLAGS.model_dir, FLAGS.checkpoint)
        if FLAGS.notes and trained.uses_z and not FLAGS.gmm:
            raise ValueError('This model has an encoder: generating needs a '
                             'z GMM (--gmm, fitted with --fit_gmm_on).')
        if FLAGS.fit_gmm_on:
            fit(trained)
        if FLAGS.notes:
            generate(trained)
    except (FileNotFoundError, ValueError) as e:
        return cli.print_errors(_NAME, [e], status=1)
    return 0


def console_entry_point():
    """From pip installed script."""
    cli.run_tool(run, FLAGS, _NAME, __doc__)


if __name__ == '__main__':
    console_entry_point()
