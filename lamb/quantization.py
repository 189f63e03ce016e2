"""What a quantization mode is, and what counts as "computes the same" (``Tolerances``).

The modes themselves are rows of a model format's record (``lamb.runtime_lib``: LiteRT's in
``lamb.runtime_lib.litert``), each with the converter settings, whether it needs calibration
images, and the default tolerances ``lamb verify`` judges it by (with the measurements they rest
on). The CLI's help is generated from those rows: adding a mode is adding a row.

Nothing here imports TensorFlow: the converter settings are names (``"float16"``), resolved on
``tf`` by the converter.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass


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
    # Converter settings: Optimize.DEFAULT on; weight types the kernels may use (tf dtype names);
    # integer-only ops, fed by a representative dataset.
    optimize: bool = False
    supported_types: tuple[str, ...] = ()
    integer_only: bool = False

    @property
    def calibrated(self) -> bool:
        """Needs calibration images (``--calibration``): integer activations need measured ranges."""
        return self.integer_only

    @property
    def quantized(self) -> bool:
        return self.optimize


DEFAULT = "float32"  # every format offers it: the converted model computes in float32


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
