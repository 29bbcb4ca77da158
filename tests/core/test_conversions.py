"""Tests of ddsp.core.conversions against librosa and closed forms."""
import librosa
import numpy as np
import pytest
import tensorflow as tf

from ddsp import core


@pytest.mark.parametrize('range_db', [100.0, 1.0])
@pytest.mark.parametrize('use_tf', [True, False])
def test_db_conversions_equal_librosa(range_db, use_tf):
    x = np.sort(np.random.rand(1000).astype(np.float32))
    x[:10] = 0.0
    x[10:20] = 1e-12
    amin = 10**(-range_db / 10.0)
    ref_db = 3.0
    expected = librosa.power_to_db(x, ref=1.0, amin=amin, top_db=None)
    expected = np.maximum(expected - ref_db, -range_db)
    out = core.power_to_db(x, ref_db=ref_db, range_db=range_db, use_tf=use_tf)
    assert isinstance(out, tf.Tensor) == use_tf
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-5)

    expected = librosa.amplitude_to_db(x, ref=1.0, amin=np.sqrt(amin),
                                       top_db=None)
    expected = np.maximum(expected, -range_db)
    out = core.amplitude_to_db(x, range_db=range_db, use_tf=use_tf)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-5)


def test_db_inverses():
    x = np.linspace(0.01, 2.0, 50).astype(np.float32)
    np.testing.assert_allclose(core.db_to_power(core.power_to_db(x)), x,
                               rtol=1e-5)
    np.testing.assert_allclose(
        core.db_to_amplitude(core.amplitude_to_db(x)), x, rtol=1e-5)
    np.testing.assert_allclose(core.db_to_amplitude(librosa.amplitude_to_db(x)),
                               librosa.db_to_amplitude(
                                   librosa.amplitude_to_db(x)), rtol=1e-5)


def test_default_range_is_80_db():
    assert core.DB_RANGE == 80.0
    np.testing.assert_allclose(core.power_to_db([0.0, 1.0]), [-80.0, 0.0])


def test_midi_to_hz_is_accurate():
    midi = np.arange(128, dtype=np.float32)
    np.testing.assert_allclose(core.midi_to_hz(midi), librosa.midi_to_hz(midi),
                               rtol=1e-6)
    hz = core.midi_to_hz(np.array([0.0, -1.0, 69.0]), midi_zero_silence=True)
    np.testing.assert_allclose(hz, [0.0, 0.0, 440.0])


def test_hz_to_midi_is_accurate():
    hz = np.linspace(20.0, 8000.0, 128).astype(np.float32)
    np.testing.assert_allclose(core.hz_to_midi(hz), librosa.hz_to_midi(hz),
                               rtol=1e-6)
    np.testing.assert_array_equal(core.hz_to_midi([0.0, 0.0]), [0.0, 0.0])
    assert core.hz_to_midi(tf.constant(0.0)).numpy() == 0.0


@pytest.mark.parametrize('clip', [False, True])
def test_unit_midi_maps(clip):
    unit = np.linspace(-1.0, 2.0, 31).astype(np.float32)
    expected = 20.0 + 70.0 * (np.clip(unit, 0, 1) if clip else unit)
    np.testing.assert_allclose(core.unit_to_midi(unit, clip=clip), expected,
                               rtol=1e-6, atol=1e-5)
    midi = np.linspace(0.0, 127.0, 31).astype(np.float32)
    expected = (midi - 20.0) / 70.0
    expected = np.clip(expected, 0, 1) if clip else expected
    np.testing.assert_allclose(core.midi_to_unit(midi, clip=clip), expected,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('clip', [False, True])
def test_unit_hz_maps(clip):
    hz_min, hz_max = 20.0, 8000.0
    unit = np.linspace(-0.5, 1.5, 21).astype(np.float32)
    u = np.clip(unit, 0, 1) if clip else unit
    expected = hz_min * (hz_max / hz_min)**u
    out = core.unit_to_hz(unit, hz_min, hz_max, clip=clip)
    np.testing.assert_allclose(out, expected, rtol=1e-4)
    hz = np.geomspace(10.0, 16000.0, 21).astype(np.float32)
    expected = np.log(hz / hz_min) / np.log(hz_max / hz_min)
    expected = np.clip(expected, 0, 1) if clip else expected
    out = core.hz_to_unit(hz, hz_min, hz_max, clip=clip)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_psychoacoustic_scales():
    hz = np.linspace(50.0, 8000.0, 40).astype(np.float32)
    np.testing.assert_allclose(core.hz_to_mel(hz),
                               librosa.hz_to_mel(hz, htk=True), rtol=1e-5)
    np.testing.assert_allclose(core.mel_to_hz(core.hz_to_mel(hz)), hz,
                               rtol=1e-5)
    bark = 26.81 * hz / (1960.0 + hz) - 0.53
    np.testing.assert_allclose(core.hz_to_bark(hz), bark, rtol=1e-5)
    np.testing.assert_allclose(core.bark_to_hz(core.hz_to_bark(hz)), hz,
                               rtol=1e-4)
    np.testing.assert_allclose(core.hz_to_erb(hz), 0.108 * hz + 24.7,
                               rtol=1e-6)
