"""Synthesis from notes (`generate`) and its measurement.

`generate` draws z for the notes (`sample_z`) and synthesizes audio with
`inference.synthesize`; `spectral_centroid_flicker` measures the temporal
coherence of the result.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence

from absl import logging
import numpy as np

from ddsp.training.generation.gmm import ZGaussianMixture
from ddsp.training.generation.gmm import sample_z
from ddsp.training.generation.notes import Note
from ddsp.training.generation.notes import notes_to_curves

# Default z crossfade between notes (of `generate` and ddsp_generate).
DEFAULT_CROSSFADE_S = 0.05


# Generation ----------------------------------------------------------------------------
@dataclasses.dataclass
class GenerationResult:
    """What `generate` made: audio `[n_samples]` at sample_rate, the curves
    of `notes_to_curves` and z `[n_frames, z_dims]` (None without encoder)."""
    audio: np.ndarray
    sample_rate: int
    curves: Dict[str, np.ndarray]
    z: Optional[np.ndarray]


def generate(trained, notes: Sequence[Note],
             gmm: Optional[ZGaussianMixture] = None, seed: int = 0,
             use_reverb: bool = True,
             crossfade_s: float = DEFAULT_CROSSFADE_S,
             z_per: str = 'note', **curve_options) -> GenerationResult:
    """Plays notes with a trained model; no input audio.

    Args:
        trained: `inference.TrainedModel`.
        notes: The notes (`read_notes`).
        gmm: z model; required when the model has an encoder.
        seed: Seeds the z draws; the synthesis is deterministic (its noise
            is a fixed function of the sample index), so the same seed gives
            the same audio.
        use_reverb: Apply the model's learned room.
        crossfade_s: z crossfade between notes (`sample_z`).
        z_per: `sample_z` per ('note'; 'frame' only for comparisons).
        **curve_options: `notes_to_curves` keyword arguments.

    Returns:
        GenerationResult.
    """
    from ddsp.training import inference
    curves = notes_to_curves(notes, trained.frame_rate, trained.dataset_stats,
                             **curve_options)
    z = None
    if trained.uses_z:
        if gmm is None:
            raise ValueError(f'The model in {trained.model_dir} has an '
                             'encoder: pass a z GMM (ddsp_generate '
                             '--fit_gmm_on=... --gmm=...).')
        if gmm.z_dims != trained.z_dims:
            raise ValueError(f'The GMM has {gmm.z_dims} z dims, the model '
                             f'{trained.z_dims}.')
        z = sample_z(gmm, curves['note_index'], seed, per=z_per,
                     crossfade_frames=round(crossfade_s
                                            * trained.frame_rate))
    elif gmm is not None:
        logging.info('The model has no encoder: the GMM is not used.')
    audio = np.asarray(inference.synthesize(
        trained, curves['f0_hz'], curves['loudness_db'], z,
        use_reverb=use_reverb), np.float32)
    return GenerationResult(audio=audio, sample_rate=trained.sample_rate,
                            curves=curves, z=z)


# Measurement ----------------------------------------------------------------------------
def spectral_centroid_flicker(audio, sample_rate: int, frame_rate: float,
                              mask=None, n_fft: int = 1024) -> float:
    """Mean |frame-to-frame change| of the spectral centroid in cents.

    A measure of timbre stability: pairs of consecutive frames both inside
    mask (e.g. `notes_to_curves(...)['sustained']`) count.

    Args:
        audio: `[n_samples]`.
        sample_rate, frame_rate: Of audio and of the frames (hop =
            sample_rate / frame_rate samples).
        mask: bool `[n_frames]` or None (all frames).
        n_fft: Analysis window.

    Returns:
        Cents per frame (NaN if no pair of frames counts).
    """
    import librosa
    audio = np.asarray(audio, np.float32)
    hop = int(round(sample_rate / frame_rate))
    centroid = librosa.feature.spectral_centroid(
        y=audio, sr=sample_rate, n_fft=n_fft, hop_length=hop,
        center=True)[0]
    cents = 1200 * np.log2(np.maximum(centroid, 1.0))
    keep = np.ones(len(cents) - 1, bool)
    if mask is not None:
        mask = np.asarray(mask, bool)
        n = min(len(mask), len(cents))
        keep = np.zeros(len(cents) - 1, bool)
        keep[:n - 1] = mask[:n - 1] & mask[1:n]
    if not keep.any():
        return float('nan')
    return float(np.mean(np.abs(np.diff(cents))[keep]))
