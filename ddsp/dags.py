"""Directed acyclic graphs of modules that read and write a dictionary.

A DAG is a list of nodes `(module, input_keys)` or
`(module, input_keys, output_keys)`. Running it starts from the dictionary of
inputs; each node looks up its inputs by (nested, '/'-delimited) key, and its
result is stored under the module's name, so later nodes can read e.g.
'harmonic/signal'. The last node's result is also available as 'out'.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import gin
import keras
import tensorflow as tf

from ddsp import core

TensorDict = dict[str, Any]
KeyOrModule = str | keras.layers.Layer | tf.Module
Node = tuple  # (module, input_keys) or (module, input_keys, output_keys)
DAG = Sequence[Node]

_KERAS_KWARGS = ('training', 'mask', 'name')
# Keys the DAG itself writes: module names must not shadow them.
_RESERVED_KEYS = ('inputs', 'out')


def filter_by_value(dictionary: dict, condition: Callable[[Any], bool]) -> dict:
    """The items of `dictionary` whose value satisfies `condition`."""
    return {k: v for k, v in dictionary.items() if condition(v)}


def is_module(value: Any) -> bool:
    """True for Keras layers and tf.Modules (anything holding variables)."""
    return isinstance(value, (keras.layers.Layer, tf.Module))


def is_loss(value: Any) -> bool:
    """Losses are duck-typed: they have `get_losses_dict`."""
    return hasattr(value, 'get_losses_dict')


def is_processor(value: Any) -> bool:
    """Processors are duck-typed: they have `get_controls` and `get_signal`."""
    return hasattr(value, 'get_controls') and hasattr(value, 'get_signal')


def split_keras_kwargs(kwargs: dict) -> tuple[dict, dict]:
    """Splits keyword arguments into (Keras call kwargs, the others)."""
    keras_kwargs = {k: v for k, v in kwargs.items() if k in _KERAS_KWARGS}
    other = {k: v for k, v in kwargs.items() if k not in _KERAS_KWARGS}
    return keras_kwargs, other


@gin.register(module='ddsp.dags')
class DAGLayer(keras.layers.Layer):
    """A layer that runs a DAG of modules over a dictionary of tensors.

    Modules are given either inline in the dag, or as keyword arguments and
    referred to by name in the dag: `DAGLayer(dag=[('encoder', ['audio'])],
    encoder=my_encoder)`. Every module becomes an attribute of the layer under
    its name, so its variables are tracked by Keras and by tf.train.Checkpoint
    (modules kept only inside a list would be missed by checkpoints: KERAS3-NOTES
    trap 1).
    """

    def __init__(self, dag: DAG, **kwarg_modules):
        layer_kwargs = {k: kwarg_modules.pop(k) for k in
                        ('name', 'trainable', 'dtype') if k in kwarg_modules}
        super().__init__(**layer_kwargs)
        self.module_names = []
        self.dag_nodes = []  # (module name, input keys, output keys)
        for position, node in enumerate(dag):
            module, input_keys, output_keys = self._parse_node(node, position)
            if isinstance(module, str):
                if module not in kwarg_modules:
                    raise ValueError(
                        f'DAGLayer: dag node {position} names module {module!r}, '
                        f'which is not among the keyword modules '
                        f'{sorted(kwarg_modules)}.')
                name, module = module, kwarg_modules[module]
            else:
                name = module.name
            self._attach(name, module)
            self.dag_nodes.append((name, list(input_keys), list(output_keys)))

    @staticmethod
    def _parse_node(node: Node, position: int):
        if not isinstance(node, (tuple, list)) or len(node) not in (2, 3):
            raise ValueError(
                f'DAGLayer: dag node {position} must be (module, input_keys) or '
                f'(module, input_keys, output_keys), got {node!r}.')
        module, input_keys = node[0], node[1]
        output_keys = node[2] if len(node) == 3 else ()
        if isinstance(input_keys, str):
            input_keys = [input_keys]
        if isinstance(output_keys, str):
            output_keys = [output_keys]
        return module, input_keys, output_keys

    def _attach(self, name: str, module: Any):
        if name in self.module_names:
            raise ValueError(
                f'DAGLayer: two modules are named {name!r}; give each module in '
                f'the dag a unique `name`.')
        if '/' in name or name in _RESERVED_KEYS or hasattr(type(self), name):
            raise ValueError(
                f'DAGLayer: module name {name!r} is not allowed (it contains "/", '
                f'or clashes with {_RESERVED_KEYS} or a Keras layer attribute).')
        setattr(self, name, module)
        self.module_names.append(name)

    def build(self, *args, **kwargs):
        # Sub-modules build themselves on first call; declaring this layer built
        # avoids an extra symbolic trace of the whole DAG by Keras.
        self.built = True

    @property
    def modules(self) -> list:
        """The modules in dag order."""
        return [getattr(self, name) for name, _, _ in self.dag_nodes]

    def run_dag(self, inputs: TensorDict, verbose: bool = False,
                **kwargs) -> TensorDict:
        """Runs the DAG.

        Args:
            inputs: Dictionary of input tensors (may be nested).
            verbose: Log every node's inputs and output shapes (eager only).
            **kwargs: Extra call arguments for every module (e.g. `training`).

        Returns:
            Dictionary with every input (top level and under 'inputs'), every
            module's result under its name, and the last result under 'out'.
        """
        if not isinstance(inputs, dict):
            raise ValueError(
                f'DAGLayer: `inputs` must be a dict of tensors, got '
                f'{type(inputs).__name__}.')
        outputs = {'inputs': dict(inputs), **inputs}
        last = None
        for name, input_keys, output_keys in self.dag_nodes:
            module = getattr(self, name)
            node_inputs = [core.nested_lookup(key, outputs) for key in input_keys]
            if is_processor(module):
                result = module(*node_inputs, return_outputs_dict=True, **kwargs)
            elif is_loss(module):
                result = module.get_losses_dict(*node_inputs, **kwargs)
            else:
                result = module(*node_inputs, **kwargs)
            if not isinstance(result, dict):
                result = core.to_dict(result, output_keys)
            if verbose:
                tf.print('DAG node', name, 'inputs', input_keys, 'outputs',
                         core.map_shape(result) if tf.executing_eagerly()
                         else list(result))
            outputs[name] = result
            last = result
        outputs['out'] = last
        return outputs

    def call(self, inputs: TensorDict, **kwargs) -> TensorDict:
        return self.run_dag(inputs, **kwargs)
