"""Note detection and the quantile transform (numpy in, numpy out).

* Note detection (`detect_notes`) from loudness and CREPE confidence.
* A quantile transform (`QuantileTransformer`, numpy only, JSON-serialisable)
  and `fit_quantile_transform`, which maps note-on loudness of one recording
  onto the note-on loudness distribution of a training set.

Also the array helpers shared by the other post-processing modules.
"""
import numbers
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.special
import tensorflow as tf

from ddsp import core
from ddsp import spectral_ops


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
