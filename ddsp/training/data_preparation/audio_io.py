"""Audio reading for data preparation: any `tf.io.gfile` path, checked, chunked.

Files are read through `tf.io.gfile` (local paths, gs://, ...) and decoded with
soundfile (libsndfile: wav, flac, ogg/vorbis, mp3, aiff, ...). Reading is
streamed in blocks, so memory stays bounded by the chunk size whatever the
file's length:

* `scan_audio` decodes a file once and checks it (readable, non-empty, finite,
  not silent, long enough); a bad file raises `SkipFile` with a reason code and
  a message naming the file.
* `iter_chunks` decodes it again, mixes to mono, resamples with soxr (HQ) to
  one or more rates in lockstep and yields aligned chunks.
* `load_audio` is the whole-file convenience for everything else (timbre
  transfer, tests).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Iterator, Optional, Sequence

import numpy as np
import soundfile as sf
import soxr

# Reason codes of skipped files (the keys of the run summary).
SKIP_REASONS = {
    'not_found': 'file does not exist',
    'directory': 'is a directory',
    'empty_file': 'empty file (0 bytes)',
    'unreadable': 'not readable as audio (not an audio file, unsupported '
                  'format or corrupt header)',
    'decode_error': 'decoding failed (corrupt audio data)',
    'no_samples': 'contains no audio samples',
    'non_finite': 'contains NaN or Inf samples',
    'silent': 'all silent',
    'too_short': 'shorter than one example',
}

# Peak below which a file counts as silent: -80 dBFS, the loudness floor.
SILENCE_PEAK = 1e-4
_BLOCK_SECS = 10.0
RESAMPLE_QUALITY = 'HQ'


class SkipFile(Exception):
    """A file that data preparation skips: `code` is a key of SKIP_REASONS."""

    def __init__(self, code: str, path: str, detail: str = ''):
        self.code = code
        self.path = path
        self.detail = detail
        msg = f'{path}: {SKIP_REASONS[code]}'
        super().__init__(msg + (f' ({detail})' if detail else ''))


@dataclasses.dataclass
class AudioInfo:
    """What `scan_audio` found out about a readable file."""
    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str
    peak: float

    @property
    def duration_secs(self) -> float:
        return self.frames / self.sample_rate


class _GFileReader:
    """Seekable binary reader over `tf.io.gfile.GFile` for soundfile.

    soundfile's virtual I/O may seek past the end of the file (GFile raises
    there) and calls `read`/`seek`/`tell` from a C callback, where an exception
    would only be printed; this adapter keeps its own position and returns b''
    past the end instead.
    """

    def __init__(self, path: str):
        import tensorflow as tf  # Heavy import, only where files are read.
        self._size = tf.io.gfile.stat(path).length
        self._file = tf.io.gfile.GFile(path, 'rb')
        self._pos = 0

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos,
                os.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        if self._pos <= self._size:
            self._file.seek(self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if self._pos >= self._size:
            return b''
        data = self._file.read(size if size is not None and size >= 0 else -1)
        self._pos += len(data)
        return data

    def close(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open(path: str):
    """Opens `path` for soundfile; raises SkipFile for missing/empty files."""
    import tensorflow as tf
    if not tf.io.gfile.exists(path):
        raise SkipFile('not_found', path)
    if tf.io.gfile.isdir(path):
        raise SkipFile('directory', path)
    if tf.io.gfile.stat(path).length == 0:
        raise SkipFile('empty_file', path)
    return _GFileReader(path)


def _soundfile(reader: _GFileReader, path: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(reader)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        detail = str(e).split(': ', 1)[-1]
        raise SkipFile('unreadable', path, detail) from None


def _blocks(snd: sf.SoundFile, path: str) -> Iterator[np.ndarray]:
    """Yields [n, channels] float32 blocks; decode errors become SkipFile."""
    blocksize = max(1, int(_BLOCK_SECS * snd.samplerate))
    while True:
        try:
            block = snd.read(blocksize, dtype='float32', always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise SkipFile('decode_error', path, str(e)) from None
        if not len(block):
            return
        yield block


def scan_audio(path: str, min_secs: float = 0.0,
               silence_peak: float = SILENCE_PEAK) -> AudioInfo:
    """Decodes `path` once and checks it; raises SkipFile if it is unusable.

    Args:
      path: any `tf.io.gfile` path.
      min_secs: files shorter than this are skipped ('too_short').
      silence_peak: files whose mono mix never exceeds this absolute value are
        skipped ('silent').

    Returns:
      AudioInfo with the exact number of frames (counted, not taken from the
      header, which is unreliable for mp3/ogg).
    """
    with _open(path) as reader:
        snd = _soundfile(reader, path)
        with snd:
            frames, peak = 0, 0.0
            for block in _blocks(snd, path):
                if not np.all(np.isfinite(block)):
                    bad = frames + int(np.argmax(~np.all(np.isfinite(block),
                                                         axis=1)))
                    raise SkipFile('non_finite', path,
                                   f'first at {bad / snd.samplerate:.3f} s')
                frames += len(block)
                peak = max(peak, float(np.max(np.abs(block.mean(axis=1)))))
            info = AudioInfo(path=path, sample_rate=snd.samplerate,
                             channels=snd.channels, frames=frames,
                             format=snd.format, subtype=snd.subtype, peak=peak)
    if frames == 0:
        raise SkipFile('no_samples', path)
    if peak <= silence_peak:
        raise SkipFile('silent', path, f'peak {peak:.2g}')
    if info.duration_secs < min_secs:
        raise SkipFile('too_short', path,
                       f'{info.duration_secs:.3f} s < {min_secs:g} s')
    return info


class _Resampler:
    """Streaming mono resampler to a fixed total length round(n * out / in)."""

    def __init__(self, in_rate: int, out_rate: int, n_in: int):
        self.total = int(round(n_in * out_rate / in_rate))
        self._stream = (None if in_rate == out_rate else soxr.ResampleStream(
            in_rate, out_rate, 1, dtype='float32', quality=RESAMPLE_QUALITY))

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x, last=last)


def iter_chunks(path: str,
                rates: Sequence[int],
                chunk_secs: Optional[float] = None,
                min_last_secs: float = 0.0,
                info: Optional[AudioInfo] = None
                ) -> Iterator[Dict[int, np.ndarray]]:
    """Yields the mono audio of `path` as aligned chunks at every rate.

    Each chunk is `{rate: float32 [n]}`; every chunk but the last holds exactly
    `chunk_secs * rate` samples at each rate. A last chunk shorter than
    `min_last_secs` is appended to the one before it (no zero padding). The
    total length at each rate is `round(frames * rate / file_rate)`.

    Args:
      path: any `tf.io.gfile` path; use `scan_audio` first to check it.
      rates: output sample rates.
      chunk_secs: chunk length in seconds; None or 0: one chunk (whole file).
      min_last_secs: see above.
      info: the file's AudioInfo (scanned again if not given).
    """
    info = info or scan_audio(path)
    rates = list(dict.fromkeys(int(r) for r in rates))
    resamplers = {r: _Resampler(info.sample_rate, r, info.frames)
                  for r in rates}
    totals = {r: resamplers[r].total for r in rates}
    sizes = ({r: int(round(chunk_secs * r)) for r in rates} if chunk_secs
             else totals)
    buffers = {r: [] for r in rates}
    buffered = {r: 0 for r in rates}
    emitted = {r: 0 for r in rates}

    def take(r, n):
        data = (np.concatenate(buffers[r]) if buffers[r]
                else np.zeros(0, np.float32))
        buffers[r] = [data[n:]] if len(data) > n else []
        buffered[r] = len(data) - len(data[:n])
        emitted[r] += len(data[:n])
        return data[:n]

    pending = None
    with _open(path) as reader, _soundfile(reader, path) as snd:
        for block in _blocks(snd, path):
            mono = block.mean(axis=1, dtype=np.float32)
            for r in rates:
                buffers[r].append(np.asarray(resamplers[r](mono), np.float32))
                buffered[r] += len(buffers[r][-1])
            while all(buffered[r] >= sizes[r] for r in rates):
                chunk = {r: take(r, sizes[r]) for r in rates}
                if pending is not None:
                    yield pending
                pending = chunk
    # Flush the resamplers; the remainder is padded/trimmed so that the total
    # length at each rate is exact.
    rest = {}
    for r in rates:
        buffers[r].append(np.asarray(
            resamplers[r](np.zeros(0, np.float32), last=True), np.float32))
        buffered[r] += len(buffers[r][-1])
        n_left = max(0, totals[r] - emitted[r])
        data = take(r, buffered[r])[:n_left]
        rest[r] = np.pad(data, (0, n_left - len(data)))
    if all(len(rest[r]) for r in rates):
        if pending is not None and len(rest[rates[0]]) < (
                min_last_secs * rates[0]):
            pending = {r: np.concatenate([pending[r], rest[r]])
                       for r in rates}
        else:
            if pending is not None:
                yield pending
            pending = rest
    elif pending is not None and any(len(rest[r]) for r in rates):
        # Rounding left a sample at some rates only: keep the rates aligned.
        pending = {r: np.concatenate([pending[r], rest[r]]) for r in rates}
    if pending is not None:
        yield pending


def load_audio(path: str, sample_rate: int = 16000) -> np.ndarray:
    """Reads a whole file as mono float32 at `sample_rate` (soxr HQ).

    Raises SkipFile (with its reason) for files that are missing, empty,
    unreadable or contain NaN/Inf; silence is returned as it is.
    """
    info = scan_audio(path, silence_peak=-1.0)
    return next(iter_chunks(path, [sample_rate], None, info=info))[
        sample_rate]
