"""What a quantization mode is, and what counts as "computes the same" (``Tolerances``).

The modes themselves are rows of a model format's record (``lamb.runtime_lib``: LiteRT's in
``lamb.runtime_lib.litert``), each with the converter settings, whether it needs calibration
images, and the default tolerances ``lamb verify`` judges it by (with the measurements they rest
on). The CLI's help is generated from those rows: adding a mode is adding a row.

Nothing here imports TensorFlow, and nothing here is one engine's: each engine module gives its
rows the settings its converter needs (``Mode.settings``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tolerances:
    """What counts as "computes the same".

    Values agree when ``max |reference - converted| <= atol + rtol * range(keras output)``: numpy's
    ``allclose`` shape, but relative to the reference output's *range* rather than to each element,
    because per-element relative error explodes on logits near zero and a whole-output scale is
    what a reader of the numbers cares about.
    """

    atol: float
    rtol: float
    min_cosine: float
    min_top1: float  # fraction of samples whose arg-max class agrees (classifier outputs only)
    top_k: int | None = None
    min_topk: float | None = None  # mean overlap of the two top-k class sets

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Mode:
    """One quantization mode: how to convert, and what to expect of the result."""

    name: str
    summary: str  # for --help
    tolerances: Tolerances  # lamb verify's defaults for this mode
    # What the converted model holds: the type of its weights and the type its activations compute
    # in. verify infers the mode of a model without a manifest from these (``infer``).
    weights: str = "float32"
    activations: str = "float32"
    # The format's converter's own settings for this mode, of a type its engine module defines
    # (LiteRT's: ``lamb.runtime_lib.litert.ConverterSettings``); None: the converter needs none
    # beyond the row's generic facts. Generic code never reads them.
    settings: Any = None
    # Needs calibration images (``--calibration``, a representative dataset): integer activations
    # need ranges measured on real inputs.
    calibrated: bool = False
    # The integer type the model's input and output take with ``--integer-io``; None: the mode
    # offers no integer input/output (its model takes and returns float32).
    integer_io: str | None = None

    @property
    def quantized(self) -> bool:
        """Anything rounded below float32: its weights, or its activations."""
        return (self.weights, self.activations) != ("float32", "float32")


DEFAULT = "float32"  # every format offers it: the converted model computes in float32


def infer(modes: tuple[Mode, ...], tensor_dtypes: dict[str, int]) -> str:
    """The mode whose row describes a converted model's tensors (``tensor_dtypes``: dtype -> count).

    float16 weights are the float16 mode whatever else the model holds; 8-bit integer tensors
    (int8 or uint8, whichever the format uses) are integer weights, and integer activations when
    they outnumber the float32 tensors (a full-integer model carries them everywhere, a
    dynamic-range one only in its weights).
    """
    ints = tensor_dtypes.get("int8", 0) + tensor_dtypes.get("uint8", 0)
    weights = "float16" if tensor_dtypes.get("float16") else "int" if ints else "float32"
    activations = "int" if weights == "int" and ints > tensor_dtypes.get("float32", 0) else "float32"
    for m in modes:
        if (_kind(m.weights), _kind(m.activations)) == (weights, activations):
            return m.name
    return next((m.name for m in modes if _kind(m.weights) == weights), DEFAULT)


def _kind(dtype: str) -> str:
    """int8 and uint8 are both 8-bit integers here; formats differ in which they use where."""
    return "int" if dtype in ("int8", "uint8") else dtype


def choices_help(modes: tuple[Mode, ...]) -> str:
    """``float32 | float16 | dynamic | int8 (full-integer, needs --calibration)``: the modes for --help."""
    return " | ".join(f"{m.name} ({m.summary})" if m.calibrated else m.name for m in modes)


def tolerances_help(modes: tuple[Mode, ...]) -> str:
    """The default tolerances per mode, as ``--help`` lists them (atol / rtol / min-cosine / min-top1)."""
    rows = []
    for m in modes:
        t = m.tolerances
        rows.append(f"{m.name} " + " / ".join(_number(v) for v in (t.atol, t.rtol, t.min_cosine, t.min_top1)))
    return "; ".join(rows)


def _number(value: float) -> str:
    """1e-6, 0.01, 0.9999: how a person writes a tolerance."""
    text = f"{value:.0e}" if 0 < value < 0.01 else f"{value:g}"
    return re.sub(r"e([-+])0*(\d)", lambda m: f"e{'-' if m.group(1) == '-' else ''}{m.group(2)}", text)
