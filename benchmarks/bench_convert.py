"""How much does ``lamb convert`` cost over calling the TensorFlow converter yourself?

Both sides start from the same Xception-shaped .h5 (299x299, 10 classes) and end with a .tflite
on disk:

- baseline: ``keras.models.load_model`` -> ``tf.lite.TFLiteConverter.from_keras_model`` ->
  ``convert()`` -> write the bytes, the four lines every tutorial shows;
- lamb: ``lamb.convert.convert_model`` (load with fallback, ExportArchive + converter, read the
  signature back, hash source and result, write .tflite and manifest atomically).

Runs alternate (baseline, lamb, baseline, lamb, ...) so drift on a shared machine hits both alike,
after one unmeasured warm-up of each (TensorFlow loads kernels lazily on first use). Both wall
time and CPU time (user+sys of all threads) are reported: on a busy machine wall time swings by
2x from run to run while CPU time does not, so the verdict uses CPU time. With ``--cli`` it also
times whole processes: ``lamb convert`` vs a ``python -c`` running the baseline, both paying the
TensorFlow import. Target: lamb's overhead <= 10 % of the baseline (median).

    .venv/bin/python benchmarks/bench_convert.py [--reps 3] [--cli]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine
from xception_model import ensure_xception_h5

TARGET_OVERHEAD = 0.10

BASELINE_SNIPPET = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, tensorflow as tf
model = keras.models.load_model(sys.argv[1], compile=False)
data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
open(sys.argv[2], "wb").write(data)
"""


def baseline(source: Path, out: Path) -> int:
    import keras
    import tensorflow as tf

    model = keras.models.load_model(source, compile=False)
    # from_keras_model prints the temporary SavedModel's endpoints (one line per variable).
    with contextlib.redirect_stdout(io.StringIO()):
        data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    out.write_bytes(data)
    return len(data)


def with_lamb(source: Path, out: Path) -> int:
    from lamb.convert import convert_model

    return convert_model(source, out).model_bytes


def timed(fn, *args) -> tuple[tuple[float, float], int]:
    """((wall s, CPU s), result) for one call in this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    size = fn(*args)
    return (time.perf_counter() - wall, time.process_time() - cpu), size


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_process(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one whole process."""
    wall, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - wall, _children_cpu() - cpu


def row(name: str, base: list[tuple[float, float]], lamb: list[tuple[float, float]]) -> str:
    cells = []
    for k in (0, 1):  # wall, CPU
        b, m = statistics.median(t[k] for t in base), statistics.median(t[k] for t in lamb)
        cells.append((b, m, (m - b) / b))
    verdict = "ok" if cells[1][2] <= TARGET_OVERHEAD else "OVER TARGET"
    (bw, mw, ow), (bc, mc, oc) = cells
    return f"{name:<20} {bw:>8.1f} {mw:>8.1f} {ow:>+8.1%}   {bc:>8.1f} {mc:>8.1f} {oc:>+8.1%}   {verdict}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="measured runs per side (median reported)")
    parser.add_argument("--cli", action="store_true", help="also time whole processes (lamb convert vs python -c)")
    args = parser.parse_args()
    print(describe_machine(), flush=True)  # the CPU and load every figure below was measured on

    from lamb import tflog

    tflog.configure(verbose=False)
    tflog.quiet_tensorflow()
    source = ensure_xception_h5()
    print(f"model: {source} ({source.stat().st_size / 1e6:.1f} MB, Xception 299x299x3 -> 10)")

    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp_name:
        tmp = Path(tmp_name)
        with tflog.capture_fd2():  # converter chatter on fd 2, as lamb hides it
            baseline(source, tmp / "warm_base.tflite")
            with_lamb(source, tmp / "warm_lamb.tflite")
        base_times: list[tuple[float, float]] = []
        lamb_times: list[tuple[float, float]] = []
        sizes: dict[str, int] = {}
        for i in range(args.reps):
            with tflog.capture_fd2():
                t, sizes["baseline"] = timed(baseline, source, tmp / f"base_{i}.tflite")
                base_times.append(t)
                t, sizes["lamb"] = timed(with_lamb, source, tmp / f"lamb_{i}.tflite")
                lamb_times.append(t)
            print(f"  run {i + 1}: wall/CPU baseline {base_times[-1][0]:.1f}/{base_times[-1][1]:.1f} s, "
                  f"lamb {lamb_times[-1][0]:.1f}/{lamb_times[-1][1]:.1f} s", flush=True)

        cli_base: list[tuple[float, float]] = []
        cli_lamb: list[tuple[float, float]] = []
        if args.cli:
            lamb_exe = Path(sys.executable).with_name("lamb")
            for i in range(args.reps):
                cli_base.append(run_process([sys.executable, "-c", BASELINE_SNIPPET, str(source), str(tmp / f"pb_{i}.tflite")]))
                cli_lamb.append(run_process([str(lamb_exe), "convert", str(source), "-o", str(tmp / f"pl_{i}.tflite")]))
                print(f"  process run {i + 1}: wall/CPU baseline {cli_base[-1][0]:.1f}/{cli_base[-1][1]:.1f} s, "
                      f"lamb {cli_lamb[-1][0]:.1f}/{cli_lamb[-1][1]:.1f} s", flush=True)

    print()
    print(f"{'':<20} {'---------- wall s ----------':>28}   {'---------- CPU s -----------':>28}")
    print(f"{'median of ' + str(args.reps):<20} {'TF':>8} {'lamb':>8} {'overhead':>8}   {'TF':>8} {'lamb':>8} {'overhead':>8}   "
          f"target <= {TARGET_OVERHEAD:.0%} (CPU)")
    print(row("in-process", base_times, lamb_times))
    if args.cli:
        print(row("whole process (CLI)", cli_base, cli_lamb))
    print(f"{'.tflite MB':<20} {sizes['baseline'] / 1e6:>8.2f} {sizes['lamb'] / 1e6:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
