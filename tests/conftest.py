"""Test set-up: CPU only, quiet TensorFlow, deterministic seeds."""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '-1')

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import tensorflow as tf
    np.random.seed(0)
    tf.random.set_seed(0)
