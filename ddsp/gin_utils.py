"""gin-config helpers for Keras 3 classes.

`gin.configurable` replaces a class's `__init__` with a `(*args, **kwargs)`
wrapper. Keras 3 inspects `__init__`'s signature when a layer is constructed and
fails on that wrapper (KERAS3-NOTES trap 2), so the original signature is put
back after gin has wrapped the class.
"""
from __future__ import annotations

import inspect
from typing import Callable, TypeVar

import gin

T = TypeVar('T', bound=type)


def configurable_layer(cls: T | None = None, *, module: str | None = None,
                       **gin_kwargs) -> T | Callable[[T], T]:
    """Makes a Keras Layer/Model subclass `gin.configurable`.

    Usable as `@configurable_layer(module='ddsp.processors')`. Unlike
    `gin.register`, bindings such as `ProcessorGroup.dag = [...]` also apply
    when the class is constructed directly in Python.

    Args:
        cls: The class to decorate.
        module: The gin module name, e.g. 'ddsp.processors'.
        **gin_kwargs: Passed to `gin.configurable` (e.g. `allowlist`).

    Returns:
        The configurable class (or a decorator when `cls` is None).
    """
    def decorate(klass: T) -> T:
        signature = inspect.signature(klass.__init__)
        klass = gin.configurable(klass, module=module, **gin_kwargs)
        klass.__init__.__signature__ = signature
        return klass

    return decorate(cls) if cls is not None else decorate
