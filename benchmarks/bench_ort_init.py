"""ONNX Runtime's cold start on the Xception shape, before and after pre-optimizing the model.

For float32 and int8 (``lamb convert --runtime-lib onnxruntime``, int8 calibrated on
models/demo/samples; kept in benchmarks/out/), each variant in ``--rounds`` fresh processes,
interleaved (round 1 of every variant, then round 2...), one thread as the handler runs by default:

- ``plain``: the model as ``lamb convert`` wrote it, one file (the session optimizes the graph at
  ORT_ENABLE_ALL as it loads);
- ``plain, weights apart``: the same model as ``lamb package`` ships it (``lamb.convert.onnx.ship``:
  its weights in model.onnx.data), what a CPU other than the one that packaged it loads;
- ``pre-optimized``: the file ``lamb package`` ships beside it (``lambkit.backends.ort.preoptimize``,
  made once here), loaded by the handler's own backend, which turns optimizations off for it.

Init is split as Lambda's init phase pays it: imports (NumPy and onnxruntime), session creation
(the handler's ``OnnxRuntimeBackend``) and the first call; medians over rounds, under a line
naming the CPU and the load. Done when init (imports + session) is <= 200 ms for both modes.

    .venv/bin/python benchmarks/bench_ort_init.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine
from xception_model import OUT_DIR, ensure_xception_h5

REPO = Path(__file__).resolve().parent.parent
HANDLER = REPO / "lamb" / "handler"
SAMPLES = REPO / "models" / "demo" / "samples"
MODES = ("float32", "int8")
GOAL_MS = 200.0

# One fresh process, as Lambda's init runs the handler: imports, the backend's session, first call.
TIMER = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import onnxruntime
t1 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from lambkit.backends.ort import OnnxRuntimeBackend
record = json.loads(sys.argv[3])
backend = OnnxRuntimeBackend(sys.argv[2], record, 1)
t2 = time.perf_counter()
spec = backend.input
x = np.random.default_rng(0).uniform(-1, 1, (1, *spec.size, 3)).astype(np.float32)
backend.run(x)
t3 = time.perf_counter()
print(json.dumps({"imports": (t1 - t0) * 1e3, "session": (t2 - t1) * 1e3, "first": (t3 - t2) * 1e3, "path": backend.path}))
"""


def converted(mode: str) -> Path:
    """The Xception shape converted for onnxruntime in ``mode``, kept in benchmarks/out/."""
    folder = OUT_DIR / f"ort-{mode}"
    model = folder / "model.onnx"
    if model.is_file():
        return model
    folder.mkdir(parents=True, exist_ok=True)
    args = ["convert", str(ensure_xception_h5()), "--runtime-lib", "onnxruntime", "-q", mode, "--preprocess", "xception",
            "-o", str(model)]
    if mode == "int8":
        args += ["--calibration", str(SAMPLES)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", "from lamb.cli import app; app()", *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"convert {mode} failed: {done.stderr.strip()[-300:]}")
    return model


def preoptimized(model: Path) -> dict:
    """The record entry of the model pre-optimized beside it, as ``lamb package`` makes it."""
    sys.path.insert(0, str(HANDLER))
    from lambkit.backends.ort import OPTIMIZED_FILE, preoptimize

    return preoptimize(str(model), str(model.with_name(OPTIMIZED_FILE)))


def weights_apart(model: Path) -> Path:
    """The model as ``lamb package`` ships it: its weights in a file of their own."""
    sys.path.insert(0, str(REPO))
    from lamb.convert.onnx import ship

    folder = model.parent / "apart"
    folder.mkdir(exist_ok=True)
    ship(model, [], folder / "model.onnx")
    return folder / "model.onnx"


def once(model: Path, record: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", TIMER, str(HANDLER), str(model), json.dumps(record)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"timing failed: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import onnxruntime

    variants = {}
    for mode in MODES:
        model = converted(mode)
        entry = preoptimized(model)
        variants[(mode, "plain")] = (model, {})
        variants[(mode, "plain, weights apart")] = (weights_apart(model), {})
        variants[(mode, "pre-optimized")] = (model, {"package": {"optimized": entry}})
    before = describe_machine()
    runs: dict[tuple[str, str], list[dict]] = {key: [] for key in variants}
    for _ in range(args.rounds):
        for key, (model, record) in variants.items():
            runs[key].append(once(model, record))
    print(f"{before}; after: {describe_machine().rsplit('; ', 1)[-1]}; onnxruntime {onnxruntime.__version__}, 1 thread, "
          f"{args.rounds} interleaved rounds of fresh processes, medians")
    print("| mode | model loaded | imports ms | session ms | init ms (imports + session) | first call ms | init <= 200 ms |")
    print("|---|---|---:|---:|---:|---:|---|")
    for (mode, variant), done in runs.items():
        med = {k: statistics.median(r[k] for r in done) for k in ("imports", "session", "first")}
        init = statistics.median(r["imports"] + r["session"] for r in done)
        loaded = Path(done[0]["path"]).relative_to(OUT_DIR / f"ort-{mode}")
        print(f"| {mode} | {variant} ({loaded}) | {med['imports']:.0f} | {med['session']:.0f} | {init:.0f} | {med['first']:.0f} "
              f"| {'yes' if init <= GOAL_MS else 'no'} |")


if __name__ == "__main__":
    main()
