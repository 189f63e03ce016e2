"""Comparing two sets of outputs (pure): metrics per output, checks against tolerances, failure sentences."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lamb.handler.lambkit.heads import BINARY, class_scores
from lamb.quantization import Tolerances


@dataclass
class Check:
    """One row of the verdict: a metric of one output against its limit."""

    output: str
    metric: str  # "max_abs" | "max_rel" | "mean_abs" | "cosine" | "top1" | "top1_lower" | "top<k>" | "finite"
    value: float
    limit: float | None  # None: reported, not judged
    passed: bool | None  # None: reported, not judged
    comparison: str = "<="  # how value relates to limit when it passes: "<=" or ">="


@dataclass
class OutputMetrics:
    """How one output of the converted model compares with the source model's."""

    name: str  # the source output's name
    model_name: str  # the signature key (or tensor name) on the converted side
    shape: list[int]  # per sample, without the batch dimension
    reference_range: float  # max - min of the reference output over all samples
    # None when the converted model produced NaN/inf (no meaningful number; the "finite" check fails).
    max_abs: float | None
    max_rel: float | None  # max_abs / reference_range; None when the reference is constant
    mean_abs: float | None
    cosine: float | None  # mean over samples of the cosine similarity of the flattened outputs
    top1: float | None = None  # classifier-shaped outputs only: (N, C) with C > 1, or a binary head's (N, 1)
    top1_lower: float | None = None  # its 95 % Wilson lower bound (lamb.verify.evidence)
    topk: float | None = None
    k: int | None = None
    disagreements: list[int] = field(default_factory=list)  # sample indices whose top-1 differs (first 10)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def compare_outputs(
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    names: Sequence[str],
    tolerances: Tolerances,
    *,
    model_names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    head: str | None = None,
) -> tuple[list[OutputMetrics], list[Check], list[str]]:
    """Compare paired outputs (each ``(N, ...)``); return metrics, checks and failure sentences.

    ``head`` (the manifest's): a binary head's one value per sample is judged as the function
    answers it, ``(1 - p, p)``, so its top-1 agreement is the same decision at the 0.5 threshold
    (a single value's cosine is only its sign's agreement, and a probability's is always 1).
    """
    all_metrics: list[OutputMetrics] = []
    checks: list[Check] = []
    failures: list[str] = []
    model_names = list(model_names or names)
    for name, tname, ref_raw, out_raw in zip(names, model_names, reference, candidate):
        ref = np.asarray(ref_raw, dtype=np.float64)
        out = np.asarray(out_raw, dtype=np.float64)
        n = ref.shape[0]
        if not np.all(np.isfinite(out)):
            bad = int(np.count_nonzero(~np.isfinite(out)))
            checks.append(Check(name, "finite", float(bad), 0.0, False))
            failures.append(f"output {name!r}: the converted model produced {bad} NaN/inf values")
            all_metrics.append(OutputMetrics(name, tname, list(ref.shape[1:]), _range(ref), None, None, None, None))
            continue
        diff = np.abs(ref - out)
        value_range = _range(ref)
        max_abs = float(diff.max()) if diff.size else 0.0
        max_rel = max_abs / value_range if value_range > 0 else None
        mean_abs = float(diff.mean()) if diff.size else 0.0
        cosine = _mean_cosine(ref.reshape(n, -1), out.reshape(n, -1))
        m = OutputMetrics(name, tname, list(ref.shape[1:]), value_range, max_abs, max_rel, mean_abs, cosine)

        limit = tolerances.atol + tolerances.rtol * value_range
        ok = max_abs <= limit
        checks.append(Check(name, "max_abs", max_abs, limit, ok))
        if not ok:
            failures.append(
                f"output {name!r}: max abs error {max_abs:.3g} exceeds {limit:.3g} "
                f"(atol {tolerances.atol:g} + rtol {tolerances.rtol:g} x range {value_range:.3g})"
            )
        if max_rel is not None:
            checks.append(Check(name, "max_rel", max_rel, None, None))
        checks.append(Check(name, "mean_abs", mean_abs, None, None))
        ok = cosine >= tolerances.min_cosine
        checks.append(Check(name, "cosine", cosine, tolerances.min_cosine, ok, ">="))
        if not ok:
            failures.append(f"output {name!r}: cosine similarity {cosine:.6f} is below {tolerances.min_cosine:g}")

        if head in BINARY and ref[0].size == 1:  # as answered: (N, 2), the decision at p = 0.5
            ref, out = class_scores(ref, head).astype(np.float64), class_scores(out, head).astype(np.float64)
        if ref.ndim == 2 and ref.shape[1] > 1:  # classifier-shaped: (N, C)
            ref_top = np.argmax(ref, axis=1)
            out_top = np.argmax(out, axis=1)
            agree = ref_top == out_top
            m.top1 = float(agree.mean())
            m.disagreements = [int(i) for i in np.flatnonzero(~agree)[:10]]
            ok = m.top1 >= tolerances.min_top1
            checks.append(Check(name, "top1", m.top1, tolerances.min_top1, ok, ">="))
            if not ok:
                first = m.disagreements[0]
                what = _class_name(ref_top[first], labels), _class_name(out_top[first], labels)
                failures.append(
                    f"output {name!r}: top-1 agreement {m.top1:.1%} is below {tolerances.min_top1:.1%} "
                    f"({int((~agree).sum())} of {n} differ; sample {first}: the source model says {what[0]}, the converted model says {what[1]})"
                )
            k = tolerances.top_k
            if k is not None and k < ref.shape[1]:
                ref_k = np.argsort(-ref, axis=1)[:, :k]
                out_k = np.argsort(-out, axis=1)[:, :k]
                overlap = [len(set(a) & set(b)) / k for a, b in zip(ref_k.tolist(), out_k.tolist())]
                m.topk, m.k = float(np.mean(overlap)), k
                limit_k = float(tolerances.min_topk if tolerances.min_topk is not None else tolerances.min_top1)
                ok = m.topk >= limit_k
                checks.append(Check(name, f"top{k}", m.topk, limit_k, ok, ">="))
                if not ok:
                    failures.append(f"output {name!r}: top-{k} overlap {m.topk:.1%} is below {limit_k:.1%}")
        all_metrics.append(m)
    return all_metrics, checks, failures


def _range(x: np.ndarray) -> float:
    return float(x.max() - x.min()) if x.size else 0.0


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    dot = np.sum(a * b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (na * nb)
    # Two all-zero vectors are identical; one zero and one not are as different as can be.
    cos = np.where((na == 0) & (nb == 0), 1.0, np.where((na == 0) | (nb == 0), 0.0, cos))
    return float(np.clip(cos, -1.0, 1.0).mean()) if cos.size else 1.0


def _class_name(index: int, labels: Sequence[str] | None) -> str:
    if labels and 0 <= index < len(labels):
        return f"{labels[index]!r} (class {index})"
    return f"class {index}"
