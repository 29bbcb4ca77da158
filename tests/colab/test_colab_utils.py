"""Tests of ddsp.colab.colab_utils that run without Google Colab."""
import io
import sys
import types

import numpy as np
import pytest
import soundfile as sf

from ddsp.colab import colab_utils
from ddsp.training import plotting
from ddsp.training import postprocessing


def _wav_bytes(audio, sample_rate, subtype='FLOAT'):
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format='WAV', subtype=subtype)
    return buffer.getvalue()


def _stereo_tone(sample_rate=44100, seconds=0.5):
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([left, 0.25 * left], axis=1).astype(np.float32)


@pytest.fixture
def no_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, 'google.colab', raising=False)


@pytest.fixture
def fake_colab(monkeypatch):
    """google.colab with a files module whose upload() returns `uploaded`."""
    files = types.SimpleNamespace(uploaded={}, downloaded=[])
    files.upload = lambda: files.uploaded
    files.download = files.downloaded.append
    colab = types.ModuleType('google.colab')
    colab.files = files
    google = types.ModuleType('google')
    google.colab = colab
    monkeypatch.setitem(sys.modules, 'google', google)
    monkeypatch.setitem(sys.modules, 'google.colab', colab)
    monkeypatch.setitem(sys.modules, 'google.colab.files', files)
    return files


def test_audio_bytes_to_np_mixes_resamples_and_normalizes():
    stereo = _stereo_tone()
    audio = colab_utils.audio_bytes_to_np(_wav_bytes(stereo, 44100),
                                          sample_rate=16000, normalize_db=6.0)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == 8000
    np.testing.assert_allclose(np.max(np.abs(audio)), 10**(-6 / 20), rtol=1e-5)
    # The mono mix of 0.5 and 0.25 sines is a 0.375 sine (level kept).
    kept = colab_utils.audio_bytes_to_np(_wav_bytes(stereo, 44100),
                                         sample_rate=44100, normalize_db=None)
    np.testing.assert_allclose(kept, stereo.mean(axis=1), atol=1e-6)


def test_audio_bytes_to_np_keeps_channels_when_not_mono():
    stereo = _stereo_tone(16000)
    audio = colab_utils.audio_bytes_to_np(_wav_bytes(stereo, 16000),
                                          normalize_db=None, mono=False)
    np.testing.assert_allclose(audio, stereo, atol=1e-6)


@pytest.mark.parametrize('data, match', [(b'not audio at all', 'not a readable'),
                                         (b'', 'not a readable')])
def test_audio_bytes_to_np_errors(data, match):
    with pytest.raises(ValueError, match=match):
        colab_utils.audio_bytes_to_np(data)


def test_audio_widget_embeds_a_wav_of_the_first_example():
    batch = np.stack([np.linspace(-0.5, 0.5, 1600), np.zeros(1600)])
    widget = colab_utils.audio_widget(batch, sample_rate=8000)
    decoded, rate = sf.read(io.BytesIO(widget.data))
    assert rate == 8000 and len(decoded) == 1600
    # IPython normalises to the peak: the ramp spans -1 .. 1.
    np.testing.assert_allclose(decoded, np.linspace(-1, 1, 1600), atol=1e-3)


def test_play_displays_the_player(monkeypatch):
    from IPython import display
    shown = []
    monkeypatch.setattr(display, 'display', shown.append)
    colab_utils.play(np.sin(np.arange(800) / 5.0), sample_rate=16000)
    assert len(shown) == 1 and isinstance(shown[0], display.Audio)


def test_play_rejects_empty_audio():
    with pytest.raises(ValueError, match='n_samples'):
        colab_utils.play(np.zeros(0))


@pytest.mark.parametrize('call', [lambda: colab_utils.record(1),
                                  colab_utils.upload])
def test_record_and_upload_outside_colab_ask_for_a_path(no_colab, call):
    assert not colab_utils.in_colab()
    with pytest.raises(RuntimeError, match='needs Google Colab.*path of an '
                       'audio file'):
        call()


def test_download_outside_colab_names_the_file(no_colab):
    with pytest.raises(RuntimeError, match='already on this computer: x.wav'):
        colab_utils.download('x.wav')


def test_upload_in_colab_decodes_every_file(fake_colab):
    fake_colab.uploaded = {'a.wav': _wav_bytes(_stereo_tone(), 44100),
                           'b.wav': _wav_bytes(_stereo_tone(16000), 16000)}
    names, arrays = colab_utils.upload(sample_rate=16000)
    assert names == ['a.wav', 'b.wav']
    assert [a.shape for a in arrays] == [(8000,), (8000,)]
    colab_utils.download('out.wav')
    assert fake_colab.downloaded == ['out.wav']


def test_upload_in_colab_names_a_bad_file(fake_colab):
    fake_colab.uploaded = {'notes.txt': b'hello'}
    with pytest.raises(ValueError, match='notes.txt'):
        colab_utils.upload()


def test_aliases():
    assert colab_utils.specplot is plotting.specplot
    assert colab_utils.transfer_function is plotting.transfer_function
    assert (colab_utils.plot_impulse_responses
            is plotting.plot_impulse_responses)
    assert colab_utils.get_tuning_factor is postprocessing.get_tuning_factor
    assert colab_utils.auto_tune is postprocessing.auto_tune
