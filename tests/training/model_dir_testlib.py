"""Makes small trained-model directories for tests, as `ddsp_run` writes them.

A model dir holds `ckpt-<N>` checkpoints, `operative_config-<N>.gin` and, like
the ones `ddsp_run` writes, `dataset_statistics.json`. The models are tiny (GRU
32, 1 s examples) and trained for `train_steps` steps on synthetic harmonic
tones, so tests that need "a model" stay fast. An untrained model (0 steps)
still follows f0: the synthesizer is driven by f0 directly.
"""
from __future__ import annotations

import os
from typing import Sequence

import gin
import keras
import numpy as np
import tensorflow as tf

from ddsp.training import data
from ddsp.training import ddsp_run
from ddsp.training import models
from ddsp.training import postprocessing
from ddsp.training import train_util
from ddsp.training import trainers

SAMPLE_RATE = 16000
FRAME_RATE = 250
SECONDS = 1.0


def tone_features(n_examples: int = 4, seconds: float = SECONDS,
                  sample_rate: int = SAMPLE_RATE, frame_rate: int = FRAME_RATE,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Harmonic tones with vibrato: audio, f0_hz, f0_confidence, loudness_db.

    Returns arrays `[n_examples, n_samples]` / `[n_examples, n_frames]`; f0 is
    exact (from the synthesis), loudness is computed with `spectral_ops`.
    """
    from ddsp import spectral_ops
    rng = np.random.default_rng(seed)
    n_samples = int(seconds * sample_rate)
    n_frames = int(seconds * frame_rate)
    t = np.arange(n_samples) / sample_rate
    audio, f0 = [], []
    for _ in range(n_examples):
        base = rng.uniform(196.0, 660.0)
        f0_t = base * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.0 * t))
        phase = 2 * np.pi * np.cumsum(f0_t) / sample_rate
        envelope = np.minimum(1.0, 20 * t) * np.minimum(1.0, 20 * (t[-1] - t))
        wave = sum(0.3 / k * np.sin(k * phase) for k in range(1, 9))
        audio.append((envelope * wave).astype(np.float32))
        f0.append(f0_t[::sample_rate // frame_rate][:n_frames])
    audio = np.stack(audio)
    loudness = np.stack([
        spectral_ops.compute_loudness(a, sample_rate=sample_rate,
                                      frame_rate=frame_rate, use_tf=False,
                                      padding='same')[:n_frames]
        for a in audio])
    return {'audio': audio,
            'f0_hz': np.stack(f0).astype(np.float32),
            'f0_confidence': np.ones([n_examples, n_frames], np.float32),
            'loudness_db': loudness.astype(np.float32)}


class ArrayProvider(data.DataProvider):
    """A DataProvider over in-memory feature arrays (one example per row)."""

    def __init__(self, features: dict[str, np.ndarray],
                 sample_rate: int = SAMPLE_RATE, frame_rate: int = FRAME_RATE):
        super().__init__(sample_rate, frame_rate)
        self.features = features

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(self.features)


def make_model_dir(save_dir: str,
                   gin_file: str = 'models/tiny.gin',
                   bindings: Sequence[str] = (),
                   train_steps: int = 1,
                   seconds: float = SECONDS,
                   rnn_channels: int = 32,
                   write_statistics: bool = True,
                   seed: int = 0) -> str:
    """Trains a tiny model for `train_steps` steps and writes a model dir.

    The weights depend only on the arguments (`seed`), not on what ran
    before in the process: module-scoped fixtures are built before the
    per-test seeding of conftest.py.

    Args:
        save_dir: Output directory (created).
        gin_file: Model config, as `ddsp_run --gin_file` takes it.
        bindings: Extra gin bindings (after the sizing ones).
        train_steps: Optimizer steps (>= 1: a checkpoint is written at the end).
        seconds: Example length; sets the preprocessor and synth lengths.
        rnn_channels: Width of the decoder (RnnFcDecoder.rnn_channels and .ch).
        write_statistics: Also write `dataset_statistics.json`.
        seed: Seed of the initial weights and the training batches.

    Returns:
        `save_dir`.
    """
    n_samples = int(seconds * SAMPLE_RATE)
    n_frames = int(seconds * FRAME_RATE)
    sizing = [
        f'F0LoudnessPreprocessor.time_steps = {n_frames}',
        f'Harmonic.n_samples = {n_samples}',
        f'FilteredNoise.n_samples = {n_samples}',
        f'RnnFcDecoder.rnn_channels = {rnn_channels}',
        f'RnnFcDecoder.ch = {rnn_channels}',
        'Reverb.reverb_length = 4000',
    ]
    features = tone_features(seconds=seconds)
    gin.clear_config()
    keras.utils.set_random_seed(seed)
    try:
        ddsp_run.parse_gin('', gin_files=[gin_file],
                           gin_params=sizing + list(bindings))
        strategy = trainers.get_strategy()
        with strategy.scope():
            trainer = trainers.Trainer(models.get_model(), strategy)
        train_util.train(ArrayProvider(features), trainer, batch_size=2,
                         num_steps=train_steps, steps_per_summary=10**6,
                         steps_per_save=10**6, save_dir=save_dir,
                         restore_dir=save_dir)
    finally:
        gin.clear_config()
    if write_statistics:
        write_statistics_of(features, save_dir)
    return save_dir


def write_statistics_of(features: dict[str, np.ndarray], directory: str):
    """Writes the dataset statistics of features (`tone_features`) to
    `directory/dataset_statistics.json`, as ddsp_prepare_tfrecord does."""
    stats = postprocessing.dataset_statistics_from_arrays(
        features['f0_hz'], features['f0_confidence'], features['loudness_db'])
    postprocessing.save_dataset_statistics(
        stats, os.path.join(directory, postprocessing.DATASET_STATISTICS_FILE))
