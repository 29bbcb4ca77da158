"""Speed and pitch accuracy of ddsp.spectral_ops.compute_f0 (CREPE).

Needs FluidSynth and the FluidR3 General MIDI soundfont (Debian/Ubuntu:
`apt-get install -y fluidsynth fluid-soundfont-gm`): the clips are rendered
from note lists written here into tiny MIDI files, so the ground-truth f0 is
known, and the soundfont's samples are recordings of real instruments.
Rendered clips go to `--out` (default bench_out/crepe, ignored by git).

Measured:
* speed: seconds per call for 4 s of 16 kHz audio at 250 frames/s ('center'
  padding: 1001 frames), after one warm-up call (model load + trace, reported
  separately), min and median of `--repeats` calls, with the process CPU time
  (all threads) and the 1-minute load average: on a shared machine wall time
  grows with the load, CPU time much less;
* accuracy: raw pitch accuracy (RPA: share of scored frames within 50 cents of
  the note) and median absolute error in cents over all clips, scoring only
  frames centred inside a note, from 50 ms after its onset to 32 ms before its
  release (half a CREPE window), i.e. no onsets, releases or rests.

Usage:
    .venv/bin/python bench/crepe_bench.py [--repeats 3] [--modes a,b,...]
        [--json bench_out/crepe/results.json]
"""
import argparse
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import soxr  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from ddsp import spectral_ops  # noqa: E402

SOUNDFONT = '/usr/share/sounds/sf2/FluidR3_GM.sf2'
RENDER_RATE = 44100
SAMPLE_RATE = 16000
FRAME_RATE = 250
ONSET_SKIP = 0.050  # s after each onset not scored.
RELEASE_SKIP = 0.032  # s before each release not scored.

# name -> (GM program, lowest MIDI note, highest MIDI note, legato)
INSTRUMENTS = {
    'violin': (40, 55, 88, True),
    'cello': (42, 36, 67, True),
    'flute': (73, 60, 93, False),
    'clarinet': (71, 50, 84, True),
    'trumpet': (56, 55, 80, False),
    'alto_sax': (65, 49, 80, True),
    'bassoon': (70, 34, 65, False),
    'nylon_guitar': (24, 40, 76, False),
    'piano': (0, 33, 96, False),
    'oboe': (68, 58, 91, True),
}

# name -> compute_f0 keyword arguments (frame_rate=250, 'center', Viterbi).
MODES = {
    'reference': dict(model_capacity='full'),
    'argmax': dict(model_capacity='full', viterbi=False),
    'bf16': dict(model_capacity='full', precision='bfloat16'),
    'full@125': dict(model_capacity='full', crepe_frame_rate=125),
    'full@83': dict(model_capacity='full', crepe_frame_rate=250 / 3),
    'full@62.5': dict(model_capacity='full', crepe_frame_rate=62.5),
    'full@50': dict(model_capacity='full', crepe_frame_rate=50),
    'full@50-bf16': dict(model_capacity='full', crepe_frame_rate=50,
                         precision='bfloat16'),
    'large@50': dict(model_capacity='large', crepe_frame_rate=50),
    'medium@125': dict(model_capacity='medium', crepe_frame_rate=125),
    'medium@50': dict(model_capacity='medium', crepe_frame_rate=50),
    'small@50': dict(model_capacity='small', crepe_frame_rate=50),
    'tiny': dict(model_capacity='tiny'),
}
DEFAULT_MODES = ('reference', 'bf16', 'full@83', 'full@62.5', 'full@50',
                 'full@50-bf16', 'large@50', 'medium@50', 'tiny')


# MIDI ------------------------------------------------------------------------
def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def write_midi(path, notes, program: int):
    """Format-0 MIDI file, 1 tick = 1 ms; notes = [(onset_s, offset_s, midi)].
    """
    events = []  # (time_ms, order, bytes)
    for onset, offset, pitch in notes:
        events.append((round(offset * 1000), 0, bytes([0x80, pitch, 0])))
        events.append((round(onset * 1000), 1, bytes([0x90, pitch, 96])))
    events.sort()
    track = bytearray()
    track += _vlq(0) + b'\xff\x51\x03' + (1_000_000).to_bytes(3, 'big')
    track += _vlq(0) + bytes([0xC0, program])
    now = 0
    for t, _, data in events:
        track += _vlq(t - now) + data
        now = t
    track += _vlq(500) + b'\xff\x2f\x00'
    header = b'MThd' + struct.pack('>IHHH', 6, 0, 1, 1000)
    pathlib.Path(path).write_bytes(
        header + b'MTrk' + struct.pack('>I', len(track)) + bytes(track))


def make_notes(rng, low, high, legato, seconds):
    """A random melody (steps up to a fifth, some leaps) within [low, high]."""
    notes, t = [], 0.25
    pitch = int(rng.integers(low + 4, high - 4))
    while t < seconds - 0.6:
        duration = float(rng.choice([0.2, 0.3, 0.4, 0.6, 0.8]))
        notes.append((t, t + duration, pitch))
        t += duration + (0.0 if legato and rng.random() < 0.8
                         else float(rng.choice([0.05, 0.1, 0.25])))
        step = int(rng.choice([-7, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 7, 12,
                               -12]))
        pitch = int(np.clip(pitch + step, low, high))
    return notes


def render_clips(out_dir: pathlib.Path, seconds: float, seed: int = 0):
    """Renders one clip per instrument; returns [(name, audio_16k, notes)]."""
    if shutil.which('fluidsynth') is None or not os.path.exists(SOUNDFONT):
        sys.exit('Needs FluidSynth and its GM soundfont: apt-get install -y '
                 'fluidsynth fluid-soundfont-gm')
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    clips = []
    for name, (program, low, high, legato) in INSTRUMENTS.items():
        notes = make_notes(rng, low, high, legato, seconds)
        midi_path = out_dir / f'{name}.mid'
        wav_path = out_dir / f'{name}.wav'
        write_midi(midi_path, notes, program)
        if not wav_path.exists():
            subprocess.run(
                ['fluidsynth', '-ni', '-q', '-R', '0', '-C', '0', '-g', '0.8',
                 '-r', str(RENDER_RATE), '-F', str(wav_path), SOUNDFONT,
                 str(midi_path)], check=True, capture_output=True)
        audio, rate = sf.read(wav_path, dtype='float32')
        if audio.ndim == 2:
            audio = audio.mean(axis=1)
        audio = soxr.resample(audio, rate, SAMPLE_RATE)[:int(seconds *
                                                             SAMPLE_RATE)]
        clips.append((name, audio.astype(np.float32), notes))
    return clips


# Scoring ---------------------------------------------------------------------
def reference_f0(notes, n_frames):
    """Per-frame true MIDI pitch ('center' frames), NaN where unscored."""
    times = np.arange(n_frames) / FRAME_RATE
    truth = np.full(n_frames, np.nan)
    for onset, offset, pitch in notes:
        scored = (times >= onset + ONSET_SKIP) & (times <= offset -
                                                  RELEASE_SKIP)
        truth[scored] = pitch
    return truth


def cents_error(f0_hz, truth_midi):
    scored = ~np.isnan(truth_midi)
    with np.errstate(divide='ignore'):
        midi = 69 + 12 * np.log2(np.maximum(f0_hz[scored], 1e-3) / 440.0)
    return 100.0 * (midi - truth_midi[scored])


# Main ------------------------------------------------------------------------
def time_mode(audio, kwargs, repeats):
    t0 = time.perf_counter()
    spectral_ops.compute_f0(audio, FRAME_RATE, **kwargs)
    first = time.perf_counter() - t0
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        f0, _ = spectral_ops.compute_f0(audio, FRAME_RATE, **kwargs)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    assert f0.shape == (1001,), f0.shape
    return first, times, cpu_times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='bench_out/crepe')
    parser.add_argument('--seconds', type=float, default=8.0,
                        help='length of each rendered clip')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--modes', default=','.join(DEFAULT_MODES),
                        help=f'comma-separated, from {list(MODES)}')
    parser.add_argument('--skip-speed', action='store_true')
    parser.add_argument('--skip-accuracy', action='store_true')
    parser.add_argument('--json', default=None, help='write results here')
    args = parser.parse_args()
    modes = [m for m in args.modes.split(',') if m]
    for m in modes:
        if m not in MODES:
            parser.error(f'unknown mode {m!r}; choose from {list(MODES)}')

    clips = render_clips(pathlib.Path(args.out), max(args.seconds, 4.0))
    total = sum(len(a) for _, a, _ in clips) / SAMPLE_RATE
    print(f'{len(clips)} clips, {total:.0f} s of audio; CPU cores: '
          f'{os.cpu_count()}', flush=True)
    results = {}
    audio_4s = clips[0][1][:4 * SAMPLE_RATE]
    for mode in modes:
        kwargs = MODES[mode]
        row = {'kwargs': {k: v for k, v in kwargs.items()}}
        if not args.skip_speed:
            first, times, cpu = time_mode(audio_4s, kwargs, args.repeats)
            row.update(first_call_s=first, min_s=min(times),
                       median_s=float(np.median(times)), times_s=times,
                       median_cpu_s=float(np.median(cpu)),
                       load_avg=os.getloadavg()[0])
        if not args.skip_accuracy:
            errors, per_clip = [], {}
            for name, audio, notes in clips:
                f0, _ = spectral_ops.compute_f0(audio, FRAME_RATE, **kwargs)
                err = cents_error(f0, reference_f0(notes, len(f0)))
                per_clip[name] = float(np.mean(np.abs(err) < 50) * 100)
                errors.append(err)
            errors = np.concatenate(errors)
            row.update(rpa=float(np.mean(np.abs(errors) < 50) * 100),
                       median_abs_cents=float(np.median(np.abs(errors))),
                       n_scored_frames=int(errors.size), rpa_per_clip=per_clip)
        results[mode] = row
        line = f'{mode:14s}'
        if 'min_s' in row:
            line += (f' 4 s audio: min {row["min_s"]:6.2f} s, median '
                     f'{row["median_s"]:6.2f} s (first call '
                     f'{row["first_call_s"]:5.1f} s; CPU time '
                     f'{row["median_cpu_s"]:5.1f} s, load '
                     f'{row["load_avg"]:.1f})')
        if 'rpa' in row:
            line += (f'  RPA {row["rpa"]:6.2f} %  median |err| '
                     f'{row["median_abs_cents"]:5.2f} c')
        print(line, flush=True)
        if 'rpa_per_clip' in row:
            print('    ' + ', '.join(f'{k} {v:.1f}'
                                     for k, v in row['rpa_per_clip'].items()),
                  flush=True)
    if args.json:
        pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
