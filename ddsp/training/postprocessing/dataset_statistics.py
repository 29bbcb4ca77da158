"""Dataset statistics of f0 / loudness features, stored as JSON.

`compute_dataset_statistics` for a data provider,
`dataset_statistics_from_arrays` for plain arrays, stored with
`save_dataset_statistics` / `load_dataset_statistics`.

Dataset statistics JSON schema (`STATS_FORMAT`, version `STATS_VERSION`)
------------------------------------------------------------------------
A flat JSON object. For each feature in ('pitch', 'loudness', 'power') and its
note-on version ('pitch_note', 'loudness_note', 'power_note'), six numbers
(null when undefined, e.g. no note-on frames, or no power feature):

    mean_<f>, max_<f>, min_<f>, std_<f>: over all (note-on) frames;
    mean_max_<f>, mean_min_<f>: mean over examples of the per-example
        max / min (examples without note-on frames are skipped).

'pitch' is MIDI over voiced frames (f0 > 0; magenta/ddsp counted unvoiced
frames as MIDI 0), 'loudness' and 'power' are dB. Keys are those of
magenta/ddsp (e.g. 'mean_pitch', 'mean_loudness_note'). Further keys:

    'quantile_transform': `QuantileTransformer.to_dict()` fitted on the
        note-on loudness (null if no frame was detected as note-on);
    'n_examples', 'n_frames', 'n_note_frames': counts after trimming;
    'trim_end': frames dropped from the end of every example;
    'frame_rate', 'sample_rate': of the features (null when unknown);
    'format', 'version': `STATS_FORMAT`, `STATS_VERSION`.

Readers (`normalize_loudness`, `adjust_features`, `load_dataset_statistics`)
also accept the quantiles under 'loudness_note_quantiles' as
{'references': [...], 'quantiles': [...]} (flat lists).
"""
import json
import logging
import math
import numbers
from fractions import Fraction
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from ddsp import spectral_ops
from ddsp.training.postprocessing.notes import ArrayLike
from ddsp.training.postprocessing.notes import QuantileTransformer
from ddsp.training.postprocessing.notes import _check_same_shape
from ddsp.training.postprocessing.notes import _float_array
from ddsp.training.postprocessing.notes import _hz_to_midi
from ddsp.training.postprocessing.notes import detect_notes
from ddsp.training.postprocessing.notes import fit_quantile_transform


STATS_FORMAT = 'ddsp.dataset_statistics'
STATS_VERSION = 1
# File name that data preparation writes next to the TFRecords and that
# training / export / timbre transfer look for.
DATASET_STATISTICS_FILE = 'dataset_statistics.json'


# Statistics keys holding the note-on loudness quantiles: ours, then the
# data preparation's ({'references': [...], 'quantiles': [...]}).
_QUANTILE_KEYS = ('quantile_transform', 'loudness_note_quantiles')
_STAT_FEATURES = ('pitch', 'power', 'loudness')
_STAT_NAMES = ('mean', 'max', 'min', 'mean_max', 'mean_min', 'std')


# Dataset statistics -----------------------------------------------------------------
def infer_padding(n_frames: int, n_samples: int, sample_rate: float,
                  frame_rate: float, default: str = 'center') -> str:
    """Framing ('center' or 'same') that gives n_frames for n_samples.

    'center' gives floor(n / hop) + 1 frames, 'same' ceil(n / hop) (hop =
    sample_rate / frame_rate); when both give n_frames (n not a multiple of
    the hop) or neither does, `default` is returned.
    """
    hop = (Fraction(sample_rate).limit_denominator(1_000_000)
           / Fraction(frame_rate).limit_denominator(1_000_000))
    matches = [mode for mode in ('center', 'same')
               if spectral_ops.get_framed_lengths(n_samples, 1, hop, mode)[0]
               == n_frames]
    return matches[0] if len(matches) == 1 else default


def _as_examples(x, name: str) -> np.ndarray:
    x = _float_array(x, name)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f'{name} must be [n_frames] or [n_examples, '
                         f'n_frames], got shape {x.shape}.')
    return x


def _json_float(x) -> Optional[float]:
    x = float(x)
    return x if math.isfinite(x) else None


def _feature_stats(x: np.ndarray, mask: Optional[np.ndarray],
                   suffix: str) -> Dict[str, Optional[float]]:
    """mean/max/min/mean_max/mean_min/std of x [n_examples, n_frames], over
    the frames of `mask` (all frames if None); None where undefined."""
    if mask is None:
        mask = np.ones(x.shape, bool)
    stats = dict.fromkeys((f'{s}_{suffix}' for s in _STAT_NAMES))
    if not mask.any():
        return stats
    values = x[mask].astype(np.float64)
    has_any = mask.any(axis=-1)
    per_max = np.where(mask, x, -np.inf).max(axis=-1)[has_any]
    per_min = np.where(mask, x, np.inf).min(axis=-1)[has_any]
    stats.update({
        f'mean_{suffix}': _json_float(np.mean(values)),
        f'max_{suffix}': _json_float(np.max(values)),
        f'min_{suffix}': _json_float(np.min(values)),
        f'mean_max_{suffix}': _json_float(np.mean(per_max)),
        f'mean_min_{suffix}': _json_float(np.mean(per_min)),
        f'std_{suffix}': _json_float(np.std(values)),
    })
    return stats


def dataset_statistics_from_arrays(f0_hz: ArrayLike,
                                   f0_confidence: ArrayLike,
                                   loudness_db: ArrayLike,
                                   power_db: Optional[ArrayLike] = None,
                                   trim_end: int = 20,
                                   frame_rate: Optional[float] = None,
                                   sample_rate: Optional[float] = None
                                   ) -> Dict[str, Any]:
    """Dataset statistics (see the module docstring for the schema).

    Note-on frames are found with `detect_notes` (default settings) over the
    whole dataset; the quantile transform is fitted on their loudness.

    Args:
        f0_hz, f0_confidence, loudness_db: `[n_examples, n_frames]` (or
            `[n_frames]` for one example), on the same frames.
        power_db: Optional frame power in dB on the same frames (e.g.
            `spectral_ops.compute_power`); without it the power statistics
            are null.
        trim_end: Frames dropped from the end of every example (their
            features see the zero padding of the framing).
        frame_rate, sample_rate: Recorded in the result (metadata only).

    Returns:
        JSON-serialisable dict.
    """
    f0_hz = _as_examples(f0_hz, 'f0_hz')
    f0_confidence = _as_examples(f0_confidence, 'f0_confidence')
    loudness_db = _as_examples(loudness_db, 'loudness_db')
    arrays = {'f0_confidence': f0_confidence, 'loudness_db': loudness_db}
    if power_db is not None:
        power_db = _as_examples(power_db, 'power_db')
        arrays['power_db'] = power_db
    _check_same_shape(f0_hz, 'f0_hz', **arrays)
    trim_end = int(trim_end)
    n_frames = f0_hz.shape[1]
    if not 0 <= trim_end < n_frames:
        raise ValueError(f'trim_end must be in [0, n_frames={n_frames}), got '
                         f'{trim_end}.')
    keep = slice(0, n_frames - trim_end)
    f0_hz = f0_hz[:, keep]
    loudness = loudness_db[:, keep]
    mask_on, _ = detect_notes(loudness, f0_confidence[:, keep])
    # feature -> (values, frames that count); pitch only where voiced.
    voiced = f0_hz > 0
    features = {
        'pitch': (_hz_to_midi(f0_hz), voiced),
        'power': (None if power_db is None else power_db[:, keep], None),
        'loudness': (loudness, None),
    }
    stats: Dict[str, Any] = {}
    for note_on in (False, True):
        for name in _STAT_FEATURES:
            values, mask = features[name]
            key = name + ('_note' if note_on else '')
            if note_on:
                mask = mask_on if mask is None else mask & mask_on
            if values is None:
                stats.update(dict.fromkeys(f'{s}_{key}' for s in _STAT_NAMES))
            else:
                stats.update(_feature_stats(values, mask, key))
    if mask_on.any():
        quantile_transform, _ = fit_quantile_transform(loudness, mask_on)
        stats['quantile_transform'] = quantile_transform.to_dict()
    else:
        logging.warning('No note-on frames detected in the dataset: the '
                        'loudness quantile transform is not available.')
        stats['quantile_transform'] = None
    stats.update({
        'n_examples': int(loudness.shape[0]),
        'n_frames': int(loudness.size),
        'n_note_frames': int(mask_on.sum()),
        'trim_end': trim_end,
        'frame_rate': None if frame_rate is None else float(frame_rate),
        'sample_rate': None if sample_rate is None else float(sample_rate),
        'format': STATS_FORMAT,
        'version': STATS_VERSION,
    })
    return stats


def compute_dataset_statistics(data_provider, batch_size: int = 1,
                               power_frame_size: int = 1024,
                               power_frame_rate: Optional[float] = None,
                               trim_end: int = 20) -> Dict[str, Any]:
    """Statistics of a data provider's dataset (one pass, no shuffling).

    Reads 'f0_hz', 'f0_confidence', 'loudness_db' and the audio ('audio_16k'
    at 16 kHz if present, else 'audio' at the provider's sample rate), and
    computes frame power (`spectral_ops.compute_power`, frames of
    `power_frame_size` samples) on the same frames as the other features:
    the provider's frame rate and the framing ('center' / 'same') inferred
    from the feature length. (magenta/ddsp computed power at a fixed 50
    frames/s, which breaks on 250 frames/s datasets: issue #427.)

    Args:
        data_provider: Object with `get_batch(batch_size, shuffle, repeats,
            drop_remainder)`, `sample_rate` and `frame_rate`.
        batch_size: Examples per batch while reading.
        power_frame_size: Power frame size in samples (of the audio used).
        power_frame_rate: None (the provider's frame rate); any other value
            raises ValueError, since power must lie on the features' frames.
        trim_end: See `dataset_statistics_from_arrays`.

    Returns:
        JSON-serialisable dict (module docstring).
    """
    frame_rate = float(data_provider.frame_rate)
    if power_frame_rate is not None and not math.isclose(
            float(power_frame_rate), frame_rate):
        raise ValueError(
            f'power_frame_rate ({power_frame_rate}) must equal the data '
            f"provider's frame_rate ({frame_rate}) (or be None): power is "
            'masked with note-on frames found from loudness.')
    dataset = data_provider.get_batch(batch_size, shuffle=False, repeats=1,
                                      drop_remainder=False)
    columns = {'f0_hz': [], 'f0_confidence': [], 'loudness_db': [],
               'power_db': []}
    for batch in dataset:
        for key in ('f0_hz', 'f0_confidence', 'loudness_db'):
            columns[key].append(_as_examples(batch[key], key))
        if 'audio_16k' in batch:
            audio, rate = batch['audio_16k'], spectral_ops.CREPE_SAMPLE_RATE
        else:
            audio, rate = batch['audio'], data_provider.sample_rate
        audio = _as_examples(audio, 'audio')
        n_frames = columns['loudness_db'][-1].shape[-1]
        padding = infer_padding(n_frames, audio.shape[-1], rate, frame_rate)
        power = spectral_ops.compute_power(
            audio, sample_rate=rate, frame_rate=frame_rate,
            frame_size=power_frame_size, padding=padding)
        columns['power_db'].append(spectral_ops.pad_or_trim_to_expected_length(
            np.asarray(power), n_frames, pad_value=-spectral_ops.DB_RANGE))
    if not columns['f0_hz']:
        raise ValueError('The data provider yielded no examples.')
    arrays = {k: np.concatenate(v, axis=0) for k, v in columns.items()}
    logging.info('Computing dataset statistics of %d examples.',
                 len(arrays['f0_hz']))
    return dataset_statistics_from_arrays(
        trim_end=trim_end, frame_rate=frame_rate,
        sample_rate=float(data_provider.sample_rate), **arrays)


def _to_json(x):
    """Plain-Python copy of x for json (numpy scalars/arrays, transformers;
    non-finite floats -> None)."""
    if isinstance(x, QuantileTransformer):
        return x.to_dict()
    if isinstance(x, dict):
        return {str(k): _to_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_to_json(v) for v in x]
    if isinstance(x, (np.ndarray, tf.Tensor)):
        return _to_json(np.asarray(x).tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        return _json_float(x)
    return x


def save_dataset_statistics(stats: Dict[str, Any], path: str) -> str:
    """Writes statistics as JSON to `path` (any tf.io.gfile path; parent
    directories are created). Returns path."""
    if not isinstance(stats, dict):
        raise ValueError(f'stats must be a dict, got {type(stats).__name__}.')
    from ddsp.training.data_preparation import dataset_metadata as dm
    return dm.write_file(
        path, json.dumps(_to_json(stats), indent=1, allow_nan=False))


def load_dataset_statistics(path: str) -> Dict[str, Any]:
    """Reads statistics written by `save_dataset_statistics`.

    Raises:
        FileNotFoundError: If path does not exist.
        ValueError: For pickle files (magenta/ddsp's `dataset_statistics.pkl`:
            recompute them, pickle is not loaded) and non-statistics JSON.
    """
    if path.endswith(('.pkl', '.pickle')):
        raise ValueError(
            f'{path}: pickled statistics are not supported (unsafe and tied '
            'to library versions); recompute them with '
            'compute_dataset_statistics / dataset_statistics_from_arrays and '
            'save_dataset_statistics.')
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f'No dataset statistics file at {path}.')
    with tf.io.gfile.GFile(path, 'r') as f:
        text = f.read()
    try:
        stats = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path} is not a JSON file: {e}') from e
    if not isinstance(stats, dict) or not any(k in stats
                                              for k in _QUANTILE_KEYS):
        raise ValueError(f'{path} does not contain dataset statistics (a JSON '
                         f'object with one of the keys {_QUANTILE_KEYS}).')
    return stats
