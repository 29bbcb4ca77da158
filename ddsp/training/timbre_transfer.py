"""Timbre transfer: any recording -> f0 and loudness -> a trained model's sound.

The one implementation behind `ddsp_timbre_transfer`, the timbre-transfer
notebook (`ddsp/colab/demos/timbre_transfer.ipynb`) and step 4 of `make demo`:

1. `load_input_audio` reads a file (any format soundfile decodes, any rate,
   mono mix of all channels) at the model's rate and at 16 kHz;
   `prepare_input_audio` does the same for an array (a Colab recording).
2. `compute_features` computes CREPE f0 / confidence and A-weighted loudness
   exactly as `ddsp_prepare_tfrecord` computed the training data (16 kHz
   audio, loudness n_fft 512, 'same' framing), at the model's frame rate.
3. `postprocessing.adjust_features` applies the notebook's controls:
   automatic adjustment toward the dataset (octave shift, quantile loudness
   normalisation of note-on frames, `quiet` dB on note-off frames, auto-tune)
   and the manual `pitch_shift` (octaves) / `loudness_shift` (dB).
4. `resynthesize` renders the adjusted f0 and loudness with the model
   (`inference.synthesize`: the whole file, any length; `use_reverb=False`
   leaves out the learned room, i.e. dereverberation). Models with an encoder
   (`models/ae.gin`) get z from the input audio (`inference.compute_z`).
   The adjusted loudness is what the synthesizer gets: it is never recomputed
   from audio (magenta/ddsp's notebook lost its loudness edits that way).
5. Acoustic transfer (`acoustic_transfer=True`) skips 2-4 and applies the
   model's learned room to the input audio (`inference.apply_reverb`).

`transfer` runs all steps; `save_plot` draws f0 (MIDI) and loudness before and
after adjustment, the note-on mask and both spectrograms into a PNG;
`follow_metrics` measures how well the output follows the conditioning.
"""
from __future__ import annotations

import dataclasses
import io
import os
from typing import Any, Dict, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import soxr

from ddsp import spectral_ops
from ddsp.training import metrics
from ddsp.training import postprocessing
from ddsp.training.data_preparation import audio_io
from ddsp.training.data_preparation import dataset_metadata

__all__ = [
    'InputAudio',
    'TransferResult',
    'load_input_audio',
    'prepare_input_audio',
    'compute_features',
    'adjust_conditioning',
    'resynthesize',
    'transfer',
    'save_plot',
    'audio_format',
    'write_audio',
    'follow_errors',
    'follow_metrics',
]

FEATURE_SAMPLE_RATE = spectral_ops.CREPE_SAMPLE_RATE  # 16 kHz, as the dataset.


@dataclasses.dataclass
class InputAudio:
    """Mono input audio at the model's rate and at 16 kHz (for features).

    Attributes:
        audio: float32 `[n_samples]` at sample_rate.
        audio_16k: float32 `[n_samples_16k]` at 16 kHz (same array when the
            model runs at 16 kHz).
        sample_rate: The model's sample rate.
        name: File path or a description, for messages.
    """
    audio: np.ndarray
    audio_16k: np.ndarray
    sample_rate: int
    name: str = 'audio'

    @property
    def duration_secs(self) -> float:
        return len(self.audio) / self.sample_rate


@dataclasses.dataclass
class TransferResult:
    """What `transfer` produced.

    Attributes:
        audio: The input `[n_samples]` at sample_rate.
        audio_gen: The output `[n_samples]` (same length) at sample_rate.
        sample_rate: The model's sample rate.
        frame_rate: The model's frame rate.
        features: 'f0_hz', 'f0_confidence', 'loudness_db' `[n_frames]` of the
            input (None for acoustic transfer).
        adjusted: `postprocessing.adjust_features` output: 'f0_hz',
            'loudness_db' (what the synthesizer got), 'mask_on',
            'note_on_ratio', 'octave_shift', 'tuning_factor' (None for
            acoustic transfer).
        z: `[n_frames, z_dims]` for models with an encoder, else None.
        threshold: The note detection threshold used (for plots).
    """
    audio: np.ndarray
    audio_gen: np.ndarray
    sample_rate: int
    frame_rate: float
    features: Optional[Dict[str, np.ndarray]] = None
    adjusted: Optional[Dict[str, Any]] = None
    z: Optional[np.ndarray] = None
    threshold: Optional[float] = None


# Input audio -------------------------------------------------------------------------
def _input_error(e: audio_io.SkipFile) -> Exception:
    """A clear exception for an unusable input file (the path is named)."""
    if e.code == 'not_found':
        return FileNotFoundError(f'Input audio {e.path} does not exist.')
    return ValueError(f'Cannot use input audio {e}.')


def load_input_audio(path: str, sample_rate: Optional[int] = None
                     ) -> InputAudio:
    """Reads an audio file for timbre transfer.

    All channels are mixed to mono (logged); any file rate is resampled (soxr,
    high quality) to `sample_rate` and to 16 kHz.

    Args:
        path: Any `tf.io.gfile` path of a file soundfile decodes (wav, flac,
            ogg, mp3, aiff, ...).
        sample_rate: The model's sample rate; None: the file's.

    Returns:
        InputAudio.

    Raises:
        FileNotFoundError: If path does not exist.
        ValueError: If the file is a directory, empty, not audio, corrupt,
            contains NaN/Inf or is silent (the message names the file).
    """
    if sample_rate is not None:
        sample_rate = _positive_int(sample_rate, 'sample_rate')
    try:
        info = audio_io.scan_audio(path)
        sample_rate = sample_rate or info.sample_rate
        if info.channels > 1:
            logging.info('%s: mixing %d channels to mono.', path,
                         info.channels)
        if info.sample_rate != sample_rate:
            logging.info('%s: resampling %d Hz to %d Hz.', path,
                         info.sample_rate, sample_rate)
        rates = [sample_rate, FEATURE_SAMPLE_RATE]
        chunk = next(audio_io.iter_chunks(path, rates, None, info=info))
    except audio_io.SkipFile as e:
        raise _input_error(e) from None
    logging.info('Loaded %s: %.2f s.', path, info.duration_secs)
    return InputAudio(audio=chunk[sample_rate],
                      audio_16k=chunk[FEATURE_SAMPLE_RATE],
                      sample_rate=sample_rate, name=path)


def _resample(audio: np.ndarray, in_rate: float, out_rate: float
              ) -> np.ndarray:
    if in_rate == out_rate:
        return audio
    return soxr.resample(audio, in_rate, out_rate,
                         quality=audio_io.RESAMPLE_QUALITY).astype(np.float32)


def prepare_input_audio(audio, source_rate: int, sample_rate: int,
                        name: str = 'audio') -> InputAudio:
    """An audio array (e.g. a recording) as InputAudio.

    Args:
        audio: `[n_samples]` or `[n_samples, n_channels]` (mixed to mono).
        source_rate: Sample rate of audio.
        sample_rate: The model's sample rate.
        name: What to call the audio in messages.

    Raises:
        ValueError: If audio is empty, not finite or silent.
    """
    source_rate = _positive_int(source_rate, 'source_rate')
    sample_rate = _positive_int(sample_rate, 'sample_rate')
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        logging.info('%s: mixing %d channels to mono.', name, audio.shape[1])
        audio = audio.mean(axis=1)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f'{name} must be a non-empty [n_samples] or '
                         f'[n_samples, n_channels] array, got shape '
                         f'{np.shape(audio)}.')
    if not np.all(np.isfinite(audio)):
        raise ValueError(f'{name} contains NaN or Inf samples.')
    peak = float(np.max(np.abs(audio)))
    if peak <= audio_io.SILENCE_PEAK:
        raise ValueError(f'{name} is silent (peak {peak:.2g}).')
    return InputAudio(audio=_resample(audio, source_rate, sample_rate),
                      audio_16k=_resample(audio, source_rate,
                                          FEATURE_SAMPLE_RATE),
                      sample_rate=sample_rate, name=name)


def _positive_int(value, name: str) -> int:
    if (isinstance(value, bool) or not float(value).is_integer()
            or value <= 0):
        raise ValueError(f'{name} must be a positive integer, got {value!r}.')
    return int(value)


# Features ----------------------------------------------------------------------------
def compute_features(audio_16k, frame_rate: float,
                     model_capacity: str = 'full',
                     crepe_frame_rate: Optional[float] = None,
                     viterbi: bool = True, padding: str = 'same'
                     ) -> Dict[str, np.ndarray]:
    """f0, confidence and loudness as `ddsp_prepare_tfrecord` computes them
    (`dataset_metadata.compute_features`, the pipeline's own code), for one
    recording (checked here).

    Args:
        audio_16k: `[n_samples]` at 16 kHz.
        frame_rate: The model's frame rate.
        model_capacity: CREPE size: 'tiny' ... 'full' (the reference's).
        crepe_frame_rate: Run CREPE at this lower rate and interpolate (fast
            mode); None: at frame_rate.
        viterbi: CREPE Viterbi smoothing.
        padding: Framing of the training data: 'same' (the default of
            `ddsp_prepare_tfrecord`, ceil(n_samples / hop) frames) or 'center'
            (`--center`, one more frame).

    Returns:
        float32 'f0_hz', 'f0_confidence', 'loudness_db' `[n_frames]`.
    """
    if padding not in ('same', 'center'):
        raise ValueError(f"padding must be 'same' or 'center', got "
                         f'{padding!r}.')
    audio_16k = np.asarray(audio_16k, dtype=np.float32)
    if audio_16k.ndim != 1 or audio_16k.size == 0:
        raise ValueError(f'audio_16k must be a non-empty [n_samples] array, '
                         f'got shape {audio_16k.shape}.')
    logging.info('Computing f0 (CREPE %s%s) and loudness of %.2f s.',
                 model_capacity, '' if crepe_frame_rate is None else
                 f' at {crepe_frame_rate:g} frames/s',
                 len(audio_16k) / FEATURE_SAMPLE_RATE)
    return dataset_metadata.compute_features(
        audio_16k, float(frame_rate), model_capacity, crepe_frame_rate,
        viterbi, padding)


# Adjustment --------------------------------------------------------------------------
def adjust_conditioning(trained, features: Dict[str, np.ndarray], *,
                        adjust: bool = True, threshold: float = 1.0,
                        quiet: float = 20.0, autotune: float = 0.0,
                        pitch_shift: float = 0.0, loudness_shift: float = 0.0
                        ) -> Dict[str, Any]:
    """`postprocessing.adjust_features` of `compute_features` output with
    the model's dataset statistics (see there for the controls); logs what
    the automatic adjustment did."""
    adjusted = postprocessing.adjust_features(
        features['f0_hz'], features['f0_confidence'],
        features['loudness_db'], trained.dataset_stats, adjust=adjust,
        threshold=threshold, quiet=quiet, autotune=autotune,
        pitch_shift=pitch_shift, loudness_shift=loudness_shift)
    if adjust and trained.dataset_stats is not None:
        logging.info('Automatic adjustment: %+d octave(s), %d of %d frames '
                     'note-on.', adjusted['octave_shift'],
                     int(np.sum(adjusted['mask_on'])),
                     len(adjusted['mask_on']))
    return adjusted


# Synthesis ---------------------------------------------------------------------------
def _inference():
    # Imported on use: the inference module loads the model stack.
    from ddsp.training import inference
    return inference


def resynthesize(trained, f0_hz, loudness_db, audio=None,
                 use_reverb: bool = True
                 ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Renders f0 and loudness with a trained model.

    Args:
        trained: `inference.TrainedModel`.
        f0_hz, loudness_db: `[n_frames]` at trained.frame_rate.
        audio: `[n_samples]` input audio at trained.sample_rate; needed by
            models with an encoder (z is computed from it); the output is
            trimmed to its length when given.
        use_reverb: Apply the model's learned room (False: dereverberation).

    Returns:
        (audio_gen float32 `[n_samples]`, z `[n_frames, z_dims]` or None).
    """
    f0_hz = np.asarray(f0_hz, np.float32)
    loudness_db = np.asarray(loudness_db, np.float32)
    if f0_hz.ndim != 1 or f0_hz.shape != loudness_db.shape or not f0_hz.size:
        raise ValueError(f'f0_hz and loudness_db must be non-empty [n_frames] '
                         f'arrays of the same length, got {f0_hz.shape} and '
                         f'{loudness_db.shape}.')
    if not use_reverb and not trained.has_reverb:
        logging.info('The model has no reverb: nothing to leave out.')
    inference = _inference()
    z = None
    if trained.uses_z:
        if audio is None:
            raise ValueError('This model has an encoder: pass the input '
                             '`audio` to compute z from.')
        z = inference.compute_z(trained, audio, len(f0_hz))
    logging.info('Synthesizing %d frames (%.2f s)%s.', len(f0_hz),
                 len(f0_hz) / trained.frame_rate,
                 '' if use_reverb or not trained.has_reverb
                 else ' without reverb')
    audio_gen = np.asarray(inference.synthesize(
        trained, f0_hz, loudness_db, z, use_reverb=use_reverb), np.float32)
    if audio is not None:
        n = len(audio)
        audio_gen = np.pad(audio_gen[:n], (0, max(0, n - len(audio_gen))))
    return audio_gen, z


def transfer(trained, audio: InputAudio, *, adjust: bool = True,
             threshold: float = 1.0, quiet: float = 20.0,
             autotune: float = 0.0, pitch_shift: float = 0.0,
             loudness_shift: float = 0.0, use_reverb: bool = True,
             acoustic_transfer: bool = False,
             model_capacity: str = 'full',
             crepe_frame_rate: Optional[float] = None,
             padding: str = 'same',
             features: Optional[Dict[str, np.ndarray]] = None
             ) -> TransferResult:
    """Timbre transfer of one recording through a trained model.

    Args:
        trained: `inference.TrainedModel` (`inference.load_model(dir)`).
        audio: InputAudio at trained.sample_rate (`load_input_audio`,
            `prepare_input_audio`).
        adjust, threshold, quiet, autotune, pitch_shift, loudness_shift: The
            controls of `postprocessing.adjust_features` (the notebook's).
        use_reverb: Apply the learned room (False: dereverberation).
        acoustic_transfer: Output the input audio with the model's room
            applied (no resynthesis; the other controls are ignored).
        model_capacity, crepe_frame_rate, padding: `compute_features`.
        features: Precomputed `compute_features` output (skips CREPE).

    Returns:
        TransferResult.
    """
    if audio.sample_rate != trained.sample_rate:
        raise ValueError(f'audio is at {audio.sample_rate} Hz, the model at '
                         f'{trained.sample_rate} Hz: load it with '
                         'load_input_audio(path, trained.sample_rate).')
    common = dict(audio=audio.audio, sample_rate=trained.sample_rate,
                  frame_rate=trained.frame_rate)
    if acoustic_transfer:
        logging.info('Acoustic transfer: applying the model\'s room to %s.',
                     audio.name)
        audio_gen = _inference().apply_reverb(trained, audio.audio)
        return TransferResult(audio_gen=np.asarray(audio_gen, np.float32),
                              **common)
    if features is None:
        features = compute_features(audio.audio_16k, trained.frame_rate,
                                    model_capacity, crepe_frame_rate,
                                    padding=padding)
    adjusted = adjust_conditioning(
        trained, features, adjust=adjust, threshold=threshold, quiet=quiet,
        autotune=autotune, pitch_shift=pitch_shift,
        loudness_shift=loudness_shift)
    audio_gen, z = resynthesize(trained, adjusted['f0_hz'],
                                adjusted['loudness_db'], audio.audio,
                                use_reverb=use_reverb)
    return TransferResult(audio_gen=audio_gen, features=features,
                          adjusted=adjusted, z=z, threshold=threshold,
                          **common)


# Output ------------------------------------------------------------------------------
def save_plot(result: TransferResult, path: str) -> str:
    """PNG of a transfer: note-on mask, loudness and f0 (MIDI) before/after,
    original and output spectrograms (only the spectrograms for acoustic
    transfer). Returns path."""
    from ddsp.training import plotting
    features = result.features or {}
    adjusted = result.adjusted or {}
    return plotting.plot_transfer_summary(
        path, audio=result.audio, audio_gen=result.audio_gen,
        f0_hz=features.get('f0_hz'), loudness_db=features.get('loudness_db'),
        f0_hz_adjusted=adjusted.get('f0_hz'),
        loudness_db_adjusted=adjusted.get('loudness_db'),
        mask_on=adjusted.get('mask_on'),
        note_on_ratio=adjusted.get('note_on_ratio'),
        threshold=result.threshold, frame_rate=result.frame_rate,
        titles=('Original', 'Timbre transfer'))


def audio_format(path: str) -> str:
    """The soundfile format named by path's extension ('WAV' for x.wav).

    Raises:
        ValueError: If soundfile cannot write it, or path has no extension.
    """
    import soundfile as sf
    fmt = os.path.splitext(path)[1].lstrip('.').upper()
    if fmt not in sf.available_formats():
        ext = fmt.lower() or '(no extension)'
        raise ValueError(f'Unknown audio format {ext!r} of {path!r}: use '
                         '.wav, .flac, .ogg, ...')
    return fmt


def write_audio(path: str, audio, sample_rate: int,
                output_sample_rate: Optional[int] = None) -> str:
    """Writes audio as a 16-bit file (`audio_format`) to any
    `tf.io.gfile` path, resampled to output_sample_rate if given. Audio
    peaking above 1 is scaled down to avoid clipping (logged). Returns path.
    """
    import soundfile as sf
    fmt = audio_format(path)
    audio = np.asarray(audio, np.float32)
    if output_sample_rate is not None:
        output_sample_rate = _positive_int(output_sample_rate,
                                           'output_sample_rate')
        audio = _resample(audio, sample_rate, output_sample_rate)
        sample_rate = output_sample_rate
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 1.0:
        logging.warning('Output peaks at %.2f: scaled to 0.99 to avoid '
                        'clipping.', peak)
        audio = audio * (0.99 / peak)
    buffer = io.BytesIO()
    sf.write(buffer, audio, sample_rate, format=fmt)
    return dataset_metadata.write_file(path, buffer.getvalue())


# Metrics -----------------------------------------------------------------------------
def follow_errors(audio_gen, sample_rate: int, frame_rate: float,
                  f0_hz, loudness_db, voiced=None,
                  model_capacity: str = 'tiny',
                  crepe_frame_rate: Optional[float] = None
                  ) -> Dict[str, np.ndarray]:
    """Per-frame errors of generated audio against its conditioning.

    The synthesizer renders conditioning frame j at sample j * hop, so the
    output's f0 (CREPE) and loudness are computed with frames centred there
    (`compute_features` with 'center' framing) and compared frame by frame.
    (With the training data's 'same' framing, conditioning frame j describes
    the input around sample j * hop + 512 at 16 kHz: the output leads the
    input by that half CREPE frame, as in magenta/ddsp.)

    Args:
        audio_gen: `[n_samples]` at sample_rate.
        sample_rate, frame_rate: Rates of audio and of the conditioning.
        f0_hz, loudness_db: The conditioning `[n_frames]`.
        voiced: bool `[n_frames]` frames where f0 counts (default f0 > 0).
        model_capacity, crepe_frame_rate: CREPE of the output.

    Returns:
        'cents': |`metrics.cents_error`| on voiced frames where the output
        is voiced too; 'loudness_db_out' and 'loudness_db': output and
        conditioning loudness `[n_frames]`.
    """
    f0_hz = np.asarray(f0_hz, np.float32)
    loudness_db = np.asarray(loudness_db, np.float32)
    voiced = f0_hz > 0 if voiced is None else np.asarray(voiced, bool)
    audio_16k = _resample(np.asarray(audio_gen, np.float32), sample_rate,
                          FEATURE_SAMPLE_RATE)
    out = compute_features(audio_16k, frame_rate, model_capacity,
                           crepe_frame_rate, padding='center')
    n = min(len(f0_hz), len(out['f0_hz']))
    f0_out = out['f0_hz'][:n]
    keep = voiced[:n] & (f0_hz[:n] > 0) & (f0_out > 0)
    cents = np.abs(metrics.cents_error(f0_hz[:n], f0_out))[keep]
    return {'cents': cents.astype(np.float32),
            'loudness_db_out': out['loudness_db'][:n],
            'loudness_db': loudness_db[:n]}


def follow_metrics(errors: Sequence[Dict[str, np.ndarray]]
                   ) -> Dict[str, float]:
    """Summary of `follow_errors` of one or more clips (pooled frames):
    median cents, fraction within 50 cents, mean |loudness difference|,
    mean (over clips) correlation of output and conditioning loudness."""
    cents = np.concatenate([e['cents'] for e in errors])
    diff = np.concatenate([e['loudness_db_out'] - e['loudness_db']
                           for e in errors])
    correlations = [np.corrcoef(e['loudness_db_out'], e['loudness_db'])[0, 1]
                    for e in errors]
    return {
        'f0_median_abs_cents_voiced': (float(np.median(cents)) if cents.size
                                       else float('nan')),
        'f0_frames_within_50_cents': (float(np.mean(cents < 50))
                                      if cents.size else float('nan')),
        'loudness_mean_abs_db': float(np.mean(np.abs(diff))),
        'loudness_correlation': float(np.mean(correlations)),
    }
