"""The fused frame-rate oscillator kernel (XLA) used by `ddsp.core.synthesis`.

One XLA-compiled kernel per hop evaluates sum_k amp * sin(phase) over
[batch, frames, hop, oscillators] without materialising anything of that
size; a custom gradient recomputes sines/cosines instead of storing them.
"""
import functools
from typing import Tuple

import numpy as np
import tensorflow as tf

from ddsp.core.oscillators import _TWO_PI

__all__ = []


# XLA on CPU lowers tf.sin/tf.cos to scalar library calls (~9 ns a value,
# measured); these odd/even minimax polynomials on [-pi, pi] vectorise and are
# accurate to ~5e-7 in float32.
_SIN_COEFFS = (9.999996039e-01, -1.666655345e-01, 8.332407596e-03,
               -1.980874008e-04, 2.699822815e-06, -2.036623162e-08)
_COS_COEFFS = (9.999999892e-01, -4.999998919e-01, 4.166649020e-02,
               -1.388780783e-03, 2.476996618e-05, -2.707977486e-07,
               1.724760501e-09)
# 2*pi split in two float32 parts for an accurate range reduction.
_TWO_PI_HI = float(np.float32(_TWO_PI))
_TWO_PI_LO = float(np.float32(_TWO_PI - _TWO_PI_HI))
_PI_F32 = float(np.float32(np.pi))
# XLA's CPU backend turns a reduction over an axis longer than 32 (or of a
# bare select) into a materialised tensor plus a library reduction. The
# kernels therefore reshape every reduced axis into axes of <= 32 elements
# and reduce products: each kernel stays one fused loop that never stores
# [batch, frames, hop, oscillators].
_MAX_FUSED_AXIS = 32


def _reduction_shape(n: int) -> Tuple[int, ...]:
    """Axes of <= _MAX_FUSED_AXIS whose product is the least >= n.

    Up to three axes (n <= 32768), shortest first; the product exceeds n
    (zero padding) only when no exact factorisation exists.
    """
    limit = _MAX_FUSED_AXIS
    if n <= limit:
        return (n,)
    candidates = [(-(-n // r), r) for r in range(2, limit + 1)]
    candidates += [(-(-n // (r1 * r2)), r1, r2)
                   for r1 in range(2, limit + 1) for r2 in range(2, limit + 1)]
    candidates = [c for c in candidates if c[0] <= limit]
    if not candidates:
        raise ValueError(f'Too many samples per frame or oscillators ({n}); '
                         f'at most {limit**3} are supported.')
    best = min(candidates, key=lambda c: (int(np.prod(c)), len(c)))
    return tuple(sorted(best))  # Longest axis innermost: ~10% faster.


def _wrap_phase(x):
    """x modulo 2*pi, in [-pi, pi]."""
    n = tf.round(x * (1.0 / _TWO_PI))
    return (x - n * _TWO_PI_HI) - n * _TWO_PI_LO


def _horner(x, coeffs):
    result = coeffs[-1]
    for c in coeffs[-2::-1]:
        result = result * x + c
    return result


def _poly_sin(x):
    r = _wrap_phase(x)
    return r * _horner(r * r, _SIN_COEFFS)


def _poly_cos(x):
    r = _wrap_phase(x)
    return _horner(r * r, _COS_COEFFS)


@functools.lru_cache(maxsize=None)
def _frame_kernels(hop: int, method: str):
    """(forward, backward_amp, backward_phase) XLA functions for one hop.

    Kernel inputs, all float32 with n_osc oscillators and J frame intervals:
      phase [batch, J, n_osc]: phase at the start of each interval (radians),
      freq [batch, J + 1, n_osc]: angular frequency (radians per sample) at
        the interval boundaries, linearly interpolated in between,
      amp [batch, J + 1, n_osc]: amplitudes at the boundaries.
    forward returns audio [batch, J * hop]. At sample m of interval j:
      phase_j + a(m) * freq_j + q(m) * freq_{j+1}, with q(m) = m(m-1)/(2 hop)
      and a(m) = m - q(m) (the exact sum of the interpolated increments),
      amplitude amp_j + s(m) * (amp_{j+1} - amp_j),
      silent where the interpolated frequency is >= pi (Nyquist).
    The backward functions take d_audio [batch, J * hop] first.
    """
    sample_axes = _reduction_shape(hop)
    n_padded = int(np.prod(sample_axes))  # Padded samples have zero gradient.
    m = np.arange(n_padded, dtype=np.float64)
    q = m * (m - 1.0) / (2.0 * hop)
    if method == 'window':
        s = np.sin(np.pi * m / (2.0 * hop))**2
    else:
        s = m / hop
    tables = {'s': s, 'q': q, 'a': m - q, 'l': m / hop, 'c': hop - m}

    def weights(names, shape):
        return {n: tf.constant(tables[n][:int(np.prod(shape))].reshape(shape),
                               tf.float32) for n in names}

    def instantaneous(phase, f0, f1, w):
        """Phase and Nyquist mask at the samples the weights w describe."""
        inst_phase = phase + w['a'] * f0 + w['q'] * f1
        audible = f0 + w['l'] * (f1 - f0) < _PI_F32
        return inst_phase, audible

    @tf.function(jit_compile=True)
    def forward(phase, freq, amp):
        n_intervals, n_osc = phase.shape[1], phase.shape[2]
        osc_axes = _reduction_shape(n_osc)

        def split_oscillators(x):  # -> [batch, frames, *osc_axes, 1]
            x = tf.pad(x, [[0, 0], [0, 0], [0, int(np.prod(osc_axes)) - n_osc]])
            return tf.reshape(x, [-1, x.shape[1], *osc_axes, 1])

        p, f, a = (split_oscillators(x) for x in (phase, freq, amp))
        w = weights('sqal', [hop])
        inst_phase, audible = instantaneous(p, f[:, :-1], f[:, 1:], w)
        a0, a1 = a[:, :-1], a[:, 1:]
        envelope = tf.where(audible, a0 + w['s'] * (a1 - a0), 0.0)
        audio = tf.reduce_sum(envelope * _poly_sin(inst_phase),
                              axis=list(range(2, 2 + len(osc_axes))))
        return tf.reshape(audio, [-1, n_intervals * hop])

    def backward_sums(d_audio, phase, freq, amp, names):
        """Sums over each interval's samples of d_audio * trig * w[name].

        trig is sin(phase) without amp, amp * cos(phase) with it.
        """
        n_intervals = phase.shape[1]
        g = tf.pad(tf.reshape(d_audio, [-1, n_intervals, hop]),
                   [[0, 0], [0, 0], [0, n_padded - hop]])
        g = tf.reshape(g, [-1, n_intervals, *sample_axes, 1])

        def expand(x):  # -> [batch, frames, 1, ..., 1, n_osc]
            return tf.reshape(x, [-1, x.shape[1]] + [1] * len(sample_axes) +
                              [x.shape[2]])

        p, f = expand(phase), expand(freq)
        w = weights('sqalc', [*sample_axes, 1])
        w['1-s'] = 1.0 - w['s']
        inst_phase, audible = instantaneous(p, f[:, :-1], f[:, 1:], w)
        g = tf.where(audible, g, 0.0)
        if amp is None:
            term = g * _poly_sin(inst_phase)
        else:
            a = expand(amp)
            envelope = a[:, :-1] + w['s'] * (a[:, 1:] - a[:, :-1])
            term = g * envelope * _poly_cos(inst_phase)
        axes = list(range(2, 2 + len(sample_axes)))
        return {n: tf.reduce_sum(term * w[n], axis=axes) for n in names}

    def to_boundaries(d_start, d_end):
        """Gradients w.r.t. interval starts and ends -> boundary values."""
        return (tf.pad(d_start, [[0, 0], [0, 1], [0, 0]]) +
                tf.pad(d_end, [[0, 0], [1, 0], [0, 0]]))

    @tf.function(jit_compile=True)
    def backward_amp(d_audio, phase, freq):
        sums = backward_sums(d_audio, phase, freq, None, ('1-s', 's'))
        return to_boundaries(sums['1-s'], sums['s'])

    @tf.function(jit_compile=True)
    def backward_phase(d_audio, phase, freq, amp):
        # d phase / d phase_j = 1 = (c + a + q) / hop: no sum has a bare
        # weight of one (see _MAX_FUSED_AXIS).
        sums = backward_sums(d_audio, phase, freq, amp, ('c', 'a', 'q'))
        d_phase = (sums['c'] + sums['a'] + sums['q']) * (1.0 / hop)
        return d_phase, to_boundaries(sums['a'], sums['q'])

    return forward, backward_amp, backward_phase


def _run_frame_kernel(phase, freq, amp, hop: int, method: str) -> tf.Tensor:
    """Audio [batch, J * hop] from kernel inputs (see _frame_kernels)."""
    forward, backward_amp, backward_phase = _frame_kernels(hop, method)

    @tf.custom_gradient
    def synthesize(phase, freq, amp):
        def grad(d_audio):
            # Two kernels so that graph mode prunes the phase one when no
            # frequency gradient is needed.
            d_phase, d_freq = backward_phase(d_audio, phase, freq, amp)
            return d_phase, d_freq, backward_amp(d_audio, phase, freq)
        return forward(phase, freq, amp), grad

    return synthesize(phase, freq, amp)
