"""How much a verdict can claim from the inputs it saw.

A top-1 agreement measured on n inputs is an estimate; ten images cannot show 99 %. The 95 %
Wilson score interval's lower bound (Wilson 1927; the interval recommended for binomial
proportions by Brown, Cai & DasGupta, Statistical Science 16(2), 2001) says what the agreement
is at least, with 95 % confidence. A rate that passes while its bound does not is a pass with a
warning naming how many inputs would settle it. An int8 model judged on random pixels alone is
"not enough evidence": those pixels reach activations outside the ranges it was calibrated on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lamb import runtime_lib

if TYPE_CHECKING:
    from lamb.quantization import Tolerances
    from lamb.verify.compare import Check, OutputMetrics
    from lamb.verify.signature import PairedSignature

Z95 = 1.959963984540054  # two-sided 95 %: the standard normal's 97.5th percentile

PASS = "pass"
PASS_WITH_WARNING = "pass with warning"
NOT_ENOUGH_EVIDENCE = "not enough evidence"
FAIL = "fail"


def wilson_lower_bound(agree: int, n: int, z: float = Z95) -> float:
    """The lower end of the Wilson score interval for ``agree`` successes in ``n`` trials."""
    return wilson_interval(agree, n, z)[0]


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Both ends of the Wilson score interval (accuracy's bounds: two modes whose intervals do not
    overlap are told apart by the images)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + z2 / n)), min(1.0, (centre + spread) / (1 + z2 / n))


def inputs_to_settle(rate: float, limit: float, z: float = Z95, most: int = 10_000_000) -> int | None:
    """The fewest inputs at which agreement ``rate`` would have its lower bound reach ``limit``.

    None when no number would (the rate itself is at or below the limit).
    """
    if rate <= limit:
        return None
    if rate >= 1.0:
        # n / (n + z^2) >= limit  <=>  n >= z^2 limit / (1 - limit)
        return max(1, math.ceil(z * z * limit / (1 - limit)))
    lo, hi = 1, 1
    while wilson_lower_bound(round(rate * hi), hi, z) < limit:
        hi *= 2
        if hi > most:
            return None
    while lo < hi:
        mid = (lo + hi) // 2
        if wilson_lower_bound(round(rate * mid), mid, z) >= limit:
            hi = mid
        else:
            lo = mid + 1
    return hi


@dataclass
class Judgement:
    """A verdict that says what its inputs can carry."""

    verdict: str  # PASS | PASS_WITH_WARNING | NOT_ENOUGH_EVIDENCE | FAIL
    passed: bool  # PASS and PASS_WITH_WARNING pass; the other two do not
    lower_bounds: dict[str, float] = field(default_factory=dict)  # output -> top-1 95 % lower bound
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def judge(
    top1: dict[str, float | None],
    n: int,
    min_top1: float,
    failures: list[str],
    *,
    quantization: str,
    images: int,
) -> Judgement:
    """The verdict from the checks' ``failures``, the top-1 rates per output and the evidence.

    ``n`` is the number of inputs each rate was measured on; ``images`` how many were real images.
    """
    bounds = {name: wilson_lower_bound(round(rate * n), n) for name, rate in top1.items() if rate is not None}
    failures = list(failures)
    if failures:
        return Judgement(FAIL, False, bounds, failures=failures)
    mode = runtime_lib.find_mode(quantization)
    if mode is not None and mode.calibrated and images == 0:
        failures.append(
            f"not enough evidence: an {quantization} model judged on random pixels alone proves little (they reach "
            "activations outside the ranges it was calibrated on); verify it with --images"
        )
        return Judgement(NOT_ENOUGH_EVIDENCE, False, bounds, failures=failures)
    warnings = []
    for name, low in bounds.items():
        rate = top1[name]
        assert rate is not None
        if low < min_top1:
            need = inputs_to_settle(rate, min_top1)
            settle = (
                f"about {need:,} inputs agreeing at this rate would settle it" if need is not None
                else "only a higher agreement would settle it"
            )
            warnings.append(
                f"output {name!r}: top-1 agreement {rate:.1%} passes {min_top1:.0%}, but on {n} inputs its 95 % "
                f"lower bound is {low:.1%}; {settle}"
            )
    return Judgement(PASS_WITH_WARNING if warnings else PASS, True, bounds, warnings=warnings)


def judge_outputs(
    metrics: list[OutputMetrics],
    checks: list[Check],
    failures: list[str],
    n: int,
    min_top1: float,
    *,
    quantization: str,
    images: int,
) -> Judgement:
    """``judge`` for ``compare_outputs``'s results: each classifier output's ``top1_lower`` is set
    and a "top1_lower" check row (reported beside the rate, not judged on its own) added after it."""
    from lamb.verify.compare import Check

    judged = judge({m.name: m.top1 for m in metrics}, n, min_top1, failures, quantization=quantization, images=images)
    for m in metrics:
        if m.name in judged.lower_bounds:
            m.top1_lower = judged.lower_bounds[m.name]
            at = next((i for i, c in enumerate(checks) if c.output == m.name and c.metric == "top1"), len(checks) - 1)
            checks.insert(at + 1, Check(m.name, "top1_lower", m.top1_lower, min_top1, None, ">="))
    return judged


def judge_against(
    paired: PairedSignature, reference: list[Any], model_outputs: dict[str, Any], tolerances: Tolerances, *,
    quantization: str, images: int, labels: list[str] | None, head: str | None = None,
) -> tuple[list[OutputMetrics], list[Check], Judgement]:
    """The one judging step of ``lamb verify`` and ``lamb compare``: the converted model's outputs
    compared with the reference's pair by pair, then weighed by what the inputs can carry."""
    import numpy as np

    from lamb.verify.compare import compare_outputs

    candidate = [model_outputs[key] for key in paired.output_keys]
    reference = [np.asarray(r).reshape(len(r), *c.shape[1:]) for r, c in zip(reference, candidate)]
    metrics, checks, failures = compare_outputs(
        reference, candidate, paired.output_names, tolerances, model_names=paired.output_keys, labels=labels, head=head,
    )
    judged = judge_outputs(metrics, checks, failures, len(candidate[0]), tolerances.min_top1, quantization=quantization, images=images)
    return metrics, checks, judged
