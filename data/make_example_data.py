#!/usr/bin/env python3
"""Regenerates the example data in data/ (see data/README.md).

1. data/violin_0{1..4}.wav: four solo-violin takes (about 21 s each, 16 kHz
   mono PCM_16), rendered with fluidsynth from the FluidR3 GM soundfont of
   Debian's `fluid-soundfont-gm` package (MIT license). Melodies are random
   walks in D major with phrase rests, velocity dynamics, expression (CC11)
   swells and delayed pitch-bend vibrato; the MIDI files are written by the
   small writer below (no MIDI library needed). Each take's notes go to
   data/violin_0N_notes.csv (onset_s, offset_s, midi_pitch, velocity): the
   pitch ground truth, up to the vibrato (at most +-25 cents, listed in the
   vibrato_cents column) and the soundfont's tuning.
2. data/voice/voice_like.wav: an 8 s voice-like clip for timbre-transfer demos
   (a band-limited glottal pulse train shaped by moving vowel formants, with
   vibrato, portamento and breath noise; numpy only), with its exact f0 curve
   in data/voice/voice_like_f0.csv (time_s, f0_hz, amplitude) at 250 Hz.

Needs: `apt-get install -y fluidsynth fluid-soundfont-gm` and the project's
.venv (numpy, soundfile, soxr). Usage:

    .venv/bin/python data/make_example_data.py [--output_dir data]

Everything is seeded: the MIDI and the voice clip are bit-identical across
runs; fluidsynth's rendering is deterministic for a given fluidsynth version.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import struct
import subprocess
import tempfile

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
RENDER_RATE = 44100
SOUNDFONT = '/usr/share/sounds/sf2/FluidR3_GM.sf2'
VIOLIN_PROGRAM = 40  # GM program 41 "Violin" (0-based in the MIDI message).
N_TAKES = 4
TAKE_SECS = 21.0
PEAK_DBFS = -3.0

# D major from A3 to D6, the range where the soundfont's violin sounds best.
SCALE = [57, 59, 61, 62, 64, 66, 67, 69, 71, 73, 74, 76, 78, 79, 81, 83, 85,
         86]


# ---------------------------------------------------------------- MIDI writer
def _vlq(n: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def write_midi(path: str, events: list[tuple[float, bytes]],
               ticks_per_beat: int = 480, tempo_us: int = 500000) -> None:
    """Writes a format-0 MIDI file of (time_s, message) events."""
    ticks_per_sec = ticks_per_beat * 1e6 / tempo_us
    track = bytearray(b'\x00\xff\x51\x03' + tempo_us.to_bytes(3, 'big'))
    last = 0
    # Stable sort: events at the same time keep their order (note-off first).
    for time_s, msg in sorted(events, key=lambda e: e[0]):
        tick = int(round(time_s * ticks_per_sec))
        track += _vlq(tick - last) + msg
        last = tick
    track += b'\x00\xff\x2f\x00'
    with open(path, 'wb') as f:
        f.write(b'MThd' + struct.pack('>IHHH', 6, 0, 1, ticks_per_beat))
        f.write(b'MTrk' + struct.pack('>I', len(track)) + bytes(track))


def _cc(control: int, value: int) -> bytes:
    return bytes([0xB0, control, int(np.clip(value, 0, 127))])


def _bend(semitones: float, bend_range: float = 2.0) -> bytes:
    value = int(np.clip(8192 + semitones / bend_range * 8192, 0, 16383))
    return bytes([0xE0, value & 0x7F, value >> 7])


# ------------------------------------------------------------------- melodies
def make_take(rng: np.random.Generator, secs: float):
    """Returns (MIDI events, notes) of one take of about `secs` seconds."""
    events = [
        (0.0, bytes([0xC0, VIOLIN_PROGRAM])),
        (0.0, _cc(7, 110)),  # Channel volume.
        # Pitch-bend range +-2 semitones (RPN 0), stated explicitly.
        (0.0, _cc(101, 0)), (0.0, _cc(100, 0)), (0.0, _cc(6, 2)),
        (0.0, _cc(38, 0)),
        (0.0, _cc(11, 100)), (0.0, _bend(0.0)),
    ]
    notes = []
    t = 0.3
    idx = int(rng.integers(4, len(SCALE) - 6))
    while t < secs - 2.0:
        # One phrase: 3-8 notes, legato, with a dynamic arc, then a rest.
        n_notes = int(rng.integers(3, 9))
        phrase_vel = rng.uniform(55, 110)
        for i in range(n_notes):
            step = int(rng.choice([-3, -2, -1, -1, 1, 1, 2, 3, 0]))
            idx = int(np.clip(idx + step, 0, len(SCALE) - 1))
            pitch = SCALE[idx]
            dur = float(rng.choice([0.25, 0.375, 0.5, 0.75, 1.0, 1.5, 2.0],
                                   p=[.1, .1, .25, .2, .15, .12, .08]))
            dur = min(dur, secs - 0.5 - t)
            if dur < 0.2:
                break
            arc = np.sin(np.pi * (i + 0.5) / n_notes)
            velocity = int(np.clip(phrase_vel * (0.75 + 0.35 * arc)
                                   + rng.normal(0, 6), 35, 127))
            vib_cents = float(rng.uniform(10, 25)) if dur >= 0.5 else 0.0
            _add_note(events, rng, t, dur, pitch, velocity, vib_cents)
            notes.append((t, t + dur, pitch, velocity, vib_cents))
            t += dur
        t += float(rng.uniform(0.3, 1.2))  # Rest between phrases.
    return events, notes


def _add_note(events, rng, onset, dur, pitch, velocity, vib_cents):
    """Note on/off, an expression swell and delayed vibrato."""
    events.append((onset, bytes([0x90, pitch, velocity])))
    e_start, e_peak, e_end = rng.uniform(60, 90), rng.uniform(95, 127), \
        rng.uniform(55, 100)
    peak_at = rng.uniform(0.2, 0.7)
    vib_rate = rng.uniform(5.0, 6.5)
    vib_delay = min(0.25, 0.4 * dur)
    for x in np.arange(0.0, dur, 0.01):
        frac = x / dur
        if frac < peak_at:
            expr = e_start + (e_peak - e_start) * frac / peak_at
        else:
            expr = e_peak + (e_end - e_peak) * (frac - peak_at) / (1 - peak_at)
        if round(x / 0.01) % 2 == 0:  # CC11 every 20 ms.
            events.append((onset + x, _cc(11, int(expr))))
        if vib_cents:
            fade = np.clip((x - vib_delay) / 0.2, 0.0, 1.0)
            cents = vib_cents * fade * np.sin(2 * np.pi * vib_rate * x)
            events.append((onset + x, _bend(cents / 100.0)))
    events.append((onset + dur, bytes([0x80, pitch, 0])))
    events.append((onset + dur, _bend(0.0)))


def render_violin(output_dir: str, seed: int = 2024) -> list[str]:
    """Renders the violin takes; returns the written wav paths."""
    if not os.path.exists(SOUNDFONT) or shutil.which('fluidsynth') is None:
        raise SystemExit('Needs fluidsynth and the GM soundfont: apt-get '
                         'install -y fluidsynth fluid-soundfont-gm')
    rng = np.random.default_rng(seed)
    takes = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(1, N_TAKES + 1):
            events, notes = make_take(rng, TAKE_SECS)
            mid, raw = os.path.join(tmp, f'{n}.mid'), os.path.join(
                tmp, f'{n}.wav')
            write_midi(mid, events)
            subprocess.run(
                ['fluidsynth', '-ni', '-q', '-R', '0', '-C', '0', '-g', '0.5',
                 '-r', str(RENDER_RATE), '-O', 'float', '-T', 'wav',
                 '-F', raw, SOUNDFONT, mid], check=True)
            audio, sr = sf.read(raw, dtype='float64', always_2d=True)
            audio = soxr.resample(audio.mean(axis=1), sr, SAMPLE_RATE, 'VHQ')
            audio = audio[:int(TAKE_SECS * SAMPLE_RATE)]
            takes.append((f'violin_{n:02d}', audio, notes))
    # One gain for all takes keeps their relative loudness.
    peak = max(np.max(np.abs(a)) for _, a, _ in takes)
    gain = 10 ** (PEAK_DBFS / 20) / peak
    paths = []
    for name, audio, notes in takes:
        path = os.path.join(output_dir, f'{name}.wav')
        sf.write(path, (audio * gain).astype(np.float32), SAMPLE_RATE,
                 subtype='PCM_16')
        with open(os.path.join(output_dir, f'{name}_notes.csv'), 'w',
                  newline='') as f:
            w = csv.writer(f)
            w.writerow(['onset_s', 'offset_s', 'midi_pitch', 'velocity',
                        'vibrato_cents'])
            for on, off, pitch, vel, vib in notes:
                w.writerow([f'{on:.4f}', f'{off:.4f}', pitch, vel,
                            f'{vib:.1f}'])
        paths.append(path)
    return paths


# ----------------------------------------------------------------- voice clip
VOWELS = {  # (F1, F2, F3) Hz, bandwidths (80, 100, 120) Hz.
    'a': (730, 1090, 2440), 'e': (530, 1840, 2480), 'i': (390, 1990, 2550),
    'o': (570, 840, 2410), 'u': (440, 1020, 2240),
}


def render_voice(output_dir: str, secs: float = 8.0, seed: int = 7):
    """Renders data/voice/voice_like.wav and its f0 curve."""
    rng = np.random.default_rng(seed)
    sr, frame_rate = SAMPLE_RATE, 250
    n = int(secs * sr)
    t = np.arange(n) / sr
    # Sung phrase: (start_s, end_s, midi) with portamento between notes and a
    # rest in the middle; 5.5 Hz vibrato of +-30 cents after 0.3 s.
    phrase = [(0.2, 1.2, 57), (1.2, 2.0, 59), (2.0, 3.4, 62), (4.0, 4.9, 64),
              (4.9, 5.7, 62), (5.7, 7.6, 57)]
    midi = np.full(n, np.nan)
    amp = np.zeros(n)
    for start, end, pitch in phrase:
        sl = (t >= start) & (t < end)
        midi[sl] = pitch
        local = t[sl] - start
        attack = np.clip(local / 0.06, 0, 1)
        release = np.clip((end - t[sl]) / 0.08, 0, 1)
        amp[sl] = np.maximum(amp[sl], 0.6 * attack * release)
    # Fill gaps with the neighbouring pitch, then glide (60 ms smoothing).
    idx = np.where(~np.isnan(midi), np.arange(n), 0)
    np.maximum.accumulate(idx, out=idx)
    midi = midi[idx]
    midi[np.isnan(midi)] = phrase[0][2]
    k = int(0.06 * sr)
    midi = np.convolve(np.pad(midi, (k // 2, k - k // 2 - 1), mode='edge'),
                       np.ones(k) / k, mode='valid')
    vib = 0.30 * np.sin(2 * np.pi * 5.5 * t) * np.clip((t % 1.3) / 0.3, 0, 1)
    f0 = 440.0 * 2 ** ((midi + vib - 69) / 12)
    amp = np.convolve(amp, np.ones(160) / 160, mode='same')
    # Vowel sequence, interpolated formants.
    seq = 'aeiouoa'
    pos = np.clip(t / secs * (len(seq) - 1), 0, len(seq) - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(seq) - 1)
    w = (pos - lo)[:, None]
    table = np.array([VOWELS[v] for v in seq], float)
    formants = table[lo] * (1 - w) + table[hi] * w
    bandwidths = np.array([80.0, 100.0, 120.0])
    phase = 2 * np.pi * np.cumsum(f0) / sr
    audio = np.zeros(n)
    for h in range(1, 60):
        freq = h * f0
        # Glottal source tilt (-12 dB/octave) times formant resonances.
        gain = 1.0 / h ** 2
        env = np.zeros(n)
        for j in range(3):
            env += 1.0 / (1.0 + ((freq - formants[:, j]) / bandwidths[j]) ** 2)
        audio += np.where(freq < sr / 2 - 200, gain * env, 0.0) * np.sin(
            h * phase)
    breath = np.convolve(rng.standard_normal(n), np.ones(4) / 4, 'same')
    audio = amp * (audio / np.max(np.abs(audio)) + 0.02 * breath)
    audio *= 10 ** (PEAK_DBFS / 20) / np.max(np.abs(audio))
    voice_dir = os.path.join(output_dir, 'voice')
    os.makedirs(voice_dir, exist_ok=True)
    sf.write(os.path.join(voice_dir, 'voice_like.wav'),
             audio.astype(np.float32), sr, subtype='PCM_16')
    hop = sr // frame_rate
    with open(os.path.join(voice_dir, 'voice_like_f0.csv'), 'w',
              newline='') as f:
        wr = csv.writer(f)
        wr.writerow(['time_s', 'f0_hz', 'amplitude'])
        for i in range(0, n, hop):
            wr.writerow([f'{t[i]:.3f}', f'{f0[i]:.3f}', f'{amp[i]:.4f}'])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output_dir',
                        default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    os.makedirs(args.output_dir, exist_ok=True)
    for p in render_violin(args.output_dir):
        print('wrote', p)
    render_voice(args.output_dir)
    print('wrote', os.path.join(args.output_dir, 'voice', 'voice_like.wav'))


if __name__ == '__main__':
    main()
