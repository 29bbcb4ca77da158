"""Tests of the ddsp_generate CLI and of generation with trained models."""
import os
import sys

import gin
import keras
import mido
import numpy as np
import pytest
import soundfile as sf

from ddsp.training import ddsp_generate
from ddsp.training import generation
from ddsp.training import inference
from ddsp.training import timbre_transfer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import eval_testlib  # noqa: E402
import model_dir_testlib as mdl  # noqa: E402

AE_BINDINGS = ['MfccTimeDistributedRnnEncoder.rnn_channels = 32',
               'MfccTimeDistributedRnnEncoder.z_time_steps = 125']
NOTES_CSV = ('onset_s,offset_s,midi_pitch,velocity\n'
             '0.10,0.60,60,100\n0.60,1.10,67,80\n1.30,1.80,64,120\n')


@pytest.fixture(scope='module')
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp('generate')
    keras.utils.set_random_seed(0)  # The same tiny models on every run.
    tiny = mdl.make_model_dir(str(root / 'tiny'))
    ae = mdl.make_model_dir(str(root / 'ae'), gin_file='models/ae.gin',
                            bindings=AE_BINDINGS)
    tones = eval_testlib.write_tone_dataset(str(root / 'data'),
                                            splits={None: [0, 1, 2, 3]})
    notes = root / 'notes.csv'
    notes.write_text(NOTES_CSV)
    gin.clear_config()
    return {'root': root, 'tiny': tiny, 'ae': ae, 'tones': tones + '*',
            'notes': str(notes)}


def _run(*args):
    ddsp_generate.FLAGS(['ddsp_generate', *args])
    try:
        return ddsp_generate.run()
    finally:
        ddsp_generate.FLAGS.unparse_flags()
        gin.clear_config()


def test_flag_errors(capsys):
    assert _run('--notes=a.csv') == 2
    err = capsys.readouterr().err
    assert '--model_dir is required' in err
    assert '--notes and --output go together' in err
    assert _run('--model_dir=m', '--fit_gmm_on=x*') == 2
    assert '--fit_gmm_on needs --gmm' in capsys.readouterr().err
    assert _run('--model_dir=m', '--gmm=g.pkl', '--fit_gmm_on=x') == 2
    assert '.npz or .json' in capsys.readouterr().err
    assert _run('--model_dir=m') == 2
    assert 'Nothing to do' in capsys.readouterr().err


def test_generate_follows_the_notes(dirs, tmp_path):
    out = str(tmp_path / 'out.wav')
    assert _run(f'--model_dir={dirs["tiny"]}', f'--notes={dirs["notes"]}',
                f'--output={out}') == 0
    audio, sr = sf.read(out, dtype='float32')
    assert sr == mdl.SAMPLE_RATE
    stats = inference.load_model(dirs['tiny']).dataset_stats
    curves = generation.notes_to_curves(
        generation.read_notes(dirs['notes']), mdl.FRAME_RATE, stats)
    assert len(audio) == len(curves['f0_hz']) * sr // mdl.FRAME_RATE
    errors = timbre_transfer.follow_errors(
        audio, sr, mdl.FRAME_RATE, curves['f0_hz'], curves['loudness_db'],
        voiced=curves['sustained'], model_capacity='tiny')
    # CREPE finds a pitch on (nearly) every sustained frame, at the note
    # (CREPE tiny may still jump an octave on a frame or two of the
    # untrained model's random timbre).
    cents = errors['cents']
    assert len(cents) >= 0.95 * curves['sustained'].sum()
    assert np.mean(cents < 50) >= 0.97
    assert np.median(cents) < 15


def test_bad_curve_option_exits_1(dirs, tmp_path, capsys):
    # notes_to_curves checks the curve options; run() reports its ValueError.
    assert _run(f'--model_dir={dirs["tiny"]}', f'--notes={dirs["notes"]}',
                f'--output={tmp_path}/x.wav', '--attack_s=-1') == 1
    assert 'attack_s must be >= 0' in capsys.readouterr().err


def test_generate_from_midi(dirs, tmp_path):
    midi = mido.MidiFile(ticks_per_beat=480)  # 120 bpm: a beat is 0.5 s.
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.Message('note_on', note=69, velocity=100, time=0))
    track.append(mido.Message('note_off', note=69, time=480))
    midi.save(str(tmp_path / 'a.mid'))
    out = str(tmp_path / 'midi.wav')
    assert _run(f'--model_dir={dirs["tiny"]}', f'--notes={tmp_path}/a.mid',
                f'--output={out}', '--release_s=0.1', '--attack_s=0.02',
                '--output_sample_rate=8000') == 0
    audio, sr = sf.read(out)
    assert sr == 8000
    # Offset 0.5 s + release 0.1 + tail 0.3 s, plus one frame.
    assert len(audio) == pytest.approx(0.904 * 8000, abs=2)


def test_fit_gmm_and_generate_with_z(dirs, tmp_path, capsys):
    gmm_path = str(tmp_path / 'z_gmm.npz')
    ae = f'--model_dir={dirs["ae"]}'
    assert _run(ae, f'--notes={dirs["notes"]}',
                f'--output={tmp_path}/x.wav') == 1
    assert 'needs a z GMM' in capsys.readouterr().err
    assert _run(ae, f"--fit_gmm_on={dirs['tones']}", f'--gmm={gmm_path}',
                '--max_components=2') == 0
    gmm = generation.load_gmm(gmm_path)
    assert gmm.z_dims == 16
    assert gmm.metadata['n_examples'] == 4
    assert gmm.metadata['dataset'] == dirs['tones']
    # Same seed, same audio; another seed, other z.
    outs = []
    for i, seed in enumerate((3, 3, 4)):
        outs.append(str(tmp_path / f'z{i}.wav'))
        assert _run(ae, f'--gmm={gmm_path}', f'--notes={dirs["notes"]}',
                    f'--output={outs[-1]}', f'--seed={seed}') == 0
    a, b, c = (sf.read(o, dtype='float32')[0] for o in outs)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_fit_gmm_needs_an_encoder(dirs, tmp_path, capsys):
    assert _run(f'--model_dir={dirs["tiny"]}', f"--fit_gmm_on={dirs['tones']}",
                f'--gmm={tmp_path}/g.json') == 1
    assert 'has no encoder' in capsys.readouterr().err


def test_collect_z_segments_are_note_means(dirs):
    trained = inference.load_model(dirs['ae'])
    features = mdl.tone_features(n_examples=2)
    # The second example is silent in its first half: one note per example.
    features['loudness_db'][1, :125] = -80.0
    features['f0_confidence'][1, :125] = 0.0
    collection = generation.collect_z(trained, mdl.ArrayProvider(features),
                                      segment_secs=10.0)
    assert collection.n_examples == 2
    assert collection.segments.shape == (2, 16)
    z1 = inference.compute_z(trained, features['audio'][1], 250)
    # The note of example 1 is (about) its second half.
    np.testing.assert_allclose(collection.segments[1],
                               z1[125:].mean(axis=0), atol=0.05)
    gin.clear_config()
