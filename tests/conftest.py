"""Test set-up: CPU only, quiet TensorFlow, deterministic seeds."""
import logging
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


# absl's logger level as it is before any test parses absl flags (parsing
# --verbosity, also in module-scoped fixtures, sets it to WARNING).
_ABSL_LOG_LEVEL = logging.getLogger('absl').level


@pytest.fixture(autouse=True)
def _isolate_global_state():
    """Each test starts from the same process-wide state: no gin bindings,
    no open pyplot figures, absl's logger at its initial level."""
    import gin
    logging.getLogger('absl').setLevel(_ABSL_LOG_LEVEL)
    yield
    gin.clear_config()
    logging.getLogger('absl').setLevel(_ABSL_LOG_LEVEL)
    if 'matplotlib.pyplot' in sys.modules:
        import matplotlib.pyplot as plt
        plt.close('all')
