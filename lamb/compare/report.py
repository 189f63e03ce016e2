"""What ``lamb compare`` found: one row per (runtime library, mode), and the one it recommends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb.cost import FLAT, MemoryAdvice, MemoryPoint
from lamb.handler.lambkit.cpu import Cpu
from lamb.package.budget import ZIP_DIRECT_UPLOAD
from lamb.verify.accuracy import ModeAccuracy

# A row's status. Only "verified" rows carry a verdict; the others say why they have none.
VERIFIED = "verified"
SKIPPED = "skipped"  # not attempted (int8 without calibration images)
CONVERSION_FAILED = "conversion failed"  # the converter refused this mode
CANNOT_RUN = "cannot run"  # the target's runtime library cannot load or run the model


@dataclass
class ModeSize:
    """Bytes of the model and of the projected artifact for the target."""

    model: int
    zip: int  # projected: the target's slimmed dependencies as measured, plus this model and the handler
    unzipped: int
    fits_direct_upload: bool  # zip <= 50 MB (Lambda's direct-upload limit)


@dataclass
class ModeSpeed:
    """Measured here, through the shipped handler on the shipped runtime library, at 1 thread (and warm at 2)."""

    init_ms: float  # cold start: median of a few fresh processes (interpreter + handler import + model load)
    warm_ms: float  # median whole-handler time of a warm request (what Lambda bills)
    inference_ms: float | None  # median of the interpreter's invoke alone, from the handler's timing log
    runs: int  # warm requests measured
    peak_rss_mb: float
    where: str  # the interpreter and what ran: the target's own wheels, or a host stand-in
    # The same warm request at 2 threads (the handler's count from 1,770 to 3,538 MB); None: one CPU here.
    warm_2threads_ms: float | None = None
    cpu: Cpu | None = None  # the CPU that measured these figures (this machine's)

    @property
    def speedup(self) -> float | None:
        """One-thread over two-thread warm time, measured here at 2 threads (at least 1)."""
        if not self.warm_2threads_ms:
            return None
        return max(1.0, self.warm_ms / self.warm_2threads_ms)


@dataclass
class ModeResult:
    """One quantization mode for one runtime library, converted, verified, sized, timed and priced."""

    mode: str
    status: str  # VERIFIED | SKIPPED | CONVERSION_FAILED | CANNOT_RUN
    reason: str | None = None  # why a row has no verdict (one sentence)
    model_path: Path | None = None
    manifest_path: Path | None = None
    runtime_lib: str = ""  # the runtime library the row was converted for and run on: "ai-edge-litert"
    runtime_lib_version: str | None = None  # the release it ran on: "2.3.0"
    passed: bool | None = None  # the verification verdict (None without one)
    verdict: str | None = None  # "pass" | "pass with warning" | "not enough evidence" | "fail"
    max_rel: float | None = None  # max error relative to the output's range (worst output)
    cosine: float | None = None
    top1: float | None = None  # top-1 agreement with the source model (classifiers)
    top1_lower: float | None = None  # its 95 % Wilson lower bound
    # top-1 accuracy on --labeled-images, with its Wilson 95 % interval (lamb.compare.accuracy)
    accuracy: float | None = None
    accuracy_low: float | None = None
    accuracy_high: float | None = None
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    size: ModeSize | None = None
    speed: ModeSpeed | None = None
    costs: list[MemoryPoint] = field(default_factory=list)  # per --memory setting
    memory: MemoryAdvice | None = None  # the setting this mode would use, and why
    seconds: dict[str, float] = field(default_factory=dict)  # convert / verify / time

    @property
    def key(self) -> tuple[str, str]:
        """What tells rows apart: (runtime library, mode)."""
        return self.runtime_lib, self.mode

    @property
    def label(self) -> str:
        """The row in a sentence: "onnxruntime float32" (the mode alone for a row with no library)."""
        return f"{self.runtime_lib} {self.mode}" if self.runtime_lib else self.mode

    @property
    def cost(self) -> float | None:
        """US dollars per million requests at this mode's advised memory setting."""
        return self.memory.cost_per_million if self.memory is not None else None


@dataclass
class CompareReport:
    source: Path
    target: str  # "python3.14-x86_64"
    arch: str
    samples: int
    seed: int
    images: int
    preprocess: str
    memory_settings: list[int]
    rows: list[ModeResult]
    recommended: str | None  # the recommended row's mode, or None when none passed
    why: str  # one sentence, naming the runtime library and the mode
    notes: list[str] = field(default_factory=list)
    estimate_note: str = ""  # the cost is an estimate from local timing, and on which prices
    seconds: dict[str, float] = field(default_factory=dict)  # per phase, and "total"
    source_accuracy: ModeAccuracy | None = None  # the source model on --labeled-images, what each mode is held to
    recommended_runtime_lib: str | None = None  # the recommended row's runtime library

    def row(self, mode: str, runtime_lib: str | None = None) -> ModeResult | None:
        """The row of ``mode`` (for ``runtime_lib``; None: the first library's)."""
        return next((r for r in self.rows if r.mode == mode and runtime_lib in (None, r.runtime_lib)), None)

    def raise_for_failure(self) -> None:
        """``VerificationFailed`` (exit code 1) when no mode passed, so nothing is recommended."""
        if self.recommended is None:
            from lamb.errors import VerificationFailed

            raise VerificationFailed(f"no recommendation: {self.why}", "see each mode's row; --images with real images gives int8 a fair test")

    @property
    def recommended_row(self) -> ModeResult | None:
        if self.recommended is None:
            return None
        return self.row(self.recommended, self.recommended_runtime_lib)

    @property
    def runtime_libs(self) -> list[str]:
        """The runtime libraries compared, in row order."""
        return list(dict.fromkeys(r.runtime_lib for r in self.rows))

    def summary(self) -> dict[str, Any]:
        """What ``lamb convert --quantize auto`` records in the manifest: the table, compactly."""
        rows = []
        for r in self.rows:
            rows.append({
                "runtime_lib": r.runtime_lib, "mode": r.mode, "status": r.status, "reason": r.reason, "verdict": r.verdict,
                "max_rel": r.max_rel, "top1": r.top1, "top1_lower": r.top1_lower,
                "model_bytes": r.size.model if r.size else None, "zip_bytes": r.size.zip if r.size else None,
                "warm_ms": r.speed.warm_ms if r.speed else None, "init_ms": r.speed.init_ms if r.speed else None,
                "warm_2threads_ms": r.speed.warm_2threads_ms if r.speed else None,
                "cpu": r.speed.cpu.as_dict() if r.speed and r.speed.cpu else None,
                "memory_mb": r.memory.recommended_mb if r.memory else None, "cost_per_million_usd": r.cost,
                "accuracy": r.accuracy, "accuracy_low": r.accuracy_low,
            })
        return {
            "recommended": self.recommended, "recommended_runtime_lib": self.recommended_runtime_lib, "why": self.why, "target": self.target,
            "samples": self.samples, "images": self.images, "rows": rows, "estimate": self.estimate_note,
            "source_accuracy": self.source_accuracy.top1 if self.source_accuracy is not None else None,
        }


def timing_notes(rows: list[ModeResult]) -> list[str]:
    """Where the modes were timed, and the 2-thread speedups the cost model uses above one vCPU."""
    notes = []
    wheres = sorted({r.speed.where for r in rows if r.speed})
    if wheres:
        notes.append("timed on " + "; ".join(wheres))
    sped = [f"{r.label} {r.speed.speedup:.2f}x" for r in rows if r.speed and r.speed.speedup]
    if sped:
        notes.append(f"above 1,769 MB the handler runs a second thread: measured here at 2 threads, {', '.join(sped)} "
                     "as fast as one (never extrapolated past 2 threads)")
    return notes


# How rows that cost the same are told apart, in order: (the figure, its unit, how far from the best
# still counts as equal). Warm time is what every request pays; the cold start is what the first
# request of each new environment pays; the zip is what each deploy uploads. An error below the
# tolerance is not among them: a pass is a pass.
TIE_BREAKS: tuple[tuple[str, str, float], ...] = (
    ("warm time", "ms", FLAT),
    ("cold start", "ms", 0.05),  # init varies more between fresh processes than warm requests do
    ("zip", "MB", 0.0),
)


def _figure(row: ModeResult, name: str) -> float | None:
    if name == "zip":
        return row.size.zip / 2**20 if row.size else None
    if row.speed is None:
        return None
    if name == "warm time":  # as priced: an integer mode's speed-up the target may lack is not counted (timing.credited_warm_ms)
        return row.memory.local_ms if row.memory is not None and row.memory.local_ms is not None else row.speed.warm_ms
    return row.speed.init_ms


def break_tie(tied: list[ModeResult]) -> tuple[ModeResult, str]:
    """The best of rows that cost the same, and what decided, as a phrase ("its cold start is the
    smallest: 852 vs 1,010 ms"): a plain pass before a pass with a warning, then each of
    ``TIE_BREAKS`` in turn keeping the rows within its margin of the best."""
    plain = [r for r in tied if r.verdict == "pass"]
    if len(plain) == 1 and len(tied) > 1:
        return plain[0], "it passes without a warning"
    pool = plain or tied
    for name, unit, margin in TIE_BREAKS:
        figures = {id(r): _figure(r, name) for r in pool}
        if any(v is None for v in figures.values()):
            continue
        least = min(v for v in figures.values() if v is not None)
        kept = [r for r in pool if (figures[id(r)] or 0.0) <= least * (1 + margin)]
        if len(kept) == 1:
            shown = 1 if unit == "MB" else 0
            others = ", ".join(f"{figures[id(r)]:,.{shown}f}" for r in pool if r is not kept[0])
            return kept[0], f"its {name} is the smallest: {least:,.{shown}f} vs {others} {unit}"
        pool = kept
    return pool[0], "they are equal on warm time, cold start and zip size too"


def recommend(rows: list[ModeResult]) -> tuple[ModeResult | None, str]:
    """The cheapest row that passes and fits the 50 MB direct upload, else the cheapest that passes.

    Rows are (runtime library, mode): the choice is of both. Cheapest by the estimated cost per
    million requests at each row's advised memory. Costs within ``FLAT`` of the cheapest are equal
    as far as local timing can tell: among those, ``break_tie`` decides (a plain pass, then warm
    time, cold start and zip size). Returns the row (None when nothing passed) and one sentence
    saying why, naming its library and mode and the figures that decided.
    """
    passing = [r for r in rows if r.status == VERIFIED and r.passed and r.cost is not None and r.size is not None]
    if not passing:
        tried = [r for r in rows if r.status == VERIFIED]
        if not tried and any(r.verdict is not None for r in rows):
            return None, "no verified mode can run on the target's runtime library, so none is recommended"
        if not tried:
            return None, "no mode could be verified, so none is recommended"
        return None, "no mode passed verification against the source model, so none is recommended"

    fitting = [r for r in passing if r.size and r.size.fits_direct_upload]
    pool = fitting or passing
    cheapest = min(r.cost or 0.0 for r in pool)
    tied = [r for r in pool if (r.cost or 0.0) <= cheapest * (1 + FLAT)]
    best, decided = break_tie(tied)
    assert best.size is not None and best.memory is not None
    others = [r for r in pool if r is not best]
    cheaper_too_big = [r for r in passing if r not in fitting and (r.cost or 0.0) < cheapest * (1 - FLAT)]
    cost = f"${best.cost:,.2f} per million requests at {best.memory.recommended_mb:,} MB"
    zip_mb = best.size.zip / 2**20
    if fitting:
        why = f"{best.label} is the cheapest that passes verification and fits the 50 MB direct upload ({cost}, {zip_mb:.1f} MB zipped)"
        if cheaper_too_big:
            why += f"; {', '.join(r.label for r in cheaper_too_big)} would cost less but only deploys through S3"
    else:
        why = (
            f"{best.label} is the cheapest that passes verification ({cost}); none that passes fits the 50 MB "
            f"direct upload, so its {zip_mb:.1f} MB zip must go through S3"
        )
    if len(tied) > 1:
        names = ", ".join(r.label for r in tied if r is not best)
        why += f"; {names} cost{'s' if len(tied) == 2 else ''} the same within {FLAT:.0%}, and {decided}"
    if not others and len(passing) == 1 and len(rows) > 1:
        why += "; it is the only one that passed"
    return best, why


def fits_direct_upload(zip_bytes: int) -> bool:
    return zip_bytes <= ZIP_DIRECT_UPLOAD
