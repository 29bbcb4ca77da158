#!/usr/bin/env python3
"""Harmonic synthesis: frame kernel vs. the generic (reference) algorithm.

Workload (as in shared/bench/ddsp_api_bench.py): harmonic_synthesis of
f0 [B, 1000, 1], amplitudes [B, 1000, 1], harmonic_distribution
[B, 1000, 100] to 64000 samples at 16 kHz, amp_resample_method='window',
inside tf.function. Modes: fwd; bwd = forward + gradient of mean(out**2)
w.r.t. amplitudes and distribution; bwdf = the same plus f0.

Variants:
  kernel     ddsp.core.harmonic_synthesis (frame kernel, XLA, custom gradient)
  reference  magenta/ddsp's algorithm written out here: resample controls to
             audio rate, float32 cumsum of the phase, sin, sum (it
             materialises several [B, n_samples, n_harmonics] tensors)
  generic    ddsp's fallback path: resample + oscillator_bank (float64 phase)

Every (variant, batch, mode) runs in its own process so that its peak RSS
(ru_maxrss) can be reported next to the RSS before the first call. Rounds
repeat the whole sweep; the summary gives the median and min over all timed
calls of all rounds, wall and process CPU time (both cores count).

Usage: python bench/synthesis_variants.py [--rounds 3] [--calls 5]
           [--batches 4 16] [--modes fwd bwd bwdf]
           [--variants kernel reference generic]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

N_FRAMES, N_HARMONICS, N_SAMPLES, SAMPLE_RATE = 1000, 100, 64000, 16000


def _controls(batch):
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(0)
    t = np.arange(N_FRAMES) / 250.0
    f0 = (100.0 * 2.0**rng.uniform(0.0, 2.0, (batch, 1, 1)) *
          (1.0 + 0.01 * np.sin(2 * np.pi * 5.0 * t))[None, :, None])
    amps = np.abs(rng.standard_normal((batch, N_FRAMES, 1))) + 0.1
    dist = np.abs(rng.standard_normal((batch, N_FRAMES, N_HARMONICS))) + 1e-3
    dist /= dist.sum(-1, keepdims=True)
    return [tf.constant(x.astype(np.float32)) for x in (f0, amps, dist)]


def _synth(variant):
    import numpy as np
    import tensorflow as tf
    import ddsp.core as core

    def kernel(f0, amps, dist):
        return core.harmonic_synthesis(f0, amps, harmonic_distribution=dist,
                                       n_samples=N_SAMPLES,
                                       sample_rate=SAMPLE_RATE)

    def envelopes(f0, amps, dist):
        freqs = core.resample(core.get_harmonic_frequencies(f0, N_HARMONICS),
                              N_SAMPLES)
        return freqs, core.resample(amps * dist, N_SAMPLES, method='window')

    def reference(f0, amps, dist):
        freqs, amp_env = envelopes(f0, amps, dist)
        amp_env = core.remove_above_nyquist(freqs, amp_env, SAMPLE_RATE)
        phases = tf.cumsum(freqs * (2 * np.pi / SAMPLE_RATE), axis=1)
        return tf.reduce_sum(amp_env * tf.sin(phases), axis=-1)

    def generic(f0, amps, dist):
        return core.oscillator_bank(*envelopes(f0, amps, dist), SAMPLE_RATE)

    return {'kernel': kernel, 'reference': reference,
            'generic': generic}[variant]


def run_one(variant, batch, mode, calls):
    """Times one configuration in this process; prints one JSON line."""
    import tensorflow as tf
    f0, amps, dist = _controls(batch)
    synth = _synth(variant)
    sources = {'fwd': [], 'bwd': [amps, dist], 'bwdf': [f0, amps, dist]}[mode]

    @tf.function
    def step():
        if not sources:
            return synth(f0, amps, dist)
        with tf.GradientTape() as tape:
            tape.watch(sources)
            loss = tf.reduce_mean(tf.square(synth(f0, amps, dist)))
        return tape.gradient(loss, sources)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    tf.nest.map_structure(lambda x: x.numpy(), step())
    first = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(calls):
        c0, t0 = time.process_time(), time.perf_counter()
        tf.nest.map_structure(lambda x: x.numpy(), step())
        wall.append(1e3 * (time.perf_counter() - t0))
        cpu.append(1e3 * (time.process_time() - c0))
    print(json.dumps(dict(
        variant=variant, batch=batch, mode=mode, first_s=first, wall_ms=wall,
        cpu_ms=cpu, rss_before_mb=rss_before,
        rss_peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--calls', type=int, default=5)
    parser.add_argument('--batches', type=int, nargs='+', default=[4, 16])
    parser.add_argument('--modes', nargs='+', default=['fwd', 'bwd', 'bwdf'])
    parser.add_argument('--variants', nargs='+',
                        default=['kernel', 'reference'])
    parser.add_argument('--one', nargs=3, metavar=('VARIANT', 'BATCH', 'MODE'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one[0], int(args.one[1]), args.one[2], args.calls)
        return

    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1',
               TF_CPP_MIN_LOG_LEVEL='3')
    results = {}
    for round_index in range(args.rounds):
        for variant in args.variants:
            for batch in args.batches:
                for mode in args.modes:
                    proc = subprocess.run(
                        [sys.executable, __file__, '--calls', str(args.calls),
                         '--one', variant, str(batch), mode],
                        env=env, capture_output=True, text=True, check=False)
                    lines = [l for l in proc.stdout.splitlines()
                             if l.startswith('{')]
                    if proc.returncode or not lines:
                        print(f'# {variant} b{batch} {mode} failed:\n'
                              f'{proc.stderr[-2000:]}', flush=True)
                        continue
                    r = json.loads(lines[-1])
                    key = (variant, batch, mode)
                    agg = results.setdefault(key, dict(wall=[], cpu=[],
                                                       first=[], rss=[]))
                    agg['wall'] += r['wall_ms']
                    agg['cpu'] += r['cpu_ms']
                    agg['first'].append(r['first_s'])
                    agg['rss'].append(r['rss_peak_mb'] - r['rss_before_mb'])
                    print(f'# round {round_index}: {variant} b{batch} {mode}: '
                          f'wall median {statistics.median(r["wall_ms"]):.1f}'
                          f' ms, cpu {statistics.median(r["cpu_ms"]):.1f} ms',
                          flush=True)
    print(f'{"variant":9s} {"batch":>5s} {"mode":5s} {"wall med":>9s} '
          f'{"wall min":>9s} {"cpu med":>8s} {"first s":>8s} '
          f'{"peak RSS growth MB":>19s}')
    for (variant, batch, mode), agg in results.items():
        print(f'{variant:9s} {batch:5d} {mode:5s} '
              f'{statistics.median(agg["wall"]):9.1f} {min(agg["wall"]):9.1f} '
              f'{statistics.median(agg["cpu"]):8.1f} '
              f'{statistics.median(agg["first"]):8.2f} '
              f'{max(agg["rss"]):19.0f}')


if __name__ == '__main__':
    main()
