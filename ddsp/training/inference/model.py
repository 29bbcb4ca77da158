"""Loading trained models (`load_model`, `TrainedModel`) and input checks."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

from absl import logging
import gin
import numpy as np
import tensorflow as tf

from ddsp import effects
from ddsp import synths
from ddsp.training import data
from ddsp.training import ddsp_run
from ddsp.training import models
from ddsp.training import postprocessing
from ddsp.training import train_util

_STATELESS_BINDING = 'RnnFcDecoder.stateless = True'


@dataclasses.dataclass
class TrainedModel:
    """A restored model and what inference needs to know about it."""
    model: 'models.Autoencoder'  # restored, built, ready to call
    model_dir: str
    checkpoint: str  # the checkpoint prefix that was restored
    sample_rate: int
    frame_rate: float
    hop_size: int  # samples per frame
    dataset_stats: Optional[dict]
    uses_z: bool  # the model has an encoder (needs audio or z)
    z_dims: Optional[int]
    has_reverb: bool


# Loading ----------------------------------------------------------------------
def _expand(path: str) -> str:
    return os.path.expanduser(os.path.expandvars(path))


def _find_processor(model, cls):
    group = getattr(model, 'processor_group', None)
    if group is None:
        return None
    for module in group.modules:
        if isinstance(module, cls):
            return module
    return None


def _training_lengths(model) -> tuple[int, int]:
    """(frames, samples) of the model's training examples."""
    harmonic = _find_processor(model, synths.Harmonic)
    if harmonic is None:
        raise ValueError('inference needs a model with a synths.Harmonic '
                         'synthesizer in its processor group.')
    n_samples = int(harmonic.n_samples)
    preprocessor = getattr(model, 'preprocessor', None)
    time_steps = getattr(preprocessor, 'time_steps', None)
    if time_steps is None:
        raise ValueError('inference needs a preprocessor with `time_steps` '
                         '(e.g. F0LoudnessPreprocessor) to know the frame rate.')
    return int(time_steps), n_samples


def _dataset_statistics(model_dir: str) -> Optional[dict]:
    """dataset_statistics.json of model_dir (training copies it there), else
    beside the TFRecords of the gin-configured TFRecordProvider."""
    path = os.path.join(model_dir, postprocessing.DATASET_STATISTICS_FILE)
    if not tf.io.gfile.exists(path):
        try:
            provider = gin.get_configurable(data.TFRecordProvider)()
            path = provider.dataset_statistics_path()
        except (ValueError, tf.errors.OpError):  # No file_pattern, bad glob.
            path = None
    if path is None:
        logging.info('No %s in %s or beside the TFRecords: dataset_stats is '
                     'None.', postprocessing.DATASET_STATISTICS_FILE,
                     model_dir)
        return None
    logging.info('Dataset statistics from %s.', path)
    return postprocessing.load_dataset_statistics(path)


def _dummy_features(model, time_steps: int, n_samples: int) -> dict:
    features = {'f0_hz': tf.fill([1, time_steps], 220.0),
                'loudness_db': tf.fill([1, time_steps], -40.0)}
    if getattr(model, 'encoder', None) is not None:
        features['audio'] = tf.zeros([1, n_samples])
    return features


def load_model(model_dir: str, checkpoint: Optional[str] = None,
               gin_params: Sequence[str] = ()) -> TrainedModel:
    """Restores the newest checkpoint of a `ddsp_run` save_dir.

    Replaces the global gin config with the model's operative config (plus
    `gin_params`). RnnFcDecoders are built stateless (explicit RNN state, same
    variables) so that the model can stream.

    Args:
        model_dir: The save_dir of a training run.
        checkpoint: A checkpoint prefix or directory; None: newest in
            model_dir.
        gin_params: Extra gin bindings, applied last.

    Returns:
        TrainedModel.

    Raises:
        FileNotFoundError: model_dir is not a directory, or has no operative
            config, or there is no checkpoint.
        ValueError: the model is not a DDSP synthesis model inference knows.
    """
    model_dir = _expand(str(model_dir))
    if not tf.io.gfile.isdir(model_dir):
        raise FileNotFoundError(f'model_dir {model_dir!r} is not a directory.')
    try:
        train_util.get_latest_operative_config(model_dir)
    except FileNotFoundError:
        raise FileNotFoundError(
            f'model_dir {model_dir!r} has no operative_config-<N>.gin: not a '
            '`ddsp_run` save_dir.') from None
    source = model_dir if checkpoint is None else _expand(str(checkpoint))
    try:
        checkpoint_path = models.latest_checkpoint(source)
    except FileNotFoundError as e:
        arg = 'model_dir' if checkpoint is None else 'checkpoint'
        raise FileNotFoundError(f'{arg} {source!r}: {e}') from None

    gin.clear_config()
    ddsp_run.parse_gin(model_dir,
                       gin_params=[_STATELESS_BINDING] + list(gin_params))
    model = models.get_model()
    time_steps, n_samples = _training_lengths(model)
    if n_samples % time_steps:
        raise ValueError(f'Harmonic.n_samples ({n_samples}) is not a multiple '
                         f'of the preprocessor time_steps ({time_steps}).')
    hop_size = n_samples // time_steps
    # Build every variable (one call at the training lengths) so that the
    # restore can check that all of them are in the checkpoint.
    model(_dummy_features(model, time_steps, n_samples), training=False)
    model.restore(checkpoint_path, verbose=True)

    harmonic = _find_processor(model, synths.Harmonic)
    sample_rate = int(harmonic.sample_rate)
    frame_rate = sample_rate / hop_size
    preprocessor_rate = getattr(model.preprocessor, 'frame_rate', None)
    if preprocessor_rate is not None and preprocessor_rate != frame_rate:
        logging.warning('The preprocessor frame_rate (%s) differs from the '
                        'synthesis frame rate %s = Harmonic.n_samples / '
                        'time_steps; using the latter.', preprocessor_rate,
                        frame_rate)
    encoder = getattr(model, 'encoder', None)
    z_dims = None
    if encoder is not None:
        dense = getattr(encoder, 'dense_out', None)
        z_dims = int(dense.units) if dense is not None else None
    reverb = _find_processor(model, effects.Reverb)
    return TrainedModel(
        model=model, model_dir=model_dir, checkpoint=checkpoint_path,
        sample_rate=sample_rate, frame_rate=frame_rate, hop_size=hop_size,
        dataset_stats=_dataset_statistics(model_dir),
        uses_z=encoder is not None, z_dims=z_dims,
        has_reverb=reverb is not None)


# Input checks -----------------------------------------------------------------
def _frames_array(x, name: str) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 1:
        raise ValueError(f'{name} must be a 1-D array [n_frames], got shape '
                         f'{x.shape}.')
    if not np.all(np.isfinite(x)):
        raise ValueError(f'{name} contains NaN or infinite values (at frames '
                         f'{np.flatnonzero(~np.isfinite(x))[:5].tolist()}...).')
    return x


def _check_features(trained: TrainedModel, f0_hz, loudness_db, z,
                    allow_empty: bool = False):
    """Validated float32 (f0 [n], loudness [n], z [n, z_dims] or None)."""
    f0_hz = _frames_array(f0_hz, 'f0_hz')
    loudness_db = _frames_array(loudness_db, 'loudness_db')
    if f0_hz.shape != loudness_db.shape:
        raise ValueError(f'f0_hz and loudness_db must have the same number of '
                         f'frames, got {f0_hz.shape[0]} and '
                         f'{loudness_db.shape[0]}.')
    if not allow_empty and not f0_hz.size:
        raise ValueError('f0_hz and loudness_db are empty (0 frames).')
    if np.any(f0_hz < 0):
        raise ValueError('f0_hz must be >= 0 Hz.')
    if trained.uses_z:
        if z is None:
            raise ValueError('This model has an encoder: pass z [n_frames, '
                             'z_dims] (from compute_z).')
        z = np.asarray(z, np.float32)
        expected = (f0_hz.shape[0], trained.z_dims)
        if z.ndim != 2 or z.shape[0] != expected[0] or (
                expected[1] is not None and z.shape[1] != expected[1]):
            raise ValueError(f'z must have shape [n_frames, z_dims] = '
                             f'{list(expected)}, got {list(z.shape)}.')
        if not np.all(np.isfinite(z)):
            raise ValueError('z contains NaN or infinite values.')
    elif z is not None:
        raise ValueError('This model has no encoder: z must be None.')
    return f0_hz, loudness_db, z

