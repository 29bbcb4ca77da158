"""Unit conversions: decibels, MIDI / Hz, unit interval, bark, mel, ERB.

All functions take numbers, numpy arrays or tensors and return float32 tensors
(the dB conversions return numpy arrays when `use_tf=False`).
"""
import numpy as np
import tensorflow as tf

from ddsp.core.utils import logb, tf_float32

__all__ = [
    'DB_RANGE',
    'amplitude_to_db',
    'power_to_db',
    'db_to_amplitude',
    'db_to_power',
    'midi_to_hz',
    'hz_to_midi',
    'unit_to_midi',
    'midi_to_unit',
    'unit_to_hz',
    'hz_to_unit',
    'hz_to_bark',
    'bark_to_hz',
    'hz_to_mel',
    'mel_to_hz',
    'hz_to_erb',
]

DB_RANGE = 80.0  # Default dynamic range (dB) of the decibel conversions.


# Decibels ---------------------------------------------------------------------
def amplitude_to_db(amplitude, ref_db=0.0, range_db=DB_RANGE, use_tf=True):
    """Converts amplitude to decibels: power_to_db(amplitude**2)."""
    if use_tf:
        amplitude = tf_float32(amplitude)
    else:
        amplitude = np.asarray(amplitude)
    return power_to_db(amplitude**2.0, ref_db=ref_db, range_db=range_db,
                       use_tf=use_tf)


def power_to_db(power, ref_db=0.0, range_db=DB_RANGE, use_tf=True):
    """Converts power to decibels, limited to `range_db` below 0 dB.

    db = max(10 * log10(max(power, 10**(-range_db / 10))) - ref_db, -range_db),
    i.e. librosa.power_to_db(power, ref=1, amin=10**(-range_db / 10),
    top_db=None) shifted by -ref_db and floored at -range_db.

    Args:
        power: Power (non-negative).
        ref_db: Reference level in dB subtracted from the result.
        range_db: Dynamic range in dB (positive, finite).
        use_tf: Compute with TensorFlow (float32 tensor out) or numpy.

    Returns:
        Decibels, same shape as `power`.
    """
    if not np.isfinite(range_db) or range_db <= 0:
        raise ValueError(f'range_db ({range_db}) must be positive and finite.')
    power_min = 10.0**(-range_db / 10.0)
    if use_tf:
        power = tf_float32(power)
        db = 10.0 * tf.math.log(tf.maximum(power, power_min)) / np.log(10.0)
        return tf.maximum(db - ref_db, -range_db)
    power = np.asarray(power)
    if not np.issubdtype(power.dtype, np.floating):
        power = power.astype(np.float32)
    db = 10.0 * np.log10(np.maximum(power, power_min))
    return np.maximum(db - ref_db, -range_db).astype(power.dtype)


def db_to_amplitude(db):
    """Inverse of amplitude_to_db (without the range limit): 10**(db / 20)."""
    return db_to_power(tf_float32(db) / 2.0)


def db_to_power(db):
    """Inverse of power_to_db (without the range limit): 10**(db / 10)."""
    return tf.pow(10.0, tf_float32(db) / 10.0)


# MIDI and Hz ------------------------------------------------------------------
def midi_to_hz(notes, midi_zero_silence=False):
    """MIDI note numbers to Hz: 440 * 2**((notes - 69) / 12).

    Args:
        notes: MIDI note numbers.
        midi_zero_silence: Map MIDI notes <= 0 to 0 Hz (the inverse of
            hz_to_midi's 0 Hz -> MIDI 0).
    """
    notes = tf_float32(notes)
    hz = 440.0 * tf.pow(2.0, (notes - 69.0) / 12.0)
    if midi_zero_silence:
        hz = tf.where(notes <= 0.0, 0.0, hz)
    return hz


def hz_to_midi(frequencies):
    """Hz to MIDI note numbers; 0 Hz (and below) maps to MIDI 0, not -inf."""
    frequencies = tf_float32(frequencies)
    notes = 12.0 * (logb(frequencies, 2.0) - np.log2(440.0)) + 69.0
    return tf.where(frequencies <= 0.0, 0.0, notes)


def unit_to_midi(unit, midi_min=20.0, midi_max=90.0, clip=False):
    """Maps [0, 1] linearly to [midi_min, midi_max]."""
    unit = tf_float32(unit)
    if clip:
        unit = tf.clip_by_value(unit, 0.0, 1.0)
    return midi_min + (midi_max - midi_min) * unit


def midi_to_unit(midi, midi_min=20.0, midi_max=90.0, clip=False):
    """Maps [midi_min, midi_max] linearly to [0, 1]."""
    midi = tf_float32(midi)
    unit = (midi - midi_min) / (midi_max - midi_min)
    return tf.clip_by_value(unit, 0.0, 1.0) if clip else unit


def unit_to_hz(unit, hz_min, hz_max, clip=False):
    """Maps [0, 1] to [hz_min, hz_max], linearly in MIDI (log frequency)."""
    midi = unit_to_midi(unit, midi_min=hz_to_midi(hz_min),
                        midi_max=hz_to_midi(hz_max), clip=clip)
    return midi_to_hz(midi)


def hz_to_unit(hz, hz_min, hz_max, clip=False):
    """Maps [hz_min, hz_max] to [0, 1], linearly in MIDI (log frequency)."""
    return midi_to_unit(hz_to_midi(hz), midi_min=hz_to_midi(hz_min),
                        midi_max=hz_to_midi(hz_max), clip=clip)


# Psychoacoustic scales --------------------------------------------------------
def hz_to_bark(hz):
    """Hz to bark, Traunmueller (1990)."""
    hz = tf_float32(hz)
    return 26.81 / (1.0 + 1960.0 / hz) - 0.53


def bark_to_hz(bark):
    """Bark to Hz, Traunmueller (1990); inverse of hz_to_bark."""
    bark = tf_float32(bark)
    return 1960.0 / (26.81 / (bark + 0.53) - 1.0)


def hz_to_mel(hz):
    """Hz to mel, HTK formula 2595 * log10(1 + hz / 700)."""
    hz = tf_float32(hz)
    return 2595.0 * tf.math.log(1.0 + hz / 700.0) / np.log(10.0)


def mel_to_hz(mel):
    """Mel to Hz, HTK formula; inverse of hz_to_mel."""
    mel = tf_float32(mel)
    return 700.0 * (tf.pow(10.0, mel / 2595.0) - 1.0)


def hz_to_erb(hz):
    """Equivalent rectangular bandwidth (Hz) at `hz`: 0.108 * hz + 24.7.

    Moore & Glasberg (1996).
    """
    return 0.108 * tf_float32(hz) + 24.7
