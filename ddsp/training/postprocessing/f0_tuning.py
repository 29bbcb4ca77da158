"""Tuning and the timbre-transfer "automatic adjustments".

Tuning (`get_tuning_factor`, `auto_tune`) and the adjustments shared by the
CLI and the notebook (`shift_f0_to_register`, `normalize_loudness`,
`adjust_features`).
"""
import logging
import math
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ddsp import spectral_ops
from ddsp.training.postprocessing.dataset_statistics import _QUANTILE_KEYS
from ddsp.training.postprocessing.notes import ArrayLike
from ddsp.training.postprocessing.notes import QuantileTransformer
from ddsp.training.postprocessing.notes import _as_quantile_transformer
from ddsp.training.postprocessing.notes import _bool_array
from ddsp.training.postprocessing.notes import _check_same_shape
from ddsp.training.postprocessing.notes import _float_array
from ddsp.training.postprocessing.notes import _hz_to_midi
from ddsp.training.postprocessing.notes import _midi_to_hz
from ddsp.training.postprocessing.notes import detect_notes
from ddsp.training.postprocessing.notes import fit_quantile_transform


MAX_MIDI = 110.0  # Shifted f0 is clipped to this pitch (as the notebook).
KEY_NAMES = ('C', 'Db', 'D', 'Eb', 'E', 'F', 'Gb', 'G', 'Ab', 'A', 'Bb', 'B')
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)  # Semitones above the root.
CHROMATIC_SCALE = tuple(range(12))


# Tuning -----------------------------------------------------------------------------
def _nearest_deviation(f0_midi: np.ndarray, offset, degrees) -> np.ndarray:
    """Signed deviation of f0_midi from the nearest pitch of the scale
    {offset + d + 12 k : d in degrees, k integer} (semitones)."""
    degrees = np.asarray(tuple(degrees) + (degrees[0] + 12,), np.float64)
    pitch_class = np.mod(np.asarray(f0_midi, np.float64) - offset, 12.0)
    candidates = pitch_class[..., None] - degrees
    nearest = np.argmin(np.abs(candidates), axis=-1)
    return np.take_along_axis(candidates, nearest[..., None], axis=-1)[..., 0]


def _zscore(x: np.ndarray) -> np.ndarray:
    std = np.std(x)
    return (x - np.mean(x)) / std if std > 0 else np.zeros_like(x)


def get_tuning_factor(f0_midi: ArrayLike, f0_confidence: ArrayLike,
                      mask_on: ArrayLike) -> float:
    """Global tuning offset of a performance, in semitones.

    Of 101 candidate offsets c in [-0.5, 0.5] (1-cent steps), picks the one
    whose chromatic grid {c + k} fits the note-on frames best: the sum of the
    z-scores (over candidates) of (a) the confidence-weighted mean absolute
    deviation from the nearest grid pitch and (b) the confidence-weighted
    rate of changes of that nearest pitch between consecutive note-on frames
    (penalises grids that split a held note).

    Args:
        f0_midi, f0_confidence: `[n_frames]` (or any shape).
        mask_on: bool, same shape.

    Returns:
        Offset in semitones (x100 for cents); 0.0 without note-on frames.
    """
    f0_midi = _float_array(f0_midi, 'f0_midi')
    f0_confidence = _float_array(f0_confidence, 'f0_confidence')
    _check_same_shape(f0_midi, 'f0_midi', f0_confidence=f0_confidence)
    mask_on = _bool_array(mask_on, 'mask_on', f0_midi.shape)
    f0 = f0_midi[mask_on].astype(np.float64)
    weights = f0_confidence[mask_on].astype(np.float64)[:, None]
    if f0.size == 0:
        return 0.0
    candidates = np.linspace(-0.5, 0.5, 101)
    deviation = _nearest_deviation(f0[:, None], candidates[None, :],
                                   CHROMATIC_SCALE)
    cost_deviation = np.mean(weights * np.abs(deviation), axis=0)
    nearest = np.round(f0[:, None] - deviation, 6)
    changes = (np.diff(nearest, axis=0) != 0).astype(np.float64)
    cost_changes = (np.mean(weights[:-1] * changes, axis=0) if len(f0) > 1
                    else np.zeros_like(candidates))
    cost = _zscore(cost_deviation) + _zscore(cost_changes)
    return float(candidates[np.argmin(cost)])


def infer_key(f0_midi: ArrayLike, tuning_factor: float,
              mask_on: ArrayLike) -> int:
    """Root (0 = C ... 11 = B, see KEY_NAMES) of the major scale, tuned by
    tuning_factor, closest on average to the note-on frames (0 without
    note-on frames)."""
    f0_midi = _float_array(f0_midi, 'f0_midi')
    mask_on = _bool_array(mask_on, 'mask_on', f0_midi.shape)
    f0 = f0_midi[mask_on]
    if f0.size == 0:
        return 0
    roots = np.arange(12)
    deviation = _nearest_deviation(f0[:, None], tuning_factor + roots[None, :],
                                   MAJOR_SCALE)
    return int(np.argmin(np.mean(np.abs(deviation), axis=0)))


def auto_tune(f0_midi: ArrayLike, tuning_factor: float, mask_on: ArrayLike,
              amount: float = 0.0, chromatic: bool = False) -> np.ndarray:
    """Pulls f0 toward the nearest pitch of a tuned scale.

    The scale is the chromatic grid {tuning_factor + k} or (default) the
    major scale of the key inferred from the note-on frames (`infer_key`),
    shifted by tuning_factor. Every frame moves by `amount` times its
    deviation from the nearest scale pitch (amount=1 snaps to the scale).
    (magenta/ddsp ignored tuning_factor for the major scale.)

    Args:
        f0_midi: `[n_frames]` (or any shape) in MIDI.
        tuning_factor: Offset in semitones (`get_tuning_factor`).
        mask_on: bool, same shape (frames used to infer the key).
        amount: In [0, 1].
        chromatic: Chromatic grid instead of the inferred major scale.

    Returns:
        float32 f0 in MIDI, same shape.
    """
    f0_midi = _float_array(f0_midi, 'f0_midi')
    mask_on = _bool_array(mask_on, 'mask_on', f0_midi.shape)
    if chromatic:
        offset, degrees = tuning_factor, CHROMATIC_SCALE
    else:
        root = infer_key(f0_midi, tuning_factor, mask_on)
        offset, degrees = tuning_factor + root, MAJOR_SCALE
        logging.info('Auto-tune: inferred key %s major, tuning offset %d '
                     'cents.', KEY_NAMES[root], round(100 * tuning_factor))
    deviation = _nearest_deviation(f0_midi, offset, degrees)
    return (f0_midi - amount * deviation).astype(np.float32)


# Timbre-transfer adjustments ----------------------------------------------------------
def shift_f0(f0_hz: ArrayLike, octaves: float = 0.0,
             max_midi: float = MAX_MIDI) -> np.ndarray:
    """f0 * 2**octaves, clipped to [0, midi_to_hz(max_midi)]. float32."""
    f0_hz = _float_array(f0_hz, 'f0_hz')
    f0_max = float(_midi_to_hz(max_midi))
    return np.clip(f0_hz * 2.0**octaves, 0.0, f0_max).astype(np.float32)


def shift_f0_to_register(f0_hz: ArrayLike, mean_pitch_target: float,
                         mask_on: Optional[ArrayLike] = None,
                         max_midi: float = MAX_MIDI
                         ) -> Tuple[np.ndarray, int]:
    """Shifts f0 by whole octaves toward a target mean pitch.

    The shift is the number of octaves between the mean MIDI pitch of the
    voiced (f0 > 0) note-on frames and `mean_pitch_target` (e.g. the
    dataset's 'mean_pitch'), rounded to the nearest integer (halves round
    up). (The magenta/ddsp notebook used floor above 1.5 octaves and ceil
    below, e.g. +1.2 -> +2.)

    Args:
        f0_hz: `[n_frames]` (or any shape).
        mean_pitch_target: MIDI pitch.
        mask_on: Optional bool mask of the frames that count (all if None).
        max_midi: Ceiling of the shifted f0 (`shift_f0`).

    Returns:
        (shifted f0_hz float32, octaves int). Without voiced frames: (f0, 0).
    """
    f0_hz = _float_array(f0_hz, 'f0_hz')
    voiced = f0_hz > 0
    if mask_on is not None:
        voiced &= _bool_array(mask_on, 'mask_on', f0_hz.shape)
    if not voiced.any():
        return f0_hz.copy(), 0
    mean_pitch = float(np.mean(_hz_to_midi(f0_hz[voiced])))
    octaves = int(math.floor((mean_pitch_target - mean_pitch) / 12.0 + 0.5))
    return shift_f0(f0_hz, octaves, max_midi), octaves


def dataset_quantile_transform(dataset_stats) -> QuantileTransformer:
    """The note-on loudness quantile transform of a dataset.

    Args:
      dataset_stats: A statistics dict from `compute_dataset_statistics` (or
        its JSON), or a fitted `QuantileTransformer` (returned as it is).

    Returns:
      The fitted transformer of the dataset's note-on loudness.
    """
    if isinstance(dataset_stats, QuantileTransformer):
        return dataset_stats
    if not isinstance(dataset_stats, dict):
        raise ValueError('dataset_stats must be a statistics dict, got '
                         f'{type(dataset_stats).__name__}.')
    for key in _QUANTILE_KEYS:
        if dataset_stats.get(key) is not None:
            qt = _as_quantile_transformer(dataset_stats[key],
                                          f'dataset_stats[{key!r}]')
            if qt.quantiles_ is not None:
                return qt
    raise ValueError('dataset_stats has no note-on loudness quantiles (keys '
                     f'{_QUANTILE_KEYS}; none when no note-on frames were '
                     'found in the dataset).')


def normalize_loudness(loudness_db: ArrayLike, mask_on: ArrayLike,
                       dataset_stats, quiet: float = 20.0,
                       note_on_ratio: Optional[ArrayLike] = None,
                       min_db: float = -spectral_ops.DB_RANGE) -> np.ndarray:
    """Quantile-normalises note-on loudness into the dataset's distribution
    and attenuates note-off frames.

    Note-on frames: their quantiles within this recording are mapped onto the
    dataset's note-on loudness distribution (`fit_quantile_transform`).
    Note-off frames: lowered by quiet * (1 - clip(note_on_ratio, 0, 1)) dB
    (by `quiet` dB when note_on_ratio is None). The result is floored at
    min_db (the loudness floor the model saw in training).

    Args:
        loudness_db: `[n_frames]` (or any shape).
        mask_on: bool, same shape (`detect_notes`).
        dataset_stats: Statistics dict (with 'quantile_transform'), or a
            QuantileTransformer.
        quiet: Attenuation of note-off frames in dB (>= 0).
        note_on_ratio: Optional, same shape (`detect_notes`).
        min_db: Floor in dB.

    Returns:
        float32 loudness, same shape as loudness_db.
    """
    loudness_db = _float_array(loudness_db, 'loudness_db')
    mask_on = _bool_array(mask_on, 'mask_on', loudness_db.shape)
    if quiet < 0:
        raise ValueError(f'quiet must be >= 0 dB, got {quiet}.')
    target = dataset_quantile_transform(dataset_stats)
    if mask_on.any():
        _, loudness_norm = fit_quantile_transform(loudness_db, mask_on,
                                                  inv_quantile=target)
        loudness_norm = loudness_norm[..., 0]
    else:
        loudness_norm = loudness_db.copy()
    attenuation = np.full(loudness_db.shape, float(quiet), np.float32)
    if note_on_ratio is not None:
        note_on_ratio = _float_array(note_on_ratio, 'note_on_ratio')
        _check_same_shape(loudness_db, 'loudness_db',
                          note_on_ratio=note_on_ratio)
        attenuation *= 1.0 - np.clip(note_on_ratio, 0.0, 1.0)
    loudness_norm = np.where(mask_on, loudness_norm,
                             loudness_norm - attenuation)
    return np.maximum(loudness_norm, min_db).astype(np.float32)


def adjust_features(f0_hz: ArrayLike, f0_confidence: ArrayLike,
                    loudness_db: ArrayLike,
                    dataset_stats: Optional[Dict[str, Any]] = None,
                    adjust: bool = True, threshold: float = 1.0,
                    quiet: float = 20.0, autotune: float = 0.0,
                    pitch_shift: float = 0.0, loudness_shift: float = 0.0
                    ) -> Dict[str, Any]:
    """The timbre-transfer conditioning edits (notebook controls, section 3.2).

    With `adjust` and dataset statistics: detect notes (`threshold`), shift f0
    by whole octaves toward the dataset's mean note-on pitch
    ('mean_pitch_note', else 'mean_pitch'), quantile-normalise
    note-on loudness and attenuate note-off frames by up to `quiet` dB, and,
    if autotune > 0, pull voiced f0 toward the inferred key. Then the manual
    edits: f0 * 2**pitch_shift (clipped to MIDI 110) and loudness +
    loudness_shift dB.

    Args:
        f0_hz, f0_confidence, loudness_db: `[n_frames]` on the same frames.
        dataset_stats: Statistics dict (`load_dataset_statistics`) or None
            (only the manual edits are applied).
        adjust: Apply the automatic adjustments.
        threshold: `detect_notes` note_threshold.
        quiet: dB of attenuation of note-off frames.
        autotune: Auto-tune amount in [0, 1].
        pitch_shift: Octaves.
        loudness_shift: dB.

    Returns:
        Dict with 'f0_hz', 'loudness_db' (float32, adjusted), 'mask_on',
        'note_on_ratio' (from `detect_notes`), 'octave_shift' (int, automatic
        part) and 'tuning_factor' (semitones, None without auto-tune).
    """
    f0_hz = _float_array(f0_hz, 'f0_hz')
    f0_confidence = _float_array(f0_confidence, 'f0_confidence')
    loudness_db = _float_array(loudness_db, 'loudness_db')
    _check_same_shape(f0_hz, 'f0_hz', f0_confidence=f0_confidence,
                      loudness_db=loudness_db)
    mask_on, note_on_ratio = detect_notes(loudness_db, f0_confidence,
                                          note_threshold=threshold)
    octaves, tuning_factor = 0, None
    if adjust and dataset_stats is None:
        logging.warning('No dataset statistics: skipping the automatic '
                        'adjustments.')
    if adjust and dataset_stats is not None:
        # Note-on frames on both sides (the notebook used 'mean_pitch').
        mean_pitch = dataset_stats.get('mean_pitch_note')
        if mean_pitch is None:
            mean_pitch = dataset_stats.get('mean_pitch')
        if mean_pitch is not None:
            f0_hz, octaves = shift_f0_to_register(f0_hz, mean_pitch, mask_on)
        loudness_db = normalize_loudness(loudness_db, mask_on, dataset_stats,
                                         quiet=quiet,
                                         note_on_ratio=note_on_ratio)
        if autotune > 0:
            voiced = f0_hz > 0
            f0_midi = _hz_to_midi(f0_hz)
            tuning_factor = get_tuning_factor(f0_midi, f0_confidence, mask_on)
            tuned = auto_tune(f0_midi, tuning_factor, mask_on, amount=autotune)
            f0_hz = np.where(voiced, _midi_to_hz(tuned), 0.0)
    return {
        'f0_hz': shift_f0(f0_hz, pitch_shift),
        'loudness_db': (loudness_db + loudness_shift).astype(np.float32),
        'mask_on': mask_on,
        'note_on_ratio': note_on_ratio,
        'octave_shift': octaves,
        'tuning_factor': tuning_factor,
    }
