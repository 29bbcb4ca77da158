"""Collecting the z vectors of a trained z-encoder model.

`collect_z` runs a trained z-encoder model (`inference.compute_z`) over a
prepared dataset and collects its z vectors per *segment* (the mean z of each
detected note, `postprocessing.detect_notes`, cut into pieces of at most
`segment_secs`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

from absl import logging
import numpy as np

from ddsp.training import postprocessing


# z collection -----------------------------------------------------------------------
@dataclasses.dataclass
class ZCollection:
    """z vectors of a dataset.

    Attributes:
        segments: float32 `[n_segments, z_dims]`, mean z of each note segment.
        n_examples: Examples read.
    """
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
    segments, n_examples = [], 0
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
        segments += [z[a:b].mean(axis=0) for a, b in bounds]
        n_examples += 1
    if not n_examples:
        raise ValueError('The dataset yielded no examples.')
    logging.info('Collected z of %d examples: %d segments.', n_examples,
                 len(segments))
    return ZCollection(segments=np.stack(segments).astype(np.float32),
                       n_examples=n_examples)
