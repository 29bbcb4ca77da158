"""A small TFRecord dataset as ddsp_prepare_tfrecord writes it, for the
eval / ddsp_run / data tests: 1 s harmonic tones (model_dir_testlib) in
`NAME.tfrecord-train-*` / `NAME.tfrecord-eval-*` shards (or unsplit shards),
the metadata JSON and, optionally, dataset_statistics.json; and a reader of
TensorBoard event files."""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

import model_dir_testlib as mdl
from ddsp.training import postprocessing
from ddsp.training.data_preparation import dataset_metadata as dm

KEYS = ('audio', 'audio_16k', 'f0_hz', 'f0_confidence', 'loudness_db')


def write_examples(path: str, examples: Sequence[Dict[str, np.ndarray]]):
    """A TFRecord file of examples with float features."""
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            feature = {k: tf.train.Feature(float_list=tf.train.FloatList(
                value=np.asarray(v, np.float32).ravel()))
                for k, v in example.items()}
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())


def write_tone_dataset(directory: str, name: str = 'tones',
                       splits: Optional[Dict[str, Sequence[int]]] = None,
                       n_examples: int = 4, statistics: bool = True) -> str:
    """Writes tone examples as shards of one dataset.

    Args:
        directory: Output folder (created).
        name: Dataset name: shards `NAME.tfrecord-[SPLIT-]00000-of-00001`.
        splits: {split: example indices}; default {'train': [0, 1],
            'eval': [2, 3]}; {None: [...]} writes an unsplit dataset.
        n_examples: Tones made (`model_dir_testlib.tone_features`).
        statistics: Also write dataset_statistics.json.

    Returns:
        The output prefix `DIRECTORY/NAME.tfrecord` (glob it with '*').
    """
    splits = splits or {'train': [0, 1], 'eval': [2, 3]}
    os.makedirs(directory, exist_ok=True)
    features = mdl.tone_features(n_examples)
    features['audio_16k'] = features['audio']
    prefix = os.path.join(directory, f'{name}.tfrecord')
    has_eval = 'eval' in splits
    listed = {}
    for split, indices in splits.items():
        shard = dm.shard_prefix(prefix, split, has_eval) + '-00000-of-00001'
        write_examples(shard, [{k: features[k][i] for k in KEYS}
                               for i in indices])
        listed[split or 'train'] = {'shards': [os.path.basename(shard)],
                                    'n_examples': len(indices)}
    meta = {'format': dm.FORMAT, 'format_version': dm.FORMAT_VERSION,
            'sample_rate': mdl.SAMPLE_RATE, 'frame_rate': mdl.FRAME_RATE,
            'example_secs': 1, 'center': False,
            'feature_lengths': dm.feature_lengths(
                mdl.SAMPLE_RATE, mdl.FRAME_RATE, 1, False),
            'features': {k: {} for k in KEYS}, 'splits': listed}
    dm.write_json_atomic(dm.metadata_path(prefix), meta)
    if statistics:
        stats = postprocessing.dataset_statistics_from_arrays(
            features['f0_hz'], features['f0_confidence'],
            features['loudness_db'])
        postprocessing.save_dataset_statistics(
            stats, os.path.join(directory,
                                postprocessing.DATASET_STATISTICS_FILE))
    return prefix


def read_events(log_dir):
    """{tag: [(step, summary value proto)]} of the event files in log_dir."""
    tags = {}
    files = tf.io.gfile.glob(f'{log_dir}/events.out.tfevents.*')
    assert files, f'no event file in {log_dir}'
    for record in tf.data.TFRecordDataset(files):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append((event.step, value))
    return tags
