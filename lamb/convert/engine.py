"""What a model format's converter offers ``convert_model``: the seam between generic conversion
and one engine's converter.

Each model format's record (``lamb.runtime_lib.ModelFormat.converter``) names a module that is a
``Converter``, imported only when that format is converted:

- ``export(loaded, inputs)``: a context manager yielding an ``Export``, the model wrapped for the
  converter once (several conversions share it: ``lamb compare``); a source already in the format
  (``Loaded.as_format``: an ONNX model for ONNX Runtime) is not exported, ``export`` below wraps it;
- ``convert(export, inputs, mode, representative, allow_flex=..., integer_io=...)``: a ``Converted``;
- ``ship(model, external, dest)``: the verified model written into the artifact, as its library
  loads it fastest (``lamb package``, and ``lamb compare``'s timing of what would ship).
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from lamb import manifest as mf
from lamb import runtime_lib
from lamb.quantization import Mode
from lamb.source import AsGiven, InputSpec, Loaded


@dataclass
class Export:
    """A model loaded once and wrapped for one format's converter once."""

    loaded: Loaded
    format: str  # the model format the export converts to
    output_names: list[str]
    handle: Any = None  # the converter's own state (a factory of fresh converters, the model's bytes, ...)
    as_given: AsGiven | None = None  # the source already in this format, taken as it is
    layout: str = "NHWC"  # the model's image input layout (an ONNX model from PyTorch: NCHW)


@dataclass
class Converted:
    """A converted model in memory, and what the runtime library reports of its signature."""

    data: bytes
    inputs: list[mf.TensorSpec]
    outputs: list[mf.TensorSpec]
    flex_ops: list[str] = field(default_factory=list)  # ops only a full TensorFlow runs
    notes: list[str] = field(default_factory=list)
    origin: dict[str, Any] = field(default_factory=dict)  # converter facts worth keeping (opset, ...)
    external: list[Path] = field(default_factory=list)  # files the model reads its weights from, to ship beside it


class Converter(Protocol):
    """A format's converter (a module: ``lamb.convert.tflite``, ``lamb.convert.onnx``)."""

    def export(self, loaded: Loaded, inputs: list[InputSpec]) -> contextlib.AbstractContextManager[Export]:
        """The model wrapped for this converter once; several conversions share it."""
        ...

    def convert(
        self, exported: Export, inputs: list[InputSpec], mode: Mode, representative: Any, *, allow_flex: bool, integer_io: bool,
    ) -> Converted:
        """The model in quantization ``mode`` (one of the format's rows, with its engine's ``settings``)."""
        ...

    def quantization_of(self, path: Path) -> str | None:
        """The mode a file of this format was converted in, where the file says more than its
        tensor types do; None: its tensor types tell (``lamb.quantization.infer``)."""
        ...

    def ship(self, model: Path, external: list[Path], dest: Path) -> list[Path]:
        """The verified ``model`` (and the ``external`` data it reads) written to ``dest``, its
        name in the artifact, as the function loads it fastest; the files written beside it. The
        same tensors: a layout the library reads faster, never another model."""
        ...


def for_format(fmt: runtime_lib.ModelFormat) -> Converter:
    """The converter module of ``fmt`` (tests/test_convert.py holds each to the protocol)."""
    return cast(Converter, importlib.import_module(fmt.converter))


def export(loaded: Loaded, fmt: runtime_lib.ModelFormat, inputs: list[InputSpec]) -> contextlib.AbstractContextManager[Export]:
    """``loaded`` wrapped once for ``fmt``'s converter: exported by it, or taken as it is when the
    source already is such a model (an InputError when it can become no other)."""
    given = loaded.as_format(fmt.name)
    if given is None:
        return for_format(fmt).export(loaded, inputs)
    names = [s.name for s in loaded.outputs()]
    return contextlib.nullcontext(Export(loaded, fmt.name, names, given.model, as_given=given, layout=inputs[0].layout))
