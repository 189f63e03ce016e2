"""lamb: a trained Keras or PyTorch (ONNX) image model in, a verified AWS Lambda artifact out.

The pipeline's steps are functions here, with the command line's defaults (``lamb.api``)::

    import lamb

    result = lamb.convert("model.h5", preprocess="xception", labels_file="labels.txt")
    report = lamb.verify(result, labeled_images="samples/")
    built = lamb.package(result)
    lamb.invoke(built, image="cat.jpg")

``lamb.convert`` is also the package that implements the step (``lamb.convert.core`` ...): each
step's package is callable, and calling it calls ``lamb.api``'s function of the same name. Nothing
heavy is imported until a step runs, so ``import lamb`` stays light (no TensorFlow).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import Any

__version__ = "0.1.0"

# lamb.api.STEPS, repeated here so that `import lamb` does not import lamb.api.
_STEPS = ("convert", "verify", "compare", "package", "invoke", "deploy")


class _Step(types.ModuleType):
    """A step's package that is also its function: ``lamb.package(...)`` is ``lamb.api.package(...)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(*args, **kwargs)

    @property
    def _function(self) -> Any:
        # By name: lamb.api sits above every step's package (it calls them), so none imports it.
        return getattr(importlib.import_module("lamb.api"), self.__name__.rpartition(".")[2])

    @property
    def __signature__(self) -> Any:  # what IPython's `?` and inspect.signature show
        return inspect.signature(self._function)


class _Lamb(types.ModuleType):
    """This package: each step's subpackage becomes callable as the import system attaches it here."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _STEPS and type(value) is types.ModuleType:
            value.__class__ = _Step
            # help(lamb.convert) reads the module's docstring: the function's comes first.
            function = getattr(importlib.import_module("lamb.api"), name)
            value.__doc__ = f"{inspect.cleandoc(function.__doc__ or '')}\n\nThe package {value.__name__}: {value.__doc__ or ''}"
        super().__setattr__(name, value)


def __getattr__(name: str) -> Any:
    if name in _STEPS:  # first use: import the step's package (light: its heavy imports wait for a call)
        return importlib.import_module(f"lamb.{name}")
    raise AttributeError(f"module 'lamb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_STEPS})


sys.modules[__name__].__class__ = _Lamb
