"""The verdict of ``lamb verify``: ``VerifyReport``, and ``OutputMismatch`` raised from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lamb.errors import VerificationFailed
from lamb.manifest import Verification
from lamb.quantization import Tolerances
from lamb.verify.accuracy import AccuracyReport
from lamb.verify.compare import Check, OutputMetrics


@dataclass
class VerifyReport:
    """What ``verify_model`` found: the CLI renders it, ``--json`` serialises it, the manifest keeps it."""

    passed: bool
    source_path: Path
    model_path: Path
    model_sha256: str
    manifest_path: Path | None
    quantization: str
    quantization_source: str  # "manifest" | "inferred from the converted model" | "given" | "default"
    preprocess: str
    # The runtime library the converted model ran on.
    runtime_lib: str
    runtime_lib_version: str
    runtime_python: str  # the interpreter the runner ran on, and where the library came from
    samples: int
    seed: int
    images: int
    skipped_images: int
    tolerances: Tolerances
    outputs: list[OutputMetrics] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one sentence per failed check
    error: str | None = None  # the runtime library could not load or run the model at all
    error_hint: str | None = None  # the way out of ``error``, as the library's record explains it
    skipped: list[str] = field(default_factory=list)  # "<file>: <why>" for undecodable images
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    recorded: bool = False  # the verdict was written into the manifest
    # "pass" | "pass with warning" | "not enough evidence" | "fail" (lamb.verify.evidence); the first two pass
    verdict: str = ""
    warnings: list[str] = field(default_factory=list)  # e.g. a top-1 rate whose 95 % lower bound misses the limit
    accuracy: AccuracyReport | None = None  # --labeled-images: accuracy in every preprocessing mode, judged
    # What computed the reference outputs: "keras" for a Keras source; for a model given as .onnx,
    # "onnx.reference" (independent of ONNX Runtime) or "onnxruntime-unoptimized" (the weaker one).
    reference: str = "keras"
    reference_label: str = ""  # the sentence the report shows naming the reference (lamb.source.ReferenceOutputs.label)
    images_dir: str | None = None  # the --images folder, relative to the manifest's when inside it

    def __post_init__(self) -> None:
        if not self.verdict:
            self.verdict = "pass" if self.passed else "fail"

    def raise_for_failure(self) -> None:
        if not self.passed:
            raise OutputMismatch(self)

    def to_verification(self) -> Verification:
        return Verification(
            passed=self.passed,
            model_sha256=self.model_sha256,
            runtime_lib=self.runtime_lib,
            runtime_lib_version=self.runtime_lib_version,
            samples=self.samples,
            images=self.images,
            skipped_images=self.skipped_images,
            tolerances=self.tolerances.as_dict(),
            metrics=[m.as_dict() for m in self.outputs],
            failures=list(self.failures),
            error=self.error,
            verdict=self.verdict,
            warnings=list(self.warnings),
            accuracy=self.accuracy.record() if self.accuracy is not None else None,
            seed=self.seed,
            images_dir=self.images_dir,
        )


class OutputMismatch(VerificationFailed):
    """The converted model does not compute what the source model computes; carries the report."""

    def __init__(self, report: VerifyReport):
        self.report = report
        if report.error:
            message = report.error
            hint = report.error_hint or "ship a runtime library that can run the model, or convert it again"
        elif report.accuracy is not None and report.accuracy.failures and report.accuracy.failures[0] == report.failures[0]:
            message = f"{report.model_path.name} gives wrong answers: " + report.accuracy.failures[0]
            hint = (
                f"re-run `lamb convert` with --preprocess {report.accuracy.better}, then `lamb verify` again"
                if report.accuracy.better else "try a less aggressive --quantize mode, or check the images' labels"
            )
        elif report.verdict == "not enough evidence":
            message = f"{report.model_path.name} is not proven to match {report.source_path.name}: " + report.failures[0]
            hint = "lamb verify --images DIR with real images like those the function will see"
        else:
            first = report.failures[0] if report.failures else "a check failed"
            more = f" (and {len(report.failures) - 1} more)" if len(report.failures) > 1 else ""
            message = f"{report.model_path.name} does not match {report.source_path.name}: {first}{more}"
            hint = (
                "re-run `lamb convert`; if the model is quantized, a looser --atol/--rtol/--min-top1 "
                "may be justified, or try a less aggressive --quantize mode"
            )
        super().__init__(message, hint)
