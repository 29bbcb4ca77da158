"""Data providers: `tf.data` pipelines of training examples.

Every provider has `sample_rate`, `frame_rate`, `get_dataset(shuffle)` (one
pass over the examples) and `get_batch(batch_size, shuffle, repeats,
drop_remainder)`. Unlike magenta/ddsp, `get_batch(shuffle=True)` shuffles
examples (a `shuffle_buffer_size` buffer, reshuffled every epoch), not only
the order of the files.

`TFRecordProvider` reads `ddsp_prepare_tfrecord` output. Its lengths and rates
come from the dataset's metadata JSON (`<name>.metadata.json` beside the
shards), so no gin parameter has to match the data; a binding that disagrees
with the metadata is an error naming the metadata file, and a record whose
features do not have the expected lengths fails with an error naming the
TFRecord file (instead of "Can't parse serialized Example"). Datasets without
metadata (made by magenta/ddsp) are read with the arguments, which default to
the reference's (4 s, 16 kHz, 250 Hz, not centred). Its `split` argument picks
the train or eval shards of datasets made with an eval split, so training and
evaluation (`datasets/tfrecord.gin`) use different examples.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import gin
import numpy as np
import tensorflow as tf

from ddsp.training.data_preparation import dataset_metadata as dm

_AUTOTUNE = tf.data.AUTOTUNE

logger = logging.getLogger(__name__)


def _batch(dataset: tf.data.Dataset, batch_size: int,
           drop_remainder: bool) -> tf.data.Dataset:
    """`batch`, or `padded_batch` when some feature has a variable length."""
    shapes = tf.nest.flatten(tf.nest.map_structure(
        lambda s: s.shape, dataset.element_spec))
    if all(s.is_fully_defined() for s in shapes):
        return dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.padded_batch(batch_size, drop_remainder=drop_remainder)


# ---------- Base Class --------------------------------------------------------
class DataProvider:
    """Base class for returning a dataset."""

    # Examples held by get_batch's shuffle buffer (~0.5 MB each at 16 kHz).
    shuffle_buffer_size = 256

    def __init__(self, sample_rate: int, frame_rate: float):
        """DataProvider constructor.

        Args:
          sample_rate: Sample rate of audio in the dataset.
          frame_rate: Frame rate of features in the dataset.
        """
        self._sample_rate = sample_rate
        self._frame_rate = frame_rate

    @property
    def sample_rate(self):
        """Dataset sample rate, must be defined in the constructor."""
        return self._sample_rate

    @property
    def frame_rate(self):
        """Dataset feature frame rate, must be defined in the constructor."""
        return self._frame_rate

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        """A tf.data.Dataset of single examples (one pass)."""
        raise NotImplementedError

    def get_batch(self,
                  batch_size: int,
                  shuffle: bool = True,
                  repeats: int = -1,
                  drop_remainder: bool = True,
                  shuffle_buffer_size: Optional[int] = None
                  ) -> tf.data.Dataset:
        """Batched dataset.

        Args:
          batch_size: Size of batch.
          shuffle: Shuffle files and examples (a buffer of
            `shuffle_buffer_size` examples, default the class attribute,
            reshuffled every epoch).
          repeats: Number of times to repeat dataset. -1 for endless repeats.
          drop_remainder: Whether the last batch should be dropped.
          shuffle_buffer_size: Overrides `self.shuffle_buffer_size`.

        Returns:
          A batched tf.data.Dataset.
        """
        dataset = self.get_dataset(shuffle)
        if shuffle:
            dataset = dataset.shuffle(
                shuffle_buffer_size or self.shuffle_buffer_size,
                reshuffle_each_iteration=True)
        dataset = dataset.repeat(repeats)
        dataset = _batch(dataset, batch_size, drop_remainder)
        return dataset.prefetch(buffer_size=_AUTOTUNE)


@gin.register(module='ddsp.training.data')
class ExperimentalDataProvider(DataProvider):
    """Reads a dataset saved with `tf.data.Dataset.save`."""

    def __init__(self, data_dir: str, sample_rate: int, frame_rate: float):
        super().__init__(sample_rate, frame_rate)
        self.data_dir = data_dir

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        """Dataset saved in `data_dir` (`shuffle` unused; see get_batch)."""
        del shuffle
        return tf.data.Dataset.load(self.data_dir)


class TfdsProvider(DataProvider):
    """Base class for reading datasets from TensorFlow Datasets (TFDS).

    Needs the optional `tensorflow-datasets` package; never downloads
    (`download=False`): prepare the dataset with TFDS first.
    """

    def __init__(self, name: str, split: str, data_dir: Optional[str],
                 sample_rate: int, frame_rate: float):
        """TfdsProvider constructor.

        Args:
          name: TFDS dataset name (with optional config and version).
          split: Dataset split to use of the TFDS dataset.
          data_dir: The directory to read TFDS datasets from (None:
            "~/tensorflow_datasets").
          sample_rate: Sample rate of audio in the dataset.
          frame_rate: Frame rate of features in the dataset.
        """
        self._name = name
        self._split = split
        self._data_dir = data_dir
        super().__init__(sample_rate, frame_rate)

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        """Dataset read by `tfds.load` (`shuffle` shuffles the files)."""
        try:
            import tensorflow_datasets as tfds
        except ImportError as e:
            raise ImportError(
                f'{type(self).__name__} needs tensorflow-datasets: pip install '
                'tensorflow-datasets') from e
        return tfds.load(self._name, data_dir=self._data_dir,
                         split=self._split, shuffle_files=shuffle,
                         download=False)


@gin.register(module='ddsp.training.data')
class NSynthTfds(TfdsProvider):
    """Parses features in the TFDS NSynth dataset.

    If running on Cloud, it is recommended you set `data_dir` to
    'gs://tfds-data/datasets' to avoid unnecessary downloads.
    """

    def __init__(self,
                 name: str = 'nsynth/gansynth_subset.f0_and_loudness:2.3.0',
                 split: str = 'train',
                 data_dir: Optional[str] = 'gs://tfds-data/datasets',
                 sample_rate: int = 16000,
                 frame_rate: float = 250,
                 include_note_labels: bool = True):
        """NSynth via TFDS; `include_note_labels` adds pitch and instrument."""
        self._include_note_labels = include_note_labels
        if data_dir == 'gs://tfds-data/datasets':
            logger.warning(
                'Using public TFDS GCS bucket to load NSynth. If not running '
                'on GCP, this will be very slow, and it is recommended you '
                'prepare the dataset locally with TFDS and set the data_dir '
                'appropriately.')
        super().__init__(name, split, data_dir, sample_rate, frame_rate)

    def preprocess_example(self, ex: Dict[str, Any]) -> Dict[str, tf.Tensor]:
        """TFDS NSynth features -> DDSP feature names."""
        out = {
            'audio': ex['audio'],
            'f0_hz': ex['f0']['hz'],
            'f0_confidence': ex['f0']['confidence'],
            'loudness_db': ex['loudness']['db'],
        }
        if self._include_note_labels:
            out.update({
                'pitch': ex['pitch'],
                'instrument_source': ex['instrument']['source'],
                'instrument_family': ex['instrument']['family'],
                'instrument': ex['instrument']['label'],
            })
        return out

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        return super().get_dataset(shuffle).map(
            self.preprocess_example, num_parallel_calls=_AUTOTUNE)


# ---------- TFRecords ---------------------------------------------------------
_REFERENCE_DEFAULTS = {'example_secs': 4, 'sample_rate': 16000,
                       'frame_rate': 250, 'centered': False}
# `TFRecordProvider.split` values that read every matched file.
_ALL_SPLITS = (None, 'all')


@gin.register(module='ddsp.training.data')
class TFRecordProvider(DataProvider):
    """Reads TFRecords written by `ddsp_prepare_tfrecord`.

    Lengths and rates come from the dataset's metadata (found beside the
    shards that `file_pattern` matches, or given as `metadata_path`); the
    arguments only need to be set for datasets without metadata. Features:
    `audio [example_secs * sample_rate]`, `audio_16k [example_secs * 16000]`
    and, unless the dataset is audio-only, `f0_hz`, `f0_confidence`,
    `loudness_db [n_frames]`.

    Splits: `ddsp_prepare_tfrecord --eval_split_fraction` writes
    `NAME.tfrecord-train-*` and `NAME.tfrecord-eval-*` shards. With `split`
    'train' or 'eval', the files matched by `file_pattern` are narrowed to
    that split's shards. If none of them belongs to it, the matched files
    are read as they are (a pattern naming specific shards, or a dataset
    without splits), except that for 'eval' the eval shards listed in the
    dataset's metadata are used if the pattern matched other shards of a
    dataset with an eval split; evaluating on files that are not eval
    shards logs a warning.
    """

    def __init__(self,
                 file_pattern: Union[str, Sequence[str], None] = None,
                 example_secs: Optional[float] = None,
                 sample_rate: Optional[int] = None,
                 frame_rate: Optional[float] = None,
                 centered: Optional[bool] = None,
                 metadata_path: Optional[str] = None,
                 split: Optional[str] = 'train'):
        """TFRecordProvider constructor.

        Args:
          file_pattern: Glob(s) of the shards, e.g. 'DIR/train.tfrecord*'
            (files ending in .json are ignored).
          example_secs, sample_rate, frame_rate, centered: None: from the
            metadata, else the reference's defaults (4, 16000, 250, False).
            A value that disagrees with the metadata raises ValueError.
          metadata_path: The metadata JSON (default: found from the shards).
          split: 'train', 'eval', or None / 'all' for every matched file
            (see the class docstring).
        """
        if split not in ('train', 'eval', *_ALL_SPLITS):
            raise ValueError(f"{type(self).__name__}: split must be 'train', "
                             f"'eval', 'all' or None, got {split!r}.")
        self._file_pattern = file_pattern
        self._split = split
        self._files = None
        self._args = {'example_secs': example_secs, 'sample_rate': sample_rate,
                      'frame_rate': frame_rate, 'centered': centered}
        self._metadata_path = metadata_path
        self._resolved = None
        super().__init__(None, None)

    # --- metadata ---------------------------------------------------------
    @property
    def file_pattern(self) -> Union[str, Sequence[str]]:
        if not self._file_pattern:
            raise ValueError(
                f'{type(self).__name__}: set file_pattern (e.g. in gin: '
                f'{type(self).__name__}.file_pattern = '
                '"/path/to/train.tfrecord*").')
        return self._file_pattern

    def _patterns(self) -> List[str]:
        p = self.file_pattern
        return [p] if isinstance(p, str) else list(p)

    @property
    def split(self) -> Optional[str]:
        return self._split

    @property
    def files(self) -> List[str]:
        """The TFRecord files read (sorted; cached on first use)."""
        if self._files is None:
            self._files = self._select_files()
        return list(self._files)

    def _select_files(self) -> List[str]:
        matched = sorted({f for p in self._patterns()
                          for f in tf.io.gfile.glob(p)
                          if not f.endswith('.json')})
        if self._split in _ALL_SPLITS:
            return matched
        # Each dataset (shard prefix; other files alone) on its own.
        datasets = {}
        for f in matched:
            shard = dm.parse_shard_name(f)
            datasets.setdefault(shard['prefix'] if shard else f, []).append(f)
        selected, not_eval = [], []
        for files in datasets.values():
            chosen = [f for f in files if (dm.parse_shard_name(f) or {}).get(
                'split') == self._split]
            if not chosen and self._split == 'eval':
                chosen = self._listed_shards(files, 'eval')
                if chosen:
                    logger.info('%s matches no eval shards; using the eval '
                                'shards of the same dataset: %s',
                                self.file_pattern, chosen)
                else:
                    not_eval += files
            selected += chosen or files
        if not_eval:
            logger.warning(
                'No eval shards among %d file(s) matching %s: evaluating on '
                'them as they are (make an eval split with '
                'ddsp_prepare_tfrecord --eval_split_fraction, or set '
                'eval/%s.file_pattern).', len(not_eval), self.file_pattern,
                type(self).__name__)
        return sorted(set(selected))

    @staticmethod
    def _listed_shards(files: Sequence[str], split: str) -> List[str]:
        """Existing shards of `split` that the metadata of the datasets of
        `files` lists."""
        shards = set()
        for meta_file in {dm.metadata_for_shard(f) for f in files} - {None}:
            if not tf.io.gfile.exists(meta_file):
                continue
            meta = dm.read_metadata(meta_file)
            for shard in (meta['splits'].get(split) or {}).get('shards', ()):
                path = dm.resolve(meta_file, shard)
                if tf.io.gfile.exists(path):
                    shards.add(path)
        return sorted(shards)

    def dataset_statistics_path(self) -> Optional[str]:
        """`dataset_statistics.json` beside the files read, or None."""
        for path in dict.fromkeys(dm.statistics_path(f) for f in self.files):
            if tf.io.gfile.exists(path):
                return path
        return None

    def _find_metadata(self) -> Dict[str, Dict[str, Any]]:
        """{metadata path: metadata} of the datasets of the files read."""
        if self._metadata_path:
            return {self._metadata_path: dm.read_metadata(self._metadata_path)}
        found = {}
        for f in self.files:
            meta_file = dm.metadata_for_shard(f)
            if meta_file is not None and meta_file not in found:
                found[meta_file] = (dm.read_metadata(meta_file)
                                    if tf.io.gfile.exists(meta_file) else None)
        metas = {m: v for m, v in found.items() if v is not None}
        if not metas:
            missing = [m for m, v in found.items() if v is None]
            logger.warning(
                'No dataset metadata for %s%s: lengths and rates come from the '
                'arguments (defaults: the reference\'s).', self.file_pattern,
                f' (expected {missing[0]})' if missing else '')
        return metas

    def _resolve(self) -> Dict[str, Any]:
        """Rates, lengths and feature keys (cached)."""
        if self._resolved is not None:
            return self._resolved
        metas = self._find_metadata() if (
            self._metadata_path or self._file_pattern) else {}
        values, lengths, keys = dict(self._args), None, None
        first = None
        for meta_file, meta in metas.items():
            from_meta = {'example_secs': meta['example_secs'],
                         'sample_rate': meta['sample_rate'],
                         'frame_rate': meta['frame_rate'],
                         'centered': meta['center']}
            for k, v in from_meta.items():
                if values[k] is None:
                    values[k] = v
                elif not np.isclose(float(values[k]), float(v)):
                    source = (f'the metadata of {first}' if first and
                              self._args[k] is None
                              else f'{type(self).__name__}.{k}={values[k]}')
                    raise ValueError(
                        f'{source} disagrees with {meta_file}: {k}={v}. The '
                        'metadata sets it; remove the gin binding.')
            if lengths is None:
                lengths, keys = meta['feature_lengths'], list(meta['features'])
                first = meta_file
            elif meta['feature_lengths'] != lengths:
                raise ValueError(f'{meta_file} and {first} have different '
                                 'feature lengths; read them separately.')
        for k, v in _REFERENCE_DEFAULTS.items():
            if values[k] is None:
                values[k] = v
        if not metas:
            lengths = dm.feature_lengths(values['sample_rate'],
                                         values['frame_rate'],
                                         values['example_secs'],
                                         values['centered'])
            keys = ['audio', 'audio_16k', 'f0_hz', 'f0_confidence',
                    'loudness_db']
        self._resolved = {'values': values, 'lengths': lengths,
                          'keys': keys, 'metadata': metas}
        return self._resolved

    @property
    def sample_rate(self):
        return self._resolve()['values']['sample_rate']

    @property
    def frame_rate(self):
        return self._resolve()['values']['frame_rate']

    @property
    def example_secs(self):
        return self._resolve()['values']['example_secs']

    @property
    def centered(self) -> bool:
        return bool(self._resolve()['values']['centered'])

    @property
    def metadata(self) -> Optional[Dict[str, Any]]:
        """The (first) dataset metadata, None for datasets without one."""
        metas = self._resolve()['metadata']
        return next(iter(metas.values())) if metas else None

    @property
    def feature_keys(self) -> List[str]:
        return list(self._resolve()['keys'])

    @property
    def features_dict(self) -> Dict[str, tf.io.FixedLenFeature]:
        """Features to read (shape [] means variable length)."""
        lengths = self._resolve()['lengths']
        return {k: tf.io.FixedLenFeature([lengths[k]] if lengths else [],
                                         dtype=tf.float32)
                for k in self.feature_keys}

    # --- reading ----------------------------------------------------------
    def _parse(self, record: tf.Tensor, filename: tf.Tensor):
        """Parses one record, checking every feature's length."""
        spec = self.features_dict
        loose = {k: tf.io.FixedLenSequenceFeature([], f.dtype,
                                                  allow_missing=True)
                 for k, f in spec.items()}
        ex = tf.io.parse_single_example(record, loose)
        out = {}
        for k, feature in spec.items():
            if not feature.shape:  # Variable length.
                out[k] = ex[k]
                continue
            expected = int(np.prod(feature.shape))
            n = tf.size(ex[k])
            check = tf.debugging.Assert(tf.equal(n, expected), [
                'TFRecord example disagrees with the dataset metadata in file',
                filename, 'feature', k, 'has', n, 'values, expected',
                expected, '(0: missing feature; was the dataset made with '
                'other settings?)'], summarize=1)
            with tf.control_dependencies([check]):
                out[k] = tf.reshape(ex[k], feature.shape)
        return out

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        """Examples of the selected files (`shuffle` shuffles the files)."""
        self._resolve()
        if not self.files:
            raise ValueError(f'{type(self).__name__}: no TFRecord files match '
                             f'file_pattern {self.file_pattern!r}.')
        files = tf.data.Dataset.from_tensor_slices(self.files)
        if shuffle:
            files = files.shuffle(len(self.files),
                                  reshuffle_each_iteration=True)

        def read_file(filename):
            return tf.data.TFRecordDataset(filename).map(
                lambda record: self._parse(record, filename))

        return files.interleave(read_file, cycle_length=40,
                                num_parallel_calls=_AUTOTUNE,
                                deterministic=not shuffle)


@gin.register(module='ddsp.training.data')
class LegacyTFRecordProvider(TFRecordProvider):
    """TFRecordProvider for datasets without `audio_16k` (older ddsp)."""

    @property
    def feature_keys(self) -> List[str]:
        return [k for k in super().feature_keys if k != 'audio_16k']


# ---------- Multi-dataset DataProviders ---------------------------------------
@gin.register(module='ddsp.training.data')
class BaseMultiProvider(DataProvider):
    """Base class for providers that combine multiple datasets."""

    def __init__(self, data_providers: Sequence[DataProvider],
                 batch_size_ratios: Sequence[float] = ()):
        """Constructor.

        Args:
          data_providers: A list of data providers (same sample and frame
            rates).
          batch_size_ratios: Ratios of batch sizes (ZippedProvider) or
            sampling weights (MixedProvider) per provider; need not sum to 1,
            e.g. [2, 1]. Empty: equal.
        """
        data_providers = list(data_providers)
        if not data_providers:
            raise ValueError(f'{type(self).__name__}: no data providers.')
        if batch_size_ratios:
            if len(batch_size_ratios) != len(data_providers):
                raise ValueError(
                    f'batch_size_ratios ({len(batch_size_ratios)}) must have '
                    f'one entry per data provider ({len(data_providers)}).')
            if min(batch_size_ratios) <= 0:
                raise ValueError(f'batch_size_ratios must be > 0, got '
                                 f'{list(batch_size_ratios)}.')
            total = float(sum(batch_size_ratios))
            ratios = [float(r) / total for r in batch_size_ratios]
        else:
            ratios = None
        for name in ('sample_rate', 'frame_rate'):
            values = [getattr(dp, name) for dp in data_providers]
            if len(set(values)) > 1:
                raise ValueError(f'All data providers must have the same '
                                 f'{name}, got {values}.')
        super().__init__(data_providers[0].sample_rate,
                         data_providers[0].frame_rate)
        self._data_providers = data_providers
        # Normalized ratios, or None: equal weights, full batch_size each.
        self._batch_size_ratios = ratios


@gin.register(module='ddsp.training.data')
class ZippedProvider(BaseMultiProvider):
    """Zips the datasets of several providers: elements are tuples."""

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        return tf.data.Dataset.zip(tuple(
            dp.get_dataset(shuffle) for dp in self._data_providers))

    def get_batch(self,
                  batch_size: int,
                  shuffle: bool = True,
                  repeats: int = -1,
                  drop_remainder: bool = False,
                  shuffle_buffer_size: Optional[int] = None
                  ) -> tf.data.Dataset:
        """Tuple of batches: batch_size each without batch_size_ratios,
        else batch_size * ratio (at least 1) each."""
        ratios = self._batch_size_ratios
        sizes = ([batch_size] * len(self._data_providers) if ratios is None
                 else [max(1, int(batch_size * r)) for r in ratios])
        datasets = []
        for dp, size in zip(self._data_providers, sizes):
            ds = dp.get_dataset(shuffle)
            if shuffle:
                ds = ds.shuffle(shuffle_buffer_size or dp.shuffle_buffer_size,
                                reshuffle_each_iteration=True)
            datasets.append(_batch(ds.repeat(repeats), size, drop_remainder))
        return tf.data.Dataset.zip(tuple(datasets)).prefetch(_AUTOTUNE)


@gin.register(module='ddsp.training.data')
class MixedProvider(BaseMultiProvider):
    """Samples examples from several providers with the ratios as weights."""

    def get_dataset(self, shuffle: bool = True) -> tf.data.Dataset:
        datasets = [dp.get_dataset(shuffle) for dp in self._data_providers]
        return tf.data.Dataset.sample_from_datasets(
            datasets, weights=self._batch_size_ratios,
            seed=None if shuffle else 0)
