"""A Gaussian mixture model of z: `fit_gmm`, `ZGaussianMixture`, `sample_z`.

`fit_gmm` fits a Gaussian mixture (scikit-learn `GaussianMixture`) to the
segment z vectors; the number of components is chosen by BIC or by the
log-likelihood of held-out segments. `ZGaussianMixture` holds the result
(numpy only) and saves / loads it as `.npz` or `.json` (never pickle).
`sample_z` draws one z per note (see `ddsp.training.generation`).
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from typing import Any, Dict

from absl import logging
import numpy as np

from ddsp.training.data_preparation import dataset_metadata


GMM_FORMAT = 'ddsp.z_gmm'
GMM_VERSION = 1
# 'heldout' selection holds out at least one row and fits one component to
# at least two.
_MIN_HELDOUT_ROWS = 3


# Gaussian mixture -----------------------------------------------------------------
@dataclasses.dataclass
class ZGaussianMixture:
    """A Gaussian mixture over z (full covariances; numpy only).

    Attributes:
        weights: `[n_components]`, summing to 1.
        means: `[n_components, z_dims]`.
        covariances: `[n_components, z_dims, z_dims]`, positive definite.
        metadata: JSON-serialisable facts about the fit (component
            selection scores, data, temporal-coherence settings).
    """
    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.weights = np.asarray(self.weights, np.float64)
        self.means = np.asarray(self.means, np.float64)
        self.covariances = np.asarray(self.covariances, np.float64)
        k = self.weights.shape[0] if self.weights.ndim == 1 else -1
        if (k < 1 or self.means.ndim != 2 or self.means.shape[0] != k
                or self.covariances.shape != (k,) + self.means.shape[1:] * 2):
            raise ValueError(
                'weights [K], means [K, D] and covariances [K, D, D] do not '
                f'fit: {self.weights.shape}, {self.means.shape}, '
                f'{self.covariances.shape}.')
        if (np.any(self.weights < 0)
                or not math.isclose(self.weights.sum(), 1.0, abs_tol=1e-6)):
            raise ValueError('weights must be >= 0 and sum to 1, got '
                             f'{self.weights.tolist()}.')
        try:
            self._cholesky = np.linalg.cholesky(self.covariances)
        except np.linalg.LinAlgError:
            raise ValueError('covariances must be positive definite.') from None

    @property
    def n_components(self) -> int:
        return self.weights.shape[0]

    @property
    def z_dims(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n independent draws, float32 `[n, z_dims]` (deterministic for a
        given generator state)."""
        components = rng.choice(self.n_components, size=n, p=self.weights)
        eps = rng.standard_normal((n, self.z_dims))
        z = self.means[components] + np.einsum(
            'nij,nj->ni', self._cholesky[components], eps)
        return z.astype(np.float32)

    def log_prob(self, x) -> np.ndarray:
        """Log density of each row of x `[n, z_dims]` -> `[n]` (float64)."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.z_dims:
            raise ValueError(f'x must be [n, {self.z_dims}], got {x.shape}.')
        diff = x[None] - self.means[:, None]                      # [K, n, D]
        solved = np.linalg.solve(self._cholesky[:, None],
                                 diff[..., None])[..., 0]         # [K, n, D]
        log_det = 2 * np.log(np.diagonal(self._cholesky, axis1=1,
                                         axis2=2)).sum(axis=1)    # [K]
        log_comp = (-0.5 * (solved ** 2).sum(axis=-1)
                    - 0.5 * (log_det[:, None]
                             + self.z_dims * np.log(2 * np.pi))
                    + np.log(np.maximum(self.weights, 1e-300))[:, None])
        top = log_comp.max(axis=0)
        return top + np.log(np.exp(log_comp - top).sum(axis=0))

    def to_dict(self) -> Dict[str, Any]:
        return {'format': GMM_FORMAT, 'version': GMM_VERSION,
                'weights': self.weights.tolist(),
                'means': self.means.tolist(),
                'covariances': self.covariances.tolist(),
                'metadata': self.metadata}

    def save(self, path: str) -> str:
        """Writes `.npz` (arrays + metadata as a JSON string) or `.json`
        (everything as JSON) by the extension of path. Returns path."""
        ext = os.path.splitext(path)[1].lower()
        if ext == '.json':
            payload = json.dumps(self.to_dict(), indent=1)
        elif ext == '.npz':
            buffer = io.BytesIO()
            header = {'format': GMM_FORMAT, 'version': GMM_VERSION,
                      'metadata': self.metadata}
            np.savez(buffer, weights=self.weights, means=self.means,
                     covariances=self.covariances,
                     header=np.array(json.dumps(header)))
            payload = buffer.getvalue()
        else:
            raise ValueError(f'GMM path must end in .npz or .json, got '
                             f'{path!r}.')
        return dataset_metadata.write_file(path, payload)


def load_gmm(path: str) -> ZGaussianMixture:
    """Reads a GMM written by `ZGaussianMixture.save` (.npz or .json).

    Raises:
        FileNotFoundError: If path does not exist.
        ValueError: For other formats (pickle is never loaded) or contents.
    """
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f'No GMM file at {path}.')
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == '.json':
            state = dataset_metadata.read_json(path)
        elif ext == '.npz':
            with tf.io.gfile.GFile(path, 'rb') as f:
                payload = f.read()
            with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
                state = json.loads(str(npz['header']))
                state.update({k: npz[k] for k in ('weights', 'means',
                                                  'covariances')})
        else:
            raise ValueError('the extension must be .npz or .json')
    except (ValueError, KeyError, OSError) as e:
        raise ValueError(f'{path} is not a z GMM file: {e}') from None
    if not isinstance(state, dict) or state.get('format') != GMM_FORMAT:
        raise ValueError(f'{path} is not a {GMM_FORMAT} file.')
    return ZGaussianMixture(state['weights'], state['means'],
                            state['covariances'], state.get('metadata', {}))


def _fit_sklearn(x: np.ndarray, n_components: int, covariance_type: str,
                 seed: int, reg_covar: float):
    from sklearn.mixture import GaussianMixture
    return GaussianMixture(n_components=n_components,
                           covariance_type=covariance_type,
                           reg_covar=reg_covar, n_init=3, max_iter=500,
                           random_state=seed).fit(x)


def _full_covariances(gm, z_dims: int) -> np.ndarray:
    """sklearn's covariances_ of any covariance_type as [K, D, D]."""
    cov, k = gm.covariances_, gm.n_components
    return {'full': lambda: cov,
            'tied': lambda: np.broadcast_to(cov, (k, z_dims, z_dims)),
            'diag': lambda: np.stack([np.diag(c) for c in cov]),
            'spherical': lambda: np.stack([c * np.eye(z_dims) for c in cov]),
            }[gm.covariance_type]()


def fit_gmm(x, max_components: int = 8, criterion: str = 'bic',
            covariance_type: str = 'full', heldout_fraction: float = 0.2,
            heldout_tolerance: float = 0.02, seed: int = 0,
            reg_covar: float = 1e-4) -> ZGaussianMixture:
    """Fits a Gaussian mixture to x, choosing the number of components.

    Candidates are 1 .. max_components (at most one component per 2 rows).
    'bic': the lowest Bayesian information criterion on all rows.
    'heldout': the mean log-likelihood of a random heldout_fraction of the
    rows under a mixture fitted to the others; the fewest components whose
    score is within heldout_tolerance (nats per vector) of the best win (more
    components than the data support score the same up to noise); the
    chosen number is then refitted on all rows.

    Args:
        x: `[n, z_dims]` (e.g. `ZCollection.segments`).
        max_components: Largest number of components tried.
        criterion: 'bic' or 'heldout'.
        covariance_type: sklearn's: 'full', 'diag', 'tied' or 'spherical'
            (stored as full matrices).
        heldout_fraction: For 'heldout', in (0, 1).
        heldout_tolerance: For 'heldout', >= 0.
        seed: Initialisation and split seed.
        reg_covar: Added to the covariance diagonals (numerical floor).

    Returns:
        ZGaussianMixture whose metadata records the scores of every
        candidate ('selection').
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f'x must be a finite [n >= 2, z_dims] array, got '
                         f'shape {x.shape}.')
    if criterion not in ('bic', 'heldout'):
        raise ValueError(f"criterion must be 'bic' or 'heldout', got "
                         f'{criterion!r}.')
    if covariance_type not in ('full', 'diag', 'tied', 'spherical'):
        raise ValueError(f'covariance_type must be full, diag, tied or '
                         f'spherical, got {covariance_type!r}.')
    if max_components < 1:
        raise ValueError(f'max_components must be >= 1, got '
                         f'{max_components}.')
    if heldout_tolerance < 0:
        raise ValueError(f'heldout_tolerance must be >= 0, got '
                         f'{heldout_tolerance}.')
    if not 0 < heldout_fraction < 1:
        raise ValueError(f'heldout_fraction must be in (0, 1), got '
                         f'{heldout_fraction}.')
    n = x.shape[0]
    if criterion == 'heldout' and n < _MIN_HELDOUT_ROWS:
        raise ValueError(f"criterion='heldout' needs at least "
                         f'{_MIN_HELDOUT_ROWS} rows (one held out, two to '
                         f"fit), got {n}; use criterion='bic'.")
    if criterion == 'heldout':
        order = np.random.default_rng(seed).permutation(n)
        n_held = min(n - 2, max(1, round(heldout_fraction * n)))
        held, train = x[order[:n_held]], x[order[n_held:]]
    else:
        train = x
    candidates = range(1, max(1, min(max_components, len(train) // 2)) + 1)
    scores = {}
    for k in candidates:
        gm = _fit_sklearn(train, k, covariance_type, seed, reg_covar)
        scores[k] = (float(gm.bic(x)) if criterion == 'bic'
                     else float(gm.score(held)))
    if criterion == 'bic':
        pick = min(scores, key=scores.get)
    else:  # The fewest components within heldout_tolerance of the best.
        best = max(scores.values())
        pick = min(k for k, v in scores.items()
                   if v >= best - heldout_tolerance)
    gm = _fit_sklearn(x, pick, covariance_type, seed, reg_covar)
    logging.info('GMM over %d vectors: %d component(s) by %s (%s).', n, pick,
                 criterion, ', '.join(f'{k}: {v:.1f}'
                                      for k, v in scores.items()))
    return ZGaussianMixture(
        gm.weights_, gm.means_, _full_covariances(gm, x.shape[1]),
        metadata={'criterion': criterion, 'selection': {str(k): v for k, v
                                                        in scores.items()},
                  'n_components': pick, 'covariance_type': covariance_type,
                  'n_fit': n, 'seed': seed, 'reg_covar': reg_covar})


def sample_z(gmm: ZGaussianMixture, note_index, seed: int = 0,
             per: str = 'note', crossfade_frames: int = 12) -> np.ndarray:
    """z curves for notes.

    per='note' (the temporally coherent choice, see the module docstring):
    one draw per note, held from its onset until the next note's onset
    (frames before the first note take the first note's z), then
    crossfaded: a centred box filter of crossfade_frames turns each step
    into a linear ramp. per='frame': an independent draw for every frame
    (flickers; kept as the baseline of the coherence measurement).

    Args:
        gmm: The z model.
        note_index: int `[n_frames]` from `notes_to_curves` (-1: no note).
        seed: The draws are a function of seed (numpy default_rng).
        per: 'note' or 'frame'.
        crossfade_frames: Ramp length in frames (<= 1: hard switches).

    Returns:
        float32 `[n_frames, z_dims]`.
    """
    note_index = np.asarray(note_index)
    if note_index.ndim != 1 or not note_index.size:
        raise ValueError(f'note_index must be a non-empty [n_frames] array, '
                         f'got shape {note_index.shape}.')
    rng = np.random.default_rng(seed)
    if per == 'frame':
        return gmm.sample(len(note_index), rng)
    if per != 'note':
        raise ValueError(f"per must be 'note' or 'frame', got {per!r}.")
    if note_index.max() < 0:
        raise ValueError('note_index has no note frame.')
    # Hold: every frame takes the latest note that started at or before it.
    positions = np.where(note_index >= 0, np.arange(len(note_index)), -1)
    latest = np.maximum.accumulate(positions)
    held = note_index[np.maximum(latest, 0)]
    held[latest < 0] = note_index[note_index >= 0][0]
    z = gmm.sample(int(note_index.max()) + 1, rng)[held]
    if crossfade_frames > 1:
        width = int(crossfade_frames)
        padded = np.pad(z, ((width // 2, width - 1 - width // 2), (0, 0)),
                        mode='edge')
        kernel = np.ones(width) / width
        z = np.stack([np.convolve(padded[:, d], kernel, mode='valid')
                      for d in range(z.shape[1])], axis=1)
    return z.astype(np.float32)
