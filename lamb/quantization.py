"""The quantization modes ``lamb convert`` offers, one row each, and what follows from each.

A row carries the converter settings (``lamb.convert`` applies them), whether the mode needs
calibration images, the default tolerances ``lamb verify`` judges it by (with the measurements
they rest on), and which TFLite libraries lack its kernels (``lamb.tflite_lib`` avoids them).
The CLI's help and docstrings are generated from ``MODES``: adding a mode is adding a row.

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

    Values agree when ``max |keras - tflite| <= atol + rtol * range(keras output)``: numpy's
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
    # integer-only ops (TFLITE_BUILTINS_INT8), fed by a representative dataset.
    optimize: bool = False
    supported_types: tuple[str, ...] = ()
    integer_only: bool = False
    # TFLite libraries with no kernels for the op versions this mode writes (lamb.tflite_lib names).
    lacked_by: tuple[str, ...] = ()

    @property
    def calibrated(self) -> bool:
        """Needs calibration images (``--calibration``): integer activations need measured ranges."""
        return self.integer_only

    @property
    def quantized(self) -> bool:
        return self.optimize


# Default tolerances measured with TF 2.21 -> ai-edge-litert 2.3 as max error / output range, mean
# cosine, top-1 agreement on 100-200 seeded random inputs (benchmarks/bench_verify.py --modes
# prints the Xception column):
#              small CNN (tests)          Xception, random weights   demo model (trained, models/)
#   float32    2.6e-7 / 1.0     / 100 %   9.2e-7 / 1.0      / 100 %  2.3e-7 / 1.0      / 100 %
#   float16    2.6e-4 / 1.0     / 100 %   2.1e-4 / 1.0      / 100 %  3.7e-4 / 1.0      / 100 %
#   dynamic    4.0e-3 / 0.99999 / 100 %   7.0e-3 / 0.99998  / 100 %  1.2e-2 / 0.9999   / 100 %
#   int8       2.4e-2 / 0.99997 / 100 %   1.1e-2 / 0.99994  /  98 %  0.35   / 0.975    / 100 %
# atol only matters for outputs whose range is ~0 (a constant head); it is kept far below the
# range of any real logits. Cosine below these limits means the output's direction changed, which
# no rounding explains.
# tflite-runtime (frozen at 2.14) has no kernels for the op versions TF 2.16+ writes for hybrid
# (dynamic-range) and int8 models: they fail in AllocateTensors ("FULLY_CONNECTED version 12").
MODES: tuple[Mode, ...] = (
    # The kernels differ from TensorFlow's only in summation order and fused ops, so the bound sits
    # ~100x above what we measured and still catches a 5 % change to one layer's weights.
    Mode("float32", "no quantization", tolerances=Tolerances(atol=1e-6, rtol=1e-4, min_cosine=0.9999, min_top1=0.99)),
    # Weights rounded to 11 significant bits: ~3e-4 of the range; bound 1e-2.
    Mode(
        "float16", "float16 weights", optimize=True, supported_types=("float16",),
        tolerances=Tolerances(atol=1e-5, rtol=1e-2, min_cosine=0.999, min_top1=0.97),
    ),
    # int8 weights, activations quantized on the fly: ~1 % of the range; bound 10 %.
    Mode(
        "dynamic", "int8 weights, float activations", optimize=True,
        tolerances=Tolerances(atol=1e-4, rtol=0.1, min_cosine=0.99, min_top1=0.9), lacked_by=("tflite-runtime",),
    ),
    # The demo's 0.35 is random noise pushed through ranges calibrated on real images (activations
    # clip); on its own images it is 1.2 % and cosine 0.9999. So values are bounded loosely and
    # cosine plus top-1 agreement carry the verdict; verify int8 models with --images.
    Mode(
        "int8", "full-integer, needs --calibration", optimize=True, integer_only=True,
        tolerances=Tolerances(atol=1e-3, rtol=0.5, min_cosine=0.9, min_top1=0.8), lacked_by=("tflite-runtime",),
    ),
)
BY_NAME: dict[str, Mode] = {m.name: m for m in MODES}
NAMES = tuple(BY_NAME)
DEFAULT = "float32"


def get(name: str) -> Mode:
    """The row for ``name``; KeyError for an unknown mode (callers phrase the error for their option)."""
    return BY_NAME[name]


def choices_help() -> str:
    """``float32 | float16 | dynamic | int8 (full-integer, needs --calibration)``: the modes for --help."""
    return " | ".join(f"{m.name} ({m.summary})" if m.calibrated else m.name for m in MODES)


def tolerances_help() -> str:
    """The default tolerances per mode, as ``--help`` lists them (atol / rtol / min-cosine / min-top1)."""
    rows = []
    for m in MODES:
        t = m.tolerances
        rows.append(f"{m.name} " + " / ".join(_number(v) for v in (t.atol, t.rtol, t.min_cosine, t.min_top1)))
    return "; ".join(rows)


def _number(value: float) -> str:
    """1e-6, 0.01, 0.9999: how a person writes a tolerance."""
    text = f"{value:.0e}" if 0 < value < 0.01 else f"{value:g}"
    return re.sub(r"e([-+])0*(\d)", lambda m: f"e{'-' if m.group(1) == '-' else ''}{m.group(2)}", text)
