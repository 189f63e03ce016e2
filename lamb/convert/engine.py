"""What a model format's converter offers ``convert_model``: the seam between generic conversion
and one engine's converter.

Each model format's record (``lamb.runtime_lib.ModelFormat.converter``) names a module with two
functions, imported only when that format is converted:

- ``export(loaded, inputs)``: a context manager yielding an ``Export``, the model wrapped for the
  converter once (several conversions share it: ``lamb compare``);
- ``convert(export, inputs, mode, representative, allow_flex=..., integer_io=...)``: a ``Converted``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from lamb import manifest as mf
from lamb import runtime_lib
from lamb.convert.load import LoadedModel


@dataclass
class Export:
    """A model loaded once and wrapped for one format's converter once."""

    loaded: LoadedModel
    format: str  # the model format the export converts to
    output_names: list[str]
    handle: Any = None  # the converter's own state (a factory of fresh converters, ...)


@dataclass
class Converted:
    """A converted model in memory, and what the runtime library reports of its signature."""

    data: bytes
    inputs: list[mf.TensorSpec]
    outputs: list[mf.TensorSpec]
    flex_ops: list[str] = field(default_factory=list)  # ops only a full TensorFlow runs
    notes: list[str] = field(default_factory=list)
    origin: dict[str, Any] = field(default_factory=dict)  # converter facts worth keeping (opset, ...)


def for_format(fmt: runtime_lib.ModelFormat) -> ModuleType:
    """The converter module of ``fmt``."""
    return importlib.import_module(fmt.converter)
