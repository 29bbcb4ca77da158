"""Tests of ddsp.training.data_preparation.audio_io (reading, checks, chunks)."""
import os

import numpy as np
import pytest
import soundfile as sf
import soxr
import tensorflow as tf

from ddsp.training.data_preparation import audio_io


def _tone(secs, sr, f0=440.0, amp=0.5):
    t = np.arange(int(round(secs * sr))) / sr
    return (amp * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


@pytest.mark.parametrize('fmt,subtype', [
    ('wav', 'PCM_16'), ('wav', 'FLOAT'), ('flac', 'PCM_24'),
    ('ogg', 'VORBIS'), ('mp3', 'MPEG_LAYER_III')])
def test_formats_decode_mix_and_resample(tmp_path, fmt, subtype):
    sr = 44100
    stereo = np.stack([_tone(2.0, sr), _tone(2.0, sr)], axis=1)
    path = str(tmp_path / f'x.{fmt}')
    sf.write(path, stereo, sr, subtype=subtype)
    info = audio_io.scan_audio(path)
    assert info.channels == 2 and info.sample_rate == sr
    assert info.duration_secs == pytest.approx(2.0, abs=0.06)  # mp3 padding.
    audio = audio_io.load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == round(info.frames * 16000 / sr)
    assert _peak_hz(audio, 16000) == pytest.approx(440, abs=1.0)
    assert np.max(np.abs(audio)) == pytest.approx(0.5, abs=0.05)


def test_gfile_paths_work(tmp_path):
    """Reading goes through tf.io.gfile: an in-memory ram:// file works."""
    path = str(tmp_path / 'x.wav')
    sf.write(path, _tone(1.0, 16000), 16000)
    with open(path, 'rb') as f:
        data = f.read()
    ram = 'ram://audio_io_test/x.wav'
    with tf.io.gfile.GFile(ram, 'wb') as f:
        f.write(data)
    np.testing.assert_allclose(audio_io.load_audio(ram, 16000),
                               audio_io.load_audio(path, 16000))


def test_streamed_chunks_equal_one_shot_resampling(tmp_path):
    sr = 44100
    x = _tone(45.3, sr, f0=300.0)
    path = str(tmp_path / 'long.wav')
    sf.write(path, x, sr, subtype='FLOAT')
    chunks = list(audio_io.iter_chunks(path, [48000, 16000], chunk_secs=20,
                                       min_last_secs=4))
    for rate in (16000, 48000):
        total = round(len(x) * rate / sr)
        assert [len(c[rate]) for c in chunks] == [
            20 * rate, 20 * rate, total - 40 * rate]
    streamed = np.concatenate([c[16000] for c in chunks])
    one_shot = soxr.resample(x, sr, 16000, audio_io.RESAMPLE_QUALITY)
    np.testing.assert_allclose(streamed, one_shot, atol=1e-6)


def test_short_last_chunk_joins_previous(tmp_path):
    path = str(tmp_path / 'x.wav')
    sf.write(path, _tone(45.0, 16000), 16000)
    lengths = [len(c[16000]) for c in audio_io.iter_chunks(
        path, [16000], chunk_secs=20, min_last_secs=6)]
    assert lengths == [320000, 400000]  # The last 5 s join the second chunk.
    lengths = [len(c[16000]) for c in audio_io.iter_chunks(
        path, [16000], chunk_secs=None)]
    assert lengths == [720000]


# The bad-input matrix, one test per case: each raises SkipFile with its code
# and a message naming the file.
def _expect_skip(path, code, **kwargs):
    with pytest.raises(audio_io.SkipFile) as e:
        audio_io.scan_audio(str(path), **kwargs)
    assert e.value.code == code
    assert str(path) in str(e.value)


def test_skip_empty_file(tmp_path):
    (tmp_path / 'empty.wav').write_bytes(b'')
    _expect_skip(tmp_path / 'empty.wav', 'empty_file')


def test_skip_non_audio_file(tmp_path):
    (tmp_path / 'notes.txt').write_text('not audio\n' * 100)
    _expect_skip(tmp_path / 'notes.txt', 'unreadable')


def test_skip_corrupt_header(tmp_path):
    (tmp_path / 'bad.wav').write_bytes(b'RIFF\x24\x00\x00\x00WAVEjunk' * 50)
    _expect_skip(tmp_path / 'bad.wav', 'unreadable')


def test_skip_zero_samples(tmp_path):
    sf.write(str(tmp_path / 'zero.wav'), np.zeros(0, np.float32), 16000)
    _expect_skip(tmp_path / 'zero.wav', 'no_samples')


def test_skip_silent(tmp_path):
    sf.write(str(tmp_path / 'silent.wav'), np.zeros(16000, np.float32), 16000)
    _expect_skip(tmp_path / 'silent.wav', 'silent')


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_skip_non_finite(tmp_path, bad):
    x = _tone(1.0, 16000)
    x[8000] = bad
    sf.write(str(tmp_path / 'nan.wav'), x, 16000, subtype='FLOAT')
    _expect_skip(tmp_path / 'nan.wav', 'non_finite')


def test_skip_too_short(tmp_path):
    sf.write(str(tmp_path / 'short.wav'), _tone(1.0, 16000), 16000)
    _expect_skip(tmp_path / 'short.wav', 'too_short', min_secs=4)


def test_skip_directory_and_missing(tmp_path):
    os.makedirs(tmp_path / 'dir.wav')
    _expect_skip(tmp_path / 'dir.wav', 'directory')
    _expect_skip(tmp_path / 'missing.wav', 'not_found')


def test_load_audio_keeps_silence(tmp_path):
    sf.write(str(tmp_path / 'silent.wav'), np.zeros(800, np.float32), 16000)
    assert not np.any(audio_io.load_audio(str(tmp_path / 'silent.wav')))
