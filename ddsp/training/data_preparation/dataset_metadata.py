"""Dataset metadata and statistics JSON written beside the TFRecord shards.

For `--output_tfrecord_path=DIR/NAME.tfrecord` the pipeline writes

* the shards `DIR/NAME.tfrecord-SSSSS-of-NNNNN` (the reference's names), or
  with an eval split `DIR/NAME.tfrecord-train-SSSSS-of-NNNNN` and
  `DIR/NAME.tfrecord-eval-SSSSS-of-NNNNN`;
* `DIR/NAME.metadata.json`: how the dataset was made (rates, lengths,
  feature definitions, splits with their shards and example counts, sources
  and skipped files); `TFRecordProvider` reads it;
* `DIR/dataset_statistics.json` (`postprocessing.DATASET_STATISTICS_FILE`):
  pitch/power/loudness statistics of the train split and the note-on loudness
  quantile transform that timbre transfer's automatic adjustment needs, in
  the schema of `ddsp.training.postprocessing` (one per folder: put datasets
  in folders of their own).

The metadata name drops a trailing `.tfrecord` from the prefix, so the
reference's glob `DIR/NAME.tfrecord*` matches the shards only. Everything here
is plain JSON (no pickle), written atomically (temporary name, then rename).
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import uuid
from fractions import Fraction
from typing import Any, Dict, Optional

import numpy as np

FORMAT = 'ddsp.tfrecord_dataset'
FORMAT_VERSION = 1
CREPE_SAMPLE_RATE = 16000  # `audio_16k`, f0 and loudness are computed at it.
SPLITS = ('train', 'eval')

# Version 2 is magenta/ddsp's definition since v2.0.0 (commit a260cde); the
# pre-v2 one (mean of A-weighted dB, ref 20.7 dB, range 120 dB) would be 1.
LOUDNESS_DEFINITION = {
    'version': 2,
    'description': 'A-weighted power: |STFT|^2 (Hann, n_fft samples at 16 '
                   'kHz, hop 16000/frame_rate) times 10^(A(f)/10), mean over '
                   'frequency bins in linear power, 10*log10 re ref_db, '
                   'floored at -range_db',
    'n_fft': 512,
    'ref_db': 0.0,
    'range_db': 80.0,
    'sample_rate': CREPE_SAMPLE_RATE,
}

_SHARD_RE = re.compile(
    r'^(?P<prefix>.+?)(?:-(?P<split>train|eval))?-(?P<index>\d{5})'
    r'-of-(?P<count>\d{5})$')


# ------------------------------------------------------------------- naming
def _json_stem(output_tfrecord_path: str) -> str:
    stem = output_tfrecord_path
    return stem[:-len('.tfrecord')] if stem.endswith('.tfrecord') else stem


def metadata_path(output_tfrecord_path: str) -> str:
    """`DIR/NAME.tfrecord` -> `DIR/NAME.metadata.json`."""
    return _json_stem(output_tfrecord_path) + '.metadata.json'


def statistics_path(output_tfrecord_path: str) -> str:
    """`DIR/NAME.tfrecord` -> `DIR/dataset_statistics.json`, the file name
    training, export and timbre transfer look for beside the TFRecords
    (`postprocessing.DATASET_STATISTICS_FILE`)."""
    from ddsp.training import postprocessing
    return _join(_dirname(output_tfrecord_path),
                 postprocessing.DATASET_STATISTICS_FILE)


def shard_prefix(output_tfrecord_path: str, split: str,
                 has_eval_split: bool) -> str:
    """File prefix of a split's shards (Beam appends -SSSSS-of-NNNNN)."""
    return f'{output_tfrecord_path}-{split}' if has_eval_split else (
        output_tfrecord_path)


def parse_shard_name(path: str) -> Optional[Dict[str, Any]]:
    """`P-train-00001-of-00004` -> {prefix: P, split: 'train', index: 1,
    count: 4}; split is None without an eval split; None if not a shard."""
    m = _SHARD_RE.match(path)
    if not m:
        return None
    return {'prefix': m['prefix'], 'split': m['split'],
            'index': int(m['index']), 'count': int(m['count'])}


def _dirname(path: str) -> str:
    return posixpath.dirname(path) if '://' in path else os.path.dirname(path)


def _join(directory: str, name: str) -> str:
    if not directory:
        return name
    return (posixpath.join(directory, name) if '://' in directory
            else os.path.join(directory, name))


def resolve(metadata_file: str, relative: str) -> str:
    """A path stored relative to the metadata file's folder, made absolute."""
    return _join(_dirname(metadata_file), relative)


# ------------------------------------------------------------------ lengths
def feature_lengths(sample_rate: int, frame_rate: int, example_secs: float,
                    center: bool) -> Optional[Dict[str, int]]:
    """Length of each feature of one example; None for whole-chunk examples.

    Frames follow `spectral_ops.get_framed_lengths` on the 16 kHz audio:
    'same' padding gives example_secs * frame_rate frames, 'center' one more.
    """
    if not example_secs:
        return None
    lengths = {'audio': n_samples(example_secs, sample_rate, 'example_secs'),
               'audio_16k': n_samples(example_secs, CREPE_SAMPLE_RATE,
                                      'example_secs')}
    if frame_rate:
        from ddsp import spectral_ops
        n_frames = spectral_ops.get_framed_lengths(
            lengths['audio_16k'], spectral_ops.CREPE_FRAME_SIZE,
            Fraction(CREPE_SAMPLE_RATE) / exact(frame_rate),
            'center' if center else 'same')[0]
        lengths.update(f0_hz=int(n_frames), f0_confidence=int(n_frames),
                       loudness_db=int(n_frames))
    return lengths


def compute_features(audio_16k: np.ndarray, frame_rate: float,
                     model_capacity: str = 'full',
                     crepe_frame_rate: Optional[float] = None,
                     viterbi: bool = True, padding: str = 'same'
                     ) -> Dict[str, np.ndarray]:
    """The frame features of the dataset: CREPE f0 and confidence
    (`spectral_ops.compute_f0`) and loudness of LOUDNESS_DEFINITION
    (`spectral_ops.compute_loudness`, numpy path) of 16 kHz audio, hop
    16000 / frame_rate, NaN set to 0.

    The one implementation behind the data preparation pipeline and timbre
    transfer, so that a model is conditioned on the features it was trained
    on. Lives here because the pipeline module imports apache_beam.

    Args:
        audio_16k: float32 `[n_samples]` at 16 kHz.
        frame_rate: Feature frames per second.
        model_capacity: CREPE size, 'tiny' ... 'full'.
        crepe_frame_rate: Run CREPE at this rate and interpolate (None: at
            frame_rate).
        viterbi: CREPE Viterbi smoothing.
        padding: 'same' or 'center' framing (`spectral_ops`).

    Returns:
        float32 'f0_hz', 'f0_confidence', 'loudness_db' `[n_frames]`.
    """
    from ddsp import spectral_ops
    n_frames = spectral_ops.get_framed_lengths(
        len(audio_16k), spectral_ops.CREPE_FRAME_SIZE,
        Fraction(CREPE_SAMPLE_RATE) / exact(frame_rate), padding)[0]
    f0_hz, f0_confidence = spectral_ops.compute_f0(
        audio_16k, frame_rate, viterbi=viterbi, padding=padding,
        model_capacity=model_capacity, crepe_frame_rate=crepe_frame_rate)
    loudness_db = spectral_ops.compute_loudness(
        audio_16k, CREPE_SAMPLE_RATE, frame_rate,
        n_fft=LOUDNESS_DEFINITION['n_fft'],
        range_db=LOUDNESS_DEFINITION['range_db'],
        ref_db=LOUDNESS_DEFINITION['ref_db'], use_tf=False, padding=padding)
    features = {}
    for key, value in (('f0_hz', f0_hz), ('f0_confidence', f0_confidence),
                       ('loudness_db', loudness_db)):
        value = np.nan_to_num(np.asarray(value, np.float32))
        features[key] = np.asarray(
            spectral_ops.pad_or_trim_to_expected_length(value, n_frames),
            np.float32)
    return features


def exact(x: float) -> Fraction:
    """A rate or duration as an exact fraction (0.1 s -> 1/10)."""
    return Fraction(str(x)) if isinstance(x, float) else Fraction(x)


def n_samples(secs: float, rate: float, what: str = 'duration') -> int:
    """secs * rate as an int; ValueError unless it is a whole number."""
    n = exact(secs) * exact(rate)
    if n.denominator != 1:
        raise ValueError(f'{what} of {secs} s is not a whole number of '
                         f'samples/frames at {rate} Hz ({float(n)}).')
    return int(n)


# --------------------------------------------------------------------- JSON
def write_file(path: str, data) -> str:
    """Writes bytes or text to `path` (any tf.io.gfile path), creating its
    parent directories. Returns path."""
    import tensorflow as tf
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(path, 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)
    return path


def write_json_atomic(path: str, obj: Any) -> None:
    """Writes JSON to a temporary name beside `path`, then renames it."""
    import tensorflow as tf
    tmp = f'{path}.tmp-{uuid.uuid4().hex[:8]}'
    with tf.io.gfile.GFile(tmp, 'w') as f:
        f.write(json.dumps(obj, indent=1, sort_keys=False, allow_nan=False))
        f.write('\n')
    tf.io.gfile.rename(tmp, path, overwrite=True)


def read_json(path: str) -> Any:
    import tensorflow as tf
    with tf.io.gfile.GFile(path, 'r') as f:
        return json.loads(f.read())


def read_metadata(path: str) -> Dict[str, Any]:
    """Reads and checks a dataset metadata JSON; ValueError naming the file."""
    try:
        meta = read_json(path)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON ({e})') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        raise ValueError(f'{path}: not a {FORMAT} metadata file')
    if meta.get('format_version', 0) > FORMAT_VERSION:
        raise ValueError(
            f'{path}: format_version {meta["format_version"]} is newer than '
            f'this ddsp reads ({FORMAT_VERSION}); update ddsp')
    missing = [k for k in ('sample_rate', 'frame_rate', 'example_secs',
                           'center', 'feature_lengths', 'features', 'splits')
               if k not in meta]
    if missing:
        raise ValueError(f'{path}: metadata lacks {missing}')
    return meta


def metadata_for_shard(shard_path: str) -> Optional[str]:
    """The metadata path that belongs to a shard, or None if not a shard."""
    parsed = parse_shard_name(shard_path)
    return metadata_path(parsed['prefix']) if parsed else None


# --------------------------------------------------------------- statistics
class _Moments:
    """Count, sum, sum of squares, min, max and per-chunk max/min sums of the
    selected frames: mergeable, bounded memory."""

    def __init__(self):
        self.n = 0
        self.total = self.total_sq = 0.0
        self.min, self.max = np.inf, -np.inf
        self.n_chunks, self.sum_max, self.sum_min = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64)
        x = x[np.isfinite(x)]
        if not len(x):
            return
        self.n += len(x)
        self.total += float(np.sum(x))
        self.total_sq += float(np.sum(x * x))
        self.min, self.max = min(self.min, x.min()), max(self.max, x.max())
        self.n_chunks += 1
        self.sum_max += float(x.max())
        self.sum_min += float(x.min())

    def merge(self, other: '_Moments') -> None:
        for k in ('n', 'total', 'total_sq', 'n_chunks', 'sum_max', 'sum_min'):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    def stats(self, suffix: str) -> Dict[str, Optional[float]]:
        """The postprocessing schema's six numbers (None when empty)."""
        names = ('mean', 'max', 'min', 'mean_max', 'mean_min', 'std')
        if not self.n:
            return dict.fromkeys(f'{k}_{suffix}' for k in names)
        mean = self.total / self.n
        std = float(np.sqrt(max(self.total_sq / self.n - mean * mean, 0.0)))
        values = (mean, self.max, self.min, self.sum_max / self.n_chunks,
                  self.sum_min / self.n_chunks, std)
        return {f'{k}_{suffix}': float(v) for k, v in zip(names, values)}


class FeatureStatistics:
    """Dataset statistics of chunks' features, mergeable (a Beam CombineFn's
    accumulator), in the schema of `postprocessing.dataset_statistics_from_
    arrays` (module docstring of `ddsp.training.postprocessing`).

    Differences, because the pipeline sees 20 s chunks instead of examples:
    note-on frames are detected per chunk (`postprocessing.detect_notes`),
    'mean_max'/'mean_min' average over chunks, 'n_examples' counts chunks,
    and the note-on loudness quantiles come from a 0.01 dB histogram (exact
    to 0.005 dB, bounded memory whatever the dataset size).
    """
    FEATURES = ('pitch', 'power', 'loudness')
    TRIM_END = 20  # Frames dropped at the end of each chunk, as postprocessing.
    N_QUANTILES = 1000
    _LO_DB, _STEP_DB, _N_BINS = -120.0, 0.01, 16000

    def __init__(self):
        self.moments = {k + s: _Moments() for k in self.FEATURES
                        for s in ('', '_note')}
        self.note_counts = np.zeros(self._N_BINS, np.int64)
        self.n_chunks = 0
        self.n_frames = 0

    def add(self, f0_hz, f0_confidence, loudness_db, power_db) -> None:
        from ddsp import core
        from ddsp.training import postprocessing
        n = len(loudness_db)
        keep = slice(0, max(n - self.TRIM_END, 1) if n > 1 else n)
        f0_hz = np.asarray(f0_hz, np.float32)[keep]
        loudness_db = np.asarray(loudness_db, np.float32)[keep]
        mask, _ = postprocessing.detect_notes(
            loudness_db, np.asarray(f0_confidence, np.float32)[keep])
        pitch = np.where(f0_hz > 0, core.hz_to_midi(f0_hz).numpy(), np.nan)
        values = {'pitch': pitch, 'loudness': loudness_db,
                  'power': np.asarray(power_db, np.float32)[keep]}
        for k, v in values.items():
            self.moments[k].add(v)
            self.moments[k + '_note'].add(v[mask])
        idx = np.clip(((loudness_db[mask] - self._LO_DB) / self._STEP_DB
                       ).astype(np.int64), 0, self._N_BINS - 1)
        self.note_counts += np.bincount(idx, minlength=self._N_BINS)
        self.n_chunks += 1
        self.n_frames += len(loudness_db)

    def merge(self, other: 'FeatureStatistics') -> 'FeatureStatistics':
        for k, m in self.moments.items():
            m.merge(other.moments[k])
        self.note_counts += other.note_counts
        self.n_chunks += other.n_chunks
        self.n_frames += other.n_frames
        return self

    def note_loudness_quantiles(self) -> Optional[np.ndarray]:
        """N_QUANTILES quantiles (probabilities linspace(0, 1)) of note-on
        loudness; None without note-on frames."""
        m = self.moments['loudness_note']
        if not m.n:
            return None
        cdf = np.cumsum(self.note_counts) / m.n
        edges = self._LO_DB + self._STEP_DB * np.arange(self._N_BINS + 1)
        refs = np.linspace(0.0, 1.0, self.N_QUANTILES)
        q = np.interp(refs, np.concatenate([[0.0], cdf]), edges)
        return np.maximum.accumulate(np.clip(q, m.min, m.max))

    def to_json(self, frame_rate: float,
                sample_rate: Optional[float] = None) -> Dict[str, Any]:
        from ddsp.training import postprocessing
        out: Dict[str, Any] = {}
        for note in ('', '_note'):
            for k in self.FEATURES:
                out.update(self.moments[k + note].stats(k + note))
        q = self.note_loudness_quantiles()
        out['quantile_transform'] = None if q is None else (
            postprocessing.QuantileTransformer.from_dict({
                'quantiles': q.tolist(),
                'references': np.linspace(0, 1, len(q)).tolist(),
            }).to_dict())
        out.update({
            'n_examples': self.n_chunks,
            'n_frames': self.n_frames,
            'n_note_frames': self.moments['loudness_note'].n,
            'trim_end': self.TRIM_END,
            'frame_rate': float(frame_rate),
            'sample_rate': None if sample_rate is None else float(sample_rate),
            'format': postprocessing.STATS_FORMAT,
            'version': postprocessing.STATS_VERSION,
            'split': 'train',
            'examples_are': 'chunks of the data preparation pipeline',
            'power_frame_size': POWER_FRAME_SIZE,
            'loudness_definition_version': LOUDNESS_DEFINITION['version'],
        })
        return out


# Frame size of the power feature in the statistics (16 kHz samples), as
# magenta/ddsp's compute_dataset_statistics.
POWER_FRAME_SIZE = 1024
