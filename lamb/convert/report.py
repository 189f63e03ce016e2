"""What ``lamb convert`` wrote and found: ``ConversionResult`` (``render`` draws it, ``--json`` serialises it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb import manifest as mf


@dataclass
class ConversionResult:
    """What ``convert_model`` wrote and what it found out on the way."""

    model_path: Path
    manifest_path: Path
    manifest: mf.Manifest
    seconds: float  # wall time of load + convert + write
    source_bytes: int
    model_bytes: int
    notes: list[str] = field(default_factory=list)  # loader fallback, preprocessing inference, ...
    # One line each, said apart from the notes: "none" recorded without evidence, no labels.
    warnings: list[str] = field(default_factory=list)
    # --preprocess given against what the model shows (its base model, a layer that rescales);
    # the CLI warns with it unless --allow-preprocess-mismatch.
    preprocess_mismatch: str | None = None
    # ``-q auto``: the CompareReport (lamb.compare) that chose the mode; None otherwise.
    comparison: Any = None

    @property
    def size_ratio(self) -> float:
        return self.model_bytes / self.source_bytes if self.source_bytes else 0.0
