"""Time the shipped handler: cold start and warm requests, in fresh processes, at 1 thread and
warm at 2 threads.

The handler runs as ``lamb invoke`` runs it (``lamb.local.LocalFunction``: ``python -I -S``, the
task root and the standard library only), with ``LAMB_NUM_THREADS=1`` because Lambda gives one
vCPU at 1,769 MB and the cost model scales one-thread time, and ``LAMB_LOG_TIMING=1`` so the
interpreter's own share of each request can be read from the handler's log. Above 1,769 MB the
handler runs a thread per vCPU: the same warm request at ``LAMB_NUM_THREADS=2`` gives the
speedup a second vCPU buys (``ModeSpeed.speedup``), measured here, when this machine has two CPUs.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from lamb.compare.report import ModeSpeed
from lamb.errors import ArtifactError
from lamb.local import LocalFunction, RunSettings

COLD_STARTS = 3  # fresh processes; the median is reported
MIN_WARM_RUNS = 10
MIN_WARM_SECONDS = 2.0  # keep going until the median rests on this much work...
MAX_WARM_RUNS = 60  # ...but never more requests than this
_KILL_LIMIT_MB = 10240  # time without Lambda's memory kill in the way; the RSS is reported instead


def _inference_ms(logs: str) -> float | None:
    for line in logs.splitlines():
        if '"lamb_timing"' in line:
            try:
                return float(json.loads(line)["lamb_timing"]["inference_ms"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


def _checked(invocation: Any, what: str) -> Any:
    """The invocation, or ArtifactError when the handler failed or answered with its own error."""
    problem = None
    if invocation.error is not None:
        problem = f"{invocation.error.get('errorType')}: {invocation.error.get('errorMessage')}"
    elif isinstance(invocation.response, dict) and "error" in invocation.response and "statusCode" in invocation.response:
        problem = str(invocation.response["error"])
    if problem is not None:
        raise ArtifactError(f"{what} failed: {problem}", "run `lamb invoke --repeat 5 --verbose` on a packaged artifact")
    return invocation


def time_handler(task_root: Path, event: dict, *, python: str | None, where: str) -> ModeSpeed:
    """Cold starts (median of ``COLD_STARTS``) and warm requests (median) of the handler."""
    env = {"LAMB_NUM_THREADS": "1", "LAMB_LOG_TIMING": "1"}
    inits: list[float] = []
    warm: list[float] = []
    inference: list[float] = []
    peak = 0.0
    for attempt in range(COLD_STARTS):
        settings = RunSettings(memory_mb=_KILL_LIMIT_MB, env=env, python=python)
        with LocalFunction(task_root, settings, function_name="lamb-compare") as function:
            if attempt:  # later processes only measure the cold start (the environment started on entry)
                if function.init_error is not None:
                    raise ArtifactError(f"the handler's init failed: {function.init_error.get('errorMessage')}", "run `lamb invoke --verbose` on a packaged artifact")
                inits.append(float(function.init_ms or 0.0))
                continue
            first = _checked(function.invoke(event), "the handler's first request")
            inits.append(float(first.init_ms or 0.0))
            peak = max(peak, float(first.peak_rss_mb or 0.0))
            started = time.perf_counter()
            while len(warm) < MAX_WARM_RUNS and (len(warm) < MIN_WARM_RUNS or time.perf_counter() - started < MIN_WARM_SECONDS):
                result = _checked(function.invoke(event), "a warm request")
                warm.append(float(result.invoke_ms or 0.0))
                peak = max(peak, float(result.peak_rss_mb or 0.0))
                ms = _inference_ms(result.logs)
                if ms is not None:
                    inference.append(ms)
    return ModeSpeed(
        init_ms=statistics.median(inits),
        warm_ms=statistics.median(warm),
        warm_2threads_ms=_two_threads(task_root, event, python),
        inference_ms=statistics.median(inference) if inference else None,
        runs=len(warm),
        peak_rss_mb=peak,
        where=where,
    )


def _two_threads(task_root: Path, event: dict, python: str | None) -> float | None:
    """The median warm request at ``LAMB_NUM_THREADS=2``; None when this machine has one CPU."""
    import os

    if len(os.sched_getaffinity(0)) < 2:
        return None
    env = {"LAMB_NUM_THREADS": "2"}
    warm: list[float] = []
    with LocalFunction(task_root, RunSettings(memory_mb=_KILL_LIMIT_MB, env=env, python=python), function_name="lamb-compare") as function:
        _checked(function.invoke(event), "the handler's first request at 2 threads")
        started = time.perf_counter()
        while len(warm) < MAX_WARM_RUNS and (len(warm) < MIN_WARM_RUNS or time.perf_counter() - started < MIN_WARM_SECONDS):
            warm.append(float(_checked(function.invoke(event), "a warm request at 2 threads").invoke_ms or 0.0))
    return statistics.median(warm)
