"""The request's timings, logged as one JSON line when ``LAMB_LOG_TIMING=1``.

A context variable, so requests answered by several threads at once keep their own.
"""

from __future__ import annotations

import contextvars

_timings: contextvars.ContextVar = contextvars.ContextVar("lamb_timing", default=None)


def start(enabled: bool):
    """Begin collecting for this request (nothing when not ``enabled``); returns the token to ``stop``."""
    return _timings.set({} if enabled else None)


def stop(token) -> dict | None:
    """What was collected since ``start`` (None when not enabled)."""
    collected = _timings.get()
    _timings.reset(token)
    return collected


def record(name: str, ms: float) -> None:
    collected = _timings.get()
    if collected is not None:
        collected[name] = ms
