"""Audio in and out of notebooks (Google Colab and Jupyter).

* `play`: an audio player in the cell output (IPython; Colab and Jupyter).
* `record`: the browser's microphone (Colab only).
* `upload`, `download`: files from / to the user's computer (Colab only).
  Outside Colab these raise a RuntimeError saying what to do instead: pass
  an audio file path (`ddsp.training.timbre_transfer.load_input_audio`).
* `audio_bytes_to_np`: decodes audio file bytes (soundfile), mono, resampled.
* Aliases: `specplot`, `plot_impulse_responses`, `transfer_function` (from
  `ddsp.training.plotting`), `get_tuning_factor`, `auto_tune` (from
  `ddsp.training.postprocessing`).
"""
from __future__ import annotations

import base64
import io
import sys
from typing import List, Optional, Tuple

import numpy as np

from ddsp.training import plotting
from ddsp.training import postprocessing

__all__ = [
    'in_colab',
    'audio_widget',
    'play',
    'record',
    'upload',
    'download',
    'audio_bytes_to_np',
    'specplot',
    'plot_impulse_responses',
    'transfer_function',
    'get_tuning_factor',
    'auto_tune',
]

specplot = plotting.specplot
plot_impulse_responses = plotting.plot_impulse_responses
transfer_function = plotting.transfer_function
get_tuning_factor = postprocessing.get_tuning_factor
auto_tune = postprocessing.auto_tune

_USE_A_PATH = ('pass the path of an audio file instead, e.g. '
               'ddsp.training.timbre_transfer.load_input_audio(path, '
               'sample_rate)')


def in_colab() -> bool:
    """True when running in a Google Colab kernel."""
    return 'google.colab' in sys.modules


def _require_colab(what: str, how: str, instead: str = _USE_A_PATH):
    if not in_colab():
        raise RuntimeError(f'{what} needs Google Colab ({how}); outside '
                           f'Colab, {instead}.')


def audio_widget(array, sample_rate: int = 16000, autoplay: bool = False):
    """An `IPython.display.Audio` player (embedded WAV) of audio.

    Args:
        array: `[n_samples]` or `[batch, n_samples]` (first example played).
        sample_rate: Hz.
        autoplay: Start playing when displayed.
    """
    from IPython import display  # Notebook-only dependency.
    return display.Audio(plotting.first_example(array), rate=int(sample_rate),
                         autoplay=autoplay)


def play(array, sample_rate: int = 16000, ephemeral: bool = True,
         autoplay: bool = False) -> None:
    """Shows an audio player for audio in the cell output.

    Args:
        array: `[n_samples]` or `[batch, n_samples]` (first example played),
            float, normalised for playback.
        sample_rate: Hz.
        ephemeral: Kept for magenta/ddsp compatibility; the player is a plain
            HTML5 audio element in Colab and Jupyter alike.
        autoplay: Start playing when displayed.
    """
    del ephemeral
    from IPython import display
    display.display(audio_widget(array, sample_rate, autoplay))


def audio_bytes_to_np(wav_data: bytes, sample_rate: int = 16000,
                      normalize_db: Optional[float] = 0.1,
                      mono: bool = True) -> np.ndarray:
    """Decodes the bytes of an audio file (wav, flac, ogg, mp3, ...).

    Args:
        wav_data: File contents.
        sample_rate: Output rate; other rates are resampled (soxr, HQ).
        normalize_db: Scale so the peak is at -normalize_db dBFS; None: keep
            the level.
        mono: Mix all channels down (else `[n_samples, n_channels]`).

    Returns:
        float32 `[n_samples]` (mono) or `[n_samples, n_channels]`.

    Raises:
        ValueError: If the bytes are not decodable audio or hold no samples.
    """
    import soundfile as sf
    import soxr
    try:
        audio, rate = sf.read(io.BytesIO(wav_data), dtype='float32',
                              always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise ValueError(f'The data is not a readable audio file: {e}') from None
    if audio.size == 0:
        raise ValueError('The audio file holds no samples.')
    if mono:
        audio = audio.mean(axis=1)
    if rate != sample_rate:
        audio = soxr.resample(audio, rate, sample_rate, quality='HQ')
    audio = np.asarray(audio, np.float32)
    peak = float(np.max(np.abs(audio)))
    if normalize_db is not None and peak > 0:
        audio *= 10.0**(-normalize_db / 20.0) / peak
    return audio


# Browser recording: Web Audio samples -> 16-bit WAV -> base64, all in the page.
_RECORD_JS = """
async function recordWav(seconds) {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const context = new AudioContext();
  const source = context.createMediaStreamSource(stream);
  const node = context.createScriptProcessor(4096, 1, 1);
  const blocks = [];
  node.onaudioprocess = (e) => {
    blocks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  };
  source.connect(node);
  node.connect(context.destination);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  node.disconnect();
  source.disconnect();
  stream.getTracks().forEach((track) => track.stop());
  const rate = context.sampleRate;
  await context.close();
  const n = blocks.reduce((total, b) => total + b.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (offset, s) => {
    for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i));
  };
  text(0, 'RIFF'); view.setUint32(4, 36 + 2 * n, true); text(8, 'WAVE');
  text(12, 'fmt '); view.setUint32(16, 16, true); view.setUint16(20, 1, true);
  view.setUint16(22, 1, true); view.setUint32(24, rate, true);
  view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, 'data'); view.setUint32(40, 2 * n, true);
  let offset = 44;
  for (const b of blocks) {
    for (let i = 0; i < b.length; i++, offset += 2) {
      view.setInt16(offset, Math.max(-1, Math.min(1, b[i])) * 32767, true);
    }
  }
  let binary = '';
  const bytes = new Uint8Array(view.buffer);
  for (let i = 0; i < bytes.length; i += 32768) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
  }
  return btoa(binary);
}
"""


def record(seconds: float = 3, sample_rate: int = 16000,
           normalize_db: Optional[float] = 0.1) -> np.ndarray:
    """Records from the browser's microphone (Colab only).

    Args:
        seconds: Recording length.
        sample_rate: Output rate.
        normalize_db: See `audio_bytes_to_np`.

    Returns:
        float32 `[n_samples]` mono audio.

    Raises:
        RuntimeError: Outside Colab (pass an audio file path instead).
    """
    _require_colab('record()', "the browser's microphone")
    if seconds <= 0:
        raise ValueError(f'seconds must be > 0, got {seconds}.')
    from google.colab import output
    print(f'Recording {seconds:g} s: speak or play now ...')
    data = output.eval_js(f'{_RECORD_JS}\nrecordWav({float(seconds)})')
    print('Done.')
    return audio_bytes_to_np(base64.b64decode(data), sample_rate,
                             normalize_db)


def upload(sample_rate: int = 16000, normalize_db: Optional[float] = None
           ) -> Tuple[List[str], List[np.ndarray]]:
    """Lets the user pick audio files in the browser (Colab only).

    Returns:
        (file names, float32 mono `[n_samples]` arrays at sample_rate).

    Raises:
        RuntimeError: Outside Colab (pass an audio file path instead).
        ValueError: If a file is not readable audio (the file is named).
    """
    _require_colab('upload()', "the browser's file picker")
    from google.colab import files
    uploaded = files.upload()
    names, arrays = [], []
    for name, data in uploaded.items():
        try:
            arrays.append(audio_bytes_to_np(data, sample_rate, normalize_db))
        except ValueError as e:
            raise ValueError(f'{name}: {e}') from None
        names.append(name)
    return names, arrays


def download(path: str) -> None:
    """Sends a file to the user's browser (Colab only)."""
    _require_colab('download()', "the browser's downloads",
                   f'the file is already on this computer: {path}')
    from google.colab import files
    files.download(path)
