"""Checks of the committed example data in data/ (see data/README.md)."""
import csv
import glob
import os

import numpy as np
import pytest
import soundfile as sf

from ddsp import spectral_ops

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                    '..', 'data')


def _notes(wav):
    with open(wav[:-len('.wav')] + '_notes.csv') as f:
        return [{k: float(v) for k, v in row.items()}
                for row in csv.DictReader(f)]


def test_example_dataset_is_one_instrument_16k_mono_60_to_120_s():
    wavs = sorted(glob.glob(os.path.join(DATA, '*.wav')))
    assert [os.path.basename(w) for w in wavs] == [
        f'violin_0{i}.wav' for i in range(1, 5)]
    total = 0.0
    for wav in wavs:
        info = sf.info(wav)
        assert (info.samplerate, info.channels) == (16000, 1)
        total += info.duration
        notes = _notes(wav)
        assert len(notes) > 10
        onsets = np.array([n['onset_s'] for n in notes])
        offsets = np.array([n['offset_s'] for n in notes])
        assert np.all(offsets > onsets) and np.all(onsets[1:] >= offsets[:-1])
        assert offsets[-1] <= info.duration
        assert {n['midi_pitch'] for n in notes} <= set(range(55, 90))
        assert len({n['velocity'] for n in notes}) > 5  # Dynamics.
    assert 60 <= total <= 120
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(DATA, '**'),
                                                     recursive=True)
               if os.path.isfile(p))
    assert size < 4e6


def test_example_notes_match_the_audio():
    """CREPE (tiny) agrees with the MIDI notes within 50 cents."""
    wav = os.path.join(DATA, 'violin_01.wav')
    audio, sr = sf.read(wav, dtype='float32')
    f0, conf = spectral_ops.compute_f0(audio, 50, padding='center',
                                       model_capacity='tiny')
    t = np.arange(len(f0)) / 50
    errors = []
    for n in _notes(wav):
        if n['offset_s'] - n['onset_s'] < 0.4:
            continue
        sel = (t > n['onset_s'] + 0.1) & (t < n['offset_s'] - 0.1)
        midi = 12 * np.log2(np.median(f0[sel]) / 440) + 69
        errors.append(abs(midi - n['midi_pitch']))
    assert np.mean(np.array(errors) < 0.5) > 0.9, errors


def test_voice_like_clip_and_its_f0():
    wav = os.path.join(DATA, 'voice', 'voice_like.wav')
    info = sf.info(wav)
    assert (info.samplerate, info.channels) == (16000, 1)
    assert 5 <= info.duration <= 10
    with open(os.path.join(DATA, 'voice', 'voice_like_f0.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == pytest.approx(info.duration * 250, abs=1)
    f0 = np.array([float(r['f0_hz']) for r in rows])
    assert np.all((f0 > 150) & (f0 < 400))
