"""Tests of ddsp.training.plotting (headless: Agg)."""
import matplotlib

matplotlib.use('Agg')  # Tests only: the module itself never picks a backend.

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ddsp import spectral_ops  # noqa: E402
from ddsp.training import plotting  # noqa: E402
from ddsp.training import postprocessing  # noqa: E402

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _sine(freq=440.0, secs=0.25, sr=16000):
    t = np.arange(int(secs * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _assert_png(path):
    data = open(path, 'rb').read()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_specplot_draws_logmag(tmp_path):
    audio = _sine()
    image = plotting.specplot(np.stack([audio, audio * 0]), size=256)
    expected = np.rot90(np.asarray(spectral_ops.compute_logmag(audio,
                                                               size=256)))
    np.testing.assert_allclose(image.get_array(), expected)  # First example.
    assert image.get_clim() == (-5, 1)
    # The 440 Hz bin (7 of 129 at 16 kHz / 256) is the brightest row; the
    # rotation puts low frequencies at the bottom.
    row = np.argmax(expected.mean(axis=1))
    assert expected.shape[0] - 1 - row == round(440 / (16000 / 256))
    fig = image.figure
    fig.savefig(tmp_path / 'spec.png')
    plt.close(fig)
    _assert_png(tmp_path / 'spec.png')
    # On a given Axes, unrotated.
    fig, ax = plt.subplots()
    image = plotting.specplot(audio, rotate=False, size=256, ax=ax, vmin=-3)
    assert image.axes is ax and image.get_array().shape == expected.T.shape
    plt.close(fig)
    with pytest.raises(ValueError, match='audio'):
        plotting.specplot(np.zeros((1, 2, 3, 4)))


def test_transfer_function():
    ir = np.zeros((2, 100))
    ir[:, 0] = 1.0  # Delta: flat unit response.
    ir[1, 1] = 1.0  # 1 + z^-1: |H| = 2 cos(pi f / sr).
    frequencies, magnitudes = plotting.transfer_function(ir, 16000)
    assert frequencies.shape == (65,) and magnitudes.shape == (2, 65)
    assert frequencies[0] == 0.0 and frequencies[-1] == 8000.0
    np.testing.assert_allclose(magnitudes[0], 1.0)
    np.testing.assert_allclose(magnitudes[1],
                               2 * np.cos(np.pi * frequencies / 16000),
                               atol=1e-12)


def test_plot_impulse_responses(tmp_path):
    ir = np.random.randn(1, 64) * np.hanning(64)
    fig = plotting.plot_impulse_responses(ir, np.ones((1, 33)), 16000)
    assert len(fig.axes) == 2
    path = plotting.save_figure(fig, str(tmp_path / 'a' / 'ir.png'))
    plt.close(fig)
    _assert_png(path)


def test_plot_transfer_summary(tmp_path):
    audio = _sine(secs=1.0)
    n_frames = 251
    f0 = np.full(n_frames, 220.0)
    f0[:20] = 0.0
    loudness = np.linspace(-60, -20, n_frames)
    mask_on, ratio = postprocessing.detect_notes(loudness,
                                                 np.full(n_frames, 0.9))
    path = plotting.plot_transfer_summary(
        str(tmp_path / 'out' / 'summary.png'), audio=audio,
        audio_gen=audio * 0.5, f0_hz=f0, loudness_db=loudness,
        f0_hz_adjusted=f0 * 2, loudness_db_adjusted=loudness + 3,
        mask_on=mask_on, note_on_ratio=ratio, threshold=1.0)
    _assert_png(path)
    # Partial inputs are fine; nothing at all is an error.
    _assert_png(plotting.plot_transfer_summary(
        str(tmp_path / 'f0_only.png'), f0_hz=f0))
    with pytest.raises(ValueError, match='nothing to plot'):
        plotting.plot_transfer_summary(str(tmp_path / 'none.png'))
    assert not plt.get_fignums()  # No pyplot figures left behind.
