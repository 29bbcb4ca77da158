"""Spectral features, loudness, power and f0 (CREPE), at any sample rate.

Every frame-wise function follows the framing rules of
`ddsp.spectral_ops.spectrograms` ('valid', 'same' and 'center' padding,
exact frame counts for fractional hops such as 44.1 kHz at 250 frames/s).

`compute_f0` counts frames on the same time grid from the input length and
rate (frame_size = 1024 samples at 16 kHz = 64 ms, hop = 1 / frame_rate
seconds), and cuts the 16 kHz frames (after resampling) at those times, so the
count depends only on the input length, sample rate, frame rate and padding.

The code lives in topic modules, re-exported here so that
`ddsp.spectral_ops.X` and the gin names `spectral_ops.X` keep working:

* `spectrograms`: framing (`get_framed_lengths`, `pad`), `stft`, and the
  magnitude, mel, log and MFCC spectrograms, and
  `magnitude_loss_and_gradient` (a spectrogram loss with its gradient).
* `loudness`: RMS energy, power, A-weighted loudness and
  `pad_or_trim_to_expected_length`.
* `f0`: `compute_f0` and `PretrainedCREPE` (CREPE).
"""
from ddsp import core  # noqa: F401
from ddsp import crepe  # noqa: F401
from ddsp.spectral_ops.spectrograms import compute_logmag  # noqa: F401
from ddsp.spectral_ops.spectrograms import compute_logmel  # noqa: F401
from ddsp.spectral_ops.spectrograms import compute_mag  # noqa: F401
from ddsp.spectral_ops.spectrograms import compute_mel  # noqa: F401
from ddsp.spectral_ops.spectrograms import compute_mfcc  # noqa: F401
from ddsp.spectral_ops.spectrograms import get_framed_lengths  # noqa: F401
from ddsp.spectral_ops.spectrograms import magnitude_loss_and_gradient  # noqa: F401,E501
from ddsp.spectral_ops.spectrograms import Hop  # noqa: F401
from ddsp.spectral_ops.spectrograms import pad  # noqa: F401
from ddsp.spectral_ops.spectrograms import PADDING_MODES  # noqa: F401
from ddsp.spectral_ops.spectrograms import stft  # noqa: F401
from ddsp.spectral_ops.spectrograms import stft_np  # noqa: F401
from ddsp.spectral_ops.spectrograms import _audio_np  # noqa: F401
from ddsp.spectral_ops.spectrograms import _audio_tf  # noqa: F401
from ddsp.spectral_ops.spectrograms import _check_length  # noqa: F401
from ddsp.spectral_ops.spectrograms import _check_padding  # noqa: F401
from ddsp.spectral_ops.spectrograms import _fraction  # noqa: F401
from ddsp.spectral_ops.spectrograms import _frame  # noqa: F401
from ddsp.spectral_ops.spectrograms import _frame_np  # noqa: F401
from ddsp.spectral_ops.spectrograms import _frame_starts  # noqa: F401
from ddsp.spectral_ops.spectrograms import _hop  # noqa: F401
from ddsp.spectral_ops.spectrograms import _n_frames  # noqa: F401
from ddsp.spectral_ops.spectrograms import _overlap_to_hop  # noqa: F401
from ddsp.spectral_ops.spectrograms import _positive  # noqa: F401
from ddsp.spectral_ops.spectrograms import _positive_int  # noqa: F401
from ddsp.spectral_ops.spectrograms import _static_length  # noqa: F401
from ddsp.spectral_ops.spectrograms import _stft  # noqa: F401
from ddsp.spectral_ops.spectrograms import _stft_arguments  # noqa: F401
from ddsp.spectral_ops.spectrograms import _stft_magnitude  # noqa: F401
from ddsp.spectral_ops.loudness import compute_loudness  # noqa: F401
from ddsp.spectral_ops.loudness import compute_power  # noqa: F401
from ddsp.spectral_ops.loudness import compute_rms_energy  # noqa: F401
from ddsp.spectral_ops.loudness import DB_RANGE  # noqa: F401
from ddsp.spectral_ops.loudness import pad_or_trim_to_expected_length  # noqa: F401
from ddsp.spectral_ops.loudness import _a_weighting  # noqa: F401
from ddsp.spectral_ops.loudness import _framed  # noqa: F401
from ddsp.spectral_ops.f0 import compute_f0  # noqa: F401
from ddsp.spectral_ops.f0 import CREPE_FRAME_SIZE  # noqa: F401
from ddsp.spectral_ops.f0 import CREPE_SAMPLE_RATE  # noqa: F401
from ddsp.spectral_ops.f0 import F0_RANGE  # noqa: F401
from ddsp.spectral_ops.f0 import PretrainedCREPE  # noqa: F401
from ddsp.spectral_ops.f0 import reset_crepe  # noqa: F401
from ddsp.spectral_ops.f0 import _interpolate_f0  # noqa: F401
from ddsp.spectral_ops.f0 import _PRECISIONS  # noqa: F401
from ddsp.spectral_ops.f0 import _resample_to_crepe_rate  # noqa: F401

__all__ = [
    'CREPE_SAMPLE_RATE',
    'CREPE_FRAME_SIZE',
    'F0_RANGE',
    'DB_RANGE',
    'PADDING_MODES',
    'stft',
    'stft_np',
    'compute_mag',
    'compute_mel',
    'compute_logmag',
    'compute_logmel',
    'compute_mfcc',
    'get_framed_lengths',
    'pad',
    'compute_rms_energy',
    'compute_power',
    'compute_loudness',
    'pad_or_trim_to_expected_length',
    'compute_f0',
    'reset_crepe',
    'PretrainedCREPE',
]
