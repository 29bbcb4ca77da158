"""Shared helpers of the trainer/train_util/ddsp_run/gin tests.

Real data (a violin take from data/ with f0 from its note list), an in-memory
data provider and a tiny solo-instrument model. Importable from the tests and
from subprocess scripts (add this directory to sys.path).
"""
from __future__ import annotations

import csv
import os

import numpy as np
import soundfile as sf
import tensorflow as tf

import ddsp.effects
import ddsp.losses
import ddsp.processors
import ddsp.spectral_ops
import ddsp.synths
from ddsp.training import data
from ddsp.training import decoders
from ddsp.training import models
from ddsp.training import preprocessing
from ddsp.training import trainers

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
DATA_DIR = os.path.join(REPO, 'data')
SAMPLE_RATE = 16000
FRAME_RATE = 250
HOP = SAMPLE_RATE // FRAME_RATE  # 64 samples per frame.


class ArrayProvider(data.DataProvider):
    """Examples from a dict of arrays `{key: [n_examples, ...]}`."""

    def __init__(self, examples: dict, sample_rate: int = SAMPLE_RATE,
                 frame_rate: int = FRAME_RATE):
        super().__init__(sample_rate, frame_rate)
        self.examples = examples

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(self.examples)


def _note_f0(notes_csv: str, n_frames: int) -> np.ndarray:
    """f0 in Hz per frame from a note list (rests hold the previous pitch)."""
    f0 = np.zeros(n_frames, np.float32)
    with open(notes_csv) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        start = int(float(row['onset_s']) * FRAME_RATE)
        end = int(float(row['offset_s']) * FRAME_RATE)
        f0[start:end] = 440.0 * 2.0 ** ((float(row['midi_pitch']) - 69) / 12)
    first = int(float(rows[0]['onset_s']) * FRAME_RATE)
    f0[:first] = f0[first]
    for i in range(1, n_frames):
        if f0[i] == 0:
            f0[i] = f0[i - 1]
    return f0


def violin_examples(n_examples: int = 4, n_frames: int = 50,
                    take: int = 1, offset_s: float = 0.4) -> dict:
    """Consecutive excerpts of a violin take from data/, with features.

    Returns:
        {'audio': [n, n_frames * 64], 'f0_hz', 'f0_confidence',
         'loudness_db': [n, n_frames]} float32 (16 kHz, 250 Hz frames).
    """
    audio, sample_rate = sf.read(os.path.join(DATA_DIR, f'violin_0{take}.wav'),
                                 dtype='float32')
    assert sample_rate == SAMPLE_RATE
    f0 = _note_f0(os.path.join(DATA_DIR, f'violin_0{take}_notes.csv'),
                  len(audio) // HOP)
    n_samples = n_frames * HOP
    start_frame = int(offset_s * FRAME_RATE)
    examples = {'audio': [], 'f0_hz': []}
    for i in range(n_examples):
        frame = start_frame + i * n_frames
        examples['audio'].append(audio[frame * HOP:frame * HOP + n_samples])
        examples['f0_hz'].append(f0[frame:frame + n_frames])
    examples = {k: np.stack(v).astype(np.float32) for k, v in examples.items()}
    loudness = ddsp.spectral_ops.compute_loudness(
        examples['audio'], SAMPLE_RATE, FRAME_RATE, padding='same').numpy()
    examples['loudness_db'] = loudness[:, :n_frames].astype(np.float32)
    examples['f0_confidence'] = np.ones_like(examples['f0_hz'])
    return examples


def tiny_model(n_frames: int = 50, reverb: bool = True, noise: bool = True,
               n_harmonics: int = 16, rnn_channels: int = 32
               ) -> models.Autoencoder:
    """A small solo-instrument Autoencoder on n_frames * 64 samples.

    Without noise the model is deterministic (same weights and batch, same
    loss), whatever the batch is split into.
    """
    n_samples = n_frames * HOP
    dag = [(ddsp.synths.Harmonic(n_samples=n_samples, sample_rate=SAMPLE_RATE),
            ['amps', 'harmonic_distribution', 'f0_hz'])]
    if noise:
        dag += [(ddsp.synths.FilteredNoise(n_samples=n_samples, window_size=0),
                 ['noise_magnitudes']),
                (ddsp.processors.Add(),
                 ['filtered_noise/signal', 'harmonic/signal'])]
    if reverb:
        dag.append((ddsp.effects.Reverb(trainable=True, reverb_length=256),
                    [dag[-1][0].name + '/signal']))
    return models.Autoencoder(
        preprocessor=preprocessing.F0LoudnessPreprocessor(time_steps=n_frames),
        decoder=decoders.RnnFcDecoder(
            rnn_channels=rnn_channels, ch=rnn_channels, layers_per_stack=1,
            input_keys=('ld_scaled', 'f0_scaled'),
            output_splits=(('amps', 1), ('harmonic_distribution', n_harmonics),
                           ('noise_magnitudes', 16))),
        processor_group=ddsp.processors.ProcessorGroup(dag=dag),
        losses=[ddsp.losses.SpectralLoss(fft_sizes=(512, 256, 128, 64),
                                         mag_weight=1.0, logmag_weight=1.0)])


def make_trainer(strategy=None, model_fn=tiny_model, **trainer_kwargs):
    """A Trainer of a fresh tiny model (not built)."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = model_fn()
        return trainers.Trainer(model, strategy, **trainer_kwargs)


def model_weights(model) -> list:
    """[(variable path, value)] of every weight of a model, in model order.

    Paths of two instances differ (Keras numbers layer names), so weights of
    two models are compared by position.
    """
    return [(v.path, np.array(v)) for v in model.weights]


def assert_same_weights(expected: list, actual: list):
    """Asserts two `model_weights` lists are equal, position by position."""
    assert len(actual) == len(expected)
    for (name, value), (_, restored) in zip(expected, actual):
        np.testing.assert_array_equal(restored, value, err_msg=name)


def write_tfrecord(path: str, examples: dict):
    """Writes examples `{key: [n, length]}` as a TFRecord of float features.

    Adds 'audio_16k' (= 'audio': the examples are at 16 kHz).
    """
    examples = dict(examples, audio_16k=examples['audio'])
    n_examples = len(examples['audio'])
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(n_examples):
            features = {k: tf.train.Feature(float_list=tf.train.FloatList(
                value=np.asarray(v[i], np.float32).ravel()))
                for k, v in examples.items()}
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=features)).SerializeToString())


# Gin bindings that shrink every shipped model config to 50 frames (0.2 s)
# and a few channels, so that a training step is quick.
SMALL_GIN_PARAMS = [
    'Harmonic.n_samples = 3200',
    'FilteredNoise.n_samples = 3200',
    'F0LoudnessPreprocessor.time_steps = 50',
    'Reverb.reverb_length = 256',
    'RnnFcDecoder.rnn_channels = 16',
    'RnnFcDecoder.ch = 16',
    'MfccTimeDistributedRnnEncoder.rnn_channels = 16',
    'ResnetF0Encoder.time_steps = 50',
    'SpectralLoss.fft_sizes = (512, 128)',
]
