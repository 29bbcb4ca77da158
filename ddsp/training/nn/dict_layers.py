"""Dictionary layers: `DictLayer`, `OutputSplitsLayer` and `split_to_dict`.

A `DictLayer` is a Keras layer whose `call()` argument names are the keys it
reads from input dictionaries, and whose return annotation names the keys of
the dictionary it returns (see `ddsp.training.nn`).

Importing this module also registers `keras.Sequential` and every
`keras.layers.X` in gin (as `tf.keras.layers.X`).
"""
import ast
import inspect

import gin
import keras
import tensorflow as tf

from ddsp import core
from ddsp.training.nn.precision import Dense

tfkl = keras.layers


# Arguments that Keras itself passes to `call()`; never dictionary keys.
_KERAS_CALL_ARGS = ('training', 'mask')
_MODULE = 'ddsp.training.nn'


def gin_register_keras_layers():
    """Makes `keras.Sequential` and every `keras.layers.X` referable in gin.

    Registered as `tf.keras.Sequential` and `tf.keras.layers.X` (the names used
    by magenta/ddsp's gin files), with `gin.register`, which leaves the classes
    unchanged (KERAS3-NOTES trap 2).
    """
    classes = [('tf.keras', 'Sequential', keras.Sequential)]
    for name, value in inspect.getmembers(keras.layers, inspect.isclass):
        if issubclass(value, keras.layers.Layer):
            classes.append(('tf.keras.layers', name, value))
    for module, name, cls in classes:
        try:
            gin.register(name, module=module)(cls)
        except ValueError:  # Already registered (e.g. module reloaded).
            pass


gin_register_keras_layers()


# ------------------ Dictionary layers -----------------------------------------
def _parse_return_annotation(annotation) -> list:
    """Output keys from a return annotation: a key or a list of keys.

    String annotations (`from __future__ import annotations`) are parsed as
    Python literals. Anything else (e.g. `-> tf.Tensor`) gives no keys.
    """
    if annotation is inspect.Signature.empty:
        return []
    if isinstance(annotation, str):
        try:
            annotation = ast.literal_eval(annotation)
        except (ValueError, SyntaxError):
            return [annotation] if annotation.isidentifier() else []
    if isinstance(annotation, str):
        return [annotation]
    if (isinstance(annotation, (list, tuple)) and
            all(isinstance(k, str) for k in annotation)):
        return list(annotation)
    return []


class DictLayer(keras.layers.Layer):
    """A Keras layer that takes tensors or dictionaries and returns a dict.

    Input keys are the names of `call()`'s arguments (arguments with defaults
    are optional keys), or `input_keys` when given. Output keys are the
    return annotation of `call()`, or `output_keys` when given:

    ```
    class MyLayer(DictLayer):
        def call(self, f0_hz, loudness, power=None) -> ['amps', 'frequencies']:
            ...
            return amps, frequencies
    ```

    `MyLayer()` then accepts any of
      - tensors: `layer(f0_hz, loudness)` or `layer(f0_hz, loudness, power)`,
      - keyword arguments: `layer(f0_hz=..., loudness=...)`,
      - dictionaries (merged, extra keys ignored, '/'-nested keys allowed):
        `layer(features)` or `layer({'f0_hz': ...}, {'loudness': ...})`,
      - a mix: leading tensors fill the first inputs, keys fill the rest,
    and returns `{'amps': ..., 'frequencies': ...}` (a dict returned by
    `call()` is returned as is). Optional keys missing from the inputs get the
    argument's default. Keras arguments (`training`, `mask`) pass through.

    With explicit `input_keys`, the i-th key feeds the i-th argument of
    `call()` (keys can rename arguments); `call()`'s defaults are then not
    looked up.

    Raises TypeError when an input is missing, given twice (as a tensor and
    by key) or when there are too many tensors.
    """

    def __init__(self, input_keys=None, output_keys=None, **kwargs):
        """Constructor.

        Args:
            input_keys: Keys to read from input dictionaries, in the order of
                `call()`'s arguments. Inferred from `call()` when not given.
            output_keys: Keys naming the outputs of `call()` (ignored when
                `call()` returns a dict). Inferred from `call()`'s return
                annotation when not given.
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        super().__init__(**kwargs)
        if input_keys:
            self.input_keys = [str(k) for k in core.make_iterable(input_keys)]
            self.default_input_keys = []
            self.default_input_values = []
        else:
            self.input_keys = self.get_argument_names('call')
            self.default_input_keys = self.get_default_argument_names('call')
            self.default_input_values = self.get_default_argument_values(
                'call')
        if output_keys:
            self.output_keys = [str(k) for k in core.make_iterable(output_keys)]
        else:
            self.output_keys = self.get_return_annotations('call')

    # Signature inspection ---------------------------------------------------
    def _key_parameters(self, method: str) -> list:
        """Positional parameters of `method` that can be dictionary keys."""
        params = inspect.signature(getattr(self, method)).parameters.values()
        return [p for p in params
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and
                p.name not in _KERAS_CALL_ARGS]

    def get_argument_names(self, method: str) -> list:
        """Names of the required arguments of `method`."""
        return [p.name for p in self._key_parameters(method)
                if p.default is inspect.Parameter.empty]

    def get_default_argument_names(self, method: str) -> list:
        """Names of the arguments of `method` that have defaults."""
        return [p.name for p in self._key_parameters(method)
                if p.default is not inspect.Parameter.empty]

    def get_default_argument_values(self, method: str) -> list:
        """Default values of the arguments of `method`."""
        return [p.default for p in self._key_parameters(method)
                if p.default is not inspect.Parameter.empty]

    def get_return_annotations(self, method: str) -> list:
        """Output keys from the return annotation of `method`."""
        signature = inspect.signature(getattr(self, method))
        return _parse_return_annotation(signature.return_annotation)

    @property
    def all_input_keys(self) -> list:
        """Required input keys, then optional ones."""
        return list(self.input_keys) + list(self.default_input_keys)

    @property
    def n_inputs(self) -> int:
        """Number of inputs of `call()` (computed: subclasses may add keys)."""
        return len(self.all_input_keys)

    # Calling ----------------------------------------------------------------
    def _gather_inputs(self, inputs, kwargs) -> tuple:
        """Values for each input key, in order, and the remaining kwargs."""
        input_keys = list(self.input_keys)
        all_keys = self.all_input_keys
        defaults = list(self.default_input_values)
        input_dict = {}
        tensors = []
        for value in inputs:
            if isinstance(value, dict):
                input_dict.update(value)
            else:
                tensors.append(value)
        for key in all_keys:
            if key in kwargs:
                input_dict[key] = kwargs.pop(key)

        if len(tensors) > len(all_keys):
            raise TypeError(
                f'{self.name}: got {len(tensors)} input tensors, but the layer '
                f'takes at most {len(all_keys)} inputs {all_keys}.')
        values, missing, duplicate = [], [], []
        for i, key in enumerate(all_keys):
            try:
                value = core.nested_lookup(key, input_dict)
                found = True
            except KeyError:
                found = False
            if i < len(tensors):
                if found:
                    duplicate.append(key)
                values.append(tensors[i])
            elif found:
                values.append(value)
            elif i < len(input_keys):
                missing.append(key)
            else:
                values.append(defaults[i - len(input_keys)])
        if missing or duplicate:
            problems = []
            if missing:
                problems.append(f'missing inputs {missing}')
            if duplicate:
                problems.append(f'inputs {duplicate} given both as tensors '
                                'and by key')
            raise TypeError(
                f'{self.name}: {"; ".join(problems)}. The layer reads the keys '
                f'{input_keys} (optional: {list(self.default_input_keys)}); '
                f'got {len(tensors)} tensor(s) and the keys '
                f'{core.nested_keys(input_dict)}.')
        return values, kwargs

    def __call__(self, *inputs, **kwargs):
        """Reads the inputs from tensors/dicts/kwargs and returns a dict.

        Args:
            *inputs: Tensors (the first inputs of `call()`, in order) and/or
                dictionaries of tensors (merged; the input keys are read).
            **kwargs: Inputs by key, and Keras arguments such as `training`.

        Returns:
            Dictionary of outputs.
        """
        values, kwargs = self._gather_inputs(inputs, kwargs)
        # Keras 3 accepts only tensors (or None) as positional arguments, so
        # inputs are passed by argument name unless call() takes *args.
        params = self._key_parameters('call')
        if len(values) <= len(params):
            call_kwargs = {p.name: v for p, v in zip(params, values)}
            outputs = super().__call__(**call_kwargs, **kwargs)
        else:
            outputs = super().__call__(*values, **kwargs)
        if isinstance(outputs, dict):
            return outputs
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [
            outputs]
        if len(self.output_keys) != len(outputs):
            raise ValueError(
                f'{self.name}: output keys {self.output_keys} do not match the '
                f'{len(outputs)} outputs of call(); give `output_keys` or a '
                "return annotation such as `-> ['a', 'b']`.")
        return dict(zip(self.output_keys, outputs))

    def build(self, input_shape=None):
        """Sub-layers build on their first call.

        (Keras would otherwise trace `call()` symbolically once more before
        the first call just to build them.)
        """
        del input_shape
        self.built = True


class OutputSplitsLayer(DictLayer):
    """A DictLayer whose network output is split into named tensors.

    Subclasses implement `compute_output(*inputs)` returning one tensor; a
    final Dense layer maps it to `sum(sizes)` channels, split into a dict
    according to `output_splits`.
    """

    def __init__(self,
                 input_keys=None,
                 output_splits=(('amps', 1), ('harmonic_distribution', 40)),
                 **kwargs):
        """Constructor.

        Args:
            input_keys: Keys read from input dicts, in the order of
                `compute_output()`'s arguments (inferred from their names
                when not given).
            output_splits: Sequence of (output_key, n_channels).
            **kwargs: Other Keras layer arguments, e.g. `name`.
        """
        self.output_splits = tuple((str(k), int(n)) for k, n in output_splits)
        self.n_out = sum(n for _, n in self.output_splits)
        input_keys = input_keys or self.get_argument_names('compute_output')
        super().__init__(input_keys=input_keys,
                         output_keys=[k for k, _ in self.output_splits],
                         **kwargs)
        self.dense_out = Dense(self.n_out, name='dense_out')

    def call(self, *inputs, **unused_kwargs):
        """compute_output() -> Dense -> split into a dict."""
        output = self.compute_output(*inputs)
        return split_to_dict(self.dense_out(output), self.output_splits)

    def compute_output(self, *inputs):
        """Runs the network on the input tensors; returns one tensor."""
        raise NotImplementedError


# ------------------ Utilities -------------------------------------------------
@gin.register(module=_MODULE)
def split_to_dict(tensor, tensor_splits):
    """Splits the last axis of a tensor into a dict of named tensors.

    Args:
        tensor: Tensor [..., sum(sizes)].
        tensor_splits: Sequence of (key, size).

    Returns:
        Dict {key: tensor [..., size]}.
    """
    keys = [k for k, _ in tensor_splits]
    sizes = [int(n) for _, n in tensor_splits]
    return dict(zip(keys, tf.split(tensor, sizes, axis=-1)))
