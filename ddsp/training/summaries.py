"""TensorBoard summaries of audio: sound, spectrograms, waveforms, f0 curves.

All functions write to the default `tf.summary` writer (use them inside
`with writer.as_default():`) and take NumPy arrays or eager tensors.
Spectrograms are rendered without matplotlib figures (a colormap lookup table),
so they are cheap enough for every summary step; plots of curves use
matplotlib Figures directly (no pyplot, no global backend state).
"""
from __future__ import annotations

import io

import matplotlib
import matplotlib.figure
import numpy as np
import tensorflow as tf

from ddsp import spectral_ops

__all__ = ['audio_summary', 'get_spectrogram', 'spectrogram_summary',
           'fig_summary', 'waveform_summary', 'f0_summary']

_DB_RANGE = 80.0  # Spectrogram images show the top 80 dB of each example.
_COLORMAP = matplotlib.colormaps['magma'](np.linspace(0.0, 1.0, 256))[:, :3]


def _batch_audio(audio, name: str = 'audio') -> np.ndarray:
    """Audio as float32 `[batch, n_samples]` (a `[..., 1]` channel is dropped)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 3 and audio.shape[-1] == 1:
        audio = audio[..., 0]
    if audio.ndim == 1:
        audio = audio[np.newaxis]
    if audio.ndim != 2:
        raise ValueError(f'`{name}` must be [batch, n_samples], got shape '
                         f'{audio.shape}.')
    return audio


def audio_summary(audio, step: int, sample_rate: int = 16000,
                  name: str = 'audio', max_outputs: int = 2):
    """Writes playable audio clips (peak-normalized only if they would clip).

    Args:
        audio: `[batch, n_samples]` in [-1, 1].
        step: Training step.
        sample_rate: Sample rate in Hz.
        name: Summary tag.
        max_outputs: Number of examples written.
    """
    audio = _batch_audio(audio)[:max_outputs]
    peak = max(float(np.max(np.abs(audio))), 1.0)  # Never amplify, avoid clip.
    tf.summary.audio(name, audio[..., np.newaxis] / peak, sample_rate,
                     step=step, max_outputs=max_outputs, encoding='wav')


def get_spectrogram(audio, size: int = 1024, db_range: float = _DB_RANGE
                    ) -> np.ndarray:
    """Log-magnitude spectrograms scaled to [0, 1], low frequencies at the bottom.

    Args:
        audio: `[batch, n_samples]` (at least `size` samples).
        size: FFT size (overlap 0.75).
        db_range: Dynamic range shown; quieter bins are black.

    Returns:
        `[batch, size // 2 + 1, n_frames]` float32 in [0, 1].
    """
    audio = _batch_audio(audio)
    mag = spectral_ops.compute_mag(tf.constant(audio), size=size).numpy()
    db = 20.0 * np.log10(np.maximum(mag, 1e-7))
    peak = db.max(axis=(1, 2), keepdims=True)
    scaled = np.clip((db - peak + db_range) / db_range, 0.0, 1.0)
    return np.transpose(scaled, (0, 2, 1))[:, ::-1, :]


def _colorize(gray: np.ndarray) -> np.ndarray:
    """[..., h, w] in [0, 1] -> [..., h, w, 3] uint8 through the colormap."""
    index = np.round(gray * (len(_COLORMAP) - 1)).astype(np.int32)
    return (_COLORMAP[index] * 255).astype(np.uint8)


def spectrogram_summary(audio, audio_gen, step: int, name: str = '',
                        tag: str = 'spectrogram', max_outputs: int = 2,
                        size: int = 1024):
    """Writes images of the target's spectrogram above the synthesis's.

    Args:
        audio: Target audio `[batch, n_samples]`.
        audio_gen: Generated audio `[batch, n_samples]`.
        step: Training step.
        name: Prefix of the summary tag.
        tag: Summary tag.
        max_outputs: Number of examples written.
        size: FFT size.
    """
    audio = _batch_audio(audio, 'audio')[:max_outputs]
    audio_gen = _batch_audio(audio_gen, 'audio_gen')[:max_outputs]
    n = min(audio.shape[1], audio_gen.shape[1])
    target = get_spectrogram(audio[:, :n], size)
    generated = get_spectrogram(audio_gen[:, :n], size)
    separator = np.ones_like(target[:, :2, :])  # A white line between the two.
    images = _colorize(np.concatenate([target, separator, generated], axis=1))
    full_tag = f'{name}/{tag}' if name else tag
    tf.summary.image(full_tag, images, step=step, max_outputs=max_outputs)


def fig_summary(tag: str, fig, step: int):
    """Writes a matplotlib figure as a PNG image."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=80)
    image = tf.image.decode_png(buffer.getvalue(), channels=3)
    tf.summary.image(tag, image[tf.newaxis], step=step)


def _figure(n_rows: int, width: float = 8.0, row_height: float = 2.0):
    """A figure with n_rows axes, without pyplot (no global backend state)."""
    fig = matplotlib.figure.Figure(figsize=(width, row_height * n_rows))
    return fig, fig.subplots(n_rows, 1, squeeze=False)


def waveform_summary(audio, audio_gen, step: int, name: str = '',
                     max_outputs: int = 1):
    """Writes plots of target and generated waveforms, overlaid."""
    audio = _batch_audio(audio, 'audio')[:max_outputs]
    audio_gen = _batch_audio(audio_gen, 'audio_gen')[:max_outputs]
    fig, axes = _figure(len(audio))
    for ax, target, generated in zip(axes[:, 0], audio, audio_gen):
        ax.plot(target, lw=0.5, label='target')
        ax.plot(generated, lw=0.5, alpha=0.7, label='synthesis')
        ax.legend(loc='upper right')
    fig_summary(f'{name}/waveform' if name else 'waveform', fig, step)


def f0_summary(f0_hz, f0_hz_predict, step: int, name: str = '',
               tag: str = 'f0_summary', max_outputs: int = 1):
    """Writes plots of target and predicted f0 curves (in MIDI) per example.

    Args:
        f0_hz, f0_hz_predict: `[batch, n_frames]` or `[batch, n_frames, 1]`.
    """
    def midi(f0):
        f0 = np.asarray(f0, np.float32).reshape(np.shape(f0)[0], -1)
        return 69.0 + 12.0 * np.log2(np.maximum(f0, 1e-3) / 440.0)
    target, predict = midi(f0_hz)[:max_outputs], midi(f0_hz_predict)[:max_outputs]
    fig, axes = _figure(len(target))
    for ax, t, p in zip(axes[:, 0], target, predict):
        ax.plot(np.maximum(t, 0), label='target')
        ax.plot(np.maximum(p, 0), label='prediction')
        ax.set_ylabel('MIDI')
        ax.legend(loc='upper right')
    fig_summary(f'{name}/{tag}' if name else tag, fig, step)
