#!/usr/bin/env python3
"""Inference speed of trained models and streaming vs offline difference.

    python bench/inference_bench.py MODEL_DIR [MODEL_DIR ...]

For each `ddsp_run` save_dir: `inference.synthesize` of 30 s of a vibrato
tone (block-wise streaming with carried state), and the largest difference
between it and `inference.synthesize_offline` (one pass) over 8 s.
"""
import sys
import time

import numpy as np

from ddsp.training import inference
for d in sys.argv[1:]:
    m = inference.load_model(d)
    n = int(30 * m.frame_rate)
    f0 = 220 * 2 ** (np.sin(np.linspace(0, 20, n)) / 12)
    ld = np.full(n, -30.0)
    inference.synthesize(m, f0, ld)  # Warm-up: builds and traces the streamer.
    t = time.perf_counter(); a = inference.synthesize(m, f0, ld); dt = time.perf_counter() - t
    off = inference.synthesize_offline(m, f0[:2000], ld[:2000])
    st = inference.synthesize(m, f0[:2000], ld[:2000])
    print(d, 'synthesize 30 s in %.2f s = %.0fx real time' % (dt, 30 / dt), 'max |stream-offline| (8 s) %.2e' % np.max(np.abs(np.asarray(off) - np.asarray(st))))
