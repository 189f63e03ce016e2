"""The machine a benchmark's figures were measured on, printed beside them: the CPU (its model,
arch and the instruction sets that decide a model's speed, from ``lambkit.cpu``, the one reader of
``/proc/cpuinfo``), the cores this process may use, and the load while it ran."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lamb.handler.lambkit.cpu import this_cpu


def load() -> str:
    """The 1-, 5- and 15-minute load averages ("" where the OS has none)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return ""
    return f"load {one:.2f} / {five:.2f} / {fifteen:.2f}"


def describe() -> str:
    """One line: "CPU: AMD EPYC (x86_64: AVX2, AVX-512F, AVX-512 VNNI); 2 cores; load 1.20 / 0.90 / 0.70"."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "; ".join(part for part in (f"CPU: {this_cpu().describe()}", f"{cores} cores", load()) if part)
