"""What ``lamb probe`` measured: ``ProbeReport`` (``render`` draws it, ``--json`` serialises it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lamb.handler.lambkit.cpu import Cpu


@dataclass
class ProbeReport:
    """What a probe measured (or, with ``plan``, the calls it would make)."""

    target: str  # "python3.13-arm64", or "this machine"
    region: str  # "eu-west-1", or "local"
    measured_at: str | None  # ISO 8601 UTC; None for a plan
    facts: dict[str, Any] = field(default_factory=dict)
    stored: str | None = None  # where the facts were kept (AWS probes only)
    function_name: str | None = None
    kept: bool = False  # the function and role were left in place (--keep)
    calls: list[str] = field(default_factory=list)  # the calls made, or planned ("lambda create_function")
    commands: list[list[str]] = field(default_factory=list)  # --plan: the AWS CLI commands
    cpu: Cpu | None = None  # the CPU it ran on: model, arch, the instruction sets that decide int8's speed
