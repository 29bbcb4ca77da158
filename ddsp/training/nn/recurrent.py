"""Recurrent layers: `Rnn`, `StatelessRnn`, `RnnFc`, `RnnSandwich`.

GRUs run through `fused_gru` on machines without a GPU: the same weights and
maths as `keras.layers.GRU` (reset_after=True), but the input projection is
one matrix multiplication over all time steps, and the hand-written backward
pass computes the weight gradients with one matrix multiplication each instead
of one per time step. In training, the recurrence loops run as XLA clusters
and the weight products in `matmul_precision()`. With a GPU,
`keras.layers.GRU` (cuDNN) is used.
"""
import gin
import keras
import tensorflow as tf

from ddsp.training.nn.dense import Fc
from ddsp.training.nn.dense import FcStack
from ddsp.training.nn.dense import _LayerSequence
from ddsp.training.nn.precision import matmul
from ddsp.training.nn.precision import resolve_precision

tfkl = keras.layers

# Gin module of the registered layers: they stay `ddsp.training.nn.X`.
_MODULE = 'ddsp.training.nn'


# ------------------ Recurrent layers ------------------------------------------
def _gru_forward_loop(xw, rk, rb, h0, units: int):
    """Forward GRU steps; returns the last state and, for the backward pass,
    hs, zs, rs, ns, hw_ns, each [time, batch, units]."""
    n_steps = xw.shape[0] if xw.shape[0] is not None else tf.shape(xw)[0]

    def array():
        return tf.TensorArray(xw.dtype, size=n_steps)

    xs = array().unstack(xw)

    def step(t, h, hs, zs, rs, ns, hns):
        x_zr, x_n = tf.split(xs.read(t), [2 * units, units], axis=-1)
        hw = tf.matmul(h, rk) + rb
        hw_zr, hw_n = tf.split(hw, [2 * units, units], axis=-1)
        z, r = tf.split(tf.sigmoid(x_zr + hw_zr), 2, axis=-1)
        n = tf.tanh(x_n + r * hw_n)
        h = n + z * (h - n)
        return (t + 1, h, hs.write(t, h), zs.write(t, z), rs.write(t, r),
                ns.write(t, n), hns.write(t, hw_n))

    loop = tf.while_loop(
        lambda t, *_: t < n_steps, step,
        (tf.constant(0), h0, array(), array(), array(), array(), array()))
    return (loop[1],) + tuple(ta.stack() for ta in loop[2:])


def _gru_backward_loop(d_hs, d_h, h_prev, zs, rs, ns, hns, rk, units: int):
    """Backward GRU steps; returns (d_h0, d_gates [time, batch, 3 * units])
    where d_gates holds the gradients of the z, r and n pre-activations."""
    n_steps = zs.shape[0] if zs.shape[0] is not None else tf.shape(zs)[0]
    rk_t = tf.transpose(rk)

    def array():
        return tf.TensorArray(zs.dtype, size=n_steps)

    arrays = [array().unstack(x) for x in (d_hs, h_prev, zs, rs, ns, hns)]

    def back_step(t, d_h, d_gates):
        d_h_t, h_prev_t, z, r, n, hw_n = [a.read(t) for a in arrays]
        d_h = d_h + d_h_t
        d_an = d_h * (1.0 - z) * (1.0 - n * n)
        d_az = d_h * (h_prev_t - n) * z * (1.0 - z)
        d_ar = d_an * hw_n * r * (1.0 - r)
        d_hw = tf.concat([d_az, d_ar, d_an * r], axis=-1)
        d_h = d_h * z + tf.matmul(d_hw, rk_t)
        return t - 1, d_h, d_gates.write(
            t, tf.concat([d_az, d_ar, d_an], axis=-1))

    _, d_h0, d_gates = tf.while_loop(
        lambda t, *_: t >= 0, back_step, (n_steps - 1, d_h, array()))
    return d_h0, d_gates.stack()


# The loops as XLA clusters: XLA runs the small per-step matrix products and
# gates about twice as fast as TensorFlow's op-by-op executor.
_gru_forward_loop_xla = tf.function(_gru_forward_loop, jit_compile=True,
                                    autograph=False)
_gru_backward_loop_xla = tf.function(_gru_backward_loop, jit_compile=True,
                                     autograph=False)


def _gru_recurrence(xw, recurrent_kernel, recurrent_bias, h0, units: int,
                    jit: bool = False, precision: str = 'float32'):
    """GRU recurrence over a precomputed input projection (time-major).

    The loops do only what is sequential (the recurrent matmul and the gates,
    in float32); the weight gradients are single matrix multiplications over
    all time steps after the backward loop.

    Args:
        xw: x @ kernel + input_bias, [time, batch, 3 * units] (z, r, h gates).
        recurrent_kernel: [units, 3 * units].
        recurrent_bias: [3 * units].
        h0: Initial state [batch, units].
        units: Units (a Python int, static even when shapes are relaxed).
        jit: Run the loops as XLA clusters (needs a static number of steps).
        precision: Precision of the recurrent kernel's gradient product.

    Returns:
        (states [time, batch, units], final state [batch, units]).
    """
    jit = jit and xw.shape[0] is not None
    forward_loop = _gru_forward_loop_xla if jit else _gru_forward_loop
    backward_loop = _gru_backward_loop_xla if jit else _gru_backward_loop

    @tf.custom_gradient
    def recurrence(xw, rk, rb, h0):
        h_last, hs, zs, rs, ns, hns = forward_loop(xw, rk, rb, h0,
                                                   units=units)

        def grad(d_hs, d_h_last):
            d_hs = tf.zeros_like(hs) if d_hs is None else d_hs
            d_h = tf.zeros_like(h0) if d_h_last is None else d_h_last
            h_prev = tf.concat([h0[tf.newaxis], hs[:-1]], axis=0)
            d_h0, d_xw = backward_loop(d_hs, d_h, h_prev, zs, rs, ns, hns, rk,
                                       units=units)
            # Weight gradients: one matmul / reduction over all time steps.
            d_zr, d_an = tf.split(d_xw, [2 * units, units], axis=-1)
            d_hw = tf.reshape(tf.concat([d_zr, d_an * rs], axis=-1),
                              [-1, 3 * units])
            d_rk = matmul(tf.transpose(tf.reshape(h_prev, [-1, units])), d_hw,
                          precision)
            d_rb = tf.reduce_sum(d_hw, axis=0)
            return d_xw, d_rk, d_rb, d_h0

        return (hs, h_last), grad

    return recurrence(xw, recurrent_kernel, recurrent_bias, h0)


_gru_recurrence_graph = tf.function(_gru_recurrence, autograph=False,
                                    reduce_retracing=True)


def fused_gru(inputs, kernel, recurrent_kernel, bias, initial_state=None,
              precision=None, jit: bool = False):
    """Runs a GRU with the weights of `keras.layers.GRU(reset_after=True)`.

    Same maths (tanh, sigmoid, gates z, r, h; reset applied after the
    recurrent matmul) and weight layout as Keras, computed faster on CPU: the
    input projection is one matmul over all time steps, and the custom
    backward pass loops only over what is sequential.

    Args:
        inputs: [batch, time, ch].
        kernel: [ch, 3 * units].
        recurrent_kernel: [units, 3 * units].
        bias: [2, 3 * units] (input bias, recurrent bias).
        initial_state: [batch, units] or None (zeros).
        precision: Precision of the input projection and of the weight
            gradients (None: `matmul_precision()`); the recurrence itself
            runs in float32.
        jit: Run the recurrence loops as XLA clusters (in training; the
            graph then needs XLA, which exported models should not).

    Returns:
        (outputs [batch, time, units], final state [batch, units]).
    """
    dtype = inputs.dtype
    # The input projection runs in `precision` (or bfloat16 under a
    # mixed-precision policy); the recurrence always in float32, since
    # rounding errors would accumulate over time steps.
    precision = resolve_precision(precision)
    xw = matmul(tf.transpose(inputs, [1, 0, 2]), kernel, precision)
    xw = tf.cast(xw, tf.float32) + tf.cast(bias[0], tf.float32)
    recurrent_kernel = tf.cast(recurrent_kernel, tf.float32)
    units = recurrent_kernel.shape[0]
    if initial_state is None:
        initial_state = tf.zeros([tf.shape(inputs)[0], units], tf.float32)
    else:
        initial_state = tf.cast(initial_state, tf.float32)
    # Eagerly, tf.while_loop would run step by step in Python: use a graph.
    recurrence = (_gru_recurrence_graph if tf.executing_eagerly() else
                  _gru_recurrence)
    hs, h_last = recurrence(xw, recurrent_kernel,
                            tf.cast(bias[1], tf.float32), initial_state,
                            units=int(units), jit=jit, precision=precision)
    return tf.cast(tf.transpose(hs, [1, 0, 2]), dtype), h_last


def _gpu_available() -> bool:
    return bool(tf.config.list_logical_devices('GPU'))


class _RnnBase(tfkl.Layer):
    """Holds a Keras GRU/LSTM; GRUs run with `fused_gru` unless on a GPU."""

    def __init__(self, dims, rnn_type, return_sequences=True,
                 return_state=False, fused=None, **kwargs):
        super().__init__(**kwargs)
        rnn_classes = {'gru': tfkl.GRU, 'lstm': tfkl.LSTM}
        if rnn_type not in rnn_classes:
            raise ValueError(
                f"rnn_type must be 'gru' or 'lstm', got {rnn_type!r}.")
        self.dims = dims
        self.rnn_type = rnn_type
        self.return_sequences = return_sequences
        self.fused = fused
        self.rnn = rnn_classes[rnn_type](dims, return_sequences=True,
                                         return_state=return_state,
                                         name=rnn_type)

    def build(self, input_shape):
        self.rnn.build(input_shape)

    def _use_fused(self) -> bool:
        if self.rnn_type != 'gru' or not isinstance(self.rnn, tfkl.GRU):
            return False
        return (not _gpu_available()) if self.fused is None else self.fused

    def _run_fused(self, x, initial_state=None, training=None):
        cell = self.rnn.cell
        return fused_gru(x, cell.kernel, cell.recurrent_kernel, cell.bias,
                         initial_state,
                         precision=resolve_precision(training=training),
                         jit=bool(training))


@gin.register(module=_MODULE)
class Rnn(_RnnBase):
    """One GRU or LSTM layer (optionally bidirectional) over [b, t, ch].

    Args:
        dims: Units.
        rnn_type: 'gru' or 'lstm'.
        return_sequences: Return all time steps (else the last one).
        bidir: Bidirectional (concatenated) RNN.
        fused: GRU only: use `fused_gru` (True), `keras.layers.GRU` (False),
            or decide automatically (None: fused unless a GPU is available,
            where Keras uses cuDNN). Both use the same weights.
    """

    def __init__(self, dims, rnn_type, return_sequences=True, bidir=False,
                 fused=None, **kwargs):
        super().__init__(dims, rnn_type, return_sequences, fused=fused,
                         **kwargs)
        self.bidir = bidir
        if bidir:
            self.rnn = tfkl.Bidirectional(self.rnn, name='bidirectional')

    def call(self, x, training=None):
        if self._use_fused():
            y, _ = self._run_fused(x, training=training)
        else:
            y = self.rnn(x)
        return y if self.return_sequences else y[:, -1]


@gin.register(module=_MODULE)
class StatelessRnn(_RnnBase):
    """Unidirectional GRU/LSTM with the state carried explicitly (streaming).

    `call(x, state) -> (y, new_state)`; `x` [batch, time, ch], `y`
    [batch, time, dims]. The state is [batch, dims] for a GRU and
    [batch, 2 * dims] (h and c concatenated) for an LSTM.
    """

    def __init__(self, dims, rnn_type, fused=None, **kwargs):
        super().__init__(dims, rnn_type, return_sequences=True,
                         return_state=True, fused=fused, **kwargs)

    @property
    def state_size(self) -> int:
        return self.dims * (2 if self.rnn_type == 'lstm' else 1)

    def call(self, x, state, training=None):
        if self._use_fused():
            return self._run_fused(x, state, training=training)
        if self.rnn_type == 'lstm':
            h, c = tf.split(state, 2, axis=-1)
            y, h, c = self.rnn(x, initial_state=[h, c])
            return y, tf.concat([h, c], axis=-1)
        y, new_state = self.rnn(x, initial_state=state)
        return y, new_state


@gin.register(module=_MODULE)
class RnnFc(_LayerSequence):
    """`n_rnn` RNN layers -> Fc (Dense -> LayerNorm -> nonlinearity)."""

    def __init__(self, rnn_feat, out_feat, rnn_type='lstm',
                 nonlinearity='sigmoid', bidir=False, n_rnn=1, **kwargs):
        layers = [Rnn(rnn_feat, rnn_type, bidir=bidir) for _ in range(n_rnn)]
        layers.append(Fc(out_feat, nonlinearity=nonlinearity))
        super().__init__(layers, **kwargs)


@gin.register(module=_MODULE)
class RnnSandwich(_LayerSequence):
    """FcStack -> RNN -> FcStack."""

    def __init__(self, fc_stack_ch=256, fc_stack_layers=2, rnn_ch=512,
                 rnn_type='gru', **kwargs):
        super().__init__([
            FcStack(fc_stack_ch, fc_stack_layers),
            Rnn(rnn_ch, rnn_type),
            FcStack(fc_stack_ch, fc_stack_layers),
        ], **kwargs)
