"""Network building blocks: dictionary layers, FC/RNN/conv stacks, ResNet.

The core API is `DictLayer`: a Keras layer whose `call()` argument names are
the keys it reads from input dictionaries, and whose return annotation
(`-> ['amps', 'harmonic_distribution']`) names the keys of the dictionary it
returns. Networks, encoders, decoders and preprocessors are all DictLayers, so
a model can pass one feature dictionary from stage to stage.

Every sub-layer is held in its own attribute (never only in a list), so that
`tf.train.Checkpoint` saves and restores all weights (KERAS3-NOTES trap 1).

GRUs run through `fused_gru` on machines without a GPU: the same weights and
maths as `keras.layers.GRU` (reset_after=True), but the input projection is
one matrix multiplication over all time steps, and the hand-written backward
pass computes the weight gradients with one matrix multiplication each instead
of one per time step. With a GPU, `keras.layers.GRU` (cuDNN) is used.

The code lives in topic modules, re-exported here so that
`ddsp.training.nn.X` and the gin names `nn.X` keep working:

* `dict_layers`: `DictLayer`, `OutputSplitsLayer`, `split_to_dict`, and the gin
  registration of the Keras layers.
* `precision`: `matmul_precision` (in training, bfloat16 matrix products on
  CPUs with AMX, float32 elsewhere), `matmul_precision_scope`, `matmul`,
  `Dense`.
* `dense`: `Fc`/`FcStack`/`FcStackOut` (`fused_fc` in training),
  normalization, polyphase resampling, shapes, `Identity`, and the container
  bases.
* `recurrent`: `fused_gru`, `Rnn`, `StatelessRnn`, `RnnFc`, `RnnSandwich`.
* `convolutional`: `ResNet` and its parts, `DilatedConvStack`.
"""
from ddsp import core  # noqa: F401
from ddsp.training.nn.dict_layers import _KERAS_CALL_ARGS  # noqa: F401
from ddsp.training.nn.dict_layers import _MODULE  # noqa: F401
from ddsp.training.nn.dict_layers import DictLayer  # noqa: F401
from ddsp.training.nn.dict_layers import OutputSplitsLayer  # noqa: F401
from ddsp.training.nn.dict_layers import _parse_return_annotation  # noqa: F401
from ddsp.training.nn.dict_layers import gin_register_keras_layers  # noqa: F401
from ddsp.training.nn.dict_layers import split_to_dict  # noqa: F401
from ddsp.training.nn.dict_layers import tfkl  # noqa: F401
from ddsp.training.nn.precision import MATMUL_PRECISIONS  # noqa: F401
from ddsp.training.nn.precision import Dense  # noqa: F401
from ddsp.training.nn.precision import matmul  # noqa: F401
from ddsp.training.nn.precision import matmul_precision  # noqa: F401
from ddsp.training.nn.precision import matmul_precision_scope  # noqa: F401
from ddsp.training.nn.dense import ConditionalNorm  # noqa: F401
from ddsp.training.nn.dense import ConditionalScaleAndShift  # noqa: F401
from ddsp.training.nn.dense import Fc  # noqa: F401
from ddsp.training.nn.dense import FcStack  # noqa: F401
from ddsp.training.nn.dense import FcStackOut  # noqa: F401
from ddsp.training.nn.dense import Identity  # noqa: F401
from ddsp.training.nn.dense import Normalize  # noqa: F401
from ddsp.training.nn.dense import PolyphaseResample  # noqa: F401
from ddsp.training.nn.dense import _Container  # noqa: F401
from ddsp.training.nn.dense import _LayerSequence  # noqa: F401
from ddsp.training.nn.dense import ensure_4d  # noqa: F401
from ddsp.training.nn.dense import fused_fc  # noqa: F401
from ddsp.training.nn.dense import get_nonlinearity  # noqa: F401
from ddsp.training.nn.dense import get_norm  # noqa: F401
from ddsp.training.nn.dense import inv_ensure_4d  # noqa: F401
from ddsp.training.nn.dense import normalize_op  # noqa: F401
from ddsp.training.nn.dense import polyphase_resample  # noqa: F401
from ddsp.training.nn.recurrent import Rnn  # noqa: F401
from ddsp.training.nn.recurrent import RnnFc  # noqa: F401
from ddsp.training.nn.recurrent import RnnSandwich  # noqa: F401
from ddsp.training.nn.recurrent import StatelessRnn  # noqa: F401
from ddsp.training.nn.recurrent import _RnnBase  # noqa: F401
from ddsp.training.nn.recurrent import _gpu_available  # noqa: F401
from ddsp.training.nn.recurrent import _gru_recurrence  # noqa: F401
from ddsp.training.nn.recurrent import _gru_recurrence_graph  # noqa: F401
from ddsp.training.nn.recurrent import fused_gru  # noqa: F401
from ddsp.training.nn.convolutional import DilatedConvStack  # noqa: F401
from ddsp.training.nn.convolutional import NormReluConv  # noqa: F401
from ddsp.training.nn.convolutional import ResidualLayer  # noqa: F401
from ddsp.training.nn.convolutional import ResidualStack  # noqa: F401
from ddsp.training.nn.convolutional import ResNet  # noqa: F401
