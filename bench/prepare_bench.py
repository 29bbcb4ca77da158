#!/usr/bin/env python3
"""Times `ddsp_prepare_tfrecord` on the example data (data/*.wav).

Each configuration runs the installed console script end to end as a
subprocess (Python + TensorFlow start-up, Beam, reading, CREPE, loudness,
writing), --repeats times; reported: wall seconds (median, min), seconds of
wall time per second of audio and the speed as a multiple of real time. The
median CPU seconds (user + sys of the whole process tree) are reported too:
on a shared machine they move less than wall time. The
CREPE compute limit is measured in-process: `spectral_ops.compute_f0` alone,
warm, on one file with the same settings, per second of audio.

    python bench/prepare_bench.py [--modes fast,default] [--repeats 3]
        [--workers 1,2] [--json out.json]
    python bench/prepare_bench.py --accuracy --modes fast,small50,full50

Modes: fast = CREPE tiny on a 50 Hz grid (what `make demo` uses); small50 /
full50 = CREPE small / full on a 50 Hz grid; default = the reference's CREPE
full at 250 Hz.
Workers: 1 = in-process DirectRunner; N > 1 = --direct_num_workers=N
--direct_running_mode=multi_processing.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = {
    'fast': ['--crepe_model_capacity=tiny', '--crepe_frame_rate=50'],
    'small50': ['--crepe_model_capacity=small', '--crepe_frame_rate=50'],
    'full50': ['--crepe_frame_rate=50'],
    'default': [],
}
MODE_ARGS = {'fast': ('tiny', 50), 'small50': ('small', 50),
             'full50': ('full', 50), 'default': ('full', None)}


def _script() -> str:
    return os.path.join(os.path.dirname(sys.executable),
                        'ddsp_prepare_tfrecord')


def run_once(mode: str, workers: int, pattern: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'train.tfrecord')
        cmd = [_script(), f'--input_audio_filepatterns={pattern}',
               f'--output_tfrecord_path={out}'] + MODES[mode]
        if workers > 1:
            cmd.append(f'--pipeline_options=--direct_num_workers={workers},'
                       '--direct_running_mode=multi_processing')
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                                env=env)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime
               + after.ru_stime - before.ru_stime)
        if result.returncode:
            raise SystemExit(f'{" ".join(cmd)} failed:\n'
                             f'{result.stderr[-3000:]}')
        with open(os.path.join(tmp, 'train.metadata.json')) as f:
            meta = json.load(f)
    return {'wall_s': wall, 'cpu_s': cpu, 'audio_s': meta['summary']['audio_secs_used'],
            'examples': sum(meta['summary']['examples'].values())}


def crepe_limit(mode: str, wav: str, secs: float) -> tuple[float, float]:
    """Warm `compute_f0` wall and CPU seconds per second of audio."""
    code = f'''
import time, soundfile as sf
from ddsp import spectral_ops
audio, sr = sf.read({wav!r}, dtype='float32')
audio = audio[:int({secs} * sr)]
cap, cfr = {MODE_ARGS[mode]!r}
spectral_ops.compute_f0(audio[:16000], 250, padding='same',
                        model_capacity=cap, crepe_frame_rate=cfr)
t, c = time.perf_counter(), time.process_time()
spectral_ops.compute_f0(audio, 250, padding='same', model_capacity=cap,
                        crepe_frame_rate=cfr)
secs = len(audio) / sr
print((time.perf_counter() - t) / secs, (time.process_time() - c) / secs)
'''
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def f0_accuracy(mode: str, pattern: str) -> dict:
    """f0 of the mode against the notes CSVs of data/ (note frames, 0.1 s
    after onset to 0.05 s before offset): raw pitch accuracy (within 50
    cents) and median absolute error in cents (vibrato included)."""
    code = f'''
import csv, glob, json, numpy as np, soundfile as sf
from ddsp import spectral_ops
cap, cfr = {MODE_ARGS[mode]!r}
errors = []
for wav in sorted(glob.glob({pattern!r})):
    audio, sr = sf.read(wav, dtype='float32')
    f0, _ = spectral_ops.compute_f0(audio, 250, padding='center',
                                    model_capacity=cap, crepe_frame_rate=cfr)
    t = np.arange(len(f0)) / 250
    for row in csv.DictReader(open(wav[:-4] + '_notes.csv')):
        sel = (t > float(row['onset_s']) + 0.1) & (
            t < float(row['offset_s']) - 0.05)
        ref = 440 * 2 ** ((float(row['midi_pitch']) - 69) / 12)
        errors.extend(1200 * np.log2(np.maximum(f0[sel], 1e-3) / ref))
e = np.abs(np.array(errors))
print(json.dumps({{'rpa_50c': float(np.mean(e < 50)),
                  'median_abs_cents': float(np.median(e)),
                  'frames': int(len(e))}}))
'''
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--modes', default='fast,default')
    parser.add_argument('--workers', default='1,2')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--pattern', default='data/*.wav')
    parser.add_argument('--no_crepe_limit', action='store_true')
    parser.add_argument('--crepe_limit_secs', type=float, default=21.0,
                        help='Audio used for the CREPE-only figure.')
    parser.add_argument('--json', default=None)
    parser.add_argument('--accuracy', action='store_true',
                        help='Only report each mode\'s f0 accuracy against '
                             'the notes of data/ (no timing).')
    args = parser.parse_args()
    if args.accuracy:
        for mode in args.modes.split(','):
            print(mode, f0_accuracy(mode, args.pattern), flush=True)
        return
    rows = []
    print(f'{"mode":8} {"workers":>7} {"runs":>4} {"median_s":>9} '
          f'{"min_s":>7} {"cpu_s":>7} {"audio_s":>7} {"s_per_s":>7} '
          f'{"x_real":>6} {"crepe_s_per_s":>13}')
    for mode in args.modes.split(','):
        limit = limit_cpu = None
        if not args.no_crepe_limit:
            wav = sorted(glob.glob(os.path.join(ROOT, args.pattern)))[0]
            limit, limit_cpu = crepe_limit(mode, wav, args.crepe_limit_secs)
        for workers in [int(w) for w in args.workers.split(',')]:
            runs = [run_once(mode, workers, args.pattern)
                    for _ in range(args.repeats)]
            walls = [r['wall_s'] for r in runs]
            cpu = statistics.median(r['cpu_s'] for r in runs)
            audio = runs[0]['audio_s']
            med = statistics.median(walls)
            row = {'mode': mode, 'crepe': MODE_ARGS[mode], 'workers': workers,
                   'runs': len(runs), 'wall_s': walls, 'median_s': med,
                   'min_s': min(walls), 'cpu_s': cpu, 'audio_s': audio,
                   'examples': runs[0]['examples'],
                   's_per_audio_s': med / audio, 'x_real_time': audio / med,
                   'crepe_only_s_per_audio_s': limit,
                   'crepe_only_cpu_s_per_audio_s': limit_cpu}
            rows.append(row)
            print(f'{mode:8} {workers:7d} {len(runs):4d} {med:9.1f} '
                  f'{min(walls):7.1f} {cpu:7.1f} {audio:7.1f} '
                  f'{med / audio:7.3f} '
                  f'{audio / med:6.2f} '
                  f'{"" if limit is None else f"{limit:13.3f}"}'
                  f'{"" if limit_cpu is None else f" (cpu {limit_cpu:.3f})"}',
                  flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'cpus': os.cpu_count(), 'rows': rows}, f, indent=1)


if __name__ == '__main__':
    main()
