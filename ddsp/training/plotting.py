"""Plots: spectrograms, filter transfer functions, timbre-transfer summaries.

`specplot` and `plot_impulse_responses` draw with pyplot (for notebooks)
unless given an Axes; `plot_transfer_summary` builds a standalone
`matplotlib.figure.Figure` (no pyplot state, no GUI backend needed) and
writes a PNG, so it is safe in CLIs, threads and headless machines. Nothing
here selects a matplotlib backend.
"""
import io
from typing import Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure

from ddsp import core
from ddsp import spectral_ops
from ddsp.training.data_preparation import dataset_metadata as dm

__all__ = [
    'specplot',
    'transfer_function',
    'plot_impulse_responses',
    'first_example',
    'plot_transfer_summary',
    'save_figure',
]


def first_example(audio, name: str = 'audio') -> np.ndarray:
    """[n] float32 from [n], [batch, n] or [batch, n, 1] (first example)."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 3 and audio.shape[-1] == 1:
        audio = audio[..., 0]
    if audio.ndim == 2:
        audio = audio[0]
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(f'{name} must be [n_samples] or [batch, n_samples], '
                         f'got shape {np.shape(audio)}.')
    return audio


def specplot(audio, vmin: float = -5, vmax: float = 1, rotate: bool = True,
             size: int = 768, ax=None, **matshow_kwargs):
    """Draws the log-magnitude spectrogram of audio (first example if
    batched): `spectral_ops.compute_logmag(audio, size)`, magma colours,
    low frequencies at the bottom when rotate.

    Args:
        audio: `[n_samples]` or `[batch, n_samples]`.
        vmin, vmax: Colour limits (natural log of magnitude).
        rotate: Time on x, frequency on y (else the transpose).
        size: STFT frame size (75% overlap).
        ax: Matplotlib Axes to draw on; None: a new pyplot figure.
        **matshow_kwargs: Passed to `Axes.matshow`.

    Returns:
        The AxesImage.
    """
    audio = first_example(audio)
    logmag = np.asarray(spectral_ops.compute_logmag(audio, size=size))
    if rotate:
        logmag = np.rot90(logmag)
    if ax is None:
        import matplotlib.pyplot as plt  # Only here: pyplot picks a backend.

        _, ax = plt.subplots(figsize=(10, 4))
    image = ax.matshow(logmag, vmin=vmin, vmax=vmax, cmap='magma',
                       aspect='auto', **matshow_kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel('Time')
    ax.set_ylabel('Frequency')
    return image


def transfer_function(ir, sample_rate: float = 16000
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Frequency response of impulse response(s).

    Args:
        ir: `[..., ir_size]`.
        sample_rate: Hz.

    Returns:
        frequencies `[n_fft // 2 + 1]` (Hz, 0 to Nyquist) and magnitudes
        `[..., n_fft // 2 + 1]` (|rfft(ir)|), n_fft = next power of 2 >=
        ir_size.
    """
    ir = np.asarray(ir, dtype=np.float64)
    if ir.ndim == 0 or ir.shape[-1] == 0:
        raise ValueError(f'ir must be [..., ir_size], got shape {ir.shape}.')
    n_fft = core.get_fft_size(1, ir.shape[-1])
    frequencies = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    magnitudes = np.abs(np.fft.rfft(ir, n=n_fft, axis=-1))
    return frequencies, magnitudes


def plot_impulse_responses(impulse_response, desired_magnitudes,
                           sample_rate: float = 16000):
    """Plots an impulse response and its transfer function against the
    desired magnitudes (first example of each if batched).

    Args:
        impulse_response: `[ir_size]` or `[batch, ir_size]`.
        desired_magnitudes: `[n_bins]` or `[batch, n_bins]`, linear, bins
            evenly spaced from 0 Hz to Nyquist.
        sample_rate: Hz.

    Returns:
        The pyplot Figure.
    """
    import matplotlib.pyplot as plt  # Only here: pyplot picks a backend.

    impulse_response = first_example(impulse_response, 'impulse_response')
    desired_magnitudes = first_example(desired_magnitudes,
                                        'desired_magnitudes')
    frequencies, magnitudes = transfer_function(impulse_response, sample_rate)
    desired_frequencies = np.linspace(0.0, sample_rate / 2.0,
                                      desired_magnitudes.shape[-1])
    fig, (ax_ir, ax_tf) = plt.subplots(1, 2, figsize=(12, 6))
    ax_ir.plot(impulse_response)
    ax_ir.set_title('Impulse Response')
    ax_tf.semilogy(frequencies, magnitudes, label='Actual')
    ax_tf.semilogy(desired_frequencies, desired_magnitudes, label='Desired')
    ax_tf.set_title('Transfer Function')
    ax_tf.set_xlabel('Frequency (Hz)')
    ax_tf.legend()
    return fig


def save_figure(fig, path: str, dpi: int = 100) -> str:
    """Writes fig as PNG to path (any tf.io.gfile path). Returns path."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=dpi, bbox_inches='tight')
    return dm.write_file(path, buffer.getvalue())


def _frames_1d(x, name: str) -> Optional[np.ndarray]:
    return None if x is None else first_example(x, name)


def _f0_midi(f0_hz: np.ndarray) -> np.ndarray:
    """MIDI pitch, NaN where unvoiced (f0 <= 0) so lines break there."""
    midi = np.asarray(core.hz_to_midi(f0_hz), dtype=np.float32)
    return np.where(f0_hz > 0, midi, np.nan)


def _plot_pair(ax, frame_rate: float, original, adjusted, ylabel: str,
               title: str):
    for values, label, style in ((original, 'Original', '-'),
                                 (adjusted, 'Adjusted', '--')):
        if values is not None:
            ax.plot(np.arange(len(values)) / frame_rate, values, style,
                    label=label)
    ax.set_xlabel('Time (s)')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc='upper right')


def plot_transfer_summary(path: str, audio=None, audio_gen=None,
                          f0_hz=None, loudness_db=None,
                          f0_hz_adjusted=None, loudness_db_adjusted=None,
                          mask_on=None, note_on_ratio=None,
                          threshold: Optional[float] = None,
                          frame_rate: float = 250,
                          titles: Sequence[str] = ('Original',
                                                   'Resynthesis')) -> str:
    """Saves a PNG summary of a timbre transfer.

    Rows (each only if its inputs are given): note detection (note-on ratio,
    threshold, mask), loudness before / after adjustment, f0 in MIDI before /
    after, and the spectrograms of the original and generated audio.

    Args:
        path: Output PNG path (any tf.io.gfile path).
        audio, audio_gen: Audio `[n_samples]` (any rate).
        f0_hz, loudness_db: Original features `[n_frames]`.
        f0_hz_adjusted, loudness_db_adjusted: Adjusted features.
        mask_on, note_on_ratio: From `postprocessing.detect_notes`.
        threshold: Note detection threshold (horizontal line).
        frame_rate: Feature frames per second (time axis in seconds).
        titles: Titles of the two spectrograms.

    Returns:
        path.

    Raises:
        ValueError: If nothing is given to plot.
    """
    note_on_ratio = _frames_1d(note_on_ratio, 'note_on_ratio')
    mask_on = None if mask_on is None else np.asarray(mask_on).reshape(-1)
    loudness = (_frames_1d(loudness_db, 'loudness_db'),
                _frames_1d(loudness_db_adjusted, 'loudness_db_adjusted'))
    f0 = (_frames_1d(f0_hz, 'f0_hz'),
          _frames_1d(f0_hz_adjusted, 'f0_hz_adjusted'))
    spectra = [(a, t) for a, t in zip((audio, audio_gen), titles)
               if a is not None]
    rows = []
    if note_on_ratio is not None or mask_on is not None:
        rows.append('notes')
    if any(x is not None for x in loudness):
        rows.append('loudness')
    if any(x is not None for x in f0):
        rows.append('f0')
    rows += ['spectrum'] * len(spectra)
    if not rows:
        raise ValueError('plot_transfer_summary: nothing to plot.')

    fig = Figure(figsize=(12, 2.6 * len(rows)))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    spectra_iter = iter(spectra)
    for ax, row in zip(axes, rows):
        if row == 'notes':
            if note_on_ratio is not None:
                times = np.arange(len(note_on_ratio)) / frame_rate
                ax.plot(times, note_on_ratio, label='Note-on ratio')
            if mask_on is not None:
                times = np.arange(len(mask_on)) / frame_rate
                ax.fill_between(times, 0, mask_on.astype(float), alpha=0.3,
                                step='mid', label='Note on')
            if threshold is not None:
                ax.axhline(threshold, color='k', linestyle=':',
                           label='Threshold')
            ax.set_title('Note detection')
            ax.set_xlabel('Time (s)')
            ax.legend(loc='upper right')
        elif row == 'loudness':
            _plot_pair(ax, frame_rate, *loudness, 'dB', 'Loudness')
        elif row == 'f0':
            _plot_pair(ax, frame_rate,
                       *(None if x is None else _f0_midi(x) for x in f0),
                       'MIDI', 'Pitch (f0)')
        else:
            audio_i, title = next(spectra_iter)
            specplot(audio_i, ax=ax)
            ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
