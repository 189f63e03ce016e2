"""``lamb compare`` on the Xception-shaped model, against converting and verifying each mode by hand.

Both sides start from the same .h5 (299x299, 10 classes), the default modes (float32, float16,
dynamic; int8 needs calibration images) and 32 seeded samples, each in fresh processes:

- baseline: per mode, ``lamb convert MODEL -q MODE`` then ``lamb verify --samples 32``: TensorFlow
  imported, the model loaded and Keras run once per mode and step;
- lamb: one ``lamb compare MODEL --runtime-lib ai-edge-litert --samples 32``: the model loaded and Keras run once, every mode
  converted from that load and checked against the same reference outputs. It also projects each
  mode's zip and times its handler, work the baseline does not do.

Runs alternate, so drift on a shared machine hits both; medians and the ratio are printed (target:
compare <= 0.6x the baseline). Then the comparison's own table (size, error, warm ms, cost), and
dynamic-range against float32 warm inference as the shipped handler achieves it (1 thread, fresh
process, the library the target ships).

    .venv/bin/python benchmarks/bench_compare.py [--reps 2] [--samples 32]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine
from xception_model import OUT_DIR, ensure_xception_h5

REPO = Path(__file__).resolve().parent.parent
MODES = ("float32", "float16", "dynamic")
MiB = 2**20


def lamb(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The ``lamb`` CLI of this checkout in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", "from lamb.cli import app; app()", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def baseline(h5: Path, samples: int) -> float:
    """Seconds for convert + verify, once per mode, each step its own process."""
    work = Path(tempfile.mkdtemp(prefix="bench-compare-base-"))
    try:
        t0 = time.perf_counter()
        for mode in MODES:
            folder = work / mode
            folder.mkdir()
            done = lamb("convert", str(h5), "-q", mode, "--preprocess", "xception", cwd=folder)
            if done.returncode:
                raise SystemExit(f"lamb convert -q {mode} failed: {done.stderr.strip()[-400:]}")
            done = lamb("verify", "--samples", str(samples), cwd=folder)
            if done.returncode not in (0, 1):
                raise SystemExit(f"lamb verify ({mode}) failed: {done.stderr.strip()[-400:]}")
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(h5: Path, samples: int) -> tuple[float, dict]:
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    try:
        t0 = time.perf_counter()
        # One library, as the baseline converts and verifies for (the default compares every library the target has).
        done = lamb("compare", str(h5), "--samples", str(samples), "--preprocess", "xception", "--runtime-lib", "ai-edge-litert",
                    "--json", cwd=work)
        seconds = time.perf_counter() - t0
        if done.returncode not in (0, 1):
            raise SystemExit(f"lamb compare failed: {done.stderr.strip()[-400:]}")
        return seconds, json.loads(done.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2, help="alternating runs of each side (medians are printed)")
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    print(describe_machine(), flush=True)  # the CPU and load every figure below was measured on

    h5 = ensure_xception_h5(OUT_DIR)
    print(f"model: {h5} ({h5.stat().st_size / MiB:.1f} MB), modes {', '.join(MODES)}, {args.samples} samples", flush=True)
    base_runs: list[float] = []
    lamb_runs: list[float] = []
    report: dict = {}
    for rep in range(args.reps):
        lamb_s, report = compare(h5, args.samples)
        lamb_runs.append(lamb_s)
        print(f"  rep {rep + 1}: lamb compare {lamb_s:.1f} s", flush=True)
        base_s = baseline(h5, args.samples)
        base_runs.append(base_s)
        print(f"  rep {rep + 1}: convert + verify per mode {base_s:.1f} s", flush=True)

    base, mine = statistics.median(base_runs), statistics.median(lamb_runs)
    print()
    print("| | wall time (median) |")
    print("|---|---:|")
    print(f"| `lamb convert -q M && lamb verify --samples {args.samples}`, once per mode | {base:.1f} s |")
    print(f"| `lamb compare --runtime-lib ai-edge-litert --samples {args.samples}` (also sizes and times each mode) | {mine:.1f} s |")
    print(f"| ratio (target <= 0.6x) | **{mine / base:.2f}x** |")
    phases = report.get("seconds", {})
    print("\nlamb compare's phases (last run): " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))

    print(f"\ntarget {report['target']}; {report['estimate_note']}")
    memories = report["memory_settings"]
    print("| mode | verdict | max err / range | top-1 (95 % low) | .tflite MB | zip MB | init ms | warm ms | inference ms | "
          + " | ".join(f"$/1M @ {m} MB" for m in memories) + " | advised memory |")
    print("|---" * (9 + len(memories) + 1) + "|")
    for row in report["rows"]:
        if row["status"] != "verified" or row["speed"] is None:
            print(f"| {row['mode']} | {row['status']}: {row['reason']} |")
            continue
        size, speed = row["size"], row["speed"]
        mark = " ★" if row["mode"] == report["recommended"] else ""
        costs = " | ".join(f"{p['cost_per_million']:.2f}" for p in row["costs"])
        top1 = f"{row['top1']:.0%} ({row['top1_lower']:.0%})" if row["top1"] is not None else "-"
        print(f"| {row['mode']}{mark} | {row['verdict']} | {row['max_rel']:.1e} | {top1} | {size['tflite'] / MiB:.1f} | "
              f"{size['zip'] / MiB:.1f} | {speed['init_ms']:.0f} | {speed['warm_ms']:.1f} | {speed['inference_ms']:.1f} | "
              f"{costs} | {row['memory']['recommended_mb']} |")
    print(f"\nrecommended: {report['why']}")

    rows = {r["mode"]: r for r in report["rows"] if r.get("speed")}
    if "float32" in rows and "dynamic" in rows:
        f32, dyn = rows["float32"]["speed"], rows["dynamic"]["speed"]
        print(
            f"\ndynamic-range vs float32 through the shipped handler ({f32['where']}): warm request "
            f"{dyn['warm_ms']:.1f} / {f32['warm_ms']:.1f} ms = {dyn['warm_ms'] / f32['warm_ms']:.2f}x; "
            f"interpreter invoke alone {dyn['inference_ms']:.1f} / {f32['inference_ms']:.1f} ms = "
            f"{dyn['inference_ms'] / f32['inference_ms']:.2f}x"
        )


if __name__ == "__main__":
    main()
