"""The engine adapters: one backend per runtime library, the only code that loads and runs a
converted model. The handler serves with it; ``lamb verify`` and ``lamb compare`` run the same
backend, of the same library release, in their runner process; so what is verified is what runs.

A backend (``Backend``) offers ``input`` (an ``InputSpec``: what the handler feeds it),
``describe()`` (a ``Description``: inputs, outputs in the source model's order, layout, tensor
types) and ``run(x) -> [(output name, float32 array)]``, taking the input already laid out and
typed as ``input`` says (``typed``). It is safe to call ``run`` from several threads at once.

Which backend runs a model is the record's to say (``backend_name``): the runtime library's
record in lamb names its backend (``RuntimeLib.handler_backend``) and ``lamb package`` writes it
into the shipped ``lamb.json``. A name without a dot is a module here; a dotted name is imported
as it is, so an engine can ship its backend inside its own distribution.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..preprocess import quantize


@dataclass(frozen=True)
class InputSpec:
    size: tuple | None  # (height, width); None: the model takes any size, fed the image's own
    layout: str  # "NHWC" (channels last) or "NCHW" (channels first, PyTorch's)
    dtype: Any  # numpy dtype
    quantization: tuple  # (scale, zero point), or (None, None) for a float input


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the model as its backend sees it."""

    name: str  # the name the record and the source model use (an output's, once paired)
    key: str  # the engine's own name for it: a signature key, a graph input or output
    shape: tuple  # -1 where open
    dtype: str  # NumPy's name
    quantization: tuple = (None, None)  # (scale, zero point) of an integer tensor


@dataclass(frozen=True)
class Description:
    """What a loaded model is: what lamb verify pairs with the source model, and how it ran it."""

    inputs: tuple
    outputs: tuple  # in the order ``run`` returns them: the record's (the source model's), else the engine's
    layout: str
    tensor_dtypes: dict = field(default_factory=dict)  # NumPy dtype name -> how many tensors (tells quantization modes apart)


class Backend(Protocol):
    """One runtime library's model, loaded (see the module docstring)."""

    input: InputSpec

    def describe(self) -> Description: ...

    def run(self, x: Any) -> list: ...


def backend_name(record: dict) -> str:
    """The backend module the record names: ``lamb package`` writes the runtime library's into
    ``package.handler_backend``; artifacts built before it said so ran their format's only one."""
    package = record.get("package")
    name = package.get("handler_backend") if isinstance(package, dict) else None
    if isinstance(name, str) and name:
        return name
    model = record.get("model")
    fmt = model.get("format") if isinstance(model, dict) else None
    return _BEFORE_RECORDS.get(fmt or "tflite", "")


# What artifacts built before the record named its backend ran: the one backend of each format then.
_BEFORE_RECORDS = {"tflite": "litert", "onnx": "ort"}


def module(name: str):
    """The backend module ``name`` (see ``backend_name``): its ``BACKEND`` class, and
    ``library(record)``, which imports the runtime library the record names."""
    if not name:
        raise ValueError("the record names no backend for its model; rebuild the artifact with lamb package")
    return importlib.import_module(name if "." in name else f"{__name__}.{name}")


def load(name: str, path: str, record: dict, num_threads: int) -> Backend:
    """The backend ``name`` on the model file ``path``."""
    return module(name).BACKEND(path, record, num_threads)


def typed(spec: InputSpec, x):
    """A float input tensor, typed as the model takes it (quantized for an integer input)."""
    if spec.dtype.kind in "iu":
        scale, zero = spec.quantization
        if scale is None:
            raise ValueError("the model takes integer input but has no quantization parameters")
        return quantize(x, scale, zero, spec.dtype)
    return x if x.dtype == spec.dtype else x.astype(spec.dtype)


def declared_input(record: dict) -> dict:
    """The record's first input spec (shape, layout), or {}."""
    inputs = record.get("inputs")
    first = inputs[0] if isinstance(inputs, list) and inputs else None
    return first if isinstance(first, dict) else {}


def output_names(record: dict) -> list:
    """The output names the record lists, in its order (the source model's)."""
    outputs = record.get("outputs")
    if not isinstance(outputs, list):
        return []
    return [o.get("name") for o in outputs if isinstance(o, dict)]


# -- the one rule pairing a converted model's outputs with its source's --------------------------


def signature_key(name: str) -> str:
    """``name`` with anything but [A-Za-z0-9_] replaced: what a converter may make of a source
    name (``serving_default_<name>:0`` must stay a valid tensor name)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(name).split(":")[0]).strip("_")


def pair(names: list, keys: list, prefix: str = "output_") -> list | None:
    """For each source name, the index of its counterpart among the engine's ``keys``; None
    when the counts differ.

    Engines do not keep the source's order (a TFLite flatbuffer lists a two-output model's tensors
    reversed), so pair by name, then by the converter's cleaned name, then by ``<prefix><i>``
    (Keras 3 numbers its outputs in its own order), and only then by position.
    """
    if len(names) != len(keys):
        return None
    for candidates in (list(names), [signature_key(n) for n in names]):
        if sorted(candidates) == sorted(keys) and len(set(candidates)) == len(candidates):
            return [keys.index(n) for n in candidates]
    numbered = [f"{prefix}{i}" for i in range(len(keys))]
    if set(keys) == set(numbered):
        return [keys.index(n) for n in numbered]
    return list(range(len(keys)))


def in_record_order(record: dict, keys: list) -> list:
    """(record name, engine key) per output: the record's order and names where the record lists
    the model's outputs, else the engine's own order and keys."""
    names = output_names(record)
    order = pair(names, keys) if names else None
    if order is None:
        return [(k, k) for k in keys]
    return [(name, keys[i]) for name, i in zip(names, order)]
