"""Notes -> f0 / loudness curves.

`read_notes` reads notes from a CSV (`onset_s,offset_s,midi_pitch,velocity`
[,`vibrato_cents`]) or a MIDI file (mido) and makes them monophonic;
`notes_to_curves` turns them into f0 and loudness curves at the model's frame
rate (attack / release envelopes, optional vibrato, velocity mapped into the
training data's note-on loudness distribution).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import Any, Dict, List, Optional, Sequence

from absl import logging
import numpy as np

from ddsp import core
from ddsp import spectral_ops
from ddsp.training import postprocessing


MIDI_EXTENSIONS = ('.mid', '.midi')
# Velocities 1 and 127 map to these quantiles of the dataset's note-on
# loudness (the extremes of a distribution are its least typical frames).
VELOCITY_QUANTILE_RANGE = (0.05, 0.95)
# Loudness range used for velocities when a model has no dataset statistics.
DEFAULT_LOUDNESS_RANGE_DB = (-60.0, -20.0)
# MIDI channel 10 (index 9) is percussion in General MIDI: no pitch.
MIDI_DRUM_CHANNEL = 9
# Defaults of `notes_to_curves` (and of the ddsp_generate flags).
DEFAULT_ATTACK_S = 0.04
DEFAULT_RELEASE_S = 0.2
DEFAULT_VIBRATO_HZ = 5.5
DEFAULT_VIBRATO_DELAY_S = 0.2


# Notes ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Note:
    """One note.

    Attributes:
        onset_s, offset_s: Start and end in seconds (offset > onset >= 0).
        pitch: MIDI pitch (fractional allowed).
        velocity: MIDI velocity in [1, 127].
        vibrato_cents: Vibrato depth of this note (None: the global setting).
    """
    onset_s: float
    offset_s: float
    pitch: float
    velocity: float
    vibrato_cents: Optional[float] = None

    def __post_init__(self):
        values = (self.onset_s, self.offset_s, self.pitch, self.velocity)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f'Note values must be finite: {self}.')
        if self.onset_s < 0 or self.offset_s <= self.onset_s:
            raise ValueError(f'A note needs 0 <= onset_s < offset_s: {self}.')
        if not 0 <= self.pitch <= 127:
            raise ValueError(f'Note pitch must be in [0, 127]: {self}.')
        if not 1 <= self.velocity <= 127:
            raise ValueError(f'Note velocity must be in [1, 127]: {self}.')
        if self.vibrato_cents is not None and not (
                math.isfinite(self.vibrato_cents) and self.vibrato_cents >= 0):
            raise ValueError(f'Note vibrato_cents must be >= 0: {self}.')


_CSV_COLUMNS = ('onset_s', 'offset_s', 'midi_pitch', 'velocity')


def read_notes_csv(path: str) -> List[Note]:
    """Notes of a CSV file: `onset_s,offset_s,midi_pitch,velocity` and an
    optional `vibrato_cents` column (by name with a header row, else by
    position). Returns the notes as `make_monophonic` leaves them."""
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f'No notes file at {path}.')
    with tf.io.gfile.GFile(path, 'r') as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f'{path}: no notes.')
    header = [c.strip().lower() for c in rows[0]]
    try:
        float(header[0])
        columns = list(_CSV_COLUMNS) + ['vibrato_cents']
    except ValueError:
        missing = [c for c in _CSV_COLUMNS if c not in header]
        if missing:
            raise ValueError(f'{path}: the header lacks {missing} (expected '
                             f'{",".join(_CSV_COLUMNS)}).') from None
        columns, rows = header, rows[1:]
    notes = []
    for line, row in enumerate(rows, start=2 if columns is header else 1):
        values = dict(zip(columns, (c.strip() for c in row)))
        try:
            vibrato = values.get('vibrato_cents')
            notes.append(Note(
                float(values['onset_s']), float(values['offset_s']),
                float(values['midi_pitch']), float(values['velocity']),
                float(vibrato) if vibrato not in (None, '') else None))
        except (KeyError, ValueError) as e:
            raise ValueError(f'{path}, row {line}: {e}') from None
    return make_monophonic(notes)


def read_notes_midi(path: str, channel: Optional[int] = None) -> List[Note]:
    """Notes of a Standard MIDI File (all tracks, tempo changes applied).

    Args:
        path: .mid file.
        channel: Only this channel (0-15); None: all but the General MIDI
            drum channel (9).

    Returns:
        The notes, made monophonic (`make_monophonic`).
    """
    import mido
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f'No MIDI file at {path}.')
    with tf.io.gfile.GFile(path, 'rb') as f:
        data = f.read()
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, EOFError, ValueError, KeyError) as e:
        raise ValueError(f'{path} is not a MIDI file: {e}') from None
    keep = ((lambda c: c != MIDI_DRUM_CHANNEL) if channel is None
            else (lambda c: c == channel))
    now, active, notes = 0.0, {}, []
    for message in midi:  # Merged tracks; .time is seconds since the last.
        now += message.time
        if message.type not in ('note_on', 'note_off') or not keep(
                message.channel):
            continue
        key = (message.channel, message.note)
        if key in active:  # Any event of a sounding key ends it.
            onset, velocity = active.pop(key)
            if now > onset:
                notes.append(Note(onset, now, message.note, velocity))
        if message.type == 'note_on' and message.velocity > 0:
            active[key] = (now, message.velocity)
    for (_, pitch), (onset, velocity) in active.items():
        if now > onset:
            notes.append(Note(onset, now, pitch, velocity))
    if not notes:
        raise ValueError(f'{path}: no notes'
                         + ('' if channel is None else f' on channel '
                            f'{channel}') + '.')
    return make_monophonic(notes)


def read_notes(path: str) -> List[Note]:
    """`read_notes_midi` for .mid / .midi files, else `read_notes_csv`."""
    if path.lower().endswith(MIDI_EXTENSIONS):
        return read_notes_midi(path)
    return read_notes_csv(path)


def make_monophonic(notes: Sequence[Note]) -> List[Note]:
    """Sorts notes by onset; a note still sounding when the next one starts
    ends there (last-note priority, as a monophonic synthesizer). Notes at
    the same onset: the higher pitch wins. Logs how many were shortened or
    dropped."""
    ordered = sorted(notes, key=lambda n: (n.onset_s, -n.pitch))
    out, changed = [], 0
    for note in ordered:
        if out and out[-1].onset_s == note.onset_s:
            changed += 1
            continue
        if out and out[-1].offset_s > note.onset_s:
            out[-1] = dataclasses.replace(out[-1], offset_s=note.onset_s)
            changed += 1
        out.append(note)
    if changed:
        logging.info('Overlapping notes: %d shortened or dropped to make the '
                     'part monophonic.', changed)
    return out


# Curves ------------------------------------------------------------------------------
def velocity_to_loudness(velocity, dataset_stats: Optional[Dict[str, Any]]
                         ) -> np.ndarray:
    """Loudness (dB) of notes of the given velocities.

    Velocity 1 .. 127 maps linearly to the quantiles VELOCITY_QUANTILE_RANGE
    of the training data's note-on loudness (its quantile transform in
    dataset_stats), so generated notes are as loud as the notes the model
    was trained on. Statistics without quantiles: linearly between
    'mean_min_loudness_note' and 'mean_max_loudness_note'; no statistics:
    DEFAULT_LOUDNESS_RANGE_DB.
    """
    velocity = np.asarray(velocity, np.float64)
    fraction = np.clip((velocity - 1.0) / 126.0, 0.0, 1.0)
    lo_q, hi_q = VELOCITY_QUANTILE_RANGE
    if dataset_stats is not None:
        try:
            qt = postprocessing.dataset_quantile_transform(dataset_stats)
            return qt.inverse_transform(
                (lo_q + (hi_q - lo_q) * fraction).reshape(-1, 1)
            ).reshape(velocity.shape).astype(np.float32)
        except ValueError:
            lo = dataset_stats.get('mean_min_loudness_note')
            hi = dataset_stats.get('mean_max_loudness_note')
            if lo is not None and hi is not None:
                return (lo + (hi - lo) * fraction).astype(np.float32)
    logging.warning('No dataset loudness statistics: velocities map to '
                    '%s dB.', DEFAULT_LOUDNESS_RANGE_DB)
    lo, hi = DEFAULT_LOUDNESS_RANGE_DB
    return (lo + (hi - lo) * fraction).astype(np.float32)


def _db_to_amp(db):
    return 10.0 ** (np.asarray(db, np.float64) / 20.0)


def notes_to_curves(notes: Sequence[Note], frame_rate: float,
                    dataset_stats: Optional[Dict[str, Any]] = None, *,
                    attack_s: float = DEFAULT_ATTACK_S,
                    release_s: float = DEFAULT_RELEASE_S,
                    vibrato_cents: float = 0.0,
                    vibrato_hz: float = DEFAULT_VIBRATO_HZ,
                    vibrato_delay_s: float = DEFAULT_VIBRATO_DELAY_S,
                    tail_s: float = 0.3,
                    silence_db: Optional[float] = None
                    ) -> Dict[str, np.ndarray]:
    """f0 and loudness curves that play the notes (frame i at i / frame_rate).

    f0 is the sounding note's pitch from its onset frame to the next note's
    onset (the release keeps the pitch; before the first note, its pitch),
    plus vibrato (a sine of depth vibrato_cents, or the note's own
    vibrato_cents, fading in over vibrato_delay_s). Loudness: an attack
    linear in amplitude from the current level to the note's level
    (`velocity_to_loudness`) over attack_s, held to the offset, then a
    release linear in dB down to silence over release_s (cut short by the
    next note, whose attack starts from wherever the level is; legato notes
    glide without a dip).

    Args:
        notes: Monophonic notes (`make_monophonic` is applied).
        frame_rate: The model's frame rate.
        dataset_stats: The model's dataset statistics (loudness range).
        attack_s, release_s: Envelope times (>= 0).
        vibrato_cents, vibrato_hz, vibrato_delay_s: Default vibrato.
        tail_s: Silence after the last release.
        silence_db: Level between notes (default: the dataset's
            'min_loudness', else -80 dB).

    Returns:
        'f0_hz', 'loudness_db': float32 `[n_frames]`; 'note_index': int32
        `[n_frames]`, the sounding note (onset to offset), -1 elsewhere;
        'sustained': bool `[n_frames]`, note frames after the attack.
    """
    if not notes:
        raise ValueError('notes must not be empty.')
    for name, value in (('frame_rate', frame_rate), ('vibrato_hz', vibrato_hz)):
        if not value > 0:
            raise ValueError(f'{name} must be > 0, got {value}.')
    for name, value in (('attack_s', attack_s), ('release_s', release_s),
                        ('vibrato_cents', vibrato_cents),
                        ('vibrato_delay_s', vibrato_delay_s),
                        ('tail_s', tail_s)):
        if not value >= 0:
            raise ValueError(f'{name} must be >= 0, got {value}.')
    notes = make_monophonic(notes)
    if silence_db is None:
        silence_db = (dataset_stats or {}).get('min_loudness')
        silence_db = (-spectral_ops.DB_RANGE if silence_db is None
                      else max(float(silence_db), -spectral_ops.DB_RANGE))
    levels = velocity_to_loudness([n.velocity for n in notes], dataset_stats)
    n_frames = math.ceil((notes[-1].offset_s + release_s + tail_s)
                         * frame_rate) + 1

    def frame(secs: float) -> int:  # First frame at or after secs.
        return min(n_frames, math.ceil(secs * frame_rate - 1e-9))

    t = np.arange(n_frames) / frame_rate
    pitch = np.full(n_frames, notes[0].pitch, np.float64)
    loudness = np.full(n_frames, silence_db, np.float64)
    note_index = np.full(n_frames, -1, np.int32)
    sustained = np.zeros(n_frames, bool)
    n_attack = max(1, round(attack_s * frame_rate))
    n_release = max(1, round(release_s * frame_rate))
    for i, note in enumerate(notes):
        start, stop = frame(note.onset_s), frame(note.offset_s)
        if stop <= start:
            logging.info('Note %d (%.3f-%.3f s) is shorter than a frame: '
                         'skipped.', i, note.onset_s, note.offset_s)
            continue
        end = (frame(notes[i + 1].onset_s) if i + 1 < len(notes)
               else n_frames)
        # Pitch through the release, up to the next note.
        depth = (vibrato_cents if note.vibrato_cents is None
                 else note.vibrato_cents) / 100.0
        since = t[start:end] - note.onset_s
        fade = (np.clip(since / vibrato_delay_s, 0.0, 1.0)
                if vibrato_delay_s > 0 else 1.0)
        pitch[start:end] = note.pitch + depth * fade * np.sin(
            2 * np.pi * vibrato_hz * since)
        # Envelope: attack from the current level, sustain, release.
        before = loudness[start - 1] if start > 0 else silence_db
        ramp = np.arange(1, n_attack + 1) / n_attack
        amp = _db_to_amp(before) + ramp * (_db_to_amp(levels[i])
                                           - _db_to_amp(before))
        level = np.full(stop - start, levels[i], np.float64)
        attack = min(n_attack, stop - start)
        level[:attack] = 20 * np.log10(np.maximum(amp[:attack], 1e-12))
        loudness[start:stop] = level
        release = np.linspace(loudness[stop - 1], silence_db,
                              n_release + 1)[1:]
        n_rel = min(n_release, end - stop)
        loudness[stop:stop + n_rel] = release[:n_rel]
        loudness[stop + n_rel:end] = silence_db
        note_index[start:stop] = i
        sustained[start + attack:stop] = True
    return {
        'f0_hz': np.asarray(core.midi_to_hz(pitch), np.float32),
        'loudness_db': np.maximum(loudness, -spectral_ops.DB_RANGE
                                  ).astype(np.float32),
        'note_index': note_index,
        'sustained': sustained,
    }

