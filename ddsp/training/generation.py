"""Generation without input audio: notes -> f0 / loudness curves, z from a GMM.

The autoencoder of `models/ae.gin` conditions its decoder on a time-varying
latent z that its encoder computes from audio. To make sounds from notes
alone, this module replaces the encoder by a generative model of z:

1. `collect_z` runs a trained z-encoder model (`inference.compute_z`) over a
   prepared dataset and collects its z vectors, both per frame and per
   *segment* (the mean z of each detected note, `postprocessing.detect_notes`,
   cut into pieces of at most `segment_secs`).
2. `fit_gmm` fits a Gaussian mixture (scikit-learn `GaussianMixture`) to the
   segment z vectors; the number of components is chosen by BIC or by the
   log-likelihood of held-out segments. `ZGaussianMixture` holds the result
   (numpy only) and saves / loads it as `.npz` or `.json` (never pickle).
3. `read_notes` reads notes from a CSV (`onset_s,offset_s,midi_pitch,velocity`
   [,`vibrato_cents`]) or a MIDI file (mido) and makes them monophonic;
   `notes_to_curves` turns them into f0 and loudness curves at the model's
   frame rate (attack / release envelopes, optional vibrato, velocity mapped
   into the training data's note-on loudness distribution).
4. `sample_z` draws z for the notes and `generate` synthesizes audio with
   `inference.synthesize`.

Temporal coherence of z
-----------------------
Drawing z independently for every frame makes the timbre jump 250 times a
second (audible as rough, flickering noise). Instead, one z is drawn per
*note* and held for the whole note and its release (the timbre of a real
note changes slowly; the per-note mean is what the GMM models); consecutive
notes are joined by a linear crossfade of `crossfade_s` (a box filter over the
piecewise-constant z). `spectral_centroid_flicker` measures the result: the
mean frame-to-frame change of the output's spectral centroid (cents) on
sustained frames, compared in `bench/compare_models.py` between the encoder's
z of real notes, per-note held samples and per-frame samples.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence

from absl import logging
import numpy as np

from ddsp import core
from ddsp import spectral_ops
from ddsp.training import postprocessing

__all__ = [
    'GMM_FORMAT',
    'GMM_VERSION',
    'ZCollection',
    'ZGaussianMixture',
    'Note',
    'collect_z',
    'fit_gmm',
    'load_gmm',
    'read_notes',
    'read_notes_csv',
    'read_notes_midi',
    'make_monophonic',
    'velocity_to_loudness',
    'notes_to_curves',
    'sample_z',
    'GenerationResult',
    'generate',
    'spectral_centroid_flicker',
]

GMM_FORMAT = 'ddsp.z_gmm'
GMM_VERSION = 1
MIDI_EXTENSIONS = ('.mid', '.midi')
# Velocities 1 and 127 map to these quantiles of the dataset's note-on
# loudness (the extremes of a distribution are its least typical frames).
VELOCITY_QUANTILE_RANGE = (0.05, 0.95)
# Loudness range used for velocities when a model has no dataset statistics.
DEFAULT_LOUDNESS_RANGE_DB = (-60.0, -20.0)
# MIDI channel 10 (index 9) is percussion in General MIDI: no pitch.
MIDI_DRUM_CHANNEL = 9


# z collection -----------------------------------------------------------------------
@dataclasses.dataclass
class ZCollection:
    """z vectors of a dataset.

    Attributes:
        frames: float32 `[n_frames_total, z_dims]`, every frame of every
            example.
        segments: float32 `[n_segments, z_dims]`, mean z of each note segment.
        n_examples: Examples read.
    """
    frames: np.ndarray
    segments: np.ndarray
    n_examples: int


def _runs(mask: np.ndarray) -> List[tuple]:
    """(start, stop) of the runs of True in a bool vector."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2], edges[1::2]))


def _segment_bounds(mask_on: np.ndarray, max_frames: int,
                    min_frames: int) -> List[tuple]:
    """Note runs of mask_on, cut into pieces of at most max_frames; pieces
    shorter than min_frames are dropped."""
    bounds = []
    for start, stop in _runs(mask_on):
        n_pieces = max(1, math.ceil((stop - start) / max_frames))
        edges = np.linspace(start, stop, n_pieces + 1).round().astype(int)
        bounds += [(a, b) for a, b in zip(edges[:-1], edges[1:])
                   if b - a >= min_frames]
    return bounds


def collect_z(trained, data_provider, max_examples: Optional[int] = None,
              segment_secs: float = 1.0, min_segment_secs: float = 0.1
              ) -> ZCollection:
    """Runs a trained model's encoder over a dataset and collects z.

    Segments are the detected notes of every example
    (`postprocessing.detect_notes` on its loudness and f0 confidence), cut
    into pieces of at most segment_secs; an example without any detected
    note contributes pieces of segment_secs of all its frames (logged).

    Args:
        trained: `inference.TrainedModel` with an encoder (`uses_z`).
        data_provider: Provider with `get_dataset(shuffle)` yielding 'audio'
            (at trained.sample_rate), 'loudness_db', 'f0_confidence'
            (e.g. `data.TFRecordProvider(file_pattern)`).
        max_examples: Read at most this many examples (None: all).
        segment_secs: Longest segment.
        min_segment_secs: Shorter pieces of notes are not segments.

    Returns:
        ZCollection.
    """
    if not trained.uses_z:
        raise ValueError(f'The model in {trained.model_dir} has no encoder: '
                         'it has no z to collect.')
    if segment_secs <= 0 or min_segment_secs < 0:
        raise ValueError(f'segment_secs must be > 0 and min_segment_secs '
                         f'>= 0, got {segment_secs} and {min_segment_secs}.')
    if data_provider.sample_rate != trained.sample_rate:
        raise ValueError(
            f'The dataset is at {data_provider.sample_rate} Hz, the model '
            f'at {trained.sample_rate} Hz.')
    from ddsp.training import inference  # Loads the model stack on use.
    max_frames = max(1, round(segment_secs * trained.frame_rate))
    min_frames = max(1, round(min_segment_secs * trained.frame_rate))
    frames, segments, n_examples = [], [], 0
    for example in data_provider.get_dataset(shuffle=False):
        if max_examples is not None and n_examples >= max_examples:
            break
        loudness = np.asarray(example['loudness_db'], np.float32)
        z = np.asarray(inference.compute_z(
            trained, np.asarray(example['audio'], np.float32),
            len(loudness)), np.float32)
        mask_on, _ = postprocessing.detect_notes(
            loudness, np.asarray(example['f0_confidence'], np.float32))
        bounds = _segment_bounds(mask_on, max_frames, min_frames)
        if not bounds:
            logging.info('Example %d: no note detected; using all frames.',
                         n_examples)
            bounds = _segment_bounds(np.ones(len(z), bool), max_frames, 1)
        frames.append(z)
        segments += [z[a:b].mean(axis=0) for a, b in bounds]
        n_examples += 1
    if not n_examples:
        raise ValueError('The dataset yielded no examples.')
    logging.info('Collected z of %d examples: %d segments.', n_examples,
                 len(segments))
    return ZCollection(frames=np.concatenate(frames).astype(np.float32),
                       segments=np.stack(segments).astype(np.float32),
                       n_examples=n_examples)


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
        import tensorflow as tf
        ext = os.path.splitext(path)[1].lower()
        if ext == '.json':
            payload = json.dumps(self.to_dict(), indent=1).encode()
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
        directory = os.path.dirname(path)
        if directory:
            tf.io.gfile.makedirs(directory)
        with tf.io.gfile.GFile(path, 'wb') as f:
            f.write(payload)
        return path


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
    with tf.io.gfile.GFile(path, 'rb') as f:
        payload = f.read()
    try:
        if ext == '.json':
            state = json.loads(payload)
        elif ext == '.npz':
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


# Notes ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Note:
    """One note.

    Attributes:
        onset_s, offset_s: Start and end in seconds (offset > onset >= 0).
        pitch: MIDI pitch (fractional allowed).
        velocity: MIDI velocity in [1, 127].
        vibrato_cents: Vibrato depth of this note (None: the global setting).
    """
    onset_s: float
    offset_s: float
    pitch: float
    velocity: float
    vibrato_cents: Optional[float] = None

    def __post_init__(self):
        values = (self.onset_s, self.offset_s, self.pitch, self.velocity)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f'Note values must be finite: {self}.')
        if self.onset_s < 0 or self.offset_s <= self.onset_s:
            raise ValueError(f'A note needs 0 <= onset_s < offset_s: {self}.')
        if not 0 <= self.pitch <= 127:
            raise ValueError(f'Note pitch must be in [0, 127]: {self}.')
        if not 1 <= self.velocity <= 127:
            raise ValueError(f'Note velocity must be in [1, 127]: {self}.')
        if self.vibrato_cents is not None and not (
                math.isfinite(self.vibrato_cents) and self.vibrato_cents >= 0):
            raise ValueError(f'Note vibrato_cents must be >= 0: {self}.')


_CSV_COLUMNS = ('onset_s', 'offset_s', 'midi_pitch', 'velocity')


def read_notes_csv(path: str) -> List[Note]:
    """Notes of a CSV file: `onset_s,offset_s,midi_pitch,velocity` and an
    optional `vibrato_cents` column (by name with a header row, else by
    position). Returns the notes as `make_monophonic` leaves them."""
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f'No notes file at {path}.')
    with tf.io.gfile.GFile(path, 'r') as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f'{path}: no notes.')
    header = [c.strip().lower() for c in rows[0]]
    try:
        float(header[0])
        columns = list(_CSV_COLUMNS) + ['vibrato_cents']
    except ValueError:
        missing = [c for c in _CSV_COLUMNS if c not in header]
        if missing:
            raise ValueError(f'{path}: the header lacks {missing} (expected '
                             f'{",".join(_CSV_COLUMNS)}).') from None
        columns, rows = header, rows[1:]
    notes = []
    for line, row in enumerate(rows, start=2 if columns is header else 1):
        values = dict(zip(columns, (c.strip() for c in row)))
        try:
            vibrato = values.get('vibrato_cents')
            notes.append(Note(
                float(values['onset_s']), float(values['offset_s']),
                float(values['midi_pitch']), float(values['velocity']),
                float(vibrato) if vibrato not in (None, '') else None))
        except (KeyError, ValueError) as e:
            raise ValueError(f'{path}, row {line}: {e}') from None
    return make_monophonic(notes)


def read_notes_midi(path: str, channel: Optional[int] = None) -> List[Note]:
    """Notes of a Standard MIDI File (all tracks, tempo changes applied).

    Args:
        path: .mid file.
        channel: Only this channel (0-15); None: all but the General MIDI
            drum channel (9).

    Returns:
        The notes, made monophonic (`make_monophonic`).
    """
    import mido
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f'No MIDI file at {path}.')
    with tf.io.gfile.GFile(path, 'rb') as f:
        data = f.read()
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, EOFError, ValueError, KeyError) as e:
        raise ValueError(f'{path} is not a MIDI file: {e}') from None
    keep = ((lambda c: c != MIDI_DRUM_CHANNEL) if channel is None
            else (lambda c: c == channel))
    now, active, notes = 0.0, {}, []
    for message in midi:  # Merged tracks; .time is seconds since the last.
        now += message.time
        if message.type not in ('note_on', 'note_off') or not keep(
                message.channel):
            continue
        key = (message.channel, message.note)
        if key in active:  # Any event of a sounding key ends it.
            onset, velocity = active.pop(key)
            if now > onset:
                notes.append(Note(onset, now, message.note, velocity))
        if message.type == 'note_on' and message.velocity > 0:
            active[key] = (now, message.velocity)
    for (_, pitch), (onset, velocity) in active.items():
        if now > onset:
            notes.append(Note(onset, now, pitch, velocity))
    if not notes:
        raise ValueError(f'{path}: no notes'
                         + ('' if channel is None else f' on channel '
                            f'{channel}') + '.')
    return make_monophonic(notes)


def read_notes(path: str) -> List[Note]:
    """`read_notes_midi` for .mid / .midi files, else `read_notes_csv`."""
    if path.lower().endswith(MIDI_EXTENSIONS):
        return read_notes_midi(path)
    return read_notes_csv(path)


def make_monophonic(notes: Sequence[Note]) -> List[Note]:
    """Sorts notes by onset; a note still sounding when the next one starts
    ends there (last-note priority, as a monophonic synthesizer). Notes at
    the same onset: the higher pitch wins. Logs how many were shortened or
    dropped."""
    ordered = sorted(notes, key=lambda n: (n.onset_s, -n.pitch))
    out, changed = [], 0
    for note in ordered:
        if out and out[-1].onset_s == note.onset_s:
            changed += 1
            continue
        if out and out[-1].offset_s > note.onset_s:
            out[-1] = dataclasses.replace(out[-1], offset_s=note.onset_s)
            changed += 1
        out.append(note)
    if changed:
        logging.info('Overlapping notes: %d shortened or dropped to make the '
                     'part monophonic.', changed)
    return out


# Curves ------------------------------------------------------------------------------
def velocity_to_loudness(velocity, dataset_stats: Optional[Dict[str, Any]]
                         ) -> np.ndarray:
    """Loudness (dB) of notes of the given velocities.

    Velocity 1 .. 127 maps linearly to the quantiles VELOCITY_QUANTILE_RANGE
    of the training data's note-on loudness (its quantile transform in
    dataset_stats), so generated notes are as loud as the notes the model
    was trained on. Statistics without quantiles: linearly between
    'mean_min_loudness_note' and 'mean_max_loudness_note'; no statistics:
    DEFAULT_LOUDNESS_RANGE_DB.
    """
    velocity = np.asarray(velocity, np.float64)
    fraction = np.clip((velocity - 1.0) / 126.0, 0.0, 1.0)
    lo_q, hi_q = VELOCITY_QUANTILE_RANGE
    if dataset_stats is not None:
        try:
            qt = postprocessing.dataset_quantile_transform(dataset_stats)
            return qt.inverse_transform(
                (lo_q + (hi_q - lo_q) * fraction).reshape(-1, 1)
            ).reshape(velocity.shape).astype(np.float32)
        except ValueError:
            lo = dataset_stats.get('mean_min_loudness_note')
            hi = dataset_stats.get('mean_max_loudness_note')
            if lo is not None and hi is not None:
                return (lo + (hi - lo) * fraction).astype(np.float32)
    logging.warning('No dataset loudness statistics: velocities map to '
                    '%s dB.', DEFAULT_LOUDNESS_RANGE_DB)
    lo, hi = DEFAULT_LOUDNESS_RANGE_DB
    return (lo + (hi - lo) * fraction).astype(np.float32)


def _db_to_amp(db):
    return 10.0 ** (np.asarray(db, np.float64) / 20.0)


def notes_to_curves(notes: Sequence[Note], frame_rate: float,
                    dataset_stats: Optional[Dict[str, Any]] = None, *,
                    attack_s: float = 0.04, release_s: float = 0.2,
                    vibrato_cents: float = 0.0, vibrato_hz: float = 5.5,
                    vibrato_delay_s: float = 0.2,
                    tail_s: float = 0.3,
                    silence_db: Optional[float] = None
                    ) -> Dict[str, np.ndarray]:
    """f0 and loudness curves that play the notes (frame i at i / frame_rate).

    f0 is the sounding note's pitch from its onset frame to the next note's
    onset (the release keeps the pitch; before the first note, its pitch),
    plus vibrato (a sine of depth vibrato_cents, or the note's own
    vibrato_cents, fading in over vibrato_delay_s). Loudness: an attack
    linear in amplitude from the current level to the note's level
    (`velocity_to_loudness`) over attack_s, held to the offset, then a
    release linear in dB down to silence over release_s (cut short by the
    next note, whose attack starts from wherever the level is; legato notes
    glide without a dip).

    Args:
        notes: Monophonic notes (`make_monophonic` is applied).
        frame_rate: The model's frame rate.
        dataset_stats: The model's dataset statistics (loudness range).
        attack_s, release_s: Envelope times (>= 0).
        vibrato_cents, vibrato_hz, vibrato_delay_s: Default vibrato.
        tail_s: Silence after the last release.
        silence_db: Level between notes (default: the dataset's
            'min_loudness', else -80 dB).

    Returns:
        'f0_hz', 'loudness_db': float32 `[n_frames]`; 'note_index': int32
        `[n_frames]`, the sounding note (onset to offset), -1 elsewhere;
        'sustained': bool `[n_frames]`, note frames after the attack.
    """
    if not notes:
        raise ValueError('notes must not be empty.')
    for name, value in (('frame_rate', frame_rate), ('vibrato_hz', vibrato_hz)):
        if not value > 0:
            raise ValueError(f'{name} must be > 0, got {value}.')
    for name, value in (('attack_s', attack_s), ('release_s', release_s),
                        ('vibrato_cents', vibrato_cents),
                        ('vibrato_delay_s', vibrato_delay_s),
                        ('tail_s', tail_s)):
        if not value >= 0:
            raise ValueError(f'{name} must be >= 0, got {value}.')
    notes = make_monophonic(notes)
    if silence_db is None:
        silence_db = (dataset_stats or {}).get('min_loudness')
        silence_db = (-spectral_ops.DB_RANGE if silence_db is None
                      else max(float(silence_db), -spectral_ops.DB_RANGE))
    levels = velocity_to_loudness([n.velocity for n in notes], dataset_stats)
    n_frames = math.ceil((notes[-1].offset_s + release_s + tail_s)
                         * frame_rate) + 1

    def frame(secs: float) -> int:  # First frame at or after secs.
        return min(n_frames, math.ceil(secs * frame_rate - 1e-9))

    t = np.arange(n_frames) / frame_rate
    pitch = np.full(n_frames, notes[0].pitch, np.float64)
    loudness = np.full(n_frames, silence_db, np.float64)
    note_index = np.full(n_frames, -1, np.int32)
    sustained = np.zeros(n_frames, bool)
    n_attack = max(1, round(attack_s * frame_rate))
    n_release = max(1, round(release_s * frame_rate))
    for i, note in enumerate(notes):
        start, stop = frame(note.onset_s), frame(note.offset_s)
        if stop <= start:
            logging.info('Note %d (%.3f-%.3f s) is shorter than a frame: '
                         'skipped.', i, note.onset_s, note.offset_s)
            continue
        end = (frame(notes[i + 1].onset_s) if i + 1 < len(notes)
               else n_frames)
        # Pitch through the release, up to the next note.
        depth = (vibrato_cents if note.vibrato_cents is None
                 else note.vibrato_cents) / 100.0
        since = t[start:end] - note.onset_s
        fade = (np.clip(since / vibrato_delay_s, 0.0, 1.0)
                if vibrato_delay_s > 0 else 1.0)
        pitch[start:end] = note.pitch + depth * fade * np.sin(
            2 * np.pi * vibrato_hz * since)
        # Envelope: attack from the current level, sustain, release.
        before = loudness[start - 1] if start > 0 else silence_db
        ramp = np.arange(1, n_attack + 1) / n_attack
        amp = _db_to_amp(before) + ramp * (_db_to_amp(levels[i])
                                           - _db_to_amp(before))
        level = np.full(stop - start, levels[i], np.float64)
        attack = min(n_attack, stop - start)
        level[:attack] = 20 * np.log10(np.maximum(amp[:attack], 1e-12))
        loudness[start:stop] = level
        release = np.linspace(loudness[stop - 1], silence_db,
                              n_release + 1)[1:]
        n_rel = min(n_release, end - stop)
        loudness[stop:stop + n_rel] = release[:n_rel]
        loudness[stop + n_rel:end] = silence_db
        note_index[start:stop] = i
        sustained[start + attack:stop] = True
    return {
        'f0_hz': np.asarray(core.midi_to_hz(pitch), np.float32),
        'loudness_db': np.maximum(loudness, -spectral_ops.DB_RANGE
                                  ).astype(np.float32),
        'note_index': note_index,
        'sustained': sustained,
    }


# z sampling ---------------------------------------------------------------------------
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


# Generation ----------------------------------------------------------------------------
@dataclasses.dataclass
class GenerationResult:
    """What `generate` made: audio `[n_samples]` at sample_rate, the curves
    of `notes_to_curves` and z `[n_frames, z_dims]` (None without encoder)."""
    audio: np.ndarray
    sample_rate: int
    curves: Dict[str, np.ndarray]
    z: Optional[np.ndarray]


def generate(trained, notes: Sequence[Note],
             gmm: Optional[ZGaussianMixture] = None, seed: int = 0,
             use_reverb: bool = True, crossfade_s: float = 0.05,
             z_per: str = 'note', **curve_options) -> GenerationResult:
    """Plays notes with a trained model; no input audio.

    Args:
        trained: `inference.TrainedModel`.
        notes: The notes (`read_notes`).
        gmm: z model; required when the model has an encoder.
        seed: Seeds the z draws; the synthesis is deterministic (its noise
            is a fixed function of the sample index), so the same seed gives
            the same audio.
        use_reverb: Apply the model's learned room.
        crossfade_s: z crossfade between notes (`sample_z`).
        z_per: `sample_z` per ('note'; 'frame' only for comparisons).
        **curve_options: `notes_to_curves` keyword arguments.

    Returns:
        GenerationResult.
    """
    from ddsp.training import inference
    curves = notes_to_curves(notes, trained.frame_rate, trained.dataset_stats,
                             **curve_options)
    z = None
    if trained.uses_z:
        if gmm is None:
            raise ValueError(f'The model in {trained.model_dir} has an '
                             'encoder: pass a z GMM (ddsp_generate '
                             '--fit_gmm_on=... --gmm=...).')
        if gmm.z_dims != trained.z_dims:
            raise ValueError(f'The GMM has {gmm.z_dims} z dims, the model '
                             f'{trained.z_dims}.')
        z = sample_z(gmm, curves['note_index'], seed, per=z_per,
                     crossfade_frames=round(crossfade_s
                                            * trained.frame_rate))
    elif gmm is not None:
        logging.info('The model has no encoder: the GMM is not used.')
    audio = np.asarray(inference.synthesize(
        trained, curves['f0_hz'], curves['loudness_db'], z,
        use_reverb=use_reverb), np.float32)
    return GenerationResult(audio=audio, sample_rate=trained.sample_rate,
                            curves=curves, z=z)


# Measurement ----------------------------------------------------------------------------
def spectral_centroid_flicker(audio, sample_rate: int, frame_rate: float,
                              mask=None, n_fft: int = 1024) -> float:
    """Mean |frame-to-frame change| of the spectral centroid in cents.

    A measure of timbre stability: pairs of consecutive frames both inside
    mask (e.g. `notes_to_curves(...)['sustained']`) count.

    Args:
        audio: `[n_samples]`.
        sample_rate, frame_rate: Of audio and of the frames (hop =
            sample_rate / frame_rate samples).
        mask: bool `[n_frames]` or None (all frames).
        n_fft: Analysis window.

    Returns:
        Cents per frame (NaN if no pair of frames counts).
    """
    import librosa
    audio = np.asarray(audio, np.float32)
    hop = int(round(sample_rate / frame_rate))
    centroid = librosa.feature.spectral_centroid(
        y=audio, sr=sample_rate, n_fft=n_fft, hop_length=hop,
        center=True)[0]
    cents = 1200 * np.log2(np.maximum(centroid, 1.0))
    keep = np.ones(len(cents) - 1, bool)
    if mask is not None:
        mask = np.asarray(mask, bool)
        n = min(len(mask), len(cents))
        keep = np.zeros(len(cents) - 1, bool)
        keep[:n - 1] = mask[:n - 1] & mask[1:n]
    if not keep.any():
        return float('nan')
    return float(np.mean(np.abs(np.diff(cents))[keep]))
