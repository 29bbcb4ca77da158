"""Apache Beam pipeline: audio files -> TFRecord examples of audio, f0, loudness.

Stages (one Beam transform each; any Beam runner, see `--pipeline_options`):

1. `ReadChunks`: per file, `audio_io.scan_audio` checks it (unreadable, empty,
   no samples, NaN/Inf, silent, shorter than one example -> a 'skipped' record
   with the reason, never an exception), then `audio_io.iter_chunks` streams
   it as mono chunks of `chunk_secs` at `sample_rate` and at 16 kHz (soxr HQ).
   Each chunk carries the SHA-256 of its 16 kHz samples.
2. `AddFeatures`: CREPE f0 and confidence (`spectral_ops.compute_f0`) and
   A-weighted loudness (`spectral_ops.compute_loudness`, n_fft 512) on the
   16 kHz audio of each chunk, 'center' or 'same' padding.
3. Eval split (if `eval_split_fraction` > 0): the chunks are ranked by content
   hash and the round(n * fraction) first ones (at least 1, at most n - 1)
   go to eval. Deterministic: it depends on the audio only, not on file names,
   order, runner or PYTHONHASHSEED (the reference used Python's salted
   `hash`). Chunks never straddle splits, so windows never leak.
4. `SplitExamples`: windows of `example_secs` every `hop_secs` within each
   chunk (no padding; the remainder after the last full window is dropped);
   `example_secs=0`: one example per chunk.
5. `Reshuffle`, `tf.train.Example` bytes, `WriteToTFRecord` per split (Beam
   writes to a temporary folder and renames on success: shards never appear
   half-written under their final names).
6. `Finalize`, once after all shards exist: the statistics JSON of the train
   split (`dataset_statistics.json`, the schema of
   `ddsp.training.postprocessing`, with power and the note-on loudness
   quantile transform), then the metadata JSON (see `dataset_metadata`).

`prepare_tfrecord` runs the pipeline and then, in the launching process,
removes stale shards of an earlier run under the same prefix, and raises
`NoUsableAudioError` (after removing the empty outputs) if no file gave an
example.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import math
from typing import Any, Dict, Iterator, List, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
import numpy as np

from ddsp import crepe
from ddsp.training.data_preparation import audio_io
from ddsp.training.data_preparation import dataset_metadata as dm

CREPE_SAMPLE_RATE = dm.CREPE_SAMPLE_RATE
FRAME_FEATURES = ('f0_hz', 'f0_confidence', 'loudness_db')

logger = logging.getLogger(__name__)


class NoUsableAudioError(RuntimeError):
    """No input file gave a single example; `summary` says why."""

    def __init__(self, message: str, metadata: Dict[str, Any]):
        super().__init__(message)
        self.metadata = metadata


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """What the examples look like (flags of `ddsp_prepare_tfrecord`)."""
    sample_rate: int = 16000
    frame_rate: float = 250
    example_secs: float = 4
    hop_secs: float = 1
    eval_split_fraction: float = 0.0
    chunk_secs: Optional[float] = 20.0
    center: bool = False
    viterbi: bool = True
    crepe_model_capacity: str = 'full'
    crepe_frame_rate: Optional[float] = None

    def validate(self) -> 'PrepareConfig':
        """Checks every combination up front; ValueError with the reason."""
        if self.sample_rate <= 0 or int(self.sample_rate) != self.sample_rate:
            raise ValueError(f'sample_rate must be a positive integer, got '
                             f'{self.sample_rate}.')
        if self.frame_rate < 0:
            raise ValueError(f'frame_rate must be >= 0 (0: audio only), got '
                             f'{self.frame_rate}.')
        if self.example_secs < 0:
            raise ValueError(f'example_secs must be >= 0, got '
                             f'{self.example_secs}.')
        if not 0.0 <= self.eval_split_fraction < 1.0:
            raise ValueError(f'eval_split_fraction must be in [0, 1), got '
                             f'{self.eval_split_fraction}.')
        if self.crepe_model_capacity not in crepe.CAPACITIES:
            raise ValueError(f'crepe_model_capacity must be one of '
                             f'{list(crepe.CAPACITIES)}, got '
                             f'{self.crepe_model_capacity!r}.')
        if self.crepe_frame_rate is not None and self.crepe_frame_rate <= 0:
            raise ValueError(f'crepe_frame_rate must be > 0, got '
                             f'{self.crepe_frame_rate}.')
        rates = [self.sample_rate, CREPE_SAMPLE_RATE] + (
            [self.frame_rate] if self.frame_rate else [])
        if self.example_secs:
            if self.hop_secs <= 0:
                raise ValueError(f'hop_secs must be > 0, got {self.hop_secs}.')
            for rate in rates:
                dm.n_samples(self.example_secs, rate, 'example_secs')
                dm.n_samples(self.hop_secs, rate, 'hop_secs')
        if self.chunk_secs:
            if self.example_secs and self.chunk_secs < self.example_secs:
                raise ValueError(
                    f'chunk_secs ({self.chunk_secs}) must be >= example_secs '
                    f'({self.example_secs}) or 0 (no chunking).')
            for rate in (self.sample_rate, CREPE_SAMPLE_RATE):
                dm.n_samples(self.chunk_secs, rate, 'chunk_secs')
        return self

    @property
    def padding(self) -> str:
        return 'center' if self.center else 'same'

    @property
    def feature_lengths(self) -> Optional[Dict[str, int]]:
        return dm.feature_lengths(self.sample_rate, self.frame_rate,
                                  self.example_secs, self.center)

    @property
    def min_last_chunk_secs(self) -> float:
        """A last chunk shorter than this joins the one before it."""
        return self.example_secs or (self.chunk_secs or 0.0) / 2


# ---------------------------------------------------------------- 1. reading
class ReadChunks(beam.DoFn):
    """path -> chunks (main), 'source' and 'skipped' records (tagged)."""

    def __init__(self, config: PrepareConfig):
        self.config = config

    def process(self, path: str) -> Iterator[Any]:
        cfg = self.config
        rates = [cfg.sample_rate, CREPE_SAMPLE_RATE]
        n_chunks = 0
        try:
            info = audio_io.scan_audio(path, min_secs=cfg.example_secs)
            for i, chunk in enumerate(audio_io.iter_chunks(
                    path, rates, cfg.chunk_secs, cfg.min_last_chunk_secs,
                    info)):
                audio_16k = chunk[CREPE_SAMPLE_RATE]
                yield {
                    'path': path,
                    'chunk_index': i,
                    'start_secs': i * (cfg.chunk_secs or 0.0),
                    'duration_secs': len(audio_16k) / CREPE_SAMPLE_RATE,
                    'sha256': hashlib.sha256(audio_16k.tobytes()).hexdigest(),
                    'audio': chunk[cfg.sample_rate],
                    'audio_16k': audio_16k,
                }
                n_chunks += 1
        except Exception as e:
            # Whatever a bad file triggers, the pipeline goes on without it.
            if isinstance(e, audio_io.SkipFile):
                code, reason = e.code, str(e)
            else:
                code, reason = 'decode_error', f'{path}: {type(e).__name__}: {e}'
            logger.warning('Skipping %s', reason)
            yield beam.pvalue.TaggedOutput('skipped', {
                'path': path, 'reason_code': code, 'reason': reason,
                'chunks_already_read': n_chunks})
            return
        yield beam.pvalue.TaggedOutput('source', {
            'path': path,
            'duration_secs': round(info.duration_secs, 6),
            'sample_rate': info.sample_rate,
            'channels': info.channels,
            'format': info.format,
            'subtype': info.subtype,
            'peak': round(info.peak, 6),
            'n_chunks': n_chunks,
        })


# --------------------------------------------------------------- 2. features
class AddFeatures(beam.DoFn):
    """Adds f0_hz, f0_confidence (CREPE) and loudness_db to a chunk."""

    def __init__(self, config: PrepareConfig):
        self.config = config

    def process(self, chunk: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
        cfg = self.config
        out = dict(chunk)
        out.update(dm.compute_features(
            chunk['audio_16k'], cfg.frame_rate, cfg.crepe_model_capacity,
            cfg.crepe_frame_rate, cfg.viterbi, cfg.padding))
        yield out


# ------------------------------------------------------------------- 3. split
def select_eval_hashes(hashes: Sequence[str], fraction: float) -> List[str]:
    """Content hashes of the eval chunks: the round(n * fraction) smallest of
    the n distinct hashes, at least one and at most n - 1 (none if n < 2)."""
    unique = sorted(set(hashes))
    if fraction <= 0 or len(unique) < 2:
        return []
    n_eval = int(math.floor(len(unique) * fraction + 0.5))  # Half up.
    n_eval = min(max(1, n_eval), len(unique) - 1)
    return unique[:n_eval]


def _split_index(chunk, unused_num_partitions, eval_hashes) -> int:
    return 1 if chunk['sha256'] in eval_hashes else 0


# ---------------------------------------------------------------- 4. windows
def split_examples(chunk: Dict[str, Any], config: PrepareConfig
                   ) -> Iterator[Dict[str, np.ndarray]]:
    """Examples of one chunk: windows of example_secs every hop_secs."""
    keys = ['audio', 'audio_16k'] + (
        list(FRAME_FEATURES) if config.frame_rate else [])
    if not config.example_secs:
        yield {k: chunk[k] for k in keys}
        return
    rates = {'audio': config.sample_rate, 'audio_16k': CREPE_SAMPLE_RATE}
    lengths = config.feature_lengths
    hops = {k: dm.n_samples(config.hop_secs, rates[k]) for k in rates}
    if config.frame_rate:
        hop_frames = dm.n_samples(config.hop_secs, config.frame_rate)
        hops.update({k: hop_frames for k in FRAME_FEATURES})
    n_windows = min((len(chunk[k]) - lengths[k]) // hops[k] for k in keys) + 1
    for i in range(max(n_windows, 0)):
        yield {k: chunk[k][i * hops[k]:i * hops[k] + lengths[k]]
               for k in keys}


def example_to_bytes(example: Dict[str, np.ndarray]) -> bytes:
    """A serialized tf.train.Example of float features."""
    import tensorflow as tf
    # A list is ~3x faster to copy into the proto than a numpy array.
    feature = {
        k: tf.train.Feature(float_list=tf.train.FloatList(
            value=np.asarray(v, np.float32).tolist()))
        for k, v in example.items()}
    return tf.train.Example(features=tf.train.Features(
        feature=feature)).SerializeToString()


class SplitExamples(beam.DoFn):
    """chunk -> serialized examples (main) and a 'chunk' record (tagged)."""

    def __init__(self, config: PrepareConfig, split: str):
        self.config = config
        self.split = split

    def process(self, chunk: Dict[str, Any]) -> Iterator[Any]:
        n = 0
        for example in split_examples(chunk, self.config):
            yield example_to_bytes(example)
            n += 1
        yield beam.pvalue.TaggedOutput('chunk', {
            'path': chunk['path'], 'chunk_index': chunk['chunk_index'],
            'start_secs': chunk['start_secs'],
            'duration_secs': chunk['duration_secs'],
            'sha256': chunk['sha256'], 'split': self.split,
            'n_examples': n})


# -------------------------------------------------------------- statistics
class StatisticsFn(beam.CombineFn):
    """Combines chunks' frame features into `dm.FeatureStatistics`."""

    def __init__(self, config: PrepareConfig):
        self.config = config

    def create_accumulator(self):
        return dm.FeatureStatistics()

    def add_input(self, acc, chunk):
        from ddsp import spectral_ops
        power_db = spectral_ops.pad_or_trim_to_expected_length(
            np.asarray(spectral_ops.compute_power(
                chunk['audio_16k'], CREPE_SAMPLE_RATE, self.config.frame_rate,
                frame_size=dm.POWER_FRAME_SIZE,
                padding=self.config.padding)),
            len(chunk['loudness_db']), pad_value=-dm.LOUDNESS_DEFINITION[
                'range_db'])
        acc.add(chunk['f0_hz'], chunk['f0_confidence'], chunk['loudness_db'],
                power_db)
        return acc

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        out = next(accumulators)
        for acc in accumulators:
            out.merge(acc)
        return out

    def extract_output(self, acc):
        return acc


# ---------------------------------------------------------------- 6. finalize
def build_metadata(config: PrepareConfig, output_tfrecord_path: str,
                   input_paths: Sequence[str], sources, skipped, chunks,
                   written: Dict[str, List[str]],
                   statistics_file: Optional[str]) -> Dict[str, Any]:
    """The metadata JSON (see `dataset_metadata` for where it goes)."""
    from ddsp import version
    has_eval = config.eval_split_fraction > 0
    rel = lambda p: p.replace('\\', '/').rsplit('/', 1)[-1]  # noqa: E731
    lengths = config.feature_lengths
    features = {'audio': {'rate': config.sample_rate},
                'audio_16k': {'rate': CREPE_SAMPLE_RATE}}
    if config.frame_rate:
        features.update({k: {'rate': _number(config.frame_rate)}
                         for k in FRAME_FEATURES})
    for k, v in features.items():
        v.update(dtype='float32',
                 length=None if lengths is None else lengths[k])
    chunks = sorted(chunks, key=lambda c: (c['path'], c['chunk_index']))
    splits = {}
    for split in SPLITS_OF[has_eval]:
        mine = [c for c in chunks if c['split'] == split]
        prefix = dm.shard_prefix(output_tfrecord_path, split, has_eval)
        splits[split] = {
            'file_pattern': rel(prefix) + '-*-of-*',
            'shards': sorted(rel(p) for p in written.get(split, [])),
            'num_examples': sum(c['n_examples'] for c in mine),
            'num_chunks': len(mine),
            'audio_secs': round(sum(c['duration_secs'] for c in mine), 3),
        }
    by_path = {}
    for c in chunks:
        by_path.setdefault(c['path'], []).append(
            {k: c[k] for k in ('chunk_index', 'start_secs', 'duration_secs',
                               'split', 'n_examples', 'sha256')})
    sources = sorted(sources, key=lambda s: s['path'])
    for s in sources:
        s['chunks'] = by_path.get(s['path'], [])
    skipped = sorted(skipped, key=lambda s: s['path'])
    reasons = {}
    for s in skipped:
        reasons[s['reason_code']] = reasons.get(s['reason_code'], 0) + 1
    f0 = None
    if config.frame_rate:
        f0 = {'estimator': 'crepe',
              'model_capacity': config.crepe_model_capacity,
              'crepe_frame_rate': _number(config.crepe_frame_rate
                                          or config.frame_rate),
              'viterbi': config.viterbi, 'sample_rate': CREPE_SAMPLE_RATE,
              'frame_size': 1024}
    return {
        'format': dm.FORMAT,
        'format_version': dm.FORMAT_VERSION,
        'created_by': f'ddsp {version.__version__} ddsp_prepare_tfrecord',
        'created_at': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        'sample_rate': config.sample_rate,
        'frame_rate': _number(config.frame_rate),
        'example_secs': _number(config.example_secs),
        'hop_secs': _number(config.hop_secs),
        'chunk_secs': _number(config.chunk_secs or 0),
        'center': config.center,
        'padding': config.padding,
        'feature_lengths': lengths,
        'features': features,
        'f0': f0,
        'loudness': dict(dm.LOUDNESS_DEFINITION) if config.frame_rate else None,
        'eval_split_fraction': config.eval_split_fraction,
        'split_rule': ('chunks ranked by SHA-256 of their 16 kHz float32 '
                       'samples; the round(n * eval_split_fraction) first '
                       '(at least 1, at most n - 1) are eval'),
        'splits': splits,
        'statistics_file': statistics_file and rel(statistics_file),
        'summary': {
            'files_matched': len(input_paths),
            'files_used': len(sources),
            'files_skipped': len(skipped),
            'skipped_by_reason': dict(sorted(reasons.items())),
            'audio_secs_used': round(sum(s['duration_secs'] for s in sources),
                                     3),
            'examples': {k: v['num_examples'] for k, v in splits.items()},
        },
        'sources': sources,
        'skipped': skipped,
    }


SPLITS_OF = {False: ('train',), True: dm.SPLITS}


def _number(x):
    return int(x) if float(x).is_integer() else float(x)


def _finalize(unused_element, config, output_tfrecord_path, input_paths,
              sources, skipped, chunks, statistics, **written):
    """Writes the statistics JSON, then the metadata JSON (atomically)."""
    stats_file = None
    if config.frame_rate:
        stats_file = dm.statistics_path(output_tfrecord_path)
        dm.write_json_atomic(stats_file, statistics.to_json(
            config.frame_rate, config.sample_rate))
    meta = build_metadata(config, output_tfrecord_path, input_paths, sources,
                          skipped, chunks, written, stats_file)
    dm.write_json_atomic(dm.metadata_path(output_tfrecord_path), meta)
    return meta['summary']


# ------------------------------------------------------------------ pipeline
def build_pipeline(pipeline: beam.Pipeline, input_audio_paths: Sequence[str],
                   output_tfrecord_path: str, config: PrepareConfig,
                   num_shards: Optional[int] = None) -> None:
    """Adds the data preparation transforms to `pipeline`."""
    has_eval = config.eval_split_fraction > 0
    read = (pipeline
            | 'Paths' >> beam.Create(list(input_audio_paths))
            | 'DistributeFiles' >> beam.Reshuffle()
            | 'ReadChunks' >> beam.ParDo(ReadChunks(config)).with_outputs(
                'source', 'skipped', main='chunks'))
    chunks = read.chunks | 'DistributeChunks' >> beam.Reshuffle()
    if config.frame_rate:
        chunks = chunks | 'AddFeatures' >> beam.ParDo(AddFeatures(config))
    if has_eval:
        eval_hashes = (chunks
                       | 'Hashes' >> beam.Map(lambda c: c['sha256'])
                       | 'AllHashes' >> beam.combiners.ToList()
                       | 'SelectEval' >> beam.Map(
                           lambda h: set(select_eval_hashes(
                               h, config.eval_split_fraction))))
        parts = chunks | 'Split' >> beam.Partition(
            _split_index, 2, beam.pvalue.AsSingleton(eval_hashes))
        by_split = {'train': parts[0], 'eval': parts[1]}
    else:
        by_split = {'train': chunks}

    written, chunk_records = {}, []
    for split, pcoll in by_split.items():
        examples = pcoll | f'Examples_{split}' >> beam.ParDo(
            SplitExamples(config, split)).with_outputs('chunk', main='examples')
        chunk_records.append(examples.chunk)
        files = (examples.examples
                 | f'Reshuffle_{split}' >> beam.Reshuffle()
                 | f'Write_{split}' >> beam.io.WriteToTFRecord(
                     dm.shard_prefix(output_tfrecord_path, split, has_eval),
                     num_shards=num_shards or 0))
        written[split] = beam.pvalue.AsSingleton(
            files | f'Files_{split}' >> beam.combiners.ToList())
    if config.frame_rate:
        statistics = by_split['train'] | 'Statistics' >> beam.CombineGlobally(
            StatisticsFn(config))
    else:
        statistics = pipeline | 'NoStatistics' >> beam.Create([None])
    as_list = lambda name, pc: beam.pvalue.AsSingleton(  # noqa: E731
        pc | name >> beam.combiners.ToList())
    _ = (pipeline
         | 'Once' >> beam.Create([None])
         | 'Finalize' >> beam.Map(
             _finalize, config, output_tfrecord_path,
             list(input_audio_paths),
             sources=as_list('Sources', read.source),
             skipped=as_list('Skipped', read.skipped),
             chunks=as_list('Chunks', tuple(chunk_records)
                            | 'AllChunks' >> beam.Flatten()),
             statistics=beam.pvalue.AsSingleton(statistics),
             **written))


def expand_filepatterns(patterns: Sequence[str]):
    """Files matched by comma-separated `tf.io.gfile` globs, sorted, unique.

    Returns (paths, patterns that matched nothing). Directories matched by a
    glob are kept: the pipeline reports and skips them.
    """
    import tensorflow as tf
    paths, unmatched = [], []
    for pattern in patterns:
        if not pattern:
            continue
        matched = tf.io.gfile.glob(pattern)
        if not matched:
            unmatched.append(pattern)
        paths.extend(matched)
    return sorted(set(paths)), unmatched


def _remove(path: str) -> None:
    import tensorflow as tf
    try:
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)
    except tf.errors.NotFoundError:
        pass


def _shards_on_disk(output_tfrecord_path: str) -> List[str]:
    import tensorflow as tf
    return [p for p in tf.io.gfile.glob(output_tfrecord_path + '-*')
            if (dm.parse_shard_name(p) or {}).get('prefix')
            == output_tfrecord_path]


def _remove_beam_temp(output_tfrecord_path: str) -> None:
    """Removes Beam's temporary write folders of this output (after a
    failure; Beam removes them itself on success)."""
    import tensorflow as tf
    directory, _, base = output_tfrecord_path.replace('\\', '/').rpartition(
        '/')
    for split_base in (base, base + '-train', base + '-eval'):
        pattern = (directory + '/' if directory else '') + (
            f'beam-temp-{split_base}-*')
        for p in tf.io.gfile.glob(pattern):
            logger.info('Removing temporary %s', p)
            _remove(p)


def _runner(options: PipelineOptions):
    """The runner object for `options`, or None to let Beam pick by name.

    The DirectRunner of Beam >= 2.6x first tries to download and start the
    Prism runner binary, which ignores --direct_num_workers and
    --direct_running_mode; for DirectRunner we use the FnApiRunner directly,
    which is what DirectRunner runs batch pipelines on without Prism (local,
    parallel with those two options). Other runners are left to Beam.
    """
    from apache_beam.options.pipeline_options import StandardOptions
    name = options.view_as(StandardOptions).runner
    if name is None or (isinstance(name, str) and name.lower() in (
            'direct', 'directrunner', 'switchingdirectrunner')):
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        return fn_runner.FnApiRunner()
    return None


def _check_crc32c() -> None:
    """Beam's TFRecord writer needs a CRC32C library; say which early."""
    import importlib.util
    if not any(importlib.util.find_spec(m) for m in (
            'google_crc32c', 'crcmod', 'snappy')):
        raise ImportError(
            'Writing TFRecords with Apache Beam needs a CRC32C library: '
            'pip install google-crc32c (or apache-beam[tfrecord]).')


def prepare_tfrecord(input_audio_paths: Sequence[str],
                     output_tfrecord_path: str,
                     num_shards: Optional[int] = None,
                     sample_rate: int = 16000,
                     frame_rate: float = 250,
                     example_secs: float = 4,
                     hop_secs: float = 1,
                     eval_split_fraction: float = 0.0,
                     chunk_secs: Optional[float] = 20.0,
                     center: bool = False,
                     viterbi: bool = True,
                     pipeline_options: Sequence[str] = ('--runner=DirectRunner',),
                     crepe_model_capacity: str = 'full',
                     crepe_frame_rate: Optional[float] = None
                     ) -> Dict[str, Any]:
    """Prepares a TFRecord dataset from audio files; returns its metadata.

    Args: as the flags of `ddsp_prepare_tfrecord` (reference names), plus
      crepe_model_capacity: CREPE model ('tiny' ... 'full', the reference's).
      crepe_frame_rate: rate CREPE runs at (None: frame_rate, the reference's);
        lower is faster, f0 is interpolated to frame_rate.

    Raises:
      ValueError: inconsistent arguments (before anything runs).
      NoUsableAudioError: no file gave an example (outputs removed).
    """
    import tensorflow as tf
    config = PrepareConfig(
        sample_rate=sample_rate, frame_rate=frame_rate,
        example_secs=example_secs, hop_secs=hop_secs,
        eval_split_fraction=eval_split_fraction, chunk_secs=chunk_secs,
        center=center, viterbi=viterbi,
        crepe_model_capacity=crepe_model_capacity,
        crepe_frame_rate=crepe_frame_rate).validate()
    if not output_tfrecord_path:
        raise ValueError('output_tfrecord_path is required.')
    _check_crc32c()
    if not input_audio_paths:
        raise ValueError('No input audio files.')
    directory = output_tfrecord_path.replace('\\', '/').rpartition('/')[0]
    if directory:
        tf.io.gfile.makedirs(directory)
    before = set(_shards_on_disk(output_tfrecord_path))
    options = PipelineOptions(list(pipeline_options))
    try:
        with beam.Pipeline(runner=_runner(options), options=options) as pipeline:
            build_pipeline(pipeline, input_audio_paths, output_tfrecord_path,
                           config, num_shards)
    except BaseException:
        _remove_beam_temp(output_tfrecord_path)
        raise
    meta_file = dm.metadata_path(output_tfrecord_path)
    meta = dm.read_metadata(meta_file)
    ours = {dm.resolve(meta_file, shard)
            for s in meta['splits'].values() for shard in s['shards']}
    for stale in sorted(before - ours):
        logger.warning('Removing stale shard of an earlier run: %s', stale)
        _remove(stale)
    if not sum(meta['summary']['examples'].values()):
        for p in sorted(ours) + [meta_file, dm.statistics_path(
                output_tfrecord_path)]:
            _remove(p)
        raise NoUsableAudioError(
            'No usable audio: none of the input files gave an example.\n'
            + format_summary(meta), meta)
    return meta


def format_summary(meta: Dict[str, Any]) -> str:
    """Human-readable run summary from the metadata."""
    s = meta['summary']
    lines = [
        f'Files matched: {s["files_matched"]}, used: {s["files_used"]}, '
        f'skipped: {s["files_skipped"]}',
        f'Audio used: {s["audio_secs_used"]:.1f} s',
        'Examples: ' + ', '.join(f'{k} {v}' for k, v in s['examples'].items()),
    ]
    if s['skipped_by_reason']:
        lines.append('Skipped by reason: ' + ', '.join(
            f'{k} {v}' for k, v in s['skipped_by_reason'].items()))
        lines.extend(f'  skipped {x["reason"]}' for x in meta['skipped'])
    return '\n'.join(lines)
