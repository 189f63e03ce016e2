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


# Default tolerances, set from what each mode measurably achieves (TF 2.21 -> ai-edge-litert 2.3;
# max error / output range, mean cosine, top-1 agreement; measured 2026-11-26 with
# `lamb convert -q MODE` and `lamb verify --images` on 200 real images, seeded crops, flips and
# brightness changes of models/demo/samples; int8 calibrated on models/demo/samples):
#              demo model (trained, models/demo)        Xception shape (benchmarks/xception_model.py)
#              200 images                100 random     200 images                100 random
#   float32    2.9e-7 / 1.0     / 100 %   2.4e-7 / 100 %  8.8e-7 / 1.0     / 100 %   9.5e-7 / 100 %
#   float16    2.9e-4 / 1.0     / 100 %   3.5e-4 / 100 %  2.8e-4 / 1.0     / 100 %   2.1e-4 / 100 %
#   dynamic    1.2e-2 / 0.99983 / 100 %   1.1e-2 / 100 %  6.3e-3 / 0.99997 /  99 %   7.0e-3 / 100 %
#   int8       9.7e-2 / 0.99923 / 99.5 %  0.36, cos 0.976 6.7e-2 / 0.99987 /  99 %   1.2e-2 /  97 %
# - min_top1 0.99 in every mode: every mode reached it on real images (the Xception shape's 99 %
#   has random weights, whose logits nearly tie). A model that flips a few percent of its answers is
#   not one a user would ship: tests/test_verify_tolerances.py perturbs the demo model to flip
#   3-4 %, which the old dynamic (>= 90 %) and int8 (>= 80 %) defaults passed. Whether the inputs
#   can show 99 % is lamb.verify.evidence's question (the Wilson lower bound).
# - rtol: the worst measured error with margin. float32 ~100x (summation order and fused ops
#   only; still catches a 5 % change to one layer's weights); float16 ~6x over 3.5e-4; dynamic ~3x
#   over 1.2e-2; int8 ~2x over 9.7e-2 on real images. Random pixels reach int8 activations outside
#   the calibrated ranges (0.36): they are no evidence for int8 (lamb.verify.evidence).
# - min_cosine: 1 - cosine at ~5x the worst measured gap (float16 rounds to 1.000000); below it the
#   output's direction changed, which no rounding explains.
# atol only matters for outputs whose range is ~0 (a constant head); it is kept far below the
# range of any real logits.
# tflite-runtime (frozen at 2.14) has no kernels for the op versions TF 2.16+ writes for hybrid
# (dynamic-range) and int8 models: they fail in AllocateTensors ("FULLY_CONNECTED version 12").
MODES: tuple[Mode, ...] = (
    Mode("float32", "no quantization", tolerances=Tolerances(atol=1e-6, rtol=1e-4, min_cosine=0.9999, min_top1=0.99)),
    # Weights rounded to 11 significant bits.
    Mode(
        "float16", "float16 weights", optimize=True, supported_types=("float16",),
        tolerances=Tolerances(atol=1e-5, rtol=2e-3, min_cosine=0.9999, min_top1=0.99),
    ),
    # int8 weights, activations quantized on the fly.
    Mode(
        "dynamic", "int8 weights, float activations", optimize=True,
        tolerances=Tolerances(atol=1e-4, rtol=0.04, min_cosine=0.999, min_top1=0.99), lacked_by=("tflite-runtime",),
    ),
    # Integer activations on ranges measured on the calibration images.
    Mode(
        "int8", "full-integer, needs --calibration", optimize=True, integer_only=True,
        tolerances=Tolerances(atol=1e-3, rtol=0.2, min_cosine=0.995, min_top1=0.99), lacked_by=("tflite-runtime",),
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
