"""Post-processing of f0 / loudness features (numpy in, numpy out).

* Note detection (`detect_notes`) from loudness and CREPE confidence.
* A quantile transform (`QuantileTransformer`, numpy only, JSON-serialisable)
  and `fit_quantile_transform`, which maps note-on loudness of one recording
  onto the note-on loudness distribution of a training set.
* Dataset statistics (`compute_dataset_statistics` for a data provider,
  `dataset_statistics_from_arrays` for plain arrays), stored as JSON with
  `save_dataset_statistics` / `load_dataset_statistics`.
* Tuning (`get_tuning_factor`, `auto_tune`) and the timbre-transfer
  "automatic adjustments" shared by the CLI and the notebook
  (`shift_f0_to_register`, `normalize_loudness`, `adjust_features`).

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
import os
from fractions import Fraction
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.special
import tensorflow as tf

from ddsp import core
from ddsp import spectral_ops

__all__ = [
    'STATS_FORMAT',
    'STATS_VERSION',
    'DATASET_STATISTICS_FILE',
    'MAX_MIDI',
    'KEY_NAMES',
    'MAJOR_SCALE',
    'CHROMATIC_SCALE',
    'smooth',
    'detect_notes',
    'QuantileTransformer',
    'fit_quantile_transform',
    'infer_padding',
    'dataset_statistics_from_arrays',
    'compute_dataset_statistics',
    'save_dataset_statistics',
    'load_dataset_statistics',
    'get_tuning_factor',
    'infer_key',
    'auto_tune',
    'shift_f0',
    'shift_f0_to_register',
    'normalize_loudness',
    'adjust_features',
]

STATS_FORMAT = 'ddsp.dataset_statistics'
STATS_VERSION = 1
# File name that data preparation writes next to the TFRecords and that
# training / export / timbre transfer look for.
DATASET_STATISTICS_FILE = 'dataset_statistics.json'
MAX_MIDI = 110.0  # Shifted f0 is clipped to this pitch (as the notebook).
KEY_NAMES = ('C', 'Db', 'D', 'Eb', 'E', 'F', 'Gb', 'G', 'Ab', 'A', 'Bb', 'B')
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)  # Semitones above the root.
CHROMATIC_SCALE = tuple(range(12))

# Statistics keys holding the note-on loudness quantiles: ours, then the
# data preparation's ({'references': [...], 'quantiles': [...]}).
_QUANTILE_KEYS = ('quantile_transform', 'loudness_note_quantiles')
_STAT_FEATURES = ('pitch', 'power', 'loudness')
_STAT_NAMES = ('mean', 'max', 'min', 'mean_max', 'mean_min', 'std')

ArrayLike = Union[np.ndarray, tf.Tensor, Sequence[float]]


# Helpers --------------------------------------------------------------------------
def _float_array(x, name: str, min_ndim: int = 1) -> np.ndarray:
    """float32 numpy array of x (tensors too); ValueError if empty/low rank."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < min_ndim or x.size == 0:
        raise ValueError(f'{name} must be a non-empty array with at least '
                         f'{min_ndim} dimension(s), got shape {x.shape}.')
    return x


def _bool_array(x, name: str, shape: Tuple[int, ...]) -> np.ndarray:
    x = np.asarray(x)
    if x.shape != shape:
        raise ValueError(f'{name} must have shape {shape}, got {x.shape}.')
    return x.astype(bool)


def _check_same_shape(reference: np.ndarray, reference_name: str,
                      **arrays: np.ndarray):
    for name, x in arrays.items():
        if x.shape != reference.shape:
            raise ValueError(f'{name} must have the shape of {reference_name} '
                             f'{reference.shape}, got {x.shape}.')


def _hz_to_midi(f0_hz: np.ndarray) -> np.ndarray:
    """MIDI of f0 (0 Hz -> MIDI 0, as ddsp.core.hz_to_midi), float32."""
    return np.asarray(core.hz_to_midi(f0_hz), dtype=np.float32)


def _midi_to_hz(midi: np.ndarray) -> np.ndarray:
    return np.asarray(core.midi_to_hz(midi), dtype=np.float32)


# Note detection ---------------------------------------------------------------------
def smooth(x: ArrayLike, filter_size: int = 3) -> np.ndarray:
    """Moving average (box filter) along the last axis, zero padded.

    Equals `np.convolve(row, np.ones(filter_size) / filter_size, 'same')` for
    every row: output[i] averages x[i - filter_size // 2] ...
    x[i + (filter_size - 1) // 2], with zeros outside the signal.

    Args:
        x: `[..., n_frames]`.
        filter_size: Width of the box in frames (positive integer).

    Returns:
        float32 array, same shape as x.
    """
    if (isinstance(filter_size, bool)
            or not isinstance(filter_size, numbers.Integral)
            or filter_size < 1):
        raise ValueError(
            f'filter_size must be a positive integer, got {filter_size!r}.')
    x = _float_array(x, 'x')
    k = int(filter_size)
    widths = [(0, 0)] * (x.ndim - 1) + [(k // 2, (k - 1) // 2)]
    padded = np.pad(x.astype(np.float64), widths)
    # Window sums from a cumulative sum (with a leading 0): O(n) for any k.
    csum = np.cumsum(padded, axis=-1)
    csum = np.concatenate([np.zeros_like(csum[..., :1]), csum], axis=-1)
    return ((csum[..., k:] - csum[..., :-k]) / k).astype(np.float32)


def detect_notes(loudness_db: ArrayLike, f0_confidence: ArrayLike,
                 note_threshold: float = 1.0, exponent: float = 2.0,
                 smoothing: int = 40, f0_confidence_threshold: float = 0.7,
                 min_db: float = -spectral_ops.DB_RANGE
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Detects note-on frames from loudness and f0 confidence.

    The note-on ratio is

        smooth(confidence**exponent, smoothing) * (loudness_db - min_db)
        / ((mean(loudness_db) - min_db) * f0_confidence_threshold**exponent)

    i.e. confidence-weighted loudness above the floor, relative to that of a
    frame at the mean loudness with confidence `f0_confidence_threshold`
    (the mean is over all frames given). Frames with ratio >= note_threshold
    are note-on. All-silent input (mean at the floor) gives ratio 0.

    Args:
        loudness_db: `[n_frames]` or `[batch, n_frames]`.
        f0_confidence: Same shape, in [0, 1].
        note_threshold: Ratio threshold (the notebook's "threshold" slider).
        exponent: Power applied to the confidence.
        smoothing: Box filter width (frames) applied to the confidence.
        f0_confidence_threshold: Confidence of a "just note-on" frame.
        min_db: Loudness floor in dB.

    Returns:
        mask_on: bool, same shape. note_on_ratio: float32, same shape.
    """
    loudness_db = _float_array(loudness_db, 'loudness_db')
    f0_confidence = _float_array(f0_confidence, 'f0_confidence')
    _check_same_shape(loudness_db, 'loudness_db', f0_confidence=f0_confidence)
    weighted = (smooth(f0_confidence**exponent, smoothing)
                * (loudness_db - min_db))
    reference = ((float(np.mean(loudness_db)) - min_db)
                 * f0_confidence_threshold**exponent)
    if reference > 0:
        note_on_ratio = (weighted / reference).astype(np.float32)
    else:
        note_on_ratio = np.zeros_like(weighted)
    return note_on_ratio >= note_threshold, note_on_ratio


# Quantile transform -----------------------------------------------------------------
class QuantileTransformer:
    """Maps each feature through its empirical CDF onto a uniform or normal
    distribution (numpy only; API and results as scikit-learn's
    `QuantileTransformer` with dense inputs and no NaNs).

    `fit` stores `n_quantiles_ = min(n_quantiles, n_samples)` quantiles of each
    feature at equally spaced probabilities `references_` (on a random
    subsample of at most `subsample` rows). `transform` interpolates a value
    linearly between the quantiles to a probability (a value equal to a run
    of repeated quantiles maps to the middle of their probabilities; the
    fitted minimum and maximum map to 0 and 1; values outside are clipped),
    then to the output distribution. `inverse_transform` undoes it:
    inverse_transform(transform(x)) == x for x within the fitted range (up to
    float round-off).

    Args:
        n_quantiles: Number of quantiles (>= 1).
        output_distribution: 'uniform' or 'normal'.
        subsample: Maximum number of rows used to fit.
        random_state: Seed of the subsampling (None: not reproducible).

    Inputs are `[n_samples, n_features]` or `[n_samples]` (one feature; the
    output is then 1-D too).
    """

    # Normal output is clipped to ppf(BOUNDS_THRESHOLD) .. ppf(1 - ...).
    BOUNDS_THRESHOLD = 1e-7

    def __init__(self, n_quantiles: int = 1000,
                 output_distribution: str = 'uniform',
                 subsample: int = int(1e5), random_state: Optional[int] = 0):
        if (isinstance(n_quantiles, bool) or not isinstance(
                n_quantiles, numbers.Integral) or n_quantiles < 1):
            raise ValueError(
                f'n_quantiles must be a positive integer, got {n_quantiles!r}.')
        if output_distribution not in ('uniform', 'normal'):
            raise ValueError("output_distribution must be 'uniform' or "
                             f"'normal', got {output_distribution!r}.")
        if (isinstance(subsample, bool) or not float(subsample).is_integer()
                or subsample < 1):
            raise ValueError(
                f'subsample must be a positive integer, got {subsample!r}.')
        self.n_quantiles = int(n_quantiles)
        self.output_distribution = output_distribution
        self.subsample = int(subsample)
        self.random_state = random_state
        self.quantiles_: Optional[np.ndarray] = None  # [n_quantiles_, n_feat]
        self.references_: Optional[np.ndarray] = None  # [n_quantiles_]

    def __repr__(self) -> str:
        fitted = ('unfitted' if self.quantiles_ is None else
                  f'fitted: {self.quantiles_.shape[1]} feature(s), '
                  f'{self.quantiles_.shape[0]} quantiles')
        return (f'QuantileTransformer(n_quantiles={self.n_quantiles}, '
                f'output_distribution={self.output_distribution!r}, '
                f'subsample={self.subsample}) [{fitted}]')

    @property
    def n_quantiles_(self) -> int:
        self._check_fitted()
        return int(self.quantiles_.shape[0])

    @staticmethod
    def _as_2d(x, name: str = 'X') -> Tuple[np.ndarray, bool]:
        x = np.asarray(x)
        if x.ndim not in (1, 2) or x.size == 0:
            raise ValueError(f'{name} must be a non-empty [n_samples] or '
                             f'[n_samples, n_features] array, got shape '
                             f'{x.shape}.')
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise ValueError(f'{name} contains NaN or infinite values.')
        return (x[:, None], True) if x.ndim == 1 else (x, False)

    def _check_fitted(self):
        if self.quantiles_ is None:
            raise ValueError('This QuantileTransformer is not fitted yet: '
                             'call fit() first.')

    def fit(self, X) -> 'QuantileTransformer':
        """Computes the quantiles of each column of X. Returns self."""
        x, _ = self._as_2d(X)
        n_samples = x.shape[0]
        if n_samples > self.subsample:
            rng = np.random.default_rng(self.random_state)
            x = x[rng.choice(n_samples, self.subsample, replace=False)]
        n_quantiles = min(self.n_quantiles, x.shape[0])
        self.references_ = np.linspace(0.0, 1.0, n_quantiles)
        quantiles = np.percentile(x, 100.0 * self.references_, axis=0)
        # Percentile interpolation can be non-monotonic by round-off.
        self.quantiles_ = np.maximum.accumulate(quantiles, axis=0)
        return self

    def _transform(self, X, inverse: bool) -> np.ndarray:
        self._check_fitted()
        x, was_1d = self._as_2d(X)
        n_features = self.quantiles_.shape[1]
        if x.shape[1] != n_features:
            raise ValueError(f'X has {x.shape[1]} feature(s), the transformer '
                             f'was fitted on {n_features}.')
        out = np.empty_like(x)
        for j in range(n_features):
            column = self._inverse_column if inverse else self._forward_column
            out[:, j] = column(x[:, j], self.quantiles_[:, j])
        dtype = np.asarray(X).dtype
        if np.issubdtype(dtype, np.floating):
            out = out.astype(dtype)
        return out[:, 0] if was_1d else out

    def _forward_column(self, values: np.ndarray,
                        quantiles: np.ndarray) -> np.ndarray:
        refs = self.references_
        # Interpolating from the left and from the right and averaging maps a
        # value equal to several repeated quantiles to the middle of them.
        left = np.interp(values, quantiles, refs)
        right = -np.interp(-values, -quantiles[::-1], -refs[::-1])
        probs = 0.5 * (left + right)
        probs[values >= quantiles[-1]] = 1.0
        probs[values <= quantiles[0]] = 0.0
        if self.output_distribution == 'normal':
            eps = self.BOUNDS_THRESHOLD
            return scipy.special.ndtri(np.clip(probs, eps, 1.0 - eps))
        return probs

    def _inverse_column(self, values: np.ndarray,
                        quantiles: np.ndarray) -> np.ndarray:
        probs = values
        if self.output_distribution == 'normal':
            probs = scipy.special.ndtr(values)
            # Undo the clipping of transform: the clipped ends are the bounds.
            tol = 1.5 * self.BOUNDS_THRESHOLD
            probs = np.where(probs < tol, 0.0, probs)
            probs = np.where(probs > 1.0 - tol, 1.0, probs)
        return np.interp(probs, self.references_, quantiles)

    def transform(self, X) -> np.ndarray:
        """Maps X to the output distribution (same shape as X)."""
        return self._transform(X, inverse=False)

    def inverse_transform(self, X) -> np.ndarray:
        """Maps values of the output distribution back to the data's."""
        return self._transform(X, inverse=True)

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serialisable state (plain lists and numbers)."""
        return {
            'n_quantiles': self.n_quantiles,
            'output_distribution': self.output_distribution,
            'subsample': self.subsample,
            'random_state': self.random_state,
            'quantiles': (None if self.quantiles_ is None
                          else self.quantiles_.tolist()),
        }

    @classmethod
    def from_dict(cls, state: Dict[str, Any]) -> 'QuantileTransformer':
        """Rebuilds a transformer from `to_dict()` output.

        Also accepts 'quantiles' as a flat list (one feature; an empty list
        means unfitted) with optional matching 'references' (probabilities),
        e.g. the data preparation's 'loudness_note_quantiles'.
        """
        if not isinstance(state, dict) or 'quantiles' not in state:
            raise ValueError('state must be a dict from '
                             'QuantileTransformer.to_dict().')
        transformer = cls(n_quantiles=state.get('n_quantiles', 1000),
                          output_distribution=state.get(
                              'output_distribution', 'uniform'),
                          subsample=state.get('subsample', int(1e5)),
                          random_state=state.get('random_state', 0))
        if state['quantiles'] is None or len(state['quantiles']) == 0:
            return transformer
        quantiles = np.asarray(state['quantiles'], dtype=np.float64)
        if quantiles.ndim == 1:
            quantiles = quantiles[:, None]
        if (quantiles.ndim != 2 or not np.all(np.isfinite(quantiles))
                or np.any(np.diff(quantiles, axis=0) < 0)):
            raise ValueError(
                'state["quantiles"] must be a finite [n_quantiles] or '
                '[n_quantiles, n_features] list, non-decreasing along the '
                'quantiles.')
        references = np.linspace(0.0, 1.0, len(quantiles))
        if state.get('references') is not None:
            references = np.asarray(state['references'], dtype=np.float64)
            if (references.shape != (len(quantiles),)
                    or np.any(np.diff(references) < 0)
                    or references[0] < 0 or references[-1] > 1):
                raise ValueError(
                    'state["references"] must be non-decreasing '
                    'probabilities in [0, 1], one per quantile.')
        transformer.quantiles_ = quantiles
        transformer.references_ = references
        return transformer


def _as_quantile_transformer(qt, name: str) -> QuantileTransformer:
    if isinstance(qt, QuantileTransformer):
        return qt
    if isinstance(qt, dict):
        return QuantileTransformer.from_dict(qt)
    raise ValueError(f'{name} must be a QuantileTransformer or its to_dict(), '
                     f'got {type(qt).__name__}.')


def fit_quantile_transform(loudness_db: ArrayLike, mask_on: ArrayLike,
                           inv_quantile=None
                           ) -> Tuple[QuantileTransformer, np.ndarray]:
    """Fits a quantile transform to note-on loudness; optionally maps it onto
    another distribution.

    Args:
        loudness_db: `[n_frames]` or `[batch, n_frames]`.
        mask_on: bool, same shape: the frames to fit on (note-on).
        inv_quantile: None, or a fitted `QuantileTransformer` (or its
            `to_dict()`, e.g. `dataset_stats['quantile_transform']`) whose
            inverse maps the note-on frames' quantiles into its distribution.

    Returns:
        quantile_transform: The transformer fitted on the note-on loudness.
        loudness_norm: float32 `loudness_db.shape + (1,)` (the trailing axis
            as magenta/ddsp): loudness with note-on frames replaced by
            inv_quantile.inverse_transform(quantile_transform.transform(.))
            (unchanged when inv_quantile is None).

    Raises:
        ValueError: If mask_on selects no frame.
    """
    loudness_db = _float_array(loudness_db, 'loudness_db')
    mask_on = _bool_array(mask_on, 'mask_on', loudness_db.shape)
    note_on = loudness_db[mask_on]
    if note_on.size == 0:
        raise ValueError('mask_on selects no frame: there is no note-on '
                         'loudness to fit.')
    quantile_transform = QuantileTransformer().fit(note_on[:, None])
    loudness_norm = loudness_db.copy()[..., None]
    if inv_quantile is not None:
        target = _as_quantile_transformer(inv_quantile, 'inv_quantile')
        probs = quantile_transform.transform(note_on[:, None])
        loudness_norm[mask_on] = target.inverse_transform(probs)
    return quantile_transform, loudness_norm


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
    text = json.dumps(_to_json(stats), indent=1, allow_nan=False)
    directory = os.path.dirname(path)
    if directory:
        tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(path, 'w') as f:
        f.write(text)
    return path


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
