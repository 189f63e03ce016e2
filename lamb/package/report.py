"""What ``lamb package`` built and found: ``PackageReport`` (``render`` draws it, ``--json`` serialises it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lamb import layout, runtime_lib
from lamb import manifest as mf
from lamb.manifest import SmokeResult
from lamb.package import budget, bytecode
from lamb.release import audit, slim


@dataclass
class PackageReport:
    artifact: Path
    format: str  # "zip" | "image"
    target: str  # "python3.12-x86_64"
    target_description: str
    runtime_lib: runtime_lib.RuntimeLibChoice
    installed: dict[str, str]  # distribution -> version in the artifact
    wheel_source: str  # "cache" | "index" | "wheelhouse"
    slimming: list[slim.SlimResult]
    bytecode: bytecode.BytecodeResult
    budget: budget.BudgetReport
    smoke: SmokeResult
    # Every ELF file that ships (for an image: its pinned wheels, installed) judged against the
    # target's system: what a smoke run on this machine cannot see.
    audit: audit.AuditReport | None
    verification: str  # "passed on ai-edge-litert 2.3.0 (...)" or "skipped (--skip-verify)"
    sha256: str | None  # of the zip; None for an image context
    bytes: int  # zip size, or the context folder's size
    seconds: float
    warnings: list[str] = field(default_factory=list)
    record: mf.PackageRecord | None = None  # what the manifest now says about this artifact
    handler: str = layout.HANDLER_FILE  # the entry that ships as lambda_function.py: lamb's, or --handler's path
    handler_offers: list[str] = field(default_factory=list)  # what lambkit offers an entry to import
    optimized: str = ""  # the model pre-optimized for this CPU (ONNX Runtime), or why not; "" for other libraries

    @property
    def slimmed_bytes(self) -> int:
        return sum(r.bytes_saved for r in self.slimming)
