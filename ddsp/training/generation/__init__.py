"""Generation without input audio: notes -> f0 / loudness curves, z from a GMM.

The autoencoder of `models/ae.gin` conditions its decoder on a time-varying
latent z that its encoder computes from audio. To make sounds from notes
alone, this module replaces the encoder by a generative model of z:

1. `collect_z` runs a trained z-encoder model (`inference.compute_z`) over a
   prepared dataset and collects its z vectors per *segment* (the mean z of
   each detected note, `postprocessing.detect_notes`, cut into pieces of at
   most `segment_secs`).
2. `fit_gmm` fits a Gaussian mixture (scikit-learn `GaussianMixture`) to the
   segment z vectors; the number of components is chosen by BIC or by the
   log-likelihood of held-out segments. `ZGaussianMixture` holds the result
   (numpy only) and saves / loads it as `.npz` or `.json` (never pickle).
3. `read_notes` reads notes from a CSV (`onset_s,offset_s,midi_pitch,velocity`
   [,`vibrato_cents`]) or a MIDI file (mido) and makes them monophonic;
   `notes_to_curves` turns them into f0 and loudness curves at the model's
   frame rate (attack / release envelopes, optional vibrato, velocity mapped
   into the training data's note-on loudness distribution).
4. `sample_z` draws z for the notes and `generate` synthesizes audio with
   `inference.synthesize`.

Temporal coherence of z
-----------------------
Drawing z independently for every frame makes the timbre jump 250 times a
second (audible as rough, flickering noise). Instead, one z is drawn per
*note* and held for the whole note and its release (the timbre of a real
note changes slowly; the per-note mean is what the GMM models); consecutive
notes are joined by a linear crossfade of `crossfade_s` (a box filter over the
piecewise-constant z). `spectral_centroid_flicker` measures the result: the
mean frame-to-frame change of the output's spectral centroid (cents) on
sustained frames, compared in `bench/compare_models.py` between the encoder's
z of real notes, per-note held samples and per-frame samples.

The code lives in topic modules; their public names are exported here:

* `z_collection`: `ZCollection`, `collect_z` (step 1).
* `gmm`: `ZGaussianMixture`, `fit_gmm`, `load_gmm`, `sample_z` (steps 2, 4).
* `notes`: `Note`, `read_notes*`, `make_monophonic`, `velocity_to_loudness`,
  `notes_to_curves` (step 3).
* `synthesis`: `generate`, `GenerationResult`, `spectral_centroid_flicker`.
"""
from ddsp.training.generation.gmm import fit_gmm
from ddsp.training.generation.gmm import GMM_FORMAT
from ddsp.training.generation.gmm import GMM_VERSION
from ddsp.training.generation.gmm import load_gmm
from ddsp.training.generation.gmm import sample_z
from ddsp.training.generation.gmm import ZGaussianMixture
from ddsp.training.generation.notes import DEFAULT_ATTACK_S
from ddsp.training.generation.notes import DEFAULT_LOUDNESS_RANGE_DB
from ddsp.training.generation.notes import DEFAULT_RELEASE_S
from ddsp.training.generation.notes import DEFAULT_VIBRATO_DELAY_S
from ddsp.training.generation.notes import DEFAULT_VIBRATO_HZ
from ddsp.training.generation.notes import make_monophonic
from ddsp.training.generation.notes import MIDI_DRUM_CHANNEL
from ddsp.training.generation.notes import MIDI_EXTENSIONS
from ddsp.training.generation.notes import Note
from ddsp.training.generation.notes import notes_to_curves
from ddsp.training.generation.notes import read_notes
from ddsp.training.generation.notes import read_notes_csv
from ddsp.training.generation.notes import read_notes_midi
from ddsp.training.generation.notes import VELOCITY_QUANTILE_RANGE
from ddsp.training.generation.notes import velocity_to_loudness
from ddsp.training.generation.synthesis import DEFAULT_CROSSFADE_S
from ddsp.training.generation.synthesis import generate
from ddsp.training.generation.synthesis import GenerationResult
from ddsp.training.generation.synthesis import spectral_centroid_flicker
from ddsp.training.generation.z_collection import collect_z
from ddsp.training.generation.z_collection import ZCollection

__all__ = [
    'DEFAULT_ATTACK_S',
    'DEFAULT_CROSSFADE_S',
    'DEFAULT_LOUDNESS_RANGE_DB',
    'DEFAULT_RELEASE_S',
    'DEFAULT_VIBRATO_DELAY_S',
    'DEFAULT_VIBRATO_HZ',
    'GMM_FORMAT',
    'GMM_VERSION',
    'MIDI_DRUM_CHANNEL',
    'MIDI_EXTENSIONS',
    'VELOCITY_QUANTILE_RANGE',
    'ZCollection',
    'ZGaussianMixture',
    'Note',
    'collect_z',
    'fit_gmm',
    'load_gmm',
    'read_notes',
    'read_notes_csv',
    'read_notes_midi',
    'make_monophonic',
    'velocity_to_loudness',
    'notes_to_curves',
    'sample_z',
    'GenerationResult',
    'generate',
    'spectral_centroid_flicker',
]
