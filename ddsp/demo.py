"""`make demo`: prepare -> train -> resynthesize, on the example data in data/.

1. `ddsp_prepare_tfrecord` turns data/*.wav into TFRecords (fast CREPE mode).
2. `ddsp_run` trains a small solo-instrument model (models/tiny.gin) on them.
3. The trained model resynthesizes held-out examples from their f0 and
   loudness; the demo writes the audio, a loss curve and spectrograms to
   `<output_dir>`, and measures how well the output follows the input's pitch
   (CREPE on the output) and loudness.
4. Timbre transfer: the voice-like clip data/voice/voice_like.wav is sung by
   the trained violin model (`ddsp.training.timbre_transfer`, automatic
   adjustment on), written to `timbre_transfer.{wav,png}`, with the same
   follow metrics under 'timbre_transfer' in report.json.

    python -m ddsp.demo --output_dir=demo_out [--train_steps=N]

The CLIs run as subprocesses, exactly as a user would call them, so their
progress appears on screen.
"""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time

from absl import flags
from absl import logging
import numpy as np

from ddsp.training import cli

FLAGS = flags.FlagValues()  # ddsp.training.cli
flags.DEFINE_string('output_dir', 'demo_out', 'Where audio, plots and the '
                    'trained model go.', flag_values=FLAGS)
flags.DEFINE_string('data_pattern', 'data/*.wav', 'Training audio.',
                    flag_values=FLAGS)
flags.DEFINE_integer('train_steps', 500, 'Training steps of the demo model.',
                     flag_values=FLAGS)
flags.DEFINE_integer('batch_size', 8, 'Training batch size.',
                     flag_values=FLAGS)
flags.DEFINE_integer('n_examples', 3, 'Held-out examples to resynthesize.',
                     flag_values=FLAGS)
# Fast f0 mode for data preparation and timbre transfer (f0 interpolated to
# 250 frames/s).
cli.define_crepe_flags(FLAGS, capacity='tiny', frame_rate=50.0)
flags.DEFINE_string('transfer_input', 'data/voice/voice_like.wav',
                    'Input of the timbre-transfer step.', flag_values=FLAGS)


def _run(cmd: list[str]) -> None:
    """Runs a CLI step, streaming its output; fails loudly with its name."""
    logging.info('$ %s', ' '.join(cmd))
    result = subprocess.run(cmd)
    if result.returncode != 0:
        raise SystemExit(f'demo: step failed (exit {result.returncode}): '
                         f'{" ".join(cmd)}')


def _script(name: str) -> str:
    """Path of a console script installed beside this Python."""
    return os.path.join(os.path.dirname(sys.executable), name)


def prepare(data_dir: str) -> str:
    tfrecord = os.path.join(data_dir, 'train.tfrecord')
    if glob.glob(tfrecord + '*'):
        logging.info('Reusing prepared data in %s', data_dir)
        return tfrecord
    _run([_script('ddsp_prepare_tfrecord'),
          f'--input_audio_filepatterns={FLAGS.data_pattern}',
          f'--output_tfrecord_path={tfrecord}',
          '--eval_split_fraction=0.1',
          f'--crepe_model_capacity={FLAGS.crepe_model_capacity}',
          f'--crepe_frame_rate={FLAGS.crepe_frame_rate}',
          '--alsologtostderr'])
    return tfrecord


def train(tfrecord: str, model_dir: str) -> None:
    _run([_script('ddsp_run'), '--mode=train',
          f'--save_dir={model_dir}',
          '--gin_file=models/tiny.gin',
          '--gin_file=datasets/tfrecord.gin',
          f"--gin_param=TFRecordProvider.file_pattern='{tfrecord}*'",
          f'--gin_param=train.batch_size={FLAGS.batch_size}',
          f'--gin_param=train.num_steps={FLAGS.train_steps}',
          '--gin_param=train.steps_per_summary=100',
          '--gin_param=train.steps_per_save=300',
          '--gin_param=Trainer.learning_rate=0.003',
          '--alsologtostderr'])


def loss_curve(model_dir: str) -> list[tuple[int, float]]:
    """(step, total_loss) pairs from the training summaries."""
    import tensorflow as tf
    points = []
    for path in sorted(glob.glob(os.path.join(model_dir, 'summaries', 'train',
                                              'events.*'))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == 'losses/total_loss':
                    points.append((event.step,
                                   float(tf.make_ndarray(value.tensor))))
    return sorted(points)


def resynthesize(tfrecord: str, trained):
    """Runs the trained model (`inference.load_model`, which also parsed its
    gin config for the data provider) on held-out examples."""
    from ddsp.training import data
    pattern = tfrecord + '-eval*'
    if not glob.glob(pattern):
        pattern = tfrecord + '*'
    provider = data.TFRecordProvider(file_pattern=pattern)
    batch = next(iter(provider.get_batch(FLAGS.n_examples, shuffle=False,
                                         repeats=1, drop_remainder=False)))
    outputs = trained.model(batch, training=False)
    return batch, outputs, provider


def follow_report(batch, audio_gen, sample_rate: int, frame_rate: int) -> dict:
    """How well the output follows the input: f0 (cents, CREPE tiny on the
    output, frames with input confidence > 0.85) and loudness (dB)."""
    from ddsp.training import metrics
    from ddsp.training import timbre_transfer as tt
    errors = [
        tt.follow_errors(audio_gen[i], sample_rate, frame_rate,
                         batch['f0_hz'][i].numpy(),
                         batch['loudness_db'][i].numpy(),
                         voiced=(batch['f0_confidence'][i].numpy()
                                 > metrics.MIN_F0_CONFIDENCE))
        for i in range(audio_gen.shape[0])]
    return tt.follow_metrics(errors)


def timbre_transfer(trained, output_dir: str, input_path: str) -> dict:
    """Step 4: input_path through the trained model (automatic adjustment,
    fast CREPE as in data preparation); writes timbre_transfer.{wav,png} and
    returns how well the output follows the adjusted f0 and loudness."""
    from ddsp.training import metrics
    from ddsp.training import timbre_transfer as tt
    audio = tt.load_input_audio(input_path, trained.sample_rate)
    result = tt.transfer(trained, audio,
                         model_capacity=FLAGS.crepe_model_capacity,
                         crepe_frame_rate=FLAGS.crepe_frame_rate)
    tt.write_audio(os.path.join(output_dir, 'timbre_transfer.wav'),
                   result.audio_gen, result.sample_rate)
    tt.save_plot(result, os.path.join(output_dir, 'timbre_transfer.png'))
    voiced = (result.adjusted['mask_on']
              & (result.features['f0_confidence']
                 > metrics.MIN_F0_CONFIDENCE))
    errors = tt.follow_errors(result.audio_gen, result.sample_rate,
                              result.frame_rate, result.adjusted['f0_hz'],
                              result.adjusted['loudness_db'], voiced=voiced)
    report = tt.follow_metrics([errors])
    report.update(input=input_path,
                  octave_shift=int(result.adjusted['octave_shift']),
                  note_on_fraction=float(np.mean(result.adjusted['mask_on'])))
    return report


def save_plots(output_dir: str, curve, batch, audio_gen, sample_rate: int):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from ddsp.training import plotting

    if curve:
        fig, ax = plt.subplots(figsize=(7, 4))
        steps, values = zip(*curve)
        ax.plot(steps, values, marker='o')
        ax.set_xlabel('step')
        ax.set_ylabel('total loss (multi-scale spectral)')
        ax.set_title('demo training loss')
        fig.tight_layout()
        fig.savefig(os.path.join(output_dir, 'loss_curve.png'), dpi=100)
        plt.close(fig)
    audio = batch['audio'].numpy()
    fig, axes = plt.subplots(2, len(audio), figsize=(5 * len(audio), 7),
                             squeeze=False)
    for i in range(len(audio)):
        plotting.specplot(audio[i], ax=axes[0, i])
        axes[0, i].set_title(f'original {i}')
        plotting.specplot(audio_gen[i], ax=axes[1, i])
        axes[1, i].set_title(f'resynthesis {i}')
    fig.tight_layout()
    fig.savefig(os.path.join(output_dir, 'resynthesis_spectrograms.png'),
                dpi=80)
    plt.close(fig)


def main() -> None:
    import soundfile as sf
    from ddsp.training import inference
    start = time.time()
    output_dir = FLAGS.output_dir
    os.makedirs(output_dir, exist_ok=True)
    logging.info('[1/4] preparing %s', FLAGS.data_pattern)
    tfrecord = prepare(os.path.join(output_dir, 'data'))
    logging.info('[2/4] training %d steps', FLAGS.train_steps)
    model_dir = os.path.join(output_dir, 'model')
    train(tfrecord, model_dir)
    logging.info('[3/4] resynthesizing held-out examples')
    trained = inference.load_model(model_dir)  # Steps 3 and 4.
    batch, outputs, provider = resynthesize(tfrecord, trained)
    audio_gen = outputs['audio_synth'].numpy()
    sample_rate = provider.sample_rate
    gap = np.zeros(sample_rate // 2, np.float32)
    join = lambda clips: np.concatenate([np.concatenate([c, gap]) for c in clips])
    peak = max(np.abs(audio_gen).max(), 1e-6)
    sf.write(os.path.join(output_dir, 'original.wav'),
             join(batch['audio'].numpy()), sample_rate)
    sf.write(os.path.join(output_dir, 'resynthesis.wav'),
             join(0.9 * audio_gen / peak), sample_rate)
    curve = loss_curve(model_dir)
    save_plots(output_dir, curve, batch, audio_gen, sample_rate)
    report = follow_report(batch, audio_gen, sample_rate,
                           int(provider.frame_rate))
    report['loss_curve'] = curve
    logging.info('[4/4] timbre transfer of %s', FLAGS.transfer_input)
    report['timbre_transfer'] = timbre_transfer(trained, output_dir,
                                                FLAGS.transfer_input)
    report['seconds'] = round(time.time() - start, 1)
    with open(os.path.join(output_dir, 'report.json'), 'w') as f:
        json.dump(report, f, indent=1)
    logging.info('Demo done in %.0f s: %s', report['seconds'],
                 {k: v for k, v in report.items() if k != 'loss_curve'})
    logging.info('Wrote %s/{original,resynthesis,timbre_transfer}.wav, '
                 'loss_curve.png, resynthesis_spectrograms.png, '
                 'timbre_transfer.png, report.json', output_dir)


if __name__ == '__main__':
    logging.set_verbosity(logging.INFO)
    cli.run_tool(main, FLAGS, 'ddsp.demo', __doc__)
