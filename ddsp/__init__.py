"""DDSP: Differentiable Digital Signal Processing on TensorFlow / Keras 3."""
from ddsp.version import __version__  # noqa: F401
