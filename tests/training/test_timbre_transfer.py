"""Tests of ddsp.training.timbre_transfer and the ddsp_timbre_transfer CLI.

Inputs are excerpts of data/voice/voice_like.wav, whose f0 is known exactly
(voice_like_f0.csv). Two tiny model dirs are built once per module:

* `tiny_dir`: models/tiny.gin after one training step (its output follows f0,
  the synthesizer is driven by it; its loudness response is arbitrary);
* `follower_dir`: tiny.gin whose synthesizer is one sine at f0 with amplitude
  exactly 10**(loudness_db / 20) (no noise; the reverb kept): its output
  loudness moves dB for dB with the loudness the synthesizer gets, so the
  loudness edits can be checked on the audio.
"""
import os
import sys

import gin
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from ddsp import spectral_ops
from ddsp.training import postprocessing
from ddsp.training import timbre_transfer as tt

sys.path.insert(0, os.path.dirname(__file__))
import model_dir_testlib  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
VOICE = os.path.join(REPO_ROOT, 'data', 'voice', 'voice_like.wav')
VOICE_F0 = os.path.join(REPO_ROOT, 'data', 'voice', 'voice_like_f0.csv')
SR = 16000
FRAME_RATE = 250
CREPE = dict(model_capacity='tiny')
LAG = spectral_ops.CREPE_FRAME_SIZE // 2 // (SR // FRAME_RATE)  # 8 frames.


@gin.register(module='tests.timbre_transfer')
def scaled_db_to_amplitude(x):
    """Inverse of preprocessing.scale_db, then dB to amplitude."""
    return tf.pow(10.0, (x - 1.0) * spectral_ops.DB_RANGE / 20.0)


# One sine at f0 whose amplitude is 10**(loudness_db / 20), then the reverb;
# the decoder's outputs are not used.
FOLLOWER_BINDINGS = (
    'Harmonic.scale_fn = @tests.timbre_transfer.scaled_db_to_amplitude',
    """ProcessorGroup.dag = [
        (@synths.Harmonic(), ['ld_scaled', 'f0_scaled', 'f0_hz']),
        (@effects.Reverb(), ['harmonic/signal'])]""",
)


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
    return model_dir_testlib.make_model_dir(
        str(tmp_path_factory.mktemp('tiny')))


@pytest.fixture(scope='module')
def tiny(tiny_dir):
    return load(tiny_dir)


@pytest.fixture(scope='module')
def follower(tmp_path_factory):
    """The loudness-following model, with a strong room (see _strong_room);
    loudness tests leave the room out."""
    trained = load(model_dir_testlib.make_model_dir(
        str(tmp_path_factory.mktemp('follower')), bindings=FOLLOWER_BINDINGS))
    _strong_room(trained)
    return trained


@pytest.fixture(scope='module')
def voice():
    """The whole voice clip at 16 kHz and its exact f0 / amplitude."""
    audio, rate = sf.read(VOICE, dtype='float32')
    assert rate == SR
    table = np.loadtxt(VOICE_F0, delimiter=',', skiprows=1)
    return audio, table[:, 1].astype(np.float32), table[:, 2]


def excerpt(voice, start, stop):
    """Audio, f0 and amplitude of [start, stop) s of the voice clip."""
    audio, f0, amplitude = voice
    frames = slice(int(start * FRAME_RATE), int(stop * FRAME_RATE))
    return audio[int(start * SR):int(stop * SR)], f0[frames], amplitude[frames]


def load(model_dir):
    from ddsp.training import inference
    return inference.load_model(model_dir)


def loudness(audio):
    """Loudness of synthesized audio at the conditioning frames (frame j is
    rendered at sample j * hop: centred frames, the last one dropped)."""
    return spectral_ops.compute_loudness(audio, SR, FRAME_RATE, use_tf=False,
                                         padding='center')[:-1]


# Input audio --------------------------------------------------------------------------
def _write(path, audio, rate=SR, **kwargs):
    sf.write(str(path), audio, rate, **kwargs)
    return str(path)


@pytest.mark.parametrize('name, content, error, match', [
    ('missing.wav', None, FileNotFoundError, 'missing.wav does not exist'),
    ('empty.wav', b'', ValueError, 'empty.wav: empty file'),
    ('text.wav', b'no audio here', ValueError, 'text.wav: not readable'),
    ('silent.wav', 'silence', ValueError, 'silent.wav: all silent'),
])
def test_bad_input_file_is_a_clear_error_naming_it(tmp_path, name, content,
                                                   error, match):
    path = tmp_path / name
    if content == 'silence':
        _write(path, np.zeros(SR, np.float32))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=match):
        tt.load_input_audio(str(path), SR)


def test_stereo_input_is_mixed_and_resampled(tmp_path, caplog):
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 300 * t)
    path = _write(tmp_path / 'stereo.flac', np.stack([left, 0.5 * left], 1),
                  44100)
    caplog.set_level('INFO')
    audio = tt.load_input_audio(path, 32000)
    assert audio.sample_rate == 32000
    assert audio.audio.shape == (32000,) and audio.audio_16k.shape == (16000,)
    # 0.75 * 0.5 amplitude after the mono mix (FLAC is 16-bit).
    np.testing.assert_allclose(np.max(np.abs(audio.audio_16k)), 0.375,
                               atol=2e-3)
    assert 'mixing 2 channels to mono' in caplog.text
    assert 'resampling 44100 Hz to 32000 Hz' in caplog.text


def test_prepare_input_audio_checks_arrays():
    with pytest.raises(ValueError, match='recording is silent'):
        tt.prepare_input_audio(np.zeros(100), SR, SR, 'recording')
    with pytest.raises(ValueError, match='NaN'):
        tt.prepare_input_audio(np.full(100, np.nan), SR, SR)
    audio = tt.prepare_input_audio(np.ones((160, 2)) * 0.5, 8000, SR)
    assert audio.audio.shape == (320,)


def test_features_equal_data_preparation(voice):
    """Same numbers as ddsp_prepare_tfrecord's AddFeatures (tiny CREPE)."""
    lib = pytest.importorskip(
        'ddsp.training.data_preparation.prepare_tfrecord_lib')
    audio = excerpt(voice, 0.0, 1.0)[0]
    config = lib.PrepareConfig(crepe_model_capacity='tiny')
    expected = next(lib.AddFeatures(config).process({'audio_16k': audio}))
    features = tt.compute_features(audio, FRAME_RATE, **CREPE)
    assert features['f0_hz'].shape == (250,)
    for key in ('f0_hz', 'f0_confidence', 'loudness_db'):
        np.testing.assert_array_equal(features[key], expected[key])


def test_compute_features_validates():
    with pytest.raises(ValueError, match='model_capacity'):
        tt.compute_features(np.ones(1600), FRAME_RATE, model_capacity='huge')
    with pytest.raises(ValueError, match='padding'):
        tt.compute_features(np.ones(1600), FRAME_RATE, padding='valid')


def test_write_audio_resamples_and_avoids_clipping(tmp_path):
    path = tt.write_audio(str(tmp_path / 'sub' / 'out.wav'),
                          np.full(1600, 2.0, np.float32), SR, 8000)
    audio, rate = sf.read(path)
    assert rate == 8000 and len(audio) == 800
    assert np.max(np.abs(audio)) <= 0.99 + 1e-4
    with pytest.raises(ValueError, match='Unknown audio format'):
        tt.write_audio(str(tmp_path / 'out.xyz'), np.zeros(10), SR)
    with pytest.raises(ValueError, match='no extension'):
        tt.write_audio(str(tmp_path / 'out'), np.zeros(10), SR)


# Pitch --------------------------------------------------------------------------------
@pytest.mark.parametrize('pitch_shift', [0, -1])
def test_output_f0_follows_input_times_pitch_shift(tiny, voice,
                                                   pitch_shift):
    audio, f0_true, amplitude = excerpt(voice, 0.25, 2.0)
    result = tt.transfer(tiny, tt.prepare_input_audio(audio, SR, SR),
                         adjust=False, pitch_shift=pitch_shift, **CREPE)
    assert result.audio_gen.shape == audio.shape
    # Conditioning frame j ('same' framing, as the training data) is the f0
    # around sample j * hop + 512 (LAG frames later); the model renders it
    # at sample j * hop.
    target = f0_true[LAG:] * 2.0**pitch_shift
    voiced = amplitude[LAG:] > 0.3
    errors = tt.follow_errors(result.audio_gen, SR, FRAME_RATE, target,
                              result.adjusted['loudness_db'][:len(target)],
                              voiced=voiced, **CREPE)
    cents = errors['cents']
    assert len(cents) > 0.8 * np.sum(voiced)
    assert np.median(cents) < 15, np.median(cents)
    assert np.mean(cents < 30) > 0.9, np.mean(cents < 30)


# Loudness -----------------------------------------------------------------------------
def test_loudness_shift_raises_output_loudness(follower, voice):
    audio = excerpt(voice, 0.25, 1.75)[0]
    inputs = tt.prepare_input_audio(audio, SR, SR)
    features = tt.compute_features(audio, FRAME_RATE, **CREPE)
    kwargs = dict(adjust=False, features=features, use_reverb=False)
    base = tt.transfer(follower, inputs, **kwargs)
    louder = tt.transfer(follower, inputs, loudness_shift=6.0, **kwargs)
    # The synthesizer got exactly +6 dB ...
    np.testing.assert_allclose(louder.adjusted['loudness_db'],
                               features['loudness_db'] + 6.0, atol=1e-5)
    # ... and the audio is 6 dB louder (frames above the floor).
    ld_base, ld_louder = loudness(base.audio_gen), loudness(louder.audio_gen)
    sounding = ld_base > -60
    assert sounding.mean() > 0.8
    diff = ld_louder[sounding] - ld_base[sounding]
    assert abs(np.mean(diff) - 6.0) < 1.0, np.mean(diff)


def test_adjust_changes_loudness_as_normalize_loudness_says(follower,
                                                            voice):
    audio = excerpt(voice, 2.5, 4.0)[0]  # A note, then a rest.
    trained = follower
    assert trained.dataset_stats is not None
    inputs = tt.prepare_input_audio(audio, SR, SR)
    features = tt.compute_features(audio, FRAME_RATE, **CREPE)
    kwargs = dict(features=features, threshold=1.0, quiet=20.0,
                  use_reverb=False)
    on = tt.transfer(trained, inputs, adjust=True, **kwargs)
    off = tt.transfer(trained, inputs, adjust=False, **kwargs)
    mask_on, ratio = postprocessing.detect_notes(features['loudness_db'],
                                                 features['f0_confidence'])
    assert 0.2 < mask_on.mean() < 0.9
    expected = postprocessing.normalize_loudness(
        features['loudness_db'], mask_on, trained.dataset_stats, quiet=20.0,
        note_on_ratio=ratio)
    np.testing.assert_allclose(on.adjusted['loudness_db'], expected,
                               atol=1e-5)
    np.testing.assert_allclose(off.adjusted['loudness_db'],
                               features['loudness_db'])
    # The output follows, frame by frame (where both are above the floor):
    # quantile-normalised notes and `quiet` dB less after the note.
    assert on.adjusted['octave_shift'] == 0
    ld_on, ld_off = loudness(on.audio_gen), loudness(off.audio_gen)
    sounding = (ld_on > -60) & (ld_off > -60)
    change = (ld_on - ld_off)[sounding]
    wanted = (expected - features['loudness_db'])[sounding]
    assert np.max(wanted) > 5 and np.min(wanted) < -10  # Both edits happen.
    assert np.mean(np.abs(change - wanted)) < 1.0


# Reverb -------------------------------------------------------------------------------
def _strong_room(trained):
    """Replaces the learned IR by exponentially decaying noise (0.1 s)."""
    variables = [v for v in trained.model.trainable_variables
                 if 'reverb' in v.path]
    assert len(variables) == 1, [v.path for v in trained.model.variables]
    ir = variables[0]
    n = ir.shape[-1]
    decay = np.exp(-np.arange(n) / (0.1 * SR))
    noise = np.random.default_rng(0).normal(size=n) * 0.2 * decay
    ir.assign(np.broadcast_to(noise, ir.shape).astype(np.float32))


def test_no_reverb_output_has_no_tail(follower, voice):
    audio = excerpt(voice, 2.5, 4.0)[0]  # Silent from 3.45 s on.
    trained = follower
    inputs = tt.prepare_input_audio(audio, SR, SR)
    features = tt.compute_features(audio, FRAME_RATE, **CREPE)
    features['loudness_db'][int(0.95 * FRAME_RATE):] = -80.0
    wet = tt.transfer(trained, inputs, adjust=False, features=features)
    dry = tt.transfer(trained, inputs, adjust=False, features=features,
                      use_reverb=False)
    tail = slice(int(0.98 * SR), int(1.1 * SR))
    body = slice(int(0.3 * SR), int(0.9 * SR))
    rms = lambda x: np.sqrt(np.mean(x**2))  # noqa: E731
    assert rms(dry.audio_gen[tail]) < 1e-3 * rms(dry.audio_gen[body])
    assert rms(wet.audio_gen[tail]) > 0.03 * rms(wet.audio_gen[body])


def test_acoustic_transfer_equals_apply_reverb(follower, voice):
    from ddsp.training import inference
    audio = excerpt(voice, 2.5, 3.5)[0]
    trained = follower
    result = tt.transfer(trained, tt.prepare_input_audio(audio, SR, SR),
                         acoustic_transfer=True)
    expected = inference.apply_reverb(trained, audio)
    np.testing.assert_allclose(result.audio_gen, expected, atol=1e-6)
    assert not np.allclose(result.audio_gen, audio, atol=1e-3)
    assert result.features is None and result.adjusted is None


# Plot and CLI -------------------------------------------------------------------------
def test_save_plot_writes_png(tiny, voice, tmp_path):
    audio = excerpt(voice, 0.25, 1.25)[0]
    result = tt.transfer(tiny, tt.prepare_input_audio(audio, SR, SR),
                         **CREPE)
    path = tt.save_plot(result, str(tmp_path / 'plot.png'))
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.fixture
def cli():
    """Runs ddsp_timbre_transfer in-process with the given flags."""
    from ddsp.training import ddsp_timbre_transfer

    def run(*args):
        ddsp_timbre_transfer.FLAGS.unparse_flags()
        ddsp_timbre_transfer.FLAGS(['ddsp_timbre_transfer', *args])
        return ddsp_timbre_transfer.run()

    yield run
    ddsp_timbre_transfer.FLAGS.unparse_flags()


def test_cli_writes_wav_and_png(tiny_dir, voice, tmp_path, cli):
    audio = excerpt(voice, 0.25, 1.25)[0]
    input_path = _write(tmp_path / 'in.wav', np.stack([audio, audio], 1))
    output = str(tmp_path / 'out' / 'sung.wav')
    assert cli(f'--model_dir={tiny_dir}', f'--input={input_path}',
               f'--output={output}', '--crepe_model_capacity=tiny',
               '--crepe_frame_rate=50', '--pitch_shift=-1',
               '--output_sample_rate=22050', '--no_reverb') == 0
    written, rate = sf.read(output)
    assert rate == 22050 and written.ndim == 1
    assert abs(len(written) - 22050) <= 1
    assert np.max(np.abs(written)) > 1e-3
    with open(str(tmp_path / 'out' / 'sung.png'), 'rb') as f:
        assert f.read(4) == b'\x89PNG'


@pytest.mark.parametrize('content', [b'not a wav', None])
def test_cli_bad_input_names_the_file(tiny_dir, tmp_path, cli, capsys,
                                      content):
    bad = tmp_path / 'notes.wav'
    if content is not None:
        bad.write_bytes(content)
    assert cli(f'--model_dir={tiny_dir}', f'--input={bad}',
               f'--output={tmp_path / "o.wav"}') == 1
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / 'o.wav').exists()


def test_cli_bad_model_dir_is_a_clear_error(tmp_path, cli, capsys):
    clip = _write(tmp_path / 'in.wav', np.full(1600, 0.1, np.float32))
    assert cli(f'--model_dir={tmp_path / "nope"}', f'--input={clip}',
               f'--output={tmp_path / "o.wav"}') == 1
    assert 'nope' in capsys.readouterr().err


@pytest.mark.parametrize('args, match', [
    ((), '--model_dir is required'),
    (('--model_dir=m', '--input=i.wav', '--output=o.mp9'), 'Unknown audio '
     'format'),
    (('--model_dir=m', '--input=i.wav', '--output=o'), '(no extension)'),

    (('--model_dir=m', '--input=i.wav', '--output=o.wav', '--autotune=2'),
     '--autotune must be in'),
    (('--model_dir=m', '--input=i.wav', '--output=o.wav', '--no_reverb',
      '--acoustic_transfer'), 'cannot be combined'),
])
def test_cli_bad_flags(cli, capsys, args, match):
    assert cli(*args) == 2
    assert match in capsys.readouterr().err


def test_cli_crepe_frame_rate_must_be_positive(cli):
    from absl import flags
    with pytest.raises(flags.IllegalFlagValueError, match='must be > 0'):
        cli('--model_dir=m', '--input=i.wav', '--output=o.wav',
            '--crepe_frame_rate=0')


@pytest.mark.slow
def test_autoencoder_with_z(tmp_path, voice):
    """models/ae.gin (shrunk): z is computed from the input audio."""
    model_dir = model_dir_testlib.make_model_dir(
        str(tmp_path / 'ae'), gin_file='models/ae.gin',
        bindings=('MfccTimeDistributedRnnEncoder.rnn_channels = 16',))
    audio = excerpt(voice, 0.25, 1.25)[0]
    trained = load(model_dir)
    assert trained.uses_z
    result = tt.transfer(trained, tt.prepare_input_audio(audio, SR, SR),
                         **CREPE)
    assert result.z.shape == (250, trained.z_dims)
    assert result.audio_gen.shape == audio.shape
    assert np.all(np.isfinite(result.audio_gen))
