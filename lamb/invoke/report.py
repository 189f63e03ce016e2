"""What ``lamb invoke`` measured: ``InvokeReport`` (``render`` draws it, ``--json`` serialises it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb.cost import MemoryAdvice
from lamb.handler.lambkit.cpu import Cpu


@dataclass
class InvokeReport:
    """What one ``lamb invoke`` measured."""

    artifact: Path
    event_kind: str  # "event" | "image" | "url"
    response: Any  # the handler's return value, as is (None when it raised / timed out / crashed)
    error: dict[str, Any] | None  # Lambda's unhandled-error body (errorType, errorMessage, stackTrace)
    init_ms: float | None  # cold start: interpreter start + handler import (model load included)
    invoke_ms: float | None  # the first (cold) invocation
    warm_ms: list[float]  # each --repeat invocation
    warm_p50_ms: float | None
    warm_p95_ms: float | None
    peak_rss_mb: float | None
    memory_mb: int  # the setting it ran under
    recommended_memory_mb: int | None
    memory_advice: str  # one sentence: the setting and why (lamb.cost.advise_memory)
    python: str  # the interpreter that ran it ("3.11")
    logs: str = ""  # what the handler printed (init + first invocation)
    notes: list[str] = field(default_factory=list)
    memory: MemoryAdvice | None = None  # the figures behind the advice
    recommended_timeout_s: int | None = None  # the cold first request at that memory (lamb.cost.advise_function)
    cpu: Cpu | None = None  # the CPU the figures were measured on (this machine's)
    runtime_client: str = ""  # what ran the handler: AWS's awslambdaric, or lamb's stand-in bootstrap

    @property
    def status_code(self) -> int | None:
        """The handler's own status (proxy ``statusCode`` or a direct error's), if it gave one."""
        if isinstance(self.response, dict) and isinstance(self.response.get("statusCode"), int):
            return self.response["statusCode"]
        return None
