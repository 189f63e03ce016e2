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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamb.compare.report import ModeSpeed
from lamb.errors import ArtifactError
from lamb.handler.lambkit.cpu import Cpu, this_cpu
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
        cpu=this_cpu(),
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


@dataclass
class IsaCheck:
    """This machine's CPU against what Lambda gives the target's arch, as ``lamb probe`` read it.

    Lambda does not document its CPUs. int8 (and dynamic-range) models run faster than float32
    only on a CPU with an int8 dot-product instruction (``Cpu.int8_dot``): a speed-up timed here on
    AVX-512 VNNI says nothing of a target that may lack it. So an integer mode is credited with its
    speed-up only when this machine has no such instruction (the target can only do as well) or
    every CPU probed on the target has one.
    """

    host: Cpu
    arch: str  # the target's
    target: list[tuple[Cpu, str]]  # each CPU probed on Lambda for the arch, with where and when

    @property
    def credits_int8(self) -> bool:
        if not self.host.int8_dot:
            return True
        return bool(self.target) and all(cpu.int8_dot for cpu, _source in self.target)

    def notes(self, rows: list[Any]) -> list[str]:
        """What the timing's CPU means for the target (differing instruction sets, or none known),
        then the integer ``rows`` priced at float32's time."""
        if not any(r.speed is not None for r in rows):
            return []
        host = self.host.describe()
        notes = []
        if not self.target:
            notes.append(f"timed on {host}; which CPU Lambda gives {self.arch} functions is not documented and not measured "
                         f"here (`lamb probe --arch {self.arch}` reads it)")
        for cpu, source in self.target:
            if cpu.isa != self.host.isa:
                lacks = [f for f in self.host.features if f not in cpu.features]
                has = [f for f in cpu.features if f not in self.host.features]
                diff = "; ".join(([f"it lacks {', '.join(lacks)}"] if lacks else []) + ([f"it has {', '.join(has)}, this machine not"] if has else []))
                notes.append(f"timed on {host}; {source} read {cpu.describe()}" + (f": {diff}" if diff else ""))
        uncredited = [r.label for r in rows if r.speed is not None and credited_warm_ms(r, rows, self) > r.speed.warm_ms]
        if uncredited:
            notes.append(f"{', '.join(uncredited)} priced at float32's warm time, not at their own: they ran faster on this "
                         f"machine's {', '.join(self.host.int8_features)}, an int8 dot-product instruction the target is not "
                         "known to have")
        return notes


def isa_check(arch: str) -> IsaCheck:
    """This machine's CPU against every CPU ``lamb probe`` read on Lambda for ``arch``."""
    from lamb import measured

    return IsaCheck(this_cpu(), arch, [(cpu, m.source()) for cpu, m in measured.cpus(arch)])


def credited_warm_ms(row: Any, rows: list[Any], check: IsaCheck) -> float:
    """The warm time a row is priced at: its own, except an integer mode's speed-up over float32 on
    an instruction set the target is not known to have, which is not credited (float32's time)."""
    from lamb import runtime_lib
    from lamb.quantization import DEFAULT

    assert row.speed is not None
    integer = runtime_lib.get(row.runtime_lib).format.mode(row.mode).weights.lstrip("u").startswith("int")
    if not integer or check.credits_int8:
        return float(row.speed.warm_ms)
    floats = [r.speed.warm_ms for r in rows if r.runtime_lib == row.runtime_lib and r.mode == DEFAULT and r.speed is not None]
    return max([float(row.speed.warm_ms), *floats])
