"""What counts as "computes the same": a ``Tolerances`` per quantization mode, and the user's overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lamb.errors import InputError


@dataclass
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


# Defaults per quantization mode. Measured with TF 2.21 -> ai-edge-litert 2.3 as max error / output
# range, mean cosine, top-1 agreement on 100-200 seeded random inputs (benchmarks/bench_verify.py
# --modes prints the Xception column):
#              small CNN (tests)          Xception, random weights   demo model (trained, models/)
#   float32    2.6e-7 / 1.0     / 100 %   9.2e-7 / 1.0      / 100 %  2.3e-7 / 1.0      / 100 %
#   float16    2.6e-4 / 1.0     / 100 %   2.1e-4 / 1.0      / 100 %  3.7e-4 / 1.0      / 100 %
#   dynamic    4.0e-3 / 0.99999 / 100 %   7.0e-3 / 0.99998  / 100 %  1.2e-2 / 0.9999   / 100 %
#   int8       2.4e-2 / 0.99997 / 100 %   1.1e-2 / 0.99994  /  98 %  0.35   / 0.975    / 100 %
# - float32: the kernels differ from TensorFlow's only in summation order and fused ops, so the
#   bound sits ~100x above what we measured and still catches a 5 % change to one layer's weights.
# - float16: weights rounded to 11 significant bits: ~3e-4 of the range; bound 1e-2.
# - dynamic: int8 weights, activations quantized on the fly: ~1 % of the range; bound 10 %.
# - int8: the demo's 0.35 is random noise pushed through ranges calibrated on real images
#   (activations clip); on its own images it is 1.2 % and cosine 0.9999. So values are bounded
#   loosely and cosine plus top-1 agreement carry the verdict; verify int8 models with --images.
# atol only matters for outputs whose range is ~0 (a constant head); it is kept far below the
# range of any real logits. Cosine below these limits means the output's direction changed, which
# no rounding explains.
DEFAULT_TOLERANCES: dict[str, Tolerances] = {
    "float32": Tolerances(atol=1e-6, rtol=1e-4, min_cosine=0.9999, min_top1=0.99),
    "float16": Tolerances(atol=1e-5, rtol=1e-2, min_cosine=0.999, min_top1=0.97),
    "dynamic": Tolerances(atol=1e-4, rtol=0.1, min_cosine=0.99, min_top1=0.9),
    "int8": Tolerances(atol=1e-3, rtol=0.5, min_cosine=0.9, min_top1=0.8),
}


@dataclass(frozen=True)
class ToleranceOverrides:
    """The limits the user set (``--atol``, ``--top-k``, ...); ``None`` keeps the mode's default."""

    atol: float | None = None
    rtol: float | None = None
    min_top1: float | None = None
    min_cosine: float | None = None
    top_k: int | None = None
    min_topk: float | None = None  # defaults to min_top1

    def over(self, base: Tolerances) -> Tolerances:
        """``base`` with every value set here laid over it, each checked for range."""
        given: dict[str, Any] = {}
        for name in ("atol", "rtol", "min_top1", "min_cosine"):
            value = getattr(self, name)
            if value is None:
                continue
            if value < 0 or (name.startswith("min_") and value > 1):
                raise InputError(
                    f"--{name.replace('_', '-')} {value} is out of range",
                    "tolerances are >= 0; --min-top1 and --min-cosine are fractions in [0, 1]",
                )
            given[name] = float(value)
        tol = dataclasses.replace(base, **given)
        if self.top_k is not None:
            if self.top_k < 2:
                raise InputError(f"--top-k {self.top_k} is too small", "top-1 is always checked; use --top-k 2 or more")
            tol.top_k = int(self.top_k)
            tol.min_topk = float(self.min_topk if self.min_topk is not None else tol.min_top1)
        return tol


def default_tolerances(quantization: str, overrides: ToleranceOverrides | None = None) -> Tolerances:
    """The mode's defaults with any explicit value laid over them."""
    try:
        base = DEFAULT_TOLERANCES[quantization]
    except KeyError:
        raise InputError(
            f"unknown quantization mode {quantization!r}", f"use one of: {', '.join(DEFAULT_TOLERANCES)}"
        ) from None
    return (overrides or ToleranceOverrides()).over(base)
