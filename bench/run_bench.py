#!/usr/bin/env python3
"""Benchmarks of ddsp's DSP workloads (CPU): time per call and peak memory.

Each workload is built once, called once (tracing; reported as first_ms), then
timed over --repeats calls: median, min and max in ms. Without --quick every
workload runs in a fresh subprocess, so the reported peak RSS is its own
(including TensorFlow's ~0.7 GB); --quick runs tiny sizes in one process as a
smoke test (the test suite runs it; no timing is asserted anywhere).

    python bench/run_bench.py [--quick] [--filter REGEX] [--repeats N] [--json F]

Workloads: 4 s of 16 kHz audio (64000 samples, 1000 frames), batch 4 and 16,
forward ('fwd') and forward+backward of mean(out**2) ('fwdbwd'), in tf.function.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '-1')

SAMPLE_RATE = 16000


HOP = 64  # 250 frames/s at 16 kHz.


def _sizes(quick: bool) -> tuple[int, int]:
    """(n_samples, n_frames): 4 s at 250 frames/s, or 0.25 s when quick."""
    n_frames = 62 if quick else 1000
    return n_frames * HOP, n_frames


def build_harmonic(batch, quick, grad, n_harmonics=100):
    import numpy as np
    import tensorflow as tf
    from ddsp import core, synths
    n_samples, n_frames = _sizes(quick)
    rng = np.random.default_rng(0)
    synth = synths.Harmonic(n_samples=n_samples, sample_rate=SAMPLE_RATE,
                            scale_fn=core.exp_sigmoid)
    f0 = tf.constant(100.0 * 2 ** rng.uniform(0, 2, [batch, n_frames, 1]),
                     tf.float32)
    amps = tf.constant(rng.standard_normal([batch, n_frames, 1]), tf.float32)
    hd = tf.constant(rng.standard_normal([batch, n_frames, n_harmonics]),
                     tf.float32)
    return _callable(lambda: synth(amps, hd, f0), [amps, hd], grad)


def build_filtered_noise(batch, quick, grad, n_bands=65):
    import numpy as np
    import tensorflow as tf
    from ddsp import synths
    n_samples, n_frames = _sizes(quick)
    synth = synths.FilteredNoise(n_samples=n_samples, window_size=0)
    mags = tf.constant(np.random.default_rng(1).standard_normal(
        [batch, n_frames, n_bands]), tf.float32)
    return _callable(lambda: synth(mags), [mags], grad)


def build_reverb(batch, quick, grad):
    import numpy as np
    import tensorflow as tf
    from ddsp import effects
    n_samples, _ = _sizes(quick)
    reverb = effects.Reverb(trainable=True,
                            reverb_length=n_samples * 3 // 4)
    audio = tf.constant(np.random.default_rng(2).standard_normal(
        [batch, n_samples]) * 0.1, tf.float32)
    return _callable(lambda: reverb(audio), [reverb.ir, audio], grad)


def _callable(forward, sources, grad):
    import tensorflow as tf
    if not grad:
        return tf.function(forward)

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            tape.watch([s for s in sources if isinstance(s, tf.Tensor)])
            loss = tf.reduce_mean(tf.square(forward()))
        return tape.gradient(loss, sources)
    return forward_backward


def _table():
    table = {}
    for batch in (4, 16):
        for grad in (False, True):
            kind = 'fwdbwd' if grad else 'fwd'
            table[f'synths.Harmonic/b{batch}/h100/{kind}'] = (
                build_harmonic, dict(batch=batch, grad=grad))
            table[f'synths.FilteredNoise/b{batch}/nb65/{kind}'] = (
                build_filtered_noise, dict(batch=batch, grad=grad))
            table[f'effects.Reverb/b{batch}/ir48000/{kind}'] = (
                build_reverb, dict(batch=batch, grad=grad))
    return table


WORKLOADS = _table()


def _block(result):
    import tensorflow as tf
    for leaf in tf.nest.flatten(result):
        leaf.numpy()
    return result


def run_workload(name: str, repeats: int, quick: bool) -> dict:
    """Builds and times one workload in this process."""
    builder, params = WORKLOADS[name]
    fn = builder(quick=quick, **params)
    start = time.perf_counter()
    _block(fn())
    first_ms = 1000 * (time.perf_counter() - start)
    _block(fn())  # Warm-up.
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn())
        samples.append(1000 * (time.perf_counter() - start))
    return {'name': name, 'median_ms': statistics.median(samples),
            'min_ms': min(samples), 'max_ms': max(samples), 'n': repeats,
            'first_ms': first_ms,
            'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _format(r: dict) -> str:
    return (f"{r['name']}: {r['median_ms']:.1f} ms ({r['min_ms']:.1f}.."
            f"{r['max_ms']:.1f}) n={r['n']} first={r['first_ms']:.0f} ms "
            f"peak_rss={r['peak_rss_mb']:.0f} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, 2 repeats, one process (smoke test)')
    parser.add_argument('--filter', default='.', help='regex on workload names')
    parser.add_argument('--repeats', type=int, default=None)
    parser.add_argument('--json', default=None, help='write results here')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 10)

    if args.worker:  # One workload in this (fresh) process.
        print(json.dumps(run_workload(args.worker, repeats, args.quick)))
        return 0

    names = [n for n in WORKLOADS if re.search(args.filter, n)]
    if not names:
        parser.error(f'no workload matches --filter={args.filter!r}')
    print(f'# ddsp bench: {len(names)} workloads, repeats={repeats}, '
          f'quick={args.quick}, cpus={os.cpu_count()}', flush=True)
    results = []
    for name in names:
        if args.quick:
            result = run_workload(name, repeats, quick=True)
        else:
            out = subprocess.run(
                [sys.executable, __file__, '--worker', name,
                 '--repeats', str(repeats)],
                check=True, capture_output=True, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
        results.append(result)
        print(_format(result), flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
