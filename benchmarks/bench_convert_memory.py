"""Peak memory of ``lamb convert`` on the Xception shape, per runtime library (issue 22 item 9).

Each run is a fresh process, ``lamb convert xception_10.h5 --runtime-lib LIB`` (float32), started
from here. Two figures per run:

- peak RSS: the largest high-water mark (``VmHWM``) of any process in the run, the converting
  process or a helper it starts; what the kernel's OOM killer and a notebook's limit judge;
- peak tree RSS: the largest sum of ``VmRSS`` over the process and all its descendants, sampled
  every 20 ms (a helper running beside its parent counts twice).

Target: Keras -> ONNX at most 2.5 GB peak (an 8 GB laptop, a free notebook). Median of ``--reps``
runs; the CPU and the load (``benchmarks/machine.py``) are printed beside the figures.

Measured on 2026-12-07 (AMD EPYC, 2 cores, load 5 to 10 from other jobs), Keras -> ONNX, float32:
before (tf2onnx's command-line route) 6,940 MB peak RSS, 215 s (one run); after
(``lamb.convert.onnx._tf2onnx``: no grappler, constants kept out of TensorFlow's graph, a
collection before each tf2onnx optimiser) 1,886 MB (runs 1,886, 1,888, 1,883), 74 s, median of 3.

    flock /work/wt/heavy.lock .venv/bin/python benchmarks/bench_convert_memory.py [--reps 3] [--lib onnxruntime]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe, load
from xception_model import ensure_xception_h5

TARGET_MB = 2500
SAMPLE_S = 0.02


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def run_once(source: Path, lib: str, out_dir: Path) -> tuple[float, float, float]:
    """(peak RSS MB of any one process, peak tree RSS MB, wall s) of one ``lamb convert``."""
    cmd = [sys.executable, "-c", "from lamb.cli import app; app()", "convert", str(source),
           "--runtime-lib", lib, "-o", str(out_dir)]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=out_dir)
    hwm: dict[int, int] = {}
    tree_peak = 0
    while proc.poll() is None:
        pids = _descendants(proc.pid)
        tree_peak = max(tree_peak, sum(_status_kb(p, "VmRSS") for p in pids))
        for p in pids:
            hwm[p] = max(hwm.get(p, 0), _status_kb(p, "VmHWM"))
        time.sleep(SAMPLE_S)
    output = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"lamb convert failed ({proc.returncode}):\n{output}")
    return max(hwm.values(), default=0) / 1024, tree_peak / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--lib", action="append", help="runtime library (default: onnxruntime and ai-edge-litert)")
    args = parser.parse_args()
    libs = args.lib or ["onnxruntime", "ai-edge-litert"]
    source = ensure_xception_h5()
    print(f"{source.name} ({source.stat().st_size / 1e6:.1f} MB); {describe()} at the start")
    for lib in libs:
        rows = []
        for _ in range(args.reps):
            with tempfile.TemporaryDirectory(prefix="lamb-bench-mem-") as out:
                rows.append(run_once(source, lib, Path(out)))
        peak, tree, wall = (statistics.median(r[i] for r in rows) for i in range(3))
        verdict = "" if lib != "onnxruntime" else f"  target <= {TARGET_MB} MB: {'met' if peak <= TARGET_MB else 'NOT met'}"
        print(f"{lib:16s} peak RSS {peak:7.0f} MB  peak tree RSS {tree:7.0f} MB  wall {wall:5.1f} s "
              f"(median of {args.reps}; runs: {', '.join(f'{r[0]:.0f}' for r in rows)} MB){verdict}")
    print(f"{load()} at the end")


if __name__ == "__main__":
    main()
