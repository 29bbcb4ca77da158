#!/usr/bin/env python3
"""Benchmark of the training step (CPU): time per step, peak memory, breakdown.

Builds a model from a shipped gin config (default models/solo_instrument.gin:
4 s of 16 kHz audio, 1000 frames), a Trainer on the default strategy, and
times `Trainer.train_step` on one fixed batch: first call (tracing) separately,
then --steps steps, median and min in seconds. Every configuration runs in a
fresh subprocess, so the reported peak RSS is that of a process running only
this step (TensorFlow itself included; its RSS after import is reported too).

With --breakdown, also times the parts of the step in the same process, each
forward + backward in its own tf.function: decoder (preprocessor + RnnFcDecoder),
harmonic synthesizer, filtered noise, reverb, spectral loss, and the forward
pass of the whole model with its losses.

    python bench/train_bench.py [--batch 4 16] [--steps 5] [--jit] [--breakdown]
                                [--gin models/solo_instrument.gin] [--json F]
                                [--gin_param BINDING ...]

e.g. `--gin_param "ddsp.training.nn.matmul_precision.precision='float32'"`
compares the float32 matrix products with the default ('auto').

On a shared 2-core machine, look at the min as well as the median.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '-1')

SAMPLE_RATE = 16000
N_FRAMES = 1000
N_SAMPLES = 64000


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _features(batch: int):
    """Deterministic 4 s features: smooth f0 contours, loudness and audio."""
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(0)
    t = np.arange(N_FRAMES) / 250.0
    f0 = (100.0 * 2.0 ** rng.uniform(0, 2, [batch, 1])
          * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)))
    loudness = -40 + 20 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(
        0, 6, [batch, 1]))
    audio = 0.1 * rng.standard_normal([batch, N_SAMPLES])
    return {'f0_hz': tf.constant(f0, tf.float32),
            'loudness_db': tf.constant(loudness, tf.float32),
            'f0_confidence': tf.ones([batch, N_FRAMES]),
            'audio': tf.constant(audio, tf.float32)}


def _time(fn, steps: int) -> dict:
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {'first_s': round(first, 3),
            'median_s': round(statistics.median(times), 3),
            'min_s': round(min(times), 3)}


def _grad_fn(forward, sources):
    """tf.function of forward + gradient of mean(output**2) w.r.t. sources."""
    import tensorflow as tf

    @tf.function(autograph=False)
    def step():
        with tf.GradientTape() as tape:
            # Trainable variables are watched already; tensors need it.
            tape.watch([s for s in sources if isinstance(s, tf.Tensor)])
            out = forward()
            loss = tf.reduce_mean(tf.square(out))
        return tape.gradient(loss, sources)
    return lambda: [g.numpy() for g in step() if g is not None]


def _breakdown(trainer, features, steps: int) -> dict:
    """Times the parts of the model, each forward + backward."""
    import tensorflow as tf
    model = trainer.model
    conditioning = model.encode(features, training=False)
    controls = dict(conditioning)
    controls.update(model.decoder(conditioning))
    controls = {k: tf.identity(v) for k, v in controls.items()
                if isinstance(v, tf.Tensor)}
    group = model.processor_group
    outputs = group(controls, return_outputs_dict=True)['controls']
    parts = {}

    def decoder():
        out = model.decoder(model.encode(features, training=True),
                            training=True)
        return tf.concat([v for v in out.values()], axis=-1)
    parts['decoder'] = _grad_fn(decoder, [
        v for v in model.trainable_variables if 'reverb' not in v.path])
    for name in group.module_names:
        module = getattr(group, name)
        if name == 'harmonic':
            args = [controls['amps'], controls['harmonic_distribution'],
                    controls['f0_hz']]
            parts['harmonic'] = _grad_fn(lambda m=module, a=args: m(*a), args[:2])
        elif name == 'filtered_noise':
            args = [controls['noise_magnitudes']]
            parts['filtered_noise'] = _grad_fn(lambda m=module, a=args: m(*a),
                                              args)
        elif name == 'reverb':
            audio = tf.identity(outputs['add']['signal'])
            parts['reverb'] = _grad_fn(lambda m=module, a=audio: m(a),
                                       [audio] + module.trainable_variables)
    for name in model.loss_names:
        loss = getattr(model, name)
        synth = tf.identity(features['audio'] * 0.5)
        parts[name] = _grad_fn(lambda l=loss, s=synth: l(features['audio'], s),
                               [synth])

    @tf.function(autograph=False)
    def forward():
        return model(features, return_losses=True, training=True)[1][
            'total_loss']
    parts['model_forward_with_losses'] = lambda: forward().numpy()
    return {name: _time(fn, steps) for name, fn in parts.items()}


def run_one(gin_file: str, batch: int, steps: int, jit: bool,
            breakdown: bool, gin_params=()) -> dict:
    """Runs in this process: build, time the train step, report."""
    import gin
    import tensorflow as tf
    rss_tf = _peak_rss_gb()
    from ddsp.training import ddsp_run, models, trainers
    ddsp_run.parse_gin('', [gin_file], gin_params)
    strategy = tf.distribute.get_strategy()
    with strategy.scope():
        trainer = trainers.Trainer(models.get_model(), strategy,
                                   jit_compile=jit)
    features = _features(batch)
    trainer.build(features)
    from ddsp.training import nn
    result = {'gin': gin_file, 'gin_params': list(gin_params), 'batch': batch,
              'jit_compile': jit, 'matmul_precision': nn.matmul_precision(),
              'tf_threads': [tf.config.threading.get_inter_op_parallelism_threads(),
                             tf.config.threading.get_intra_op_parallelism_threads()],
              'cpus': os.cpu_count()}
    result['train_step'] = _time(
        lambda: float(trainer.train_step(features)['total_loss']), steps)
    result['peak_rss_gb'] = round(_peak_rss_gb(), 2)
    result['rss_after_tf_import_gb'] = round(rss_tf, 2)
    if breakdown:
        result['breakdown'] = _breakdown(trainer, features, steps)
    gin.clear_config()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--gin', default='models/solo_instrument.gin')
    parser.add_argument('--batch', type=int, nargs='+', default=[4, 16])
    parser.add_argument('--steps', type=int, default=5)
    parser.add_argument('--jit', action='store_true',
                        help='XLA-compile forward + gradients.')
    parser.add_argument('--breakdown', action='store_true')
    parser.add_argument('--json', default='')
    parser.add_argument('--gin_param', action='append', default=[])
    parser.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import tensorflow as tf  # noqa: F401 (RSS after import, before ddsp)
        print('RESULT ' + json.dumps(run_one(args.gin, args.batch[0], args.steps,
                                             args.jit, args.breakdown,
                                             args.gin_param)))
        return
    results = []
    for batch in args.batch:
        cmd = [sys.executable, os.path.abspath(__file__), '--child',
               '--gin', args.gin, '--batch', str(batch), '--steps',
               str(args.steps)] + (['--jit'] if args.jit else []) + (
                   ['--breakdown'] if args.breakdown else []) + [
                       f'--gin_param={p}' for p in args.gin_param]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [l for l in proc.stdout.splitlines() if l.startswith('RESULT ')]
        if proc.returncode or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f'batch {batch} failed')
        result = json.loads(lines[-1][len('RESULT '):])
        results.append(result)
        step = result['train_step']
        print(f"{args.gin} b{batch}{' jit' if args.jit else ''} "
              f"({result['matmul_precision']} matmuls): train_step "
              f"median {step['median_s']} s, min {step['min_s']} s (first "
              f"{step['first_s']} s); peak RSS {result['peak_rss_gb']} GB "
              f"(TF alone {result['rss_after_tf_import_gb']} GB)", flush=True)
        for name, part in result.get('breakdown', {}).items():
            print(f"  {name}: median {part['median_s']} s, min "
                  f"{part['min_s']} s", flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
