r"""Compares trained models by resynthesizing the same audio with each.

Usage:
================================================================================
ddsp_evaluate --model_dirs=/models/harmonic,/models/harmonic_noise \
--audio_dir=/path/to/wavs --output_dir=/tmp/eval [--names=h,hn]
# or on a prepared dataset (its f0 / loudness are used as they are):
ddsp_evaluate --model_dirs=... --file_pattern='/data/train.tfrecord-eval*' \
--output_dir=/tmp/eval
================================================================================

Every model resynthesizes every clip from the clip's f0 and loudness (CREPE
and A-weighted loudness as `ddsp_prepare_tfrecord` computes them; z from the
clip for models with an encoder). Per model, averaged over the clips:

  f0_l1_semitones    |MIDI f0 of the output (CREPE) - f0 of the clip| on
                     frames where the clip's CREPE confidence >= 0.85, over
                     clips that are not outliers (`metrics.F0CrepeMetrics`)
  f0_outlier_ratio   clips whose f0 is untrackable or off by > 12 semitones
  loudness_l1_db     |loudness of output - loudness of clip| in dB
                     (`metrics.LoudnessMetrics`)
  spectral_distance  multi-scale spectrogram distance (`losses.SpectralLoss`,
                     L1 of magnitudes and log magnitudes, FFT 2048 ... 64)
  visqol_moslqo      ViSQOL v3 audio mode MOS-LQO (1-5, higher is better), at
                     48 kHz, with the optional `visqol-python` package;
                     the column is left out (logged) without it

Writes OUTPUT_DIR/evaluation.md (the table), evaluation.csv, per_clip.csv,
metrics.png (a bar chart per metric) and spectrograms.png (the first clip
and every model's resynthesis); --save_audio also writes the outputs.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from ddsp.training import cli  # noqa: E402
import numpy as np  # noqa: E402

# Flags of this tool only (ddsp.training.cli).
FLAGS = flags.FlagValues()

flags.DEFINE_list('model_dirs', [], 'Trained model directories (ddsp_run '
                  'save_dirs), comma separated.', flag_values=FLAGS)
flags.DEFINE_list('names', [], 'Names of the models in the table (default: '
                  'the directory names).', flag_values=FLAGS)
flags.DEFINE_string('audio_dir', None, 'Folder of audio files to '
                    'resynthesize.', flag_values=FLAGS)
flags.DEFINE_string('file_pattern', None, 'Or: a prepared dataset '
                    '(ddsp_prepare_tfrecord shards); its eval split '
                    'when it has one.', flag_values=FLAGS)
flags.DEFINE_string('output_dir', None, 'Where the table and plots go.',
                    flag_values=FLAGS)
flags.DEFINE_integer('max_clips', None, 'Use at most this many files / '
                     'examples.', flag_values=FLAGS)
flags.DEFINE_float('max_seconds', None, 'Cut audio files to this length.',
                   flag_values=FLAGS)
cli.define_crepe_flags(FLAGS)
flags.DEFINE_boolean('visqol', True, 'Compute ViSQOL (needs the optional '
                     'visqol-python package).', flag_values=FLAGS)
flags.DEFINE_boolean('save_audio', False, 'Also write every resynthesis.',
                     flag_values=FLAGS)

_NAME = 'ddsp_evaluate'
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aiff', '.aif')
VISQOL_SAMPLE_RATE = 48000  # ViSQOL's audio mode works at 48 kHz.
# Column, header, format; lower is better except for ViSQOL.
COLUMNS = (('f0_l1_semitones', 'f0 L1 (semitones)', '{:.3f}'),
           ('f0_outlier_ratio', 'f0 outliers', '{:.2f}'),
           ('loudness_l1_db', 'loudness L1 (dB)', '{:.2f}'),
           ('spectral_distance', 'multi-scale spectral distance', '{:.3f}'),
           ('visqol_moslqo', 'ViSQOL MOS-LQO', '{:.2f}'))


@dataclasses.dataclass
class Clip:
    """Audio to resynthesize.

    Attributes:
        name: File name or 'example_<i>'.
        audio: float32 `[n_samples]` at sample_rate.
        sample_rate: Of audio.
        features: 'f0_hz', 'f0_confidence', 'loudness_db' `[n_frames]` at
            frame_rate (a prepared dataset's), or None (computed).
        frame_rate: Of features.
    """
    name: str
    audio: np.ndarray
    sample_rate: int
    features: Optional[Dict[str, np.ndarray]] = None
    frame_rate: Optional[float] = None


def clips_from_audio_dir(audio_dir: str, max_clips: Optional[int] = None,
                         max_seconds: Optional[float] = None) -> List[Clip]:
    """The audio files of a folder (sorted; mono, at their own rate)."""
    import tensorflow as tf
    from ddsp.training import timbre_transfer
    if not tf.io.gfile.isdir(audio_dir):
        raise FileNotFoundError(f'audio_dir {audio_dir!r} is not a folder.')
    paths = sorted(os.path.join(audio_dir, f)
                   for f in tf.io.gfile.listdir(audio_dir)
                   if f.lower().endswith(AUDIO_EXTENSIONS))[:max_clips]
    if not paths:
        raise ValueError(f'No audio files ({", ".join(AUDIO_EXTENSIONS)}) in '
                         f'{audio_dir}.')
    clips = []
    for path in paths:
        loaded = timbre_transfer.load_input_audio(path)
        audio, rate = loaded.audio, loaded.sample_rate
        if max_seconds:
            audio = audio[:int(max_seconds * rate)]
        clips.append(Clip(os.path.basename(path), audio, rate))
    return clips


def clips_from_dataset(file_pattern: str,
                       max_clips: Optional[int] = None) -> List[Clip]:
    """Examples of a prepared dataset with their f0 and loudness.

    Models are compared on held-out audio: when the dataset has an eval
    split, its eval shards are read; otherwise the matched files as they are.
    """
    from ddsp.training import data
    provider = data.TFRecordProvider(file_pattern, split='eval')
    clips = []
    for i, example in enumerate(provider.get_dataset(shuffle=False)):
        if max_clips is not None and i >= max_clips:
            break
        clips.append(Clip(
            f'example_{i}', np.asarray(example['audio'], np.float32),
            int(provider.sample_rate),
            {k: np.asarray(example[k], np.float32)
             for k in ('f0_hz', 'f0_confidence', 'loudness_db')},
            float(provider.frame_rate)))
    if not clips:
        raise ValueError(f'The dataset {file_pattern!r} has no examples.')
    return clips


# Metrics ----------------------------------------------------------------------------
def make_visqol() -> Optional[Callable[[np.ndarray, np.ndarray, int],
                                       float]]:
    """A ViSQOL (audio mode) scorer `(reference, degraded, sample_rate) ->
    MOS-LQO`, or None (logged) if visqol-python is not installed."""
    try:
        from visqol import VisqolApi
    except ImportError:
        logging.info('visqol-python is not installed: no ViSQOL column '
                     '(pip install "ddsp[visqol]").')
        return None
    import soxr
    api = VisqolApi()
    api.create(mode='audio')

    def score(reference, degraded, sample_rate: int) -> float:
        ref, deg = (soxr.resample(np.asarray(x, np.float64), sample_rate,
                                  VISQOL_SAMPLE_RATE)
                    for x in (reference, degraded))
        return float(api.measure_from_arrays(ref, deg,
                                             VISQOL_SAMPLE_RATE).moslqo)
    return score


def compare_audio(audio, audio_gen, sample_rate: int, frame_rate: float,
                  f0_hz, f0_confidence, model_capacity: str = 'full',
                  crepe_frame_rate: Optional[float] = None,
                  visqol: Optional[Callable] = None
                  ) -> Dict[str, Optional[float]]:
    """All metrics of one resynthesis against its original.

    Args:
        audio, audio_gen: `[n_samples]` at sample_rate, same length.
        sample_rate, frame_rate: Rates of audio and of f0.
        f0_hz, f0_confidence: The original's CREPE f0 `[n_frames]`.
        model_capacity, crepe_frame_rate: CREPE run on audio_gen (use the
            settings the original's f0 was computed with).
        visqol: `make_visqol()` scorer or None.

    Returns:
        {'f0_l1_semitones' (None for an outlier), 'f0_outlier_ratio' (0 or
        1), 'loudness_l1_db', 'spectral_distance', 'visqol_moslqo' (only
        with a scorer)}.
    """
    from ddsp import losses
    from ddsp.training import metrics
    audio = np.asarray(audio, np.float32)
    audio_gen = np.asarray(audio_gen, np.float32)
    if audio.ndim != 1 or audio.shape != audio_gen.shape:
        raise ValueError(f'audio and audio_gen must be [n_samples] of the '
                         f'same length, got {audio.shape} and '
                         f'{audio_gen.shape}.')
    f0_metrics = metrics.F0CrepeMetrics(
        sample_rate, frame_rate, model_capacity=model_capacity,
        crepe_frame_rate=crepe_frame_rate)
    f0_metrics.update_state({'f0_hz': f0_hz, 'f0_confidence': f0_confidence},
                            audio_gen[None])
    loudness = metrics.LoudnessMetrics(sample_rate, frame_rate)
    loudness.update_state({'audio': audio[None]}, audio_gen[None])
    spectral = losses.SpectralLoss(mag_weight=1.0, logmag_weight=1.0)
    result = {
        'f0_l1_semitones': f0_metrics.result()['f0_dist'],
        'f0_outlier_ratio': f0_metrics.result()['outlier_ratio'],
        'loudness_l1_db': loudness.result()['loudness_db'],
        'spectral_distance': float(spectral(audio[None], audio_gen[None])),
    }
    if visqol is not None:
        result['visqol_moslqo'] = visqol(audio, audio_gen, sample_rate)
    return result


def _mean(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def evaluate_model(trained, clips: Sequence[Clip],
                   model_capacity: str = 'full',
                   crepe_frame_rate: Optional[float] = None,
                   visqol: Optional[Callable] = None,
                   feature_cache: Optional[Dict] = None) -> Dict[str, Any]:
    """Resynthesizes every clip with a model and measures it.

    Args:
        trained: `inference.TrainedModel`.
        clips: The clips (`clips_from_audio_dir`, `clips_from_dataset`).
        model_capacity, crepe_frame_rate: CREPE settings of the clips' f0
            (when computed) and of the outputs'.
        visqol: `make_visqol()` scorer or None.
        feature_cache: A dict shared by the models evaluated on the same
            clips: the clips' features are computed once per frame rate
            (they do not depend on the model otherwise).

    Returns:
        {'summary': {metric: mean over clips, 'n_clips': ...},
         'per_clip': [{'clip': name, metric: value}], 'audio': [outputs],
         'sample_rate': trained.sample_rate}.
    """
    from ddsp.training import timbre_transfer as tt
    feature_cache = {} if feature_cache is None else feature_cache
    per_clip, outputs = [], []
    for i, clip in enumerate(clips):
        source = tt.prepare_input_audio(clip.audio, clip.sample_rate,
                                        trained.sample_rate, clip.name)
        features = clip.features
        if features is None or clip.frame_rate != trained.frame_rate:
            key = (i, clip.name, float(trained.frame_rate))
            if key not in feature_cache:
                feature_cache[key] = tt.compute_features(
                    source.audio_16k, trained.frame_rate, model_capacity,
                    crepe_frame_rate)
            features = feature_cache[key]
        audio_gen, _ = tt.resynthesize(trained, features['f0_hz'],
                                       features['loudness_db'], source.audio)
        row = compare_audio(source.audio, audio_gen, trained.sample_rate,
                            trained.frame_rate, features['f0_hz'],
                            features['f0_confidence'], model_capacity,
                            crepe_frame_rate, visqol)
        logging.info('%s: %s', clip.name, row)
        per_clip.append({'clip': clip.name, **row})
        outputs.append(audio_gen)
    summary = {key: _mean(row.get(key) for row in per_clip)
               for key, _, _ in COLUMNS if key in per_clip[0]}
    summary['n_clips'] = len(clips)
    return {'summary': summary, 'per_clip': per_clip, 'audio': outputs,
            'sample_rate': trained.sample_rate}


# Report -------------------------------------------------------------------------------
def _format(value, fmt: str) -> str:
    return 'n/a' if value is None else fmt.format(value)


def markdown_table(results: Dict[str, Dict[str, Any]]) -> str:
    """The per-model table (Markdown) of evaluate_model summaries."""
    keys = [c for c in COLUMNS
            if any(c[0] in r['summary'] for r in results.values())]
    lines = ['| model | clips | ' + ' | '.join(h for _, h, _ in keys) + ' |',
             '|---|---:|' + '---:|' * len(keys)]
    for name, result in results.items():
        s = result['summary']
        lines.append(f'| {name} | {s["n_clips"]} | ' + ' | '.join(
            _format(s.get(k), fmt) for k, _, fmt in keys) + ' |')
    return '\n'.join(lines) + '\n'


def _write_csv(path: str, rows: List[Dict[str, Any]]) -> None:
    import tensorflow as tf
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows({k: '' if v is None else v for k, v in row.items()}
                     for row in rows)
    with tf.io.gfile.GFile(path, 'w') as f:
        f.write(buffer.getvalue())


def _plot_panels(path: str, panels, draw, size, vertical: bool) -> None:
    """A PNG of one titled panel per (title, data), side by side or
    stacked, each drawn by draw(ax, data); size is one panel's (w, h).
    A pyplot-free Figure: no global backend change, nothing left open."""
    from matplotlib.figure import Figure
    from ddsp.training import plotting
    n = len(panels)
    shape = (n, 1) if vertical else (1, n)
    fig = Figure(figsize=(size[0] * shape[1], size[1] * shape[0]))
    axes = fig.subplots(*shape, squeeze=False).ravel()
    for ax, (title, data) in zip(axes, panels):
        draw(ax, data)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    plotting.save_figure(fig, path)


def _plot_metrics(results, path: str) -> None:
    names = list(results)

    def bars(ax, key):
        values = [results[n]['summary'].get(key) for n in names]
        ax.bar(range(len(names)), [math.nan if v is None else v
                                   for v in values])
        ax.set_xticks(range(len(names)), names, rotation=30, ha='right')

    panels = [(header, key) for key, header, _ in COLUMNS
              if any(key in r['summary'] for r in results.values())]
    _plot_panels(path, panels, bars, (3.2, 3.2), vertical=False)


def _plot_spectrograms(clip_audio, results, path: str) -> None:
    from ddsp.training import plotting
    panels = [('original', clip_audio)] + [(n, r['audio'][0])
                                           for n, r in results.items()]

    def spectrogram(ax, audio):
        plotting.specplot(audio, ax=ax)

    _plot_panels(path, panels, spectrogram, (8, 2.2), vertical=True)


def write_report(results: Dict[str, Dict[str, Any]], clips: Sequence[Clip],
                 output_dir: str, save_audio: bool = False,
                 source: str = '') -> str:
    """Writes evaluation.md / .csv, per_clip.csv and the plots. Returns the
    Markdown table."""
    import tensorflow as tf
    from ddsp.training import timbre_transfer as tt
    tf.io.gfile.makedirs(output_dir)
    table = markdown_table(results)
    with tf.io.gfile.GFile(os.path.join(output_dir, 'evaluation.md'),
                           'w') as f:
        f.write(f'# Model comparison\n\nResynthesis of {len(clips)} clip(s)'
                f'{" of " + source if source else ""}.\n\n{table}')
    _write_csv(os.path.join(output_dir, 'evaluation.csv'),
               [{'model': n, **r['summary']} for n, r in results.items()])
    _write_csv(os.path.join(output_dir, 'per_clip.csv'),
               [{'model': n, **row} for n, r in results.items()
                for row in r['per_clip']])
    _plot_metrics(results, os.path.join(output_dir, 'metrics.png'))
    first = next(iter(results.values()))
    reference = tt.prepare_input_audio(clips[0].audio, clips[0].sample_rate,
                                       first['sample_rate']).audio
    _plot_spectrograms(reference, results,
                       os.path.join(output_dir, 'spectrograms.png'))
    if save_audio:
        for name, result in results.items():
            for clip, audio in zip(clips, result['audio']):
                stem = os.path.splitext(clip.name)[0]
                tt.write_audio(
                    os.path.join(output_dir, 'audio', f'{name}_{stem}.wav'),
                    audio, result['sample_rate'])
    return table


# CLI --------------------------------------------------------------------------------
def _flag_errors() -> list:
    errors = []
    if not FLAGS.model_dirs:
        errors.append('--model_dirs is required (comma separated).')
    if FLAGS.names and len(FLAGS.names) != len(FLAGS.model_dirs):
        errors.append(f'--names has {len(FLAGS.names)} names for '
                      f'{len(FLAGS.model_dirs)} model dirs.')
    names = FLAGS.names or [_default_name(d) for d in FLAGS.model_dirs]
    if len(set(names)) != len(names):
        errors.append(f'Model names must be unique, got {names}: set '
                      '--names.')
    if bool(FLAGS.audio_dir) == bool(FLAGS.file_pattern):
        errors.append('Give exactly one of --audio_dir and --file_pattern.')
    if not FLAGS.output_dir:
        errors.append('--output_dir is required.')
    if FLAGS.max_clips is not None and FLAGS.max_clips < 1:
        errors.append(f'--max_clips must be >= 1, got {FLAGS.max_clips}.')
    if FLAGS.max_seconds is not None and FLAGS.max_seconds <= 0:
        errors.append(f'--max_seconds must be > 0, got {FLAGS.max_seconds}.')
    return errors


def _default_name(model_dir: str) -> str:
    return os.path.basename(os.path.normpath(model_dir))


def run() -> int:
    """Evaluates the models from FLAGS; returns the exit status."""
    errors = _flag_errors()
    if errors:
        return cli.print_errors(_NAME, errors)
    from ddsp.training import inference
    names = FLAGS.names or [_default_name(d) for d in FLAGS.model_dirs]
    try:
        clips = (clips_from_audio_dir(FLAGS.audio_dir, FLAGS.max_clips,
                                      FLAGS.max_seconds)
                 if FLAGS.audio_dir else
                 clips_from_dataset(FLAGS.file_pattern, FLAGS.max_clips))
        visqol = make_visqol() if FLAGS.visqol else None
        feature_cache = {}
        results = {}
        for name, model_dir in zip(names, FLAGS.model_dirs):
            logging.info('Evaluating %s (%s) on %d clips.', name, model_dir,
                         len(clips))
            trained = inference.load_model(model_dir)
            results[name] = evaluate_model(
                trained, clips, FLAGS.crepe_model_capacity,
                FLAGS.crepe_frame_rate, visqol, feature_cache)
    except (FileNotFoundError, ValueError) as e:
        return cli.print_errors(_NAME, [e], status=1)
    table = write_report(results, clips, FLAGS.output_dir, FLAGS.save_audio,
                         FLAGS.audio_dir or FLAGS.file_pattern)
    print(table)
    logging.info('Wrote the report to %s', FLAGS.output_dir)
    return 0


def console_entry_point():
    """From pip installed script."""
    cli.run_tool(run, FLAGS, _NAME, __doc__)


if __name__ == '__main__':
    console_entry_point()
