"""Evaluators: metrics and TensorBoard samples of a model on evaluation data.

`eval_util.evaluate_or_sample` creates each evaluator class with the data's
rates, `set_model(model)`, then for every batch calls `evaluate(batch,
outputs, losses)` (accumulate metrics) and/or `sample(batch, outputs, step)`
(write media summaries), and finally `flush(step)`, which writes the metric
scalars, resets them and returns `{summary tag: value}` for the JSON report.

`outputs` is the model's outputs dict with `outputs['audio_gen']`, the
synthesized audio `[batch, n_samples]`; `batch` the data provider's features
(`audio`, `f0_hz`, `f0_confidence`, `loudness_db`, ...); `losses` the model's
scalar losses (including `total_loss`). Summaries go to the default
`tf.summary` writer (a no-op without one).
"""
from __future__ import annotations

import logging
from typing import Dict, Optional

import gin
import numpy as np
import tensorflow as tf

from ddsp.training import metrics
from ddsp.training import summaries

__all__ = ['BaseEvaluator', 'BasicEvaluator', 'F0LdEvaluator',
           'model_predicts_f0']

logger = logging.getLogger(__name__)

# Examples of a batch written as audio / images by `sample`.
N_SAMPLE_OUTPUTS = 2
# Length of the zoomed-in waveform plot.
ZOOM_SECS = 0.125


def _numpy(x) -> np.ndarray:
    return x.numpy() if hasattr(x, 'numpy') else np.asarray(x)


def model_predicts_f0(model) -> bool:
    """True if the model's encoder outputs 'f0_hz' (e.g. ResnetF0Encoder):
    its f0 is a prediction to score, not the dataset's f0 passed through."""
    encoder = getattr(model, 'encoder', None)
    return encoder is not None and 'f0_hz' in getattr(encoder, 'output_keys',
                                                      ())


@gin.register(module='ddsp.training.evaluators')
class BaseEvaluator:
    """Base class: subclasses implement `evaluate`, `sample` and `flush`.

    Args:
        sample_rate: Audio rate of the data and the model, Hz.
        frame_rate: Feature frames per second of the data.
    """

    def __init__(self, sample_rate: float, frame_rate: float):
        self._sample_rate = sample_rate
        self._frame_rate = frame_rate

    def set_model(self, model):
        """Lets an evaluator look at the model it evaluates (default: no)."""
        del model

    def evaluate(self, batch: dict, outputs: dict, losses: dict):
        """Accumulates metrics of one batch."""
        raise NotImplementedError

    def sample(self, batch: dict, outputs: dict, step: int):
        """Writes media summaries of one batch at `step`."""
        raise NotImplementedError

    def flush(self, step: int) -> Dict[str, Optional[float]]:
        """Writes the accumulated metrics at `step`, resets them and returns
        {summary tag: value (None without data)}."""
        raise NotImplementedError


@gin.register(module='ddsp.training.evaluators')
class BasicEvaluator(BaseEvaluator):
    """Means of the model's losses; audio, waveforms and spectrograms.

    evaluate: running mean of every loss -> scalar `losses/{name}`.
    sample: `audio_generated` and `audio_original` clips, waveform plots of
    target vs synthesis (`waveform`, and the first 125 ms as
    `first_125ms/waveform`) and spectrograms (`spectrogram`: target above
    synthesis).
    """

    def __init__(self, sample_rate: float, frame_rate: float):
        super().__init__(sample_rate, frame_rate)
        self._means: Dict[str, metrics.Mean] = {}

    def evaluate(self, batch: dict, outputs: dict, losses: dict):
        del batch, outputs
        for name, value in losses.items():
            self._means.setdefault(name, metrics.Mean(name)).update_state(
                _numpy(value))

    def sample(self, batch: dict, outputs: dict, step: int):
        audio = _numpy(batch['audio'])
        audio_gen = _numpy(outputs['audio_gen'])
        rate = int(self._sample_rate)
        summaries.audio_summary(audio_gen, step, rate, name='audio_generated',
                                max_outputs=N_SAMPLE_OUTPUTS)
        summaries.audio_summary(audio, step, rate, name='audio_original',
                                max_outputs=N_SAMPLE_OUTPUTS)
        summaries.waveform_summary(audio, audio_gen, step,
                                   max_outputs=N_SAMPLE_OUTPUTS)
        n_zoom = max(1, int(ZOOM_SECS * self._sample_rate))
        summaries.waveform_summary(audio[:, :n_zoom], audio_gen[:, :n_zoom],
                                   step, name='first_125ms',
                                   max_outputs=N_SAMPLE_OUTPUTS)
        summaries.spectrogram_summary(audio, audio_gen, step,
                                      max_outputs=N_SAMPLE_OUTPUTS)

    def flush(self, step: int) -> Dict[str, Optional[float]]:
        results = {}
        for name, mean in self._means.items():
            value = mean.result()
            results[f'losses/{name}'] = value
            if value is not None:
                tf.summary.scalar(f'losses/{name}', value, step=step)
            mean.reset_state()
        if results:
            logger.info('Mean losses at step %s: %s', step, ', '.join(
                f'{k[len("losses/"):]}={v:.4f}' for k, v in results.items()
                if v is not None))
        return results


@gin.register(module='ddsp.training.evaluators')
class F0LdEvaluator(BaseEvaluator):
    """Loudness and f0 accuracy of the synthesized audio.

    evaluate: `metrics/loudness/loudness_db` (LoudnessMetrics of
    outputs['audio_gen'] vs the target audio); if the model predicts f0 with
    its encoder (`model_predicts_f0`), F0Metrics of the predicted vs the
    dataset f0 (`metrics/f0/{f0_dist, raw_pitch_accuracy,
    raw_chroma_accuracy}`), else, with run_f0_crepe, F0CrepeMetrics: CREPE on
    the synthesized audio vs the dataset f0 (`metrics/f0_crepe/{f0_dist,
    outlier_ratio}`). f0 metrics need 'f0_hz' and 'f0_confidence' in the
    batch and are skipped (with a warning) without them.
    sample: f0 curves (MIDI) of target vs prediction / CREPE.

    Args:
        sample_rate, frame_rate: See BaseEvaluator.
        run_f0_crepe: Score models without an f0 encoder by running CREPE on
            their audio (slow on CPU with the full model: see
            `spectral_ops.compute_f0` for timings).
        crepe_model_capacity: CREPE size, 'tiny' ... 'full' (the reference's).
        crepe_frame_rate: Run CREPE at this coarser rate and interpolate
            (faster); None: at frame_rate.
    """

    def __init__(self, sample_rate: float, frame_rate: float,
                 run_f0_crepe: bool = True,
                 crepe_model_capacity: str = 'full',
                 crepe_frame_rate: Optional[float] = None):
        super().__init__(sample_rate, frame_rate)
        self._run_f0_crepe = run_f0_crepe
        self._predicts_f0 = False
        self._warned = False
        self._loudness_metrics = metrics.LoudnessMetrics(sample_rate,
                                                         frame_rate)
        self._f0_metrics = metrics.F0Metrics(sample_rate, frame_rate)
        self._f0_crepe_metrics = metrics.F0CrepeMetrics(
            sample_rate, frame_rate, model_capacity=crepe_model_capacity,
            crepe_frame_rate=crepe_frame_rate)

    def set_model(self, model):
        self._predicts_f0 = model_predicts_f0(model)

    def _has_f0(self, batch: dict) -> bool:
        has = 'f0_hz' in batch and 'f0_confidence' in batch
        if not has and not self._warned:
            logger.warning('F0LdEvaluator: the data has no f0_hz / '
                           'f0_confidence; f0 metrics are skipped.')
            self._warned = True
        return has

    def evaluate(self, batch: dict, outputs: dict, losses: dict):
        del losses
        batch = {k: _numpy(v) for k, v in batch.items()}
        audio_gen = _numpy(outputs['audio_gen'])
        self._loudness_metrics.update_state(batch, audio_gen)
        if not self._has_f0(batch):
            return
        if self._predicts_f0:
            self._f0_metrics.update_state(batch, _numpy(outputs['f0_hz']))
        elif self._run_f0_crepe:
            self._f0_crepe_metrics.update_state(batch, audio_gen)

    def sample(self, batch: dict, outputs: dict, step: int):
        if not self._has_f0(batch):
            return
        f0_hz = _numpy(batch['f0_hz'])[:N_SAMPLE_OUTPUTS]
        if self._predicts_f0:
            summaries.f0_summary(f0_hz, _numpy(outputs['f0_hz']), step,
                                 name='f0_predicted',
                                 max_outputs=N_SAMPLE_OUTPUTS)
        elif self._run_f0_crepe:
            audio_gen = _numpy(outputs['audio_gen'])[:N_SAMPLE_OUTPUTS]
            f0_gen = self._f0_crepe_metrics.f0_of_audio(audio_gen,
                                                        f0_hz.shape[1])
            summaries.f0_summary(f0_hz, f0_gen, step, name='f0_crepe',
                                 max_outputs=N_SAMPLE_OUTPUTS)

    def flush(self, step: int) -> Dict[str, Optional[float]]:
        active = [self._loudness_metrics]
        if self._predicts_f0:
            active.append(self._f0_metrics)
        elif self._run_f0_crepe:
            active.append(self._f0_crepe_metrics)
        results = {}
        for metric in active:
            results.update({f'metrics/{metric.name}/{k}': v
                            for k, v in metric.flush(step).items()})
        return results
