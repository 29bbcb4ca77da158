"""A small TFRecord dataset as ddsp_prepare_tfrecord writes it, for the
eval / ddsp_run / data tests: 1 s harmonic tones (model_dir_testlib) in
`NAME.tfrecord-train-*` / `NAME.tfrecord-eval-*` shards (or unsplit shards),
the metadata JSON and, optionally, dataset_statistics.json; and a reader of
TensorBoard event files."""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence

import tensorflow as tf

import model_dir_testlib as mdl
import trainers_testlib as tl
from ddsp.training.data_preparation import dataset_metadata as dm

# Features of the shards; `trainers_testlib.write_tfrecord` adds 'audio_16k'.
KEYS = ('audio', 'f0_hz', 'f0_confidence', 'loudness_db')


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
    prefix = os.path.join(directory, f'{name}.tfrecord')
    has_eval = 'eval' in splits
    listed = {}
    for split, indices in splits.items():
        shard = dm.shard_prefix(prefix, split, has_eval) + '-00000-of-00001'
        tl.write_tfrecord(shard, {k: features[k][list(indices)]
                                  for k in KEYS})
        listed[split or 'train'] = {'shards': [os.path.basename(shard)],
                                    'n_examples': len(indices)}
    meta = {'format': dm.FORMAT, 'format_version': dm.FORMAT_VERSION,
            'sample_rate': mdl.SAMPLE_RATE, 'frame_rate': mdl.FRAME_RATE,
            'example_secs': 1, 'center': False,
            'feature_lengths': dm.feature_lengths(
                mdl.SAMPLE_RATE, mdl.FRAME_RATE, 1, False),
            'features': {k: {} for k in KEYS + ('audio_16k',)},
            'splits': listed}
    dm.write_json_atomic(dm.metadata_path(prefix), meta)
    if statistics:
        mdl.write_statistics_of(features, directory)
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
