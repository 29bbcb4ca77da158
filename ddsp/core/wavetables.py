"""Wavetable synthesis and modulated delay lines.

Both read a table at a fractional position by linear interpolation between the
two neighbouring entries (a gather of two values per output sample), never by
weighting the whole table, so memory is O(batch * n_samples).
"""
from typing import Text

import tensorflow as tf

from ddsp.core.resampling import resample
from ddsp.core.utils import tf_float32

__all__ = [
    'linear_lookup',
    'harmonic_distribution_to_wavetable',
    'wavetable_synthesis',
    'variable_length_delay',
]


def _squeeze_channel(x: tf.Tensor, name: str, doc: Text) -> tf.Tensor:
    """[batch, n_samples, 1] or [batch, n_samples] -> [batch, n_samples]."""
    if x.shape.rank == 3 and x.shape[-1] == 1:
        return x[..., 0]
    if x.shape.rank != 2:
        raise ValueError(f'{name} must have shape {doc}, got shape '
                         f'{x.shape}.')
    return x


def _check_same_length(x, y, x_name: Text, y_name: Text):
    """Equal n_samples (axis 1) where both are static."""
    if None not in (x.shape[1], y.shape[1]) and x.shape[1] != y.shape[1]:
        raise ValueError(f'{x_name} has {x.shape[1]} samples (axis 1) but '
                         f'{y_name} has {y.shape[1]}.')


def _match_batch(x: tf.Tensor, other: tf.Tensor) -> tf.Tensor:
    """Broadcasts a batch of 1 to other's batch (gathers need equal ones)."""
    if x.shape[0] == 1 and other.shape[0] != 1:
        return tf.broadcast_to(
            x, tf.concat([tf.shape(other)[:1], tf.shape(x)[1:]], 0))
    return x


def _interpolate(table, position, n_table: int, offset=0):
    """Linear read of a table at fractional positions, wrapping every n_table.

    Args:
        table: [batch, length] (read at [batch, n] positions) or
            [batch, n, length] (one row per position).
        position: [batch, n], in table entries.
        n_table: Entries per period; reads wrap within
            [offset, offset + n_table).
        offset: int32 [n] or scalar start of the period in the table.

    Returns:
        [batch, n].
    """
    index = tf.floor(position)
    frac = position - index
    index = tf.math.floormod(tf.cast(index, tf.int32), n_table)

    def take(i):
        i = i + offset
        if table.shape.rank == 2:
            return tf.gather(table, i, batch_dims=1)
        return tf.gather(table, i[..., tf.newaxis], batch_dims=2)[..., 0]

    v0 = take(index)
    v1 = take(tf.math.floormod(index + 1, n_table))
    return v0 + frac * (v1 - v0)


def linear_lookup(phase, wavetables) -> tf.Tensor:
    """Reads wavetables at a phase, interpolating linearly, with wrap-around.

    Phase 0 reads the first entry and phase 1 the first entry again (one
    period); phases outside [0, 1) wrap (modulo 1).

    Args:
        phase: Position in cycles, [batch, n_samples, 1] or
            [batch, n_samples].
        wavetables: One table per sample [batch, n_samples, n_wavetable], or
            one per example [batch, n_wavetable].

    Returns:
        Audio [batch, n_samples].
    """
    phase = _squeeze_channel(tf_float32(phase), 'phase',
                             '[batch, n_samples, 1]')
    wavetables = tf_float32(wavetables)
    if wavetables.shape.rank not in (2, 3):
        raise ValueError('wavetables must have shape [batch, n_wavetable] or '
                         '[batch, n_samples, n_wavetable], got shape '
                         f'{wavetables.shape}.')
    n_wavetable = wavetables.shape[-1]
    if n_wavetable is None:
        raise ValueError('wavetables needs a static length (last axis).')
    if wavetables.shape.rank == 3:
        _check_same_length(phase, wavetables, 'phase', 'wavetables')
    wavetables, phase = _match_batch(wavetables, phase), _match_batch(
        phase, wavetables)
    position = (phase - tf.floor(phase)) * float(n_wavetable)
    return _interpolate(wavetables, position, n_wavetable)


def harmonic_distribution_to_wavetable(harmonic_distribution,
                                       n_wavetable: int = 2048) -> tf.Tensor:
    """One period of a sum of cosine harmonics, sampled n_wavetable times.

    table[t] = sum_k distribution_k * cos(2 pi k t / n_wavetable).

    Args:
        harmonic_distribution: Harmonic amplitudes (k = 1 first),
            [batch, n_frames, n_harmonics].
        n_wavetable: Table length; must exceed 2 * n_harmonics so that every
            harmonic is below the table's Nyquist.

    Returns:
        Wavetables [batch, n_frames, n_wavetable].
    """
    harmonic_distribution = tf_float32(harmonic_distribution)
    n_harmonics = harmonic_distribution.shape[-1]
    n_wavetable = int(n_wavetable)
    if n_harmonics is None or 2 * n_harmonics >= n_wavetable:
        raise ValueError(f'n_wavetable ({n_wavetable}) must be larger than '
                         f'twice the number of harmonics ({n_harmonics}).')
    n_bins = n_wavetable // 2 + 1
    paddings = [[0, 0]] * (harmonic_distribution.shape.rank - 1)
    spectrum = tf.pad(harmonic_distribution,
                      paddings + [[1, n_bins - 1 - n_harmonics]])
    spectrum = tf.complex(spectrum, tf.zeros_like(spectrum))
    # irfft divides by n and counts each bin k > 0 twice (k and n - k).
    return tf.signal.irfft(spectrum, [n_wavetable]) * (n_wavetable / 2.0)


def wavetable_synthesis(frequencies, amplitudes, wavetables,
                        n_samples: int = 64000,
                        sample_rate: float = 16000) -> tf.Tensor:
    """Monophonic oscillator reading one period from (time-varying) tables.

    The phase (in cycles) is accumulated in float64 and wrapped, so it does
    not drift; sample 0 reads the table at phase 0. Frequencies are
    interpolated linearly, amplitudes with 'window' (see `resample`), and
    frame-wise tables linearly in time (the lookup of the two neighbouring
    frames' tables is mixed, which equals a lookup in the interpolated table
    without building [batch, n_samples, n_wavetable]).

    Args:
        frequencies: Frequency in Hz, [batch, n_frames, 1].
        amplitudes: Amplitude, [batch, n_frames, 1].
        wavetables: [batch, n_wavetable] or [batch, n_table_frames,
            n_wavetable].
        n_samples: Output length.
        sample_rate: Samples per second.

    Returns:
        Audio [batch, n_samples].
    """
    frequencies, amplitudes = tf_float32(frequencies), tf_float32(amplitudes)
    wavetables = tf_float32(wavetables)
    for name, x in (('frequencies', frequencies), ('amplitudes', amplitudes)):
        if x.shape.rank != 3 or x.shape[-1] != 1:
            raise ValueError(f'{name} must have shape [batch, n_frames, 1], '
                             f'got shape {x.shape}.')
    if not sample_rate > 0:
        raise ValueError(f'sample_rate must be positive, got {sample_rate}.')
    if wavetables.shape.rank not in (2, 3):
        raise ValueError('wavetables must have shape [batch, n_wavetable] or '
                         '[batch, n_frames, n_wavetable], got shape '
                         f'{wavetables.shape}.')
    n_samples = int(n_samples)
    amplitude = resample(amplitudes, n_samples, method='window')[..., 0]
    frequency = resample(frequencies, n_samples)[..., 0]
    cycles = tf.cumsum(tf.cast(frequency, tf.float64) / sample_rate, axis=1,
                       exclusive=True)
    phase = tf.cast(cycles - tf.floor(cycles), tf.float32)

    if wavetables.shape.rank == 3 and wavetables.shape[1] == 1:
        wavetables = wavetables[:, 0]
    if wavetables.shape.rank == 2:
        return amplitude * linear_lookup(phase, wavetables)

    # Frame-wise tables: read frames j and j + 1 at the sample's phase and
    # mix with the linear-resampling weight (frame j at sample j * N / T).
    n_frames, n_wavetable = wavetables.shape[1], wavetables.shape[2]
    n = tf.range(n_samples, dtype=tf.int64)
    frame = (n * n_frames) // n_samples
    weight = tf.cast((n * n_frames) % n_samples, tf.float32) / n_samples
    frame = tf.cast(frame, tf.int32)
    next_frame = tf.minimum(frame + 1, n_frames - 1)
    tables = tf.reshape(_match_batch(wavetables, phase),
                        [-1, n_frames * n_wavetable])
    position = phase * float(n_wavetable)
    current = _interpolate(tables, position, n_wavetable, frame * n_wavetable)
    following = _interpolate(tables, position, n_wavetable,
                             next_frame * n_wavetable)
    return amplitude * (current + weight * (following - current))


def variable_length_delay(phase, audio, max_length: int = 512) -> tf.Tensor:
    """Delays audio by a time-varying fractional number of samples.

    The delay at sample n is d = phase * max_length samples (phase clipped to
    [0, 1]); the output interpolates linearly between x[n - floor(d)] and
    x[n - floor(d) - 1], with silence before the signal starts. (magenta/ddsp
    wraps around for d > max_length - 1; here the full range is a true
    delay.) For vibrato, chorus and flanging.

    Args:
        phase: Delay as a fraction of max_length, [batch, n_samples, 1] or
            [batch, n_samples].
        audio: [batch, n_samples].
        max_length: Longest delay in samples.

    Returns:
        Delayed audio [batch, n_samples].
    """
    phase = _squeeze_channel(tf_float32(phase), 'phase',
                             '[batch, n_samples, 1]')
    audio = tf_float32(audio)
    if audio.shape.rank != 2:
        raise ValueError('audio must have shape [batch, n_samples], got shape '
                         f'{audio.shape}.')
    _check_same_length(phase, audio, 'phase', 'audio')
    max_length = int(max_length)
    if max_length < 1:
        raise ValueError(f'max_length must be positive, got {max_length}.')
    delay = tf.clip_by_value(phase, 0.0, 1.0) * float(max_length)
    whole = tf.floor(delay)
    frac = delay - whole
    # Pad so that every tap up to max_length + 1 samples back exists.
    padded = tf.pad(audio, [[0, 0], [max_length + 1, 0]])
    n = tf.range(tf.shape(audio)[1])
    index = n + (max_length + 1) - tf.cast(whole, tf.int32)
    x0 = tf.gather(padded, index, batch_dims=1)
    x1 = tf.gather(padded, index - 1, batch_dims=1)
    return x0 + frac * (x1 - x0)
