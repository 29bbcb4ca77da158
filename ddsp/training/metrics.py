"""Evaluation metrics of resynthesis: loudness and f0 accuracy.

Metric classes accumulate running means over batches (`update_state`) and
`flush(step)` them: each value is written as a `metrics/{name}/{metric}`
TensorBoard scalar (a no-op without a default `tf.summary` writer), logged,
returned in a JSON-ready dict and reset.

Raw pitch / chroma accuracy are implemented here (mir_eval's definitions:
fraction of voiced ground-truth frames whose estimate is within a cent
tolerance, for chroma after folding the error to the nearest octave).
"""
import logging
import math
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from ddsp import core
from ddsp import spectral_ops
from ddsp.training import postprocessing

__all__ = [
    'MIN_F0_CONFIDENCE',
    'OUTLIER_MIDI_THRESH',
    'squeeze',
    'l1_distance',
    'is_outlier',
    'compute_audio_features',
    'f0_dist_conf_thresh',
    'cents_error',
    'raw_pitch_accuracy',
    'raw_chroma_accuracy',
    'Mean',
    'BaseMetrics',
    'LoudnessMetrics',
    'F0CrepeMetrics',
    'F0Metrics',
]

# Ground-truth frames below this CREPE confidence are not trusted.
MIN_F0_CONFIDENCE = 0.85
# A mean f0 error above this many semitones counts the example as an outlier.
OUTLIER_MIDI_THRESH = 12


# Helpers ----------------------------------------------------------------------------
def squeeze(input_vector) -> np.ndarray:
    """numpy array of input_vector with all size-1 axes removed (if it has
    more than one axis)."""
    input_vector = np.asarray(input_vector)
    return np.squeeze(input_vector) if input_vector.ndim > 1 else input_vector


def l1_distance(prediction, ground_truth) -> np.ndarray:
    """Frame-wise |prediction - ground_truth| over the common length (the
    shorter of the two along the last axis)."""
    prediction, ground_truth = squeeze(prediction), squeeze(ground_truth)
    n = min(prediction.shape[-1], ground_truth.shape[-1])
    return np.abs(prediction[..., :n].astype(np.float64)
                  - ground_truth[..., :n].astype(np.float64))


def is_outlier(ground_truth_f0_conf) -> bool:
    """True if no frame of the ground truth reaches MIN_F0_CONFIDENCE (its
    f0 is untrackable, so f0 errors against it mean nothing)."""
    return bool(np.max(squeeze(ground_truth_f0_conf)) < MIN_F0_CONFIDENCE)


def _hz_to_midi(f0_hz) -> np.ndarray:
    return np.asarray(core.hz_to_midi(f0_hz), dtype=np.float64)


def _batch(x, name: str) -> np.ndarray:
    """[batch, n] float32 array from [n], [batch, n] or [batch, n, 1]."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[-1] == 0:
        raise ValueError(f'{name} must be [n], [batch, n] or [batch, n, 1], '
                         f'got shape {x.shape}.')
    return x


def compute_audio_features(audio, frame_rate: float = 250,
                           sample_rate: float = 16000, n_fft: int = 512,
                           model_capacity: str = 'full',
                           crepe_frame_rate: Optional[float] = None,
                           viterbi: bool = True, padding: str = 'center'
                           ) -> Dict[str, np.ndarray]:
    """Loudness and CREPE f0 / confidence of audio, as data preparation
    computes them (on the 16 kHz version of the audio).

    Args:
        audio: `[n_samples]` (or `[1, n_samples]`) at sample_rate.
        frame_rate: Feature frames per second.
        sample_rate: Rate of audio; other rates than 16 kHz are resampled to
            16 kHz (soxr) for both features.
        n_fft: Loudness frame / FFT size at 16 kHz.
        model_capacity: CREPE capacity ('tiny' ... 'full').
        crepe_frame_rate: Run CREPE at this coarser rate and interpolate
            (`spectral_ops.compute_f0`); None: at frame_rate.
        viterbi: CREPE Viterbi smoothing.
        padding: 'center', 'same' or 'valid' framing of both features.

    Returns:
        Dict of float32 numpy arrays: 'audio' (as given, squeezed),
        'loudness_db', 'f0_hz', 'f0_confidence' (`[n_frames]`).
    """
    audio = squeeze(np.asarray(audio, dtype=np.float32))
    audio_16k = audio
    if not math.isclose(float(sample_rate), spectral_ops.CREPE_SAMPLE_RATE):
        import soxr  # Lazy: only needed for other rates.

        audio_16k = soxr.resample(
            audio.T, float(sample_rate), spectral_ops.CREPE_SAMPLE_RATE,
            quality='HQ').T.astype(np.float32)
    loudness_db = spectral_ops.compute_loudness(
        audio_16k, spectral_ops.CREPE_SAMPLE_RATE, frame_rate, n_fft=n_fft,
        padding=padding)
    f0_hz, f0_confidence = spectral_ops.compute_f0(
        audio_16k, frame_rate, viterbi=viterbi, padding=padding,
        model_capacity=model_capacity, crepe_frame_rate=crepe_frame_rate,
        sample_rate=spectral_ops.CREPE_SAMPLE_RATE)
    return {
        'audio': audio,
        'loudness_db': np.asarray(loudness_db, dtype=np.float32),
        'f0_hz': np.asarray(f0_hz, dtype=np.float32),
        'f0_confidence': np.asarray(f0_confidence, dtype=np.float32),
    }


def f0_dist_conf_thresh(f0_hz, f0_hz_gen, f0_confidence,
                        f0_confidence_thresh: float = MIN_F0_CONFIDENCE
                        ) -> Optional[float]:
    """Mean |MIDI(f0_hz_gen) - MIDI(f0_hz)| over the frames whose ground-truth
    confidence is >= f0_confidence_thresh (common length of the inputs);
    None if there is no such frame.

    Args:
        f0_hz, f0_confidence: Ground truth `[n_frames]`.
        f0_hz_gen: Estimate `[n_frames']`.
    """
    f0_confidence = squeeze(f0_confidence)
    distance = l1_distance(_hz_to_midi(squeeze(f0_hz_gen)),
                           _hz_to_midi(squeeze(f0_hz)))
    confident = f0_confidence[:distance.shape[-1]] >= f0_confidence_thresh
    if not confident.any():
        return None
    return float(np.mean(distance[confident]))


def cents_error(f0_ref_hz, f0_est_hz) -> np.ndarray:
    """1200 * log2(f0_est / f0_ref) per frame; NaN where either is <= 0."""
    ref = np.asarray(f0_ref_hz, dtype=np.float64)
    est = np.asarray(f0_est_hz, dtype=np.float64)
    valid = (ref > 0) & (est > 0)
    ratio = np.where(valid, est, 1.0) / np.where(valid, ref, 1.0)
    return np.where(valid, 1200.0 * np.log2(ratio), np.nan)


def _accuracy(f0_ref_hz, f0_est_hz, ref_voicing, cent_tolerance: float,
              chroma: bool) -> Optional[float]:
    ref = squeeze(f0_ref_hz).astype(np.float64)
    est = squeeze(f0_est_hz).astype(np.float64)
    if ref.shape != est.shape:
        raise ValueError(f'f0_ref_hz {ref.shape} and f0_est_hz {est.shape} '
                         'must have the same shape.')
    voiced = ref > 0
    if ref_voicing is not None:
        voiced &= squeeze(ref_voicing).astype(bool)
    if not voiced.any():
        return None
    error = cents_error(ref, est)
    if chroma:  # Fold to the nearest octave: error in [-600, 600].
        error = error - 1200.0 * np.round(error / 1200.0)
    # Unvoiced estimates (NaN error) count as wrong.
    hits = np.abs(np.nan_to_num(error, nan=np.inf)) <= cent_tolerance
    return float(np.mean(hits[voiced]))


def raw_pitch_accuracy(f0_ref_hz, f0_est_hz, ref_voicing=None,
                       cent_tolerance: float = 50.0) -> Optional[float]:
    """Fraction of voiced reference frames (f0_ref > 0 and ref_voicing) whose
    estimate is within cent_tolerance cents; None without voiced frames."""
    return _accuracy(f0_ref_hz, f0_est_hz, ref_voicing, cent_tolerance,
                     chroma=False)


def raw_chroma_accuracy(f0_ref_hz, f0_est_hz, ref_voicing=None,
                        cent_tolerance: float = 50.0) -> Optional[float]:
    """As raw_pitch_accuracy, ignoring octave errors (the cents error is
    folded to the nearest octave first)."""
    return _accuracy(f0_ref_hz, f0_est_hz, ref_voicing, cent_tolerance,
                     chroma=True)


# Metric classes ---------------------------------------------------------------------
class Mean:
    """Running mean of scalars (numpy; the `keras.metrics.Mean` interface:
    update_state / result / reset_state)."""

    def __init__(self, name: str):
        self.name = name
        self.reset_state()

    def update_state(self, values):
        values = np.asarray(values, dtype=np.float64).ravel()
        self._total += float(np.sum(values))
        self._count += values.size

    def result(self) -> Optional[float]:
        """The mean, or None before any update."""
        return self._total / self._count if self._count else None

    @property
    def count(self) -> int:
        return self._count

    def reset_state(self):
        self._total = 0.0
        self._count = 0


class BaseMetrics:
    """Base of the metric families.

    Args:
        sample_rate: Audio rate of the generated audio.
        frame_rate: Feature frame rate.
        name: Summary prefix: scalars are `metrics/{name}/{metric}`.
    """

    def __init__(self, sample_rate: float, frame_rate: float, name: str):
        self._sample_rate = sample_rate
        self._frame_rate = frame_rate
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def metrics(self) -> Dict[str, Mean]:
        """Metric name -> running Mean."""
        raise NotImplementedError

    def update_state(self, batch, *args, **kwargs):
        raise NotImplementedError

    def result(self) -> Dict[str, Optional[float]]:
        """Current values (None for metrics without updates)."""
        return {k: m.result() for k, m in self.metrics.items()}

    def flush(self, step: int) -> Dict[str, Optional[float]]:
        """Writes, logs, returns and resets the current values.

        Each value with at least one update becomes a scalar summary
        `metrics/{name}/{metric}` at `step` (recorded only inside a default
        `tf.summary` writer). Returns {metric: value or None}.
        """
        results = self.result()
        logging.info('%s metrics at step %s: %s', self._name, step,
                     ', '.join(f'{k}={v:.4f}' if v is not None else f'{k}=n/a'
                               for k, v in results.items()))
        for key, value in results.items():
            if value is not None:
                tf.summary.scalar(f'metrics/{self._name}/{key}', value,
                                  step=step)
        for metric in self.metrics.values():
            metric.reset_state()
        return results

    def _padding(self, n_frames: int, n_samples: int) -> str:
        """Framing that reproduces the ground truth's frame count."""
        return postprocessing.infer_padding(n_frames, n_samples,
                                            self._sample_rate,
                                            self._frame_rate)


class LoudnessMetrics(BaseMetrics):
    """Mean absolute loudness difference (dB) of generated vs original audio.

    The reference loudness is recomputed from batch['audio'] with the same
    function and settings as the generated audio's (so both use the same
    definition at any sample rate); without 'audio' in the batch,
    batch['loudness_db'] is used, with the generated loudness framed to
    match its length.
    """

    def __init__(self, sample_rate: float, frame_rate: float,
                 name: str = 'loudness'):
        super().__init__(sample_rate, frame_rate, name)
        self._loudness = Mean('loudness_db')

    @property
    def metrics(self) -> Dict[str, Mean]:
        return {'loudness_db': self._loudness}

    def _loudness_db(self, audio, padding: str) -> np.ndarray:
        return np.asarray(spectral_ops.compute_loudness(
            audio, self._sample_rate, self._frame_rate, padding=padding))

    def update_state(self, batch, audio_gen):
        """batch: dict with 'audio' `[batch, n]` or 'loudness_db`
        `[batch, n_frames]`; audio_gen: `[batch, n]`."""
        audio_gen = _batch(audio_gen, 'audio_gen')
        if 'audio' in batch:
            padding = 'center'
            loudness = self._loudness_db(_batch(batch['audio'], 'audio'),
                                         padding)
        else:
            loudness = _batch(batch['loudness_db'], "batch['loudness_db']")
            padding = self._padding(loudness.shape[-1], audio_gen.shape[-1])
        loudness_gen = self._loudness_db(audio_gen, padding)
        for ref, gen in zip(loudness, loudness_gen):
            self._loudness.update_state(np.mean(l1_distance(gen, ref)))


class F0CrepeMetrics(BaseMetrics):
    """f0 of generated audio (CREPE, Viterbi) vs the batch's f0.

    Per example: if the ground truth is untrackable (`is_outlier`), or the
    mean MIDI error on confident frames (`f0_dist_conf_thresh`) is above
    OUTLIER_MIDI_THRESH, the example is an outlier; otherwise its error
    enters 'f0_dist'. 'outlier_ratio' is the fraction of outliers. CREPE
    frames are aligned with the ground truth's (framing inferred from its
    length).

    Args:
        sample_rate, frame_rate, name: See BaseMetrics.
        model_capacity, crepe_frame_rate: Of `spectral_ops.compute_f0`.
    """

    def __init__(self, sample_rate: float, frame_rate: float,
                 name: str = 'f0_crepe', model_capacity: str = 'full',
                 crepe_frame_rate: Optional[float] = None):
        super().__init__(sample_rate, frame_rate, name)
        self._model_capacity = model_capacity
        self._crepe_frame_rate = crepe_frame_rate
        self._f0_dist = Mean('f0_dist')
        self._outlier_ratio = Mean('outlier_ratio')

    @property
    def metrics(self) -> Dict[str, Mean]:
        return {'f0_dist': self._f0_dist, 'outlier_ratio': self._outlier_ratio}

    def f0_of_audio(self, audio, n_frames: int) -> np.ndarray:
        """CREPE f0 `[batch, n_frames']` of audio `[batch, n]`, framed like
        a ground truth of n_frames frames ('center' or 'same' padding,
        inferred; n_frames' == n_frames when one of them gives n_frames)."""
        audio = _batch(audio, 'audio')
        padding = self._padding(n_frames, audio.shape[-1])
        f0, _ = spectral_ops.compute_f0(
            audio, self._frame_rate, viterbi=True, padding=padding,
            model_capacity=self._model_capacity,
            crepe_frame_rate=self._crepe_frame_rate,
            sample_rate=self._sample_rate)
        return _batch(f0, 'f0')

    def update_state(self, batch, audio_gen):
        """batch: dict with 'f0_hz', 'f0_confidence' `[batch, n_frames]`;
        audio_gen: `[batch, n]` at sample_rate."""
        audio_gen = _batch(audio_gen, 'audio_gen')
        f0_hz = _batch(batch['f0_hz'], "batch['f0_hz']")
        f0_confidence = _batch(batch['f0_confidence'],
                               "batch['f0_confidence']")
        f0_gen = self.f0_of_audio(audio_gen, f0_hz.shape[-1])
        for ref, conf, gen in zip(f0_hz, f0_confidence, f0_gen):
            distance = (None if is_outlier(conf)
                        else f0_dist_conf_thresh(ref, gen, conf))
            outlier = (distance is None or not math.isfinite(distance)
                       or distance > OUTLIER_MIDI_THRESH)
            self._outlier_ratio.update_state(float(outlier))
            if not outlier:
                self._f0_dist.update_state(distance)


class F0Metrics(BaseMetrics):
    """A model's f0 prediction vs the batch's f0.

    'f0_dist': mean MIDI error on confident frames (`f0_dist_conf_thresh`);
    'raw_pitch_accuracy' / 'raw_chroma_accuracy': within rpa_tolerance cents
    on ground-truth frames with confidence >= MIN_F0_CONFIDENCE. Predictions
    with another frame count are resampled linearly to the ground truth's.

    Args:
        sample_rate, frame_rate, name: See BaseMetrics.
        rpa_tolerance: Cent tolerance of the accuracies.
    """

    def __init__(self, sample_rate: float, frame_rate: float,
                 rpa_tolerance: float = 50, name: str = 'f0'):
        super().__init__(sample_rate, frame_rate, name)
        self._rpa_tolerance = rpa_tolerance
        self._f0_dist = Mean('f0_dist')
        self._raw_pitch_accuracy = Mean('raw_pitch_accuracy')
        self._raw_chroma_accuracy = Mean('raw_chroma_accuracy')

    @property
    def metrics(self) -> Dict[str, Mean]:
        return {'f0_dist': self._f0_dist,
                'raw_pitch_accuracy': self._raw_pitch_accuracy,
                'raw_chroma_accuracy': self._raw_chroma_accuracy}

    def update_state(self, batch, f0_hz_predict):
        """batch: dict with 'f0_hz', 'f0_confidence' `[batch, n_frames]`;
        f0_hz_predict: `[batch, n_frames']` or `[batch, n_frames', 1]`."""
        f0_hz = _batch(batch['f0_hz'], "batch['f0_hz']")
        f0_confidence = _batch(batch['f0_confidence'],
                               "batch['f0_confidence']")
        f0_predict = _batch(f0_hz_predict, 'f0_hz_predict')
        n_frames = f0_hz.shape[-1]
        if f0_predict.shape[-1] != n_frames:
            f0_predict = np.asarray(core.resample(
                f0_predict[..., None], n_frames))[..., 0]
        for ref, conf, est in zip(f0_hz, f0_confidence, f0_predict):
            distance = f0_dist_conf_thresh(ref, est, conf)
            if distance is not None:
                self._f0_dist.update_state(distance)
            voiced = conf >= MIN_F0_CONFIDENCE
            rpa = raw_pitch_accuracy(ref, est, voiced, self._rpa_tolerance)
            if rpa is not None:
                self._raw_pitch_accuracy.update_state(rpa)
                self._raw_chroma_accuracy.update_state(raw_chroma_accuracy(
                    ref, est, voiced, self._rpa_tolerance))
