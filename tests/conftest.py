"""Test set-up: CPU only, quiet TensorFlow, deterministic seeds."""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '-1')

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import tensorflow as tf
    np.random.seed(0)
    tf.random.set_seed(0)


@pytest.fixture(autouse=True)
def _isolate_global_state():
    """Each test starts from the same process-wide state: no gin bindings,
    no open pyplot figures, absl's logger at its level (parsing absl flags
    resets it)."""
    import logging
    import gin
    level = logging.getLogger('absl').level
    yield
    gin.clear_config()
    logging.getLogger('absl').setLevel(level)
    if 'matplotlib.pyplot' in sys.modules:
        import matplotlib.pyplot as plt
        plt.close('all')
