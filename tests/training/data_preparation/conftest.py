"""Fixtures for the data preparation tests: generated audio with known f0."""
import os

import numpy as np
import pytest
import soundfile as sf

# Fast CREPE for every pipeline run in these tests (the CLI default stays
# 'full' at the frame rate).
FAST = {'crepe_model_capacity': 'tiny', 'crepe_frame_rate': 50}


def harmonic_tone(f0_hz, secs, sample_rate, amplitude=0.5, n_harmonics=6,
                  channels=1, vibrato_cents=0.0):
    """A harmonic tone (1/k amplitudes) of known f0, [n] or [n, channels]."""
    t = np.arange(int(round(secs * sample_rate))) / sample_rate
    f0 = f0_hz * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    x = sum(np.sin(k * phase) / k for k in range(1, n_harmonics + 1)
            if k * f0_hz < sample_rate / 2)
    x = amplitude * x / np.max(np.abs(x))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)
    x = (x * fade).astype(np.float32)
    if channels > 1:
        x = np.stack([x] * channels, axis=1)
    return x


@pytest.fixture
def write_tone(tmp_path):
    """write_tone(name, f0_hz, secs, sample_rate=16000, **kw) -> path."""

    def write(name, f0_hz, secs, sample_rate=16000, subtype=None,
              directory=None, **kwargs):
        directory = directory or tmp_path / 'audio'
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, name)
        sf.write(path, harmonic_tone(f0_hz, secs, sample_rate, **kwargs),
                 sample_rate, subtype=subtype)
        return path

    return write
