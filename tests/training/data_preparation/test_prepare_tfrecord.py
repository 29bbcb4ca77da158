"""Tests of the data preparation pipeline (`ddsp_prepare_tfrecord`)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from ddsp import spectral_ops
from ddsp.training import data
from ddsp.training import postprocessing
from ddsp.training.data_preparation import dataset_metadata as dm
from ddsp.training.data_preparation import prepare_tfrecord_lib as lib

# CREPE tiny on a 50 Hz grid keeps every run ~1 s; 1 s examples, hop 1 s.
FAST = {'crepe_model_capacity': 'tiny', 'crepe_frame_rate': 50,
        'example_secs': 1, 'hop_secs': 1}
KEYS = {'audio', 'audio_16k', 'f0_hz', 'f0_confidence', 'loudness_db'}


def prepare(paths, out, **kwargs):
    return lib.prepare_tfrecord([str(p) for p in paths], str(out),
                                **{**FAST, **kwargs})


def read_records(pattern):
    """All records of the matched shards as dicts of numpy arrays."""
    files = sorted(tf.io.gfile.glob(str(pattern)))
    out = []
    for record in tf.data.TFRecordDataset(files):
        ex = tf.train.Example.FromString(record.numpy())
        out.append({k: np.array(v.float_list.value, np.float32)
                    for k, v in ex.features.feature.items()})
    return out


def cents(f0_hz, ref_hz):
    return 1200 * np.log2(np.maximum(f0_hz, 1e-3) / ref_hz)


def midi(hz):
    return 12 * np.log2(hz / 440.0) + 69


def peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


# ------------------------------------------------------------- features
def test_known_f0_keys_lengths_and_loudness(tmp_path, write_tone):
    loud = write_tone('loud.wav', 220.0, 3.0, amplitude=0.5)
    quiet = write_tone('quiet.wav', 330.0, 3.0, amplitude=0.05)
    meta = prepare([loud, quiet], tmp_path / 'out' / 'train.tfrecord')
    records = read_records(tmp_path / 'out' / 'train.tfrecord-*')
    assert len(records) == 6 == meta['splits']['train']['num_examples']
    for r in records:
        assert set(r) == KEYS
        assert len(r['audio']) == len(r['audio_16k']) == 16000
        assert {len(r[k]) for k in ('f0_hz', 'f0_confidence',
                                    'loudness_db')} == {250}
    by_f0 = {220.0: [], 330.0: []}
    for r in records:
        ref = min(by_f0, key=lambda f: abs(f - np.median(r['f0_hz'])))
        by_f0[ref].append(r)
        # f0 within 20 cents away from the 10 ms fades at the file ends.
        err = np.abs(cents(r['f0_hz'][10:-10], ref))
        assert np.max(err) < 20, (ref, np.max(err))
        assert np.median(r['f0_confidence']) > 0.8
    assert len(by_f0[220.0]) == len(by_f0[330.0]) == 3
    loud_db = np.mean([np.mean(r['loudness_db'][10:-10])
                       for r in by_f0[220.0]])
    quiet_db = np.mean([np.mean(r['loudness_db'][10:-10])
                        for r in by_f0[330.0]])
    assert loud_db - quiet_db > 15  # 20 dB apart in amplitude.


def test_centered_frames(tmp_path, write_tone):
    tone = write_tone('a.wav', 220.0, 2.0)
    meta = prepare([tone], tmp_path / 'c.tfrecord', center=True)
    assert meta['feature_lengths']['f0_hz'] == 251
    assert meta['padding'] == 'center'
    for r in read_records(tmp_path / 'c.tfrecord-*'):
        assert len(r['f0_hz']) == len(r['loudness_db']) == 251
        assert len(r['audio']) == 16000
        assert np.max(np.abs(cents(r['f0_hz'][15:-15], 220.0))) < 20


@pytest.mark.parametrize('input_rate,sample_rate,frame_rate', [
    (44100, 48000, 250), (48000, 44100, 0), (16000, 22050, 0),
    (44100, 16000, 0)])
def test_input_and_output_sample_rates(tmp_path, write_tone, input_rate,
                                       sample_rate, frame_rate):
    tone = write_tone('a.wav', 441.0, 2.0, sample_rate=input_rate,
                      channels=2)
    meta = prepare([tone], tmp_path / 'sr.tfrecord', sample_rate=sample_rate,
                   frame_rate=frame_rate)
    assert meta['sample_rate'] == sample_rate
    records = read_records(tmp_path / 'sr.tfrecord-*')
    assert len(records) == 2
    for r in records:
        assert len(r['audio']) == sample_rate
        assert len(r['audio_16k']) == 16000
        assert peak_hz(r['audio'], sample_rate) == pytest.approx(441, abs=2)
        assert peak_hz(r['audio_16k'], 16000) == pytest.approx(441, abs=2)
        if frame_rate:
            assert len(r['f0_hz']) == 250
            assert np.median(np.abs(cents(r['f0_hz'], 441.0))) < 20


def test_audio_only_mode(tmp_path, write_tone):
    tone = write_tone('a.wav', 220.0, 2.0)
    meta = prepare([tone], tmp_path / 'a.tfrecord', frame_rate=0)
    records = read_records(tmp_path / 'a.tfrecord-*')
    assert len(records) == 2
    assert all(set(r) == {'audio', 'audio_16k'} for r in records)
    assert meta['f0'] is None and meta['statistics_file'] is None
    assert set(meta['feature_lengths']) == {'audio', 'audio_16k'}
    assert not os.path.exists(tmp_path / 'dataset_statistics.json')


def test_whole_chunk_examples(tmp_path, write_tone):
    """example_secs=0: one (variable-length) example per chunk."""
    a = write_tone('a.wav', 220.0, 2.5)
    b = write_tone('b.wav', 220.0, 1.5)
    meta = prepare([a, b], tmp_path / 'w.tfrecord', example_secs=0,
                   frame_rate=0, chunk_secs=2)
    assert meta['feature_lengths'] is None
    lengths = sorted(len(r['audio']) for r in read_records(
        tmp_path / 'w.tfrecord-*'))
    assert lengths == [24000, 40000]  # 2.5 s is one chunk: 0.5 s < 1 s.


# ------------------------------------------------------------- eval split
EVAL_F0S = (201.7, 263.3, 317.9, 389.1)  # Non-integer: no repeated chunk.


def _split_of(meta):
    return {c['sha256']: c['split'] for s in meta['sources']
            for c in s['chunks']}


EVAL_KWARGS = dict(eval_split_fraction=0.25, chunk_secs=1, frame_rate=0)


def test_eval_split_by_content_hash_and_by_chunk(tmp_path, write_tone):
    paths = [write_tone(f'{i}.wav', f0, 3.0) for i, f0 in enumerate(EVAL_F0S)]
    meta = prepare(paths, tmp_path / 'd.tfrecord', **EVAL_KWARGS)
    assert meta['splits']['eval']['num_chunks'] == 3  # round(12 * 0.25).
    assert meta['summary']['examples'] == {'train': 9, 'eval': 3}
    split_of = _split_of(meta)
    assert len(split_of) == 12
    eval_hashes = sorted(h for h, s in split_of.items() if s == 'eval')
    assert eval_hashes == sorted(split_of)[:3]  # The smallest hashes.
    train = read_records(tmp_path / 'd.tfrecord-train-*')
    evals = read_records(tmp_path / 'd.tfrecord-eval-*')
    assert (len(train), len(evals)) == (9, 3)
    train_audio = {r['audio'].tobytes() for r in train}
    assert not any(r['audio'].tobytes() in train_audio for r in evals)
    assert all(s.startswith('d.tfrecord-eval-') for s in
               meta['splits']['eval']['shards'])
    assert meta['splits']['train']['file_pattern'] == 'd.tfrecord-train-*-of-*'


@pytest.mark.slow
def test_eval_split_does_not_depend_on_input_order(tmp_path, write_tone):
    paths = [write_tone(f'{i}.wav', f0, 3.0) for i, f0 in enumerate(EVAL_F0S)]
    meta1 = prepare(paths, tmp_path / 'one' / 'd.tfrecord', **EVAL_KWARGS)
    meta2 = prepare(paths[::-1], tmp_path / 'two' / 'd.tfrecord',
                    **EVAL_KWARGS)
    assert _split_of(meta1) == _split_of(meta2)


def test_select_eval_hashes():
    assert lib.select_eval_hashes(['b', 'a', 'c', 'a'], 0.4) == ['a']
    assert lib.select_eval_hashes(['b', 'a', 'c', 'a'], 0.5) == ['a', 'b']
    assert lib.select_eval_hashes(['b', 'a', 'c', 'd'], 0.5) == ['a', 'b']
    assert lib.select_eval_hashes(['a'], 0.5) == []  # Keep one for train.
    assert lib.select_eval_hashes(['b', 'a'], 0.01) == ['a']  # At least one.
    assert lib.select_eval_hashes(['b', 'a'], 0.99) == ['a']  # At most n-1.
    assert lib.select_eval_hashes(['b', 'a'], 0.0) == []


# ------------------------------------------------------------- bad input
BAD_CASES = {
    'empty.wav': 'empty_file',
    'corrupt.wav': 'unreadable',
    'readme.txt': 'unreadable',
    'zero_samples.wav': 'no_samples',
    'short.wav': 'too_short',
    'silent.wav': 'silent',
    'nan.wav': 'non_finite',
    'inf.flac': 'unreadable',  # FLAC can't hold Inf: written as a text stub.
    'folder.wav': 'directory',
}


def _write_bad_inputs(d, tone):
    os.makedirs(d, exist_ok=True)
    sf.write(os.path.join(d, 'good1.wav'), tone(220.5, 2.0, 16000), 16000)
    sf.write(os.path.join(d, 'good2.flac'), tone(330.5, 2.0, 44100), 44100)
    sf.write(os.path.join(d, 'good3.ogg'), tone(250.5, 2.5, 22050), 22050)
    open(os.path.join(d, 'empty.wav'), 'wb').close()
    with open(os.path.join(d, 'corrupt.wav'), 'wb') as f:
        f.write(b'RIFF\x24\x00\x00\x00WAVEjunk' * 64)
    with open(os.path.join(d, 'readme.txt'), 'w') as f:
        f.write('These are not audio.\n' * 50)
    sf.write(os.path.join(d, 'zero_samples.wav'), np.zeros(0, np.float32),
             16000)
    sf.write(os.path.join(d, 'short.wav'), tone(220.5, 0.5, 16000), 16000)
    sf.write(os.path.join(d, 'silent.wav'), np.zeros(32000, np.float32),
             16000)
    x = tone(220.5, 2.0, 16000)
    x[1000] = np.nan
    sf.write(os.path.join(d, 'nan.wav'), x, 16000, subtype='FLOAT')
    with open(os.path.join(d, 'inf.flac'), 'w') as f:
        f.write('fLaC but not really')
    os.makedirs(os.path.join(d, 'folder.wav'))


@pytest.fixture(scope='module')
def bad_run(tmp_path_factory):
    """One run over good files mixed with every kind of bad one."""
    def tone(f0, secs, sr):
        t = np.arange(int(secs * sr)) / sr
        return (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    d = str(tmp_path_factory.mktemp('bad') / 'audio')
    _write_bad_inputs(d, tone)
    paths, unmatched = lib.expand_filepatterns([os.path.join(d, '*'),
                                                os.path.join(d, '*.none')])
    out = str(tmp_path_factory.mktemp('bad_out') / 'x.tfrecord')
    meta = prepare(paths, out, frame_rate=0)
    return {'dir': d, 'paths': paths, 'unmatched': unmatched, 'meta': meta,
            'out': out}


@pytest.mark.parametrize('name,code', sorted(BAD_CASES.items()))
def test_bad_input_is_skipped_with_reason(bad_run, name, code):
    path = os.path.join(bad_run['dir'], name)
    assert path in bad_run['paths']
    skipped = {s['path']: s for s in bad_run['meta']['skipped']}
    assert skipped[path]['reason_code'] == code
    assert path in skipped[path]['reason']


def test_bad_input_good_files_all_written(bad_run):
    meta = bad_run['meta']
    good = sorted(os.path.join(bad_run['dir'], n)
                  for n in ('good1.wav', 'good2.flac', 'good3.ogg'))
    assert sorted(s['path'] for s in meta['sources']) == good
    assert meta['summary']['examples'] == {'train': 6}
    assert len(read_records(bad_run['out'] + '-*')) == 6
    assert meta['summary']['files_skipped'] == len(BAD_CASES)
    assert sum(meta['summary']['skipped_by_reason'].values()) == len(
        BAD_CASES)
    assert meta['summary']['audio_secs_used'] == pytest.approx(6.5, abs=0.01)
    assert bad_run['unmatched'] == [os.path.join(bad_run['dir'], '*.none')]
    summary = lib.format_summary(meta)
    assert 'skipped: 9' in summary and 'corrupt.wav' in summary


def test_no_usable_audio_fails_and_leaves_nothing(tmp_path):
    (tmp_path / 'empty.wav').write_bytes(b'')
    sf.write(str(tmp_path / 'silent.wav'), np.zeros(32000, np.float32), 16000)
    out = tmp_path / 'out' / 'x.tfrecord'
    with pytest.raises(lib.NoUsableAudioError, match='No usable audio') as e:
        prepare([tmp_path / 'empty.wav', tmp_path / 'silent.wav'], out)
    assert 'silent.wav' in str(e.value) and 'empty.wav' in str(e.value)
    assert os.listdir(tmp_path / 'out') == []


# ------------------------------------------------------------- atomicity
def test_failure_leaves_no_shards_under_final_names(tmp_path, write_tone,
                                                    monkeypatch):
    tone = write_tone('a.wav', 220.0, 3.0)
    calls = []

    def failing(example):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError('disk full (simulated)')
        return b'x'
    monkeypatch.setattr(lib, 'example_to_bytes', failing)
    out = tmp_path / 'out' / 'x.tfrecord'
    with pytest.raises(Exception, match='disk full'):
        prepare([tone], out, frame_rate=0)
    assert os.listdir(tmp_path / 'out') == []  # No shard, temp or metadata.


def test_rerun_removes_stale_shards(tmp_path, write_tone):
    tone = write_tone('a.wav', 220.0, 2.0)
    out = tmp_path / 'x.tfrecord'
    stale = tmp_path / 'x.tfrecord-00003-of-00007'
    stale.write_bytes(b'old')
    (tmp_path / 'x.tfrecord.txt').write_text('not ours')
    meta = prepare([tone], out, frame_rate=0, num_shards=2)
    assert not stale.exists() and (tmp_path / 'x.tfrecord.txt').exists()
    assert meta['splits']['train']['shards'] == [
        'x.tfrecord-00000-of-00002', 'x.tfrecord-00001-of-00002']
    assert not [p for p in os.listdir(tmp_path) if '.tmp-' in p]


def test_invalid_settings_fail_before_running(tmp_path):
    with pytest.raises(ValueError, match='hop_secs'):
        lib.PrepareConfig(hop_secs=0.3333, sample_rate=16000).validate()
    with pytest.raises(ValueError, match='eval_split_fraction'):
        lib.PrepareConfig(eval_split_fraction=1.0).validate()
    with pytest.raises(ValueError, match='crepe_model_capacity'):
        lib.PrepareConfig(crepe_model_capacity='huge').validate()
    with pytest.raises(ValueError, match='chunk_secs'):
        lib.PrepareConfig(chunk_secs=2, example_secs=4).validate()


def test_missing_crc32c_library_is_reported(tmp_path, monkeypatch):
    import importlib.util
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ImportError, match='google-crc32c'):
        prepare([tmp_path / 'a.wav'], tmp_path / 'x.tfrecord')


# ------------------------------------------------------------- round trip
def test_metadata_round_trip_into_provider(tmp_path, write_tone):
    """Non-default settings: the provider needs nothing but the pattern."""
    tone = write_tone('a.wav', 261.6, 4.0, sample_rate=44100)
    out = tmp_path / 'rt.tfrecord'
    meta = prepare([tone], out, sample_rate=48000, frame_rate=50,
                   example_secs=2, hop_secs=1, center=True)
    assert meta['feature_lengths'] == {
        'audio': 96000, 'audio_16k': 32000, 'f0_hz': 101,
        'f0_confidence': 101, 'loudness_db': 101}
    assert meta['loudness']['version'] == 2
    assert meta['f0']['model_capacity'] == 'tiny'
    assert meta['sources'][0]['duration_secs'] == pytest.approx(4.0)
    assert meta['summary']['examples'] == {'train': 3}
    on_disk = dm.read_metadata(str(tmp_path / 'rt.metadata.json'))
    assert on_disk == meta

    provider = data.TFRecordProvider(str(out) + '*')
    assert (provider.sample_rate, provider.frame_rate, provider.example_secs,
            provider.centered) == (48000, 50, 2, True)
    batch = next(iter(provider.get_batch(3, shuffle=False, repeats=1)))
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        'audio': (3, 96000), 'audio_16k': (3, 32000), 'f0_hz': (3, 101),
        'f0_confidence': (3, 101), 'loudness_db': (3, 101)}
    records = read_records(str(out) + '-*')
    assert sorted(r['audio'].tobytes() for r in records) == sorted(
        a.tobytes() for a in batch['audio'].numpy())

    assert meta['statistics_file'] == 'dataset_statistics.json'
    stats = postprocessing.load_dataset_statistics(
        str(tmp_path / 'dataset_statistics.json'))
    assert stats['mean_pitch_note'] == pytest.approx(midi(261.6), abs=0.2)
    assert stats['n_note_frames'] > 0.8 * stats['n_frames']
    assert stats['max_loudness'] > stats['mean_loudness'] > -80
    assert stats['mean_power_note'] > stats['min_power']
    qt = postprocessing.QuantileTransformer.from_dict(
        stats['quantile_transform'])
    assert qt.quantiles_.shape == (1000, 1)
    assert np.all(np.diff(qt.quantiles_[:, 0]) >= 0)
    # Timbre transfer's adjustment maps loudness through it.
    _, normalized = postprocessing.fit_quantile_transform(
        np.linspace(-60, 0, 100), np.ones(100, bool), inv_quantile=qt)
    assert np.all(np.isfinite(normalized))


def test_statistics_match_postprocessing_on_the_same_frames(tmp_path,
                                                            write_tone):
    """The pipeline's streaming statistics equal postprocessing's on the
    chunks' features (one chunk: same note detection)."""
    tone = write_tone('a.wav', 220.0, 3.0, vibrato_cents=30)
    prepare([tone], tmp_path / 's.tfrecord', chunk_secs=0, example_secs=0)
    record = read_records(tmp_path / 's.tfrecord-*')[0]
    ours = postprocessing.load_dataset_statistics(
        str(tmp_path / 'dataset_statistics.json'))
    power = spectral_ops.compute_power(record['audio_16k'], 16000, 250,
                                       frame_size=1024, padding='same')
    ref = postprocessing.dataset_statistics_from_arrays(
        record['f0_hz'], record['f0_confidence'], record['loudness_db'],
        power_db=np.asarray(power), frame_rate=250, sample_rate=16000)
    for key, value in ref.items():
        if key.startswith(('mean', 'max', 'min', 'std')):
            assert ours[key] == pytest.approx(value, abs=1e-3), key
    for key in ('n_frames', 'n_note_frames', 'n_examples', 'format',
                'version', 'trim_end'):
        assert ours[key] == ref[key], key
    probs = np.linspace(0, 1, 101)[:, None]
    ours_qt, ref_qt = (postprocessing.QuantileTransformer.from_dict(
        x['quantile_transform']) for x in (ours, ref))
    np.testing.assert_allclose(ours_qt.inverse_transform(probs),
                               ref_qt.inverse_transform(probs), atol=0.02)


# ------------------------------------------------------------- CLI
def _run_cli(argv):
    from absl import flags
    from ddsp.training.data_preparation import ddsp_prepare_tfrecord as cli
    flags.FLAGS.unparse_flags()
    flags.FLAGS(['ddsp_prepare_tfrecord'] + argv)
    try:
        return cli.run()
    finally:
        flags.FLAGS.unparse_flags()


def test_cli_in_process(tmp_path, write_tone, capsys):
    write_tone('a.wav', 220.0, 2.0)
    out = tmp_path / 'cli' / 'train.tfrecord'
    rc = _run_cli([f'--input_audio_filepatterns={tmp_path}/audio/*.wav',
                   f'--output_tfrecord_path={out}', '--example_secs=1',
                   '--frame_rate=0', '--crepe_model_capacity=tiny'])
    assert rc == 0
    assert 'Examples: train 2' in capsys.readouterr().out
    assert (tmp_path / 'cli' / 'train.metadata.json').exists()


def test_cli_exit_codes(tmp_path, capsys):
    out = f'--output_tfrecord_path={tmp_path}/x.tfrecord'
    assert _run_cli([f'--input_audio_filepatterns={tmp_path}/none/*.wav',
                     out]) == 1
    assert 'matches nothing' in capsys.readouterr().err
    (tmp_path / 'empty.wav').write_bytes(b'')
    assert _run_cli([f'--input_audio_filepatterns={tmp_path}/*.wav',
                     out]) == 1
    assert 'No usable audio' in capsys.readouterr().err
    assert _run_cli([f'--input_audio_filepatterns={tmp_path}/*.wav', out,
                     '--example_secs=-1']) == 2
    assert _run_cli([f'--input_audio_filepatterns={tmp_path}/*.wav']) == 2


def _console_script():
    return os.path.join(os.path.dirname(sys.executable),
                        'ddsp_prepare_tfrecord')


def test_console_script_help():
    result = subprocess.run([_console_script(), '--help'], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode in (0, 1)  # absl's --help exits with 1.
    assert 'Prepares a TFRecord dataset' in result.stdout
    for flag in ('input_audio_filepatterns', 'output_tfrecord_path',
                 'num_shards', 'sample_rate', 'frame_rate', 'example_secs',
                 'hop_secs', 'eval_split_fraction', 'chunk_secs', 'center',
                 'viterbi', 'pipeline_options', 'crepe_model_capacity',
                 'crepe_frame_rate'):
        assert f'{flag}:' in result.stdout


@pytest.mark.slow
def test_multi_process_direct_runner(tmp_path, write_tone):
    paths = [write_tone(f'{i}.wav', f0, 3.0) for i, f0 in enumerate(EVAL_F0S)]
    kwargs = dict(EVAL_KWARGS, frame_rate=250)
    single = prepare(paths, tmp_path / 'single' / 'd.tfrecord', **kwargs)
    multi = prepare(paths, tmp_path / 'multi' / 'd.tfrecord', **kwargs,
                    pipeline_options=['--runner=DirectRunner',
                                      '--direct_num_workers=2',
                                      '--direct_running_mode=multi_processing'])
    assert multi['summary'] == single['summary']
    for split in ('train', 'eval'):
        a = read_records(tmp_path / 'single' / f'd.tfrecord-{split}-*')
        b = read_records(tmp_path / 'multi' / f'd.tfrecord-{split}-*')
        key = lambda r: r['audio'].tobytes()  # noqa: E731
        assert sorted(map(key, a)) == sorted(map(key, b))
        fa = {key(r): r['f0_hz'] for r in a}
        for r in b:
            np.testing.assert_allclose(r['f0_hz'], fa[key(r)], rtol=1e-4)


@pytest.mark.slow
def test_console_script_on_example_data(tmp_path):
    """The issue's command on data/, fast f0 mode, as a subprocess."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))))
    out = tmp_path / 'x' / 'train.tfrecord'
    result = subprocess.run(
        [_console_script(), "--input_audio_filepatterns=data/*.wav",
         f'--output_tfrecord_path={out}', '--crepe_model_capacity=tiny',
         '--crepe_frame_rate=50'],
        cwd=repo, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Files matched: 4, used: 4, skipped: 0' in result.stdout
    provider = data.TFRecordProvider(str(out) + '*')
    n = sum(1 for _ in provider.get_dataset(shuffle=False))
    assert n == dm.read_metadata(str(tmp_path / 'x' / 'train.metadata.json'))[
        'summary']['examples']['train'] > 60
