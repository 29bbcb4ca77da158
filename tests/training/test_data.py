"""Tests of ddsp.training.data (DataProviders)."""
import os
import sys
import types

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp.training import data
from ddsp.training.data_preparation import dataset_metadata as dm


class RangeProvider(data.DataProvider):
    """n examples {'x': [i]}."""

    def __init__(self, n=100, sample_rate=16000, frame_rate=250, offset=0):
        super().__init__(sample_rate, frame_rate)
        self.n, self.offset = n, offset

    def get_dataset(self, shuffle=True):
        return tf.data.Dataset.range(self.offset, self.offset + self.n).map(
            lambda i: {'x': tf.reshape(i, [1])})


def _values(dataset):
    return [int(v) for b in dataset for v in np.ravel(b['x'].numpy())]


def write_records(path, examples):
    with tf.io.TFRecordWriter(str(path)) as w:
        for ex in examples:
            feature = {k: tf.train.Feature(float_list=tf.train.FloatList(
                value=np.asarray(v, np.float32))) for k, v in ex.items()}
            w.write(tf.train.Example(features=tf.train.Features(
                feature=feature)).SerializeToString())


def make_example(secs=1, sample_rate=16000, n_frames=250, audio_16k=True,
                 value=0.0):
    ex = {'audio': np.full(int(secs * sample_rate), value)}
    if audio_16k:
        ex['audio_16k'] = np.full(int(secs * 16000), value)
    ex.update({k: np.full(n_frames, value) for k in (
        'f0_hz', 'f0_confidence', 'loudness_db')})
    return ex


def write_metadata(prefix, sample_rate=16000, frame_rate=250, example_secs=1,
                   center=False, keys=('audio', 'audio_16k', 'f0_hz',
                                       'f0_confidence', 'loudness_db')):
    lengths = dm.feature_lengths(sample_rate, frame_rate, example_secs, center)
    meta = {'format': dm.FORMAT, 'format_version': dm.FORMAT_VERSION,
            'sample_rate': sample_rate, 'frame_rate': frame_rate,
            'example_secs': example_secs, 'center': center,
            'feature_lengths': lengths,
            'features': {k: {} for k in keys}, 'splits': {}}
    dm.write_json_atomic(dm.metadata_path(str(prefix)), meta)
    return dm.metadata_path(str(prefix))


# ------------------------------------------------------------- get_batch
def test_get_batch_shuffles_examples():
    p = RangeProvider(100)
    ordered = _values(p.get_batch(10, shuffle=False, repeats=1))
    assert ordered == list(range(100))
    epoch = _values(p.get_batch(10, shuffle=True, repeats=1))
    assert sorted(epoch) == ordered and epoch != ordered
    two = _values(p.get_batch(10, shuffle=True, repeats=2))
    assert two[:100] != two[100:]  # Reshuffled every epoch.


def test_get_batch_drop_remainder_and_repeats():
    p = RangeProvider(25)
    shapes = [b['x'].shape[0] for b in p.get_batch(10, shuffle=False,
                                                     repeats=1)]
    assert shapes == [10, 10]
    shapes = [b['x'].shape[0] for b in p.get_batch(
        10, shuffle=False, repeats=1, drop_remainder=False)]
    assert shapes == [10, 10, 5]


# ------------------------------------------------------------- TFRecords
def test_tfrecord_provider_without_metadata_uses_reference_defaults(tmp_path):
    write_records(tmp_path / 'old.tfrecord-00000-of-00001',
                  [make_example(4, n_frames=1000)] * 2)
    p = data.TFRecordProvider(str(tmp_path / 'old.tfrecord*'))
    assert (p.sample_rate, p.frame_rate, p.example_secs, p.centered) == (
        16000, 250, 4, False)
    assert p.metadata is None
    batch = next(iter(p.get_batch(2, shuffle=False)))
    assert batch['audio'].shape == (2, 64000)
    assert batch['f0_hz'].shape == (2, 1000)


def test_tfrecord_provider_reads_lengths_from_metadata(tmp_path):
    prefix = tmp_path / 'd.tfrecord'
    meta_file = write_metadata(prefix, sample_rate=48000, frame_rate=50,
                               example_secs=2, center=True)
    write_records(str(prefix) + '-00000-of-00001',
                  [make_example(2, 48000, n_frames=101)] * 3)
    p = data.TFRecordProvider(str(prefix) + '*')  # Matches the JSON too.
    assert (p.sample_rate, p.frame_rate, p.example_secs, p.centered) == (
        48000, 50, 2, True)
    assert p.metadata['sample_rate'] == 48000
    batch = next(iter(p.get_batch(3, shuffle=True)))
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        'audio': (3, 96000), 'audio_16k': (3, 32000), 'f0_hz': (3, 101),
        'f0_confidence': (3, 101), 'loudness_db': (3, 101)}
    # Bindings that agree are fine, ones that disagree name the metadata.
    assert data.TFRecordProvider(str(prefix) + '*',
                                 sample_rate=48000).sample_rate == 48000
    with pytest.raises(ValueError, match='metadata sets it') as e:
        _ = data.TFRecordProvider(str(prefix) + '*', example_secs=4).sample_rate
    assert meta_file in str(e.value)
    # An explicit metadata_path works without matching shards.
    p = data.TFRecordProvider(str(prefix) + '-0*', metadata_path=meta_file)
    assert p.frame_rate == 50


def test_record_disagreeing_with_metadata_names_the_file(tmp_path):
    prefix = tmp_path / 'd.tfrecord'
    write_metadata(prefix, example_secs=1)
    bad_shard = str(prefix) + '-00001-of-00002'
    write_records(str(prefix) + '-00000-of-00002', [make_example(1)])
    write_records(bad_shard, [make_example(2, n_frames=500)])  # 2 s records.
    p = data.TFRecordProvider(str(prefix) + '*')
    with pytest.raises(tf.errors.InvalidArgumentError) as e:
        for _ in p.get_dataset(shuffle=False):
            pass
    assert bad_shard in str(e.value)
    assert 'disagrees with the dataset metadata' in str(e.value)


def test_missing_feature_is_an_error_naming_the_file(tmp_path):
    prefix = tmp_path / 'd.tfrecord'
    write_metadata(prefix)
    shard = str(prefix) + '-00000-of-00001'
    write_records(shard, [make_example(1, audio_16k=False)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=shard):
        next(iter(data.TFRecordProvider(str(prefix) + '*').get_dataset()))


def test_legacy_provider_reads_records_without_audio_16k(tmp_path):
    write_records(tmp_path / 'l.tfrecord-00000-of-00001',
                  [make_example(4, n_frames=1000, audio_16k=False)])
    p = data.LegacyTFRecordProvider(str(tmp_path / 'l.tfrecord*'))
    ex = next(iter(p.get_dataset(shuffle=False)))
    assert set(ex) == {'audio', 'f0_hz', 'f0_confidence', 'loudness_db'}


def test_variable_length_examples_are_padded_in_batches(tmp_path):
    prefix = tmp_path / 'v.tfrecord'
    write_metadata(prefix, frame_rate=0, example_secs=0,
                   keys=('audio', 'audio_16k'))
    write_records(str(prefix) + '-00000-of-00001', [
        {'audio': np.ones(100), 'audio_16k': np.ones(100)},
        {'audio': np.ones(300), 'audio_16k': np.ones(300)}])
    p = data.TFRecordProvider(str(prefix) + '*')
    batch = next(iter(p.get_batch(2, shuffle=False)))
    assert batch['audio'].shape == (2, 300)
    assert float(tf.reduce_sum(batch['audio'])) == 400.0


def test_tfrecord_provider_needs_a_file_pattern():
    with pytest.raises(ValueError, match='file_pattern'):
        data.TFRecordProvider().get_dataset()


def test_gin_names(tmp_path):
    write_records(tmp_path / 'g.tfrecord-00000-of-00001',
                  [make_example(4, n_frames=1000)])

    @gin.configurable
    def make_provider(data_provider=None):
        return data_provider

    try:
        gin.parse_config([
            'make_provider.data_provider = @data.TFRecordProvider()',
            f'TFRecordProvider.file_pattern = "{tmp_path}/g.tfrecord*"',
            'TFRecordProvider.example_secs = 4',
        ])
        p = make_provider()
        assert isinstance(p, data.TFRecordProvider) and p.example_secs == 4
        for name in ('TFRecordProvider', 'LegacyTFRecordProvider', 'NSynthTfds',
                     'ExperimentalDataProvider', 'BaseMultiProvider',
                     'ZippedProvider', 'MixedProvider'):
            gin.parse_config(f'make_provider.data_provider = @{name}')
    finally:
        gin.clear_config()


# ------------------------------------------------------------- others
def test_experimental_data_provider(tmp_path):
    ds = tf.data.Dataset.from_tensor_slices({'audio': np.ones([3, 8],
                                                              np.float32)})
    ds.save(str(tmp_path / 'saved'))
    p = data.ExperimentalDataProvider(str(tmp_path / 'saved'), 16000, 250)
    assert next(iter(p.get_batch(3, shuffle=False)))['audio'].shape == (3, 8)


def test_nsynth_tfds_with_a_stub_tfds(monkeypatch):
    calls = {}

    def load(name, data_dir, split, shuffle_files, download):
        calls.update(name=name, data_dir=data_dir, split=split,
                     download=download)
        return tf.data.Dataset.from_tensors({
            'audio': tf.zeros([64000]), 'pitch': tf.constant(60),
            'f0': {'hz': tf.ones([1000]), 'confidence': tf.ones([1000])},
            'loudness': {'db': tf.zeros([1000])},
            'instrument': {'source': 0, 'family': 1, 'label': 2}})

    monkeypatch.setitem(sys.modules, 'tensorflow_datasets',
                        types.SimpleNamespace(load=load))
    p = data.NSynthTfds(data_dir='/tmp/tfds')
    ex = next(iter(p.get_dataset()))
    assert calls == {'name': 'nsynth/gansynth_subset.f0_and_loudness:2.3.0',
                     'data_dir': '/tmp/tfds', 'split': 'train',
                     'download': False}
    assert set(ex) == {'audio', 'f0_hz', 'f0_confidence', 'loudness_db',
                       'pitch', 'instrument_source', 'instrument_family',
                       'instrument'}
    p = data.NSynthTfds(data_dir='/tmp/tfds', include_note_labels=False)
    assert set(next(iter(p.get_dataset()))) == {
        'audio', 'f0_hz', 'f0_confidence', 'loudness_db'}


def test_tfds_provider_without_tfds_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
    p = data.TfdsProvider('x', 'train', None, 16000, 250)
    with pytest.raises(ImportError, match='tensorflow-datasets'):
        p.get_dataset()


def test_multi_provider_checks():
    with pytest.raises(ValueError, match='sample_rate'):
        data.BaseMultiProvider([RangeProvider(), RangeProvider(
            sample_rate=48000)])
    with pytest.raises(ValueError, match='frame_rate'):
        data.BaseMultiProvider([RangeProvider(), RangeProvider(frame_rate=50)])
    with pytest.raises(ValueError, match='one entry per'):
        data.BaseMultiProvider([RangeProvider(), RangeProvider()], [1])
    p = data.BaseMultiProvider([RangeProvider(), RangeProvider()])
    assert (p.sample_rate, p.frame_rate) == (16000, 250)


def test_zipped_provider():
    a, b = RangeProvider(50), RangeProvider(50, offset=1000)
    x, y = next(iter(data.ZippedProvider([a, b]).get_batch(8)))
    assert x['x'].shape == y['x'].shape == (8, 1)
    assert np.all(y['x'].numpy() >= 1000) and np.all(x['x'].numpy() < 1000)
    x, y = next(iter(data.ZippedProvider([a, b], [3, 1]).get_batch(8)))
    assert (x['x'].shape[0], y['x'].shape[0]) == (6, 2)
    x, y = next(iter(data.ZippedProvider([a, b]).get_dataset(shuffle=False)))
    assert (int(x['x'][0]), int(y['x'][0])) == (0, 1000)


def test_mixed_provider():
    a, b = RangeProvider(200), RangeProvider(200, offset=1000)
    values = _values(data.MixedProvider([a, b], [3, 1]).get_batch(
        100, shuffle=False, repeats=1).take(1))
    n_b = sum(v >= 1000 for v in values)
    assert len(values) == 100 and 10 < n_b < 40  # ~25 % from b.


def test_json_atomic_write_leaves_no_temporary(tmp_path):
    dm.write_json_atomic(str(tmp_path / 'a.json'), {'x': 1})
    dm.write_json_atomic(str(tmp_path / 'a.json'), {'x': 2})
    assert os.listdir(tmp_path) == ['a.json']
    assert dm.read_json(str(tmp_path / 'a.json')) == {'x': 2}


# ------------------------------------------------------------- splits
sys.path.insert(0, os.path.dirname(__file__))
import eval_testlib  # noqa: E402
import model_dir_testlib  # noqa: E402

_TONE_F0 = model_dir_testlib.tone_features(4)['f0_hz'][:, 0]


def _examples_read(provider):
    """Indices (into the tone dataset) of the examples a provider reads."""
    first_f0 = [float(ex['f0_hz'][0]) for ex in
                provider.get_dataset(shuffle=False)]
    return sorted(int(np.argmin(np.abs(_TONE_F0 - f))) for f in first_f0)


@pytest.fixture(scope='module')
def split_dataset(tmp_path_factory):
    return eval_testlib.write_tone_dataset(
        str(tmp_path_factory.mktemp('split')))


def test_split_selects_train_or_eval_shards(split_dataset, caplog):
    pattern = split_dataset + '*'
    train = data.TFRecordProvider(pattern)  # split='train' by default.
    assert train.split == 'train'
    assert [os.path.basename(f) for f in train.files] == [
        'tones.tfrecord-train-00000-of-00001']
    assert _examples_read(train) == [0, 1]
    assert _examples_read(data.TFRecordProvider(pattern, split='eval')) == [
        2, 3]
    for everything in (None, 'all'):
        provider = data.TFRecordProvider(pattern, split=everything)
        assert _examples_read(provider) == [0, 1, 2, 3]
    assert train.frame_rate == 250 and train.example_secs == 1
    assert 'No eval shards' not in caplog.text


def test_patterns_naming_shards_keep_working(split_dataset, caplog):
    # Explicit eval shards for training: read as given (old behaviour).
    provider = data.TFRecordProvider(split_dataset + '-eval*')
    assert _examples_read(provider) == [2, 3]
    # The eval provider of a run whose pattern names the train shards finds
    # the dataset's eval shards through its metadata.
    provider = data.TFRecordProvider(split_dataset + '-train*', split='eval')
    assert _examples_read(provider) == [2, 3]
    assert 'No eval shards' not in caplog.text


def test_dataset_without_eval_split_is_evaluated_whole_with_warning(
        tmp_path, caplog):
    prefix = eval_testlib.write_tone_dataset(
        str(tmp_path), splits={None: [0, 1, 2]}, statistics=False)
    train = data.TFRecordProvider(prefix + '*')
    assert _examples_read(train) == [0, 1, 2]
    assert 'No eval shards' not in caplog.text
    provider = data.TFRecordProvider(prefix + '*', split='eval')
    assert _examples_read(provider) == [0, 1, 2]
    assert 'No eval shards among 1 file(s) matching' in caplog.text
    assert provider.dataset_statistics_path() is None


def test_splits_are_chosen_per_dataset(tmp_path, caplog):
    """One pattern over a dataset with an eval split (a) and one without
    (b): each is narrowed on its own."""
    eval_testlib.write_tone_dataset(str(tmp_path), 'a')
    eval_testlib.write_tone_dataset(str(tmp_path), 'b', splits={None: [3]},
                                    statistics=False)
    pattern = str(tmp_path / '*.tfrecord*')
    names = lambda p: [os.path.basename(f) for f in p.files]  # noqa: E731
    assert names(data.TFRecordProvider(pattern)) == [
        'a.tfrecord-train-00000-of-00001', 'b.tfrecord-00000-of-00001']
    assert 'No eval shards' not in caplog.text
    assert names(data.TFRecordProvider(pattern, split='eval')) == [
        'a.tfrecord-eval-00000-of-00001', 'b.tfrecord-00000-of-00001']
    assert 'No eval shards among 1 file(s)' in caplog.text


def test_split_validation_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="split must be 'train'"):
        data.TFRecordProvider('x*', split='test')
    provider = data.TFRecordProvider(str(tmp_path / 'nothing*'))
    with pytest.raises(ValueError, match='no TFRecord files match') as e:
        provider.get_dataset()
    assert str(tmp_path / 'nothing*') in str(e.value)


def test_dataset_statistics_path(split_dataset):
    expected = os.path.join(os.path.dirname(split_dataset),
                            'dataset_statistics.json')
    for split in ('train', 'eval'):
        provider = data.TFRecordProvider(split_dataset + '*', split=split)
        assert provider.dataset_statistics_path() == expected


def test_tfrecord_gin_trains_on_train_and_evaluates_on_eval(split_dataset):
    from ddsp.training import ddsp_run  # pylint: disable=import-outside-toplevel
    gin.clear_config()
    try:
        ddsp_run.parse_gin('', ['datasets/tfrecord.gin'], [
            f"TFRecordProvider.file_pattern = '{split_dataset}*'"])
        providers = {name: gin.query_parameter(f'{name}.data_provider')
                     .scoped_configurable_fn()
                     for name in ('train', 'evaluate', 'sample')}
    finally:
        gin.clear_config()
    assert _examples_read(providers['train']) == [0, 1]
    assert _examples_read(providers['evaluate']) == [2, 3]
    assert _examples_read(providers['sample']) == [2, 3]
