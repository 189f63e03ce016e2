"""What a ``lamb serve`` session did: ``ServeReport`` (``render`` draws it, ``--json`` serialises it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lamb.cost import FunctionAdvice


@dataclass
class ServeReport:
    """What a ``lamb serve`` session did, reported when it stops."""

    artifact: Path | None
    url: str
    workers: int
    requests: int = 0
    unhandled_errors: int = 0
    rejected: int = 0  # bad HTTP requests (wrong path, not JSON, too large): never reached a worker
    init_ms: list[float] = field(default_factory=list)  # each worker's cold start
    p50_ms: float | None = None  # request latency as the HTTP client saw it (queueing included)
    p95_ms: float | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    advice: FunctionAdvice | None = None  # memory and timeout from the requests served, as lamb invoke advises them
    runtime_client: str = ""  # what runs the handler: AWS's awslambdaric, or lamb's stand-in bootstrap
