"""Tests of the ddsp_evaluate CLI and its metrics."""
import csv
import glob
import os
import shutil
import sys

import gin
import keras
import numpy as np
import pytest
import soundfile as sf

from ddsp.training import ddsp_evaluate

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_testlib  # noqa: E402
import model_dir_testlib as mdl  # noqa: E402

SR, FR = mdl.SAMPLE_RATE, mdl.FRAME_RATE


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny model, a deliberately degraded copy (its filtered noise 10 dB
    louder than the harmonics: the initial bias of the noise magnitudes
    raised from -5 to +5) and a folder of two tone files."""
    root = tmp_path_factory.mktemp('evaluate')
    keras.utils.set_random_seed(0)  # The same tiny model on every run.
    good = mdl.make_model_dir(str(root / 'good'))
    bad = str(root / 'degraded')
    shutil.copytree(good, bad)
    (config,) = glob.glob(os.path.join(bad, 'operative_config-*.gin'))
    with open(config, 'a') as f:
        f.write('\nFilteredNoise.initial_bias = 5.0\n')
    audio_dir = root / 'audio'
    audio_dir.mkdir()
    tones = mdl.tone_features(n_examples=2, seed=3)['audio']
    for i, tone in enumerate(tones):
        sf.write(str(audio_dir / f'tone_{i}.wav'), tone, SR)
    (audio_dir / 'notes.txt').write_text('not audio')
    dataset = eval_testlib.write_tone_dataset(str(root / 'data'),
                                              splits={None: [0, 1, 2]})
    gin.clear_config()
    return {'good': good, 'bad': bad, 'audio_dir': str(audio_dir),
            'tones': tones, 'dataset': dataset + '*'}


def _run(*args):
    ddsp_evaluate.FLAGS(['ddsp_evaluate', *args])
    try:
        return ddsp_evaluate.run()
    finally:
        ddsp_evaluate.FLAGS.unparse_flags()
        gin.clear_config()


def _read_csv(path):
    with open(path) as f:
        return {row['model']: row for row in csv.DictReader(f)}


def test_identical_audio_has_zero_distance(setup):
    from ddsp.training import timbre_transfer
    audio = setup['tones'][0]
    features = timbre_transfer.compute_features(audio, FR, 'tiny')
    result = ddsp_evaluate.compare_audio(
        audio, audio, SR, FR, features['f0_hz'], features['f0_confidence'],
        model_capacity='tiny')
    assert result == {'f0_l1_semitones': 0.0, 'f0_outlier_ratio': 0.0,
                      'loudness_l1_db': 0.0, 'spectral_distance': 0.0}
    # Another sound is far on every metric.
    other = setup['tones'][1]
    result = ddsp_evaluate.compare_audio(
        audio, other, SR, FR, features['f0_hz'], features['f0_confidence'],
        model_capacity='tiny')
    assert result['f0_l1_semitones'] > 0.5
    assert result['spectral_distance'] > 0.5
    with pytest.raises(ValueError, match='same length'):
        ddsp_evaluate.compare_audio(audio, audio[:-1], SR, FR,
                                    features['f0_hz'],
                                    features['f0_confidence'])


def test_degraded_model_ranks_below(setup, tmp_path, monkeypatch):
    from ddsp.training import timbre_transfer
    calls = []
    compute_features = timbre_transfer.compute_features
    monkeypatch.setattr(timbre_transfer, 'compute_features',
                        lambda *a, **k: calls.append(1) or
                        compute_features(*a, **k))
    out = str(tmp_path / 'report')
    assert _run(f'--model_dirs={setup["good"]},{setup["bad"]}',
                f'--audio_dir={setup["audio_dir"]}', f'--output_dir={out}',
                '--crepe_model_capacity=tiny', '--novisqol',
                '--save_audio') == 0
    rows = _read_csv(os.path.join(out, 'evaluation.csv'))
    good, bad = rows['good'], rows['degraded']
    assert good['n_clips'] == bad['n_clips'] == '2'
    assert len(calls) == 2  # The inputs' features: once per clip.
    for key in ('spectral_distance', 'loudness_l1_db'):
        assert float(good[key]) < float(bad[key])
    assert float(good['f0_l1_semitones']) < 0.5
    assert 'visqol_moslqo' not in good
    per_clip = list(csv.DictReader(open(os.path.join(out, 'per_clip.csv'))))
    assert [(r['model'], r['clip']) for r in per_clip] == [
        ('good', 'tone_0.wav'), ('good', 'tone_1.wav'),
        ('degraded', 'tone_0.wav'), ('degraded', 'tone_1.wav')]
    table = open(os.path.join(out, 'evaluation.md')).read()
    assert '| good | 2 |' in table and 'multi-scale spectral distance' in table
    for name in ('metrics.png', 'spectrograms.png', 'audio/good_tone_0.wav'):
        assert os.path.getsize(os.path.join(out, name)) > 1000


@pytest.mark.slow
def test_dataset_input_and_names(setup, tmp_path):
    out = str(tmp_path / 'report')
    assert _run(f'--model_dirs={setup["good"]}', '--names=tiny',
                f'--file_pattern={setup["dataset"]}', f'--output_dir={out}',
                '--crepe_model_capacity=tiny', '--novisqol',
                '--max_clips=2') == 0
    rows = _read_csv(os.path.join(out, 'evaluation.csv'))
    assert rows['tiny']['n_clips'] == '2'


def test_flag_errors(capsys):
    assert _run('--model_dirs=a,b', '--names=x', '--output_dir=o') == 2
    err = capsys.readouterr().err
    assert '--names has 1 names for 2 model dirs' in err
    assert 'exactly one of --audio_dir and --file_pattern' in err
    assert _run('--model_dirs=x/m,y/m', '--audio_dir=a',
                '--output_dir=o') == 2
    assert 'must be unique' in capsys.readouterr().err
    assert _run('--model_dirs=m', '--audio_dir=/no/such/dir',
                '--output_dir=o') == 1
    assert 'is not a folder' in capsys.readouterr().err


@pytest.mark.slow
def test_visqol_scores_identical_audio_above_degraded(setup):
    visqol = ddsp_evaluate.make_visqol()
    if visqol is None:
        pytest.skip('visqol-python is not installed')
    audio = setup['tones'][0]
    noisy = audio + 0.05 * np.random.default_rng(0).standard_normal(
        len(audio)).astype(np.float32)
    assert visqol(audio, audio, SR) > visqol(audio, noisy, SR) + 0.5
