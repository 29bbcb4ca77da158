"""DDSP: Differentiable Digital Signal Processing on TensorFlow / Keras 3."""
from ddsp import core  # noqa: F401
from ddsp import dags  # noqa: F401
from ddsp import effects  # noqa: F401
from ddsp import losses  # noqa: F401
from ddsp import processors  # noqa: F401
from ddsp import spectral_ops  # noqa: F401
from ddsp import synths  # noqa: F401
from ddsp.version import __version__  # noqa: F401
