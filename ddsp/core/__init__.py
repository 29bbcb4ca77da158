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
from ddsp.core.synthesis import *  # noqa: F401,F403
from ddsp.core.wavetables import *  # noqa: F401,F403
