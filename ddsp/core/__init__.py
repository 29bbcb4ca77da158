"""Differentiable DSP functions: pure TensorFlow, float32 in and out.

The functions live in topic modules; this package re-exports all of them so
that `ddsp.core.harmonic_synthesis` etc. work as in magenta/ddsp.
"""
from ddsp.core.utils import *  # noqa: F401,F403
from ddsp.core.conversions import *  # noqa: F401,F403
from ddsp.core.scaling import *  # noqa: F401,F403
from ddsp.core.resampling import *  # noqa: F401,F403
from ddsp.core.filters import *  # noqa: F401,F403
from ddsp.core.noise import *  # noqa: F401,F403
from ddsp.core.oscillators import angular_cumsum  # noqa: F401
from ddsp.core.oscillators import get_harmonic_frequencies  # noqa: F401
from ddsp.core.oscillators import get_phase_dtype  # noqa: F401
from ddsp.core.oscillators import harmonic_to_sinusoidal  # noqa: F401
from ddsp.core.oscillators import normalize_harmonics  # noqa: F401
from ddsp.core.oscillators import oscillator_bank  # noqa: F401
from ddsp.core.oscillators import phase_precision  # noqa: F401
from ddsp.core.oscillators import remove_above_nyquist  # noqa: F401
from ddsp.core.oscillators import sinusoidal_to_harmonic  # noqa: F401
from ddsp.core.synthesis import harmonic_oscillator_bank  # noqa: F401
from ddsp.core.synthesis import harmonic_synthesis  # noqa: F401
from ddsp.core.synthesis import sinusoidal_synthesis  # noqa: F401
from ddsp.core.synthesis import streaming_harmonic_synthesis  # noqa: F401
from ddsp.core.wavetables import *  # noqa: F401,F403
