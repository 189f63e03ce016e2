"""Benchmark: the lamb artifact's cold start and warm latency on the Xception-shaped model.

Side by side, in one run, same .tflite, same thread count, same 640x480 JPEG:

- **lamb**: the zip `lamb package` builds (float32 model), unpacked and run by
  ``lamb.local.LocalFunction`` (``python -I -S -B``: the artifact and the standard library only,
  no .pyc written, as on Lambda's read-only task root). It carries bytecode compiled by the
  target's own Python (``unchecked-hash`` .pyc) when this machine has that Python.
- **lamb, no .pyc**: the same build with ``--no-bytecode``, which is what a target whose Python
  is not on the build machine gets: every cold start compiles NumPy's Python modules.
- **TensorFlow handler**: the same handler logic, but the function imports TensorFlow and runs the
  same .tflite on ``tf.lite.Interpreter`` (what a function that ships TensorFlow does).
- **Keras handler** (``--keras``): imports TensorFlow and runs the original .h5 with Keras.
- **litert-benchmark**: the LiteRT benchmark tool's median for the .tflite (no handler at all).

Targets: lamb init <= 0.4 s; lamb cold start (init + first invocation) >= 10x faster than the
TensorFlow handler's; lamb warm inference <= 1.1x the litert-benchmark median. Preprocessing
(decode + resize + scaling) is reported separately: LAMB_LOG_TIMING=1 makes the handler log it.

    .venv/bin/python benchmarks/bench_invoke.py [--threads 1] [--cold 5] [--warm 30] [--keras]

The artifact targets python3.12 (ai-edge-litert 2.x, the same library litert-benchmark ships
with) when a python3.12 interpreter is found, else this machine's Python. Outputs are cached in
benchmarks/out/invoke/ (git-ignored). The machine is shared: read medians, not single runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from xception_model import OUT_DIR, ensure_xception_h5

OUT = OUT_DIR / "invoke"
INIT_TARGET_MS = 400.0
COLD_SPEEDUP_TARGET = 10.0
WARM_RATIO_TARGET = 1.1

TF_HANDLER = '''
import json, os, sys, time
sys.path.append({site!r})  # TensorFlow ships in this function (a container image would hold it)
import tensorflow as tf
import lambkit as lamb  # the same decoding and preprocessing as the lamb handler

_MANIFEST = json.load(open(os.path.join(os.path.dirname(__file__), "manifest.json")))
{load}

def lambda_handler(event, context):
    t0 = time.perf_counter()
    image = lamb.decode_image(lamb.image_bytes(event))
    x = lamb.preprocess(lamb.image_to_pixels(image, (299, 299)), _MANIFEST["preprocess"])[None]
    t1 = time.perf_counter()
    scores = predict(x)
    t2 = time.perf_counter()
    print(json.dumps({{"lamb_timing": {{"preprocess_ms": (t1 - t0) * 1000, "inference_ms": (t2 - t1) * 1000}}}}))
    return {{str(i): float(s) for i, s in enumerate(scores)}}
'''

TF_LITE_LOAD = '''
_interpreter = tf.lite.Interpreter(model_path="model.tflite", num_threads=int(os.environ["LAMB_NUM_THREADS"]))
_interpreter.allocate_tensors()
_in = _interpreter.get_input_details()[0]["index"]
_out = _interpreter.get_output_details()[0]["index"]

def predict(x):
    _interpreter.set_tensor(_in, x)
    _interpreter.invoke()
    return _interpreter.get_tensor(_out).reshape(-1)
'''

KERAS_LOAD = '''
import keras
tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["LAMB_NUM_THREADS"]))
tf.config.threading.set_inter_op_parallelism_threads(1)
_model = keras.models.load_model("model.h5", compile=False)

def predict(x):
    return _model(x, training=False).numpy().reshape(-1)
'''


def find_python312() -> str | None:
    from lamb.targets import find_python

    return find_python("3.12")


def convert(h5: Path) -> Path:
    """The float32 conversion's manifest (cached)."""
    from lamb import manifest as mf
    from lamb.convert import convert_model

    tflite = OUT / "xception_10.tflite"
    manifest = mf.manifest_path_for(tflite)
    if not manifest.is_file() or not tflite.is_file():
        print("converting the Xception model (float32) ...", flush=True)
        convert_model(h5, tflite, preprocess="xception")
    return manifest


def package(manifest: Path, runtime: str, bytecode: bool = True) -> Path:
    from lamb.package import build_package

    output = OUT / f"xception-{runtime}-x86_64{'' if bytecode else '-nopyc'}.zip"
    from lamb.package.build import HANDLER_TEMPLATE

    # Rebuild when the model, the handler or lamb's packaging code changed since the cached zip.
    lamb_dir = Path(HANDLER_TEMPLATE).parents[1]
    code = [Path(HANDLER_TEMPLATE), *lamb_dir.joinpath("package").glob("*.py"), *(lamb_dir / n for n in ("targets.py", "layout.py"))]
    newest_input = max(manifest.stat().st_mtime, *(p.stat().st_mtime for p in code))
    if not output.is_file() or output.stat().st_mtime < newest_input:
        print(f"packaging for {runtime} ...", flush=True)
        report = build_package(manifest, runtime=runtime, arch="x86_64", output=output, skip_verify=True, smoke=False,
                               compile_bytecode=bytecode)
        print(f"  {report.artifact.name}: {report.bytes / 2**20:.1f} MB, runtime library {report.runtime_lib.requirement}")
    return output


def sample_event() -> dict:
    import base64

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return {"image": base64.b64encode(buf.getvalue()).decode()}


def timings(logs: str) -> dict[str, float]:
    for line in reversed(logs.splitlines()):
        if line.startswith('{"lamb_timing"'):
            return json.loads(line)["lamb_timing"]
    return {}


class Variant:
    """One function to measure: a task root, the Python that runs it, its settings."""

    def __init__(self, name: str, root: Path, python: str | None, memory: int, init_timeout: float = 10.0, cold: int = 5):
        self.name, self.root, self.python, self.memory, self.init_timeout, self.cold = name, root, python, memory, init_timeout, cold
        self.inits: list[float] = []
        self.firsts: list[float] = []
        self.warm: dict[str, list[float]] = {"handler": [], "inference": [], "inference_cpu": [], "preprocess": []}
        self.peak_rss_mb = 0.0

    def function(self, threads: int):
        from lamb.local import LocalFunction, RunSettings

        env = {"LAMB_NUM_THREADS": str(threads), "LAMB_LOG_TIMING": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
        settings = RunSettings(memory_mb=self.memory, timeout_s=300, init_timeout_s=self.init_timeout, env=env, python=self.python)
        return LocalFunction(self.root, settings)

    def record(self, result, *, cold: bool) -> None:
        if result.error:
            raise SystemExit(f"{self.name}: {result.error['errorType']}: {result.error['errorMessage']}\n{result.logs}")
        self.peak_rss_mb = max(self.peak_rss_mb, result.peak_rss_mb or 0.0)
        if cold:
            self.inits.append(result.init_ms)
            self.firsts.append(result.invoke_ms)
            return
        t = timings(result.logs)
        self.warm["handler"].append(result.invoke_ms)
        self.warm["inference"].append(t["inference_ms"])
        self.warm["inference_cpu"].append(t.get("inference_cpu_ms", float("nan")))
        self.warm["preprocess"].append(t["preprocess_ms"] + t.get("decode_ms", 0.0) + t.get("input_ms", 0.0))

    def row(self) -> dict:
        med = statistics.median
        return {
            "init_ms": med(self.inits), "first_ms": med(self.firsts),
            "cold_ms": med([a + b for a, b in zip(self.inits, self.firsts)]),
            "handler_ms": med(self.warm["handler"]), "inference_ms": med(self.warm["inference"]),
            "inference_cpu_ms": med(self.warm["inference_cpu"]), "preprocess_ms": med(self.warm["preprocess"]),
            "peak_rss_mb": self.peak_rss_mb,
        }


def cold_starts(variants: list[Variant], event: dict, threads: int) -> None:
    """Round-robin cold starts, so every variant sees the same (shared, noisy) machine."""
    for r in range(max(v.cold for v in variants)):
        for v in variants:
            if r < v.cold:
                with v.function(threads) as fn:
                    v.record(fn.invoke(event), cold=True)


def warm_runs(v: Variant, event: dict, threads: int, n: int, between=None, rounds: int = 3) -> None:
    """``n`` warm invocations in ``rounds`` batches, ``between()`` after each batch (a reference
    measured there sees the same load)."""
    with v.function(threads) as fn:
        for _ in range(3):  # settle caches and thread pools
            fn.invoke(event)
        for _ in range(rounds):
            for _ in range(max(1, n // rounds)):
                v.record(fn.invoke(event), cold=False)
            if between is not None:
                between()


def tf_task_root(base: Path, lamb_root: Path, h5: Path, keras: bool) -> Path:
    root = base / ("keras" if keras else "tf")
    root.mkdir()
    site = sysconfig.get_paths()["purelib"]  # lamb's venv: TensorFlow, Keras
    (root / "lambda_function.py").write_text(TF_HANDLER.format(site=site, load=KERAS_LOAD if keras else TF_LITE_LOAD))
    shutil.copytree(lamb_root / "lambkit", root / "lambkit")
    shutil.copy2(lamb_root / "lamb.json", root / "manifest.json")
    shutil.copy2(lamb_root / "model.tflite", root / "model.tflite")
    if keras:
        shutil.copy2(h5, root / "model.h5")
    return root


def litert_benchmark(tflite: Path, threads: int, runs: int) -> tuple[float, str]:
    exe = Path(sys.executable).with_name("litert-benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [str(exe), "--model", str(tflite), "--num_threads", str(threads), "--num_runs", str(runs),
               "--warmup_runs", "5", "--result_json", str(out)]
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(out.read_text())["latency"]["median_ms"], " ".join(cmd[1:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads everywhere (Lambda: 1 vCPU per 1,769 MB)")
    parser.add_argument("--cold", type=int, default=5, help="cold starts of the lamb artifact (TF: 3)")
    parser.add_argument("--warm", type=int, default=30, help="warm invocations measured")
    parser.add_argument("--memory", type=int, default=2048)
    parser.add_argument("--python", help="interpreter for the python3.12 artifact [default: found]")
    parser.add_argument("--keras", action="store_true", help="also the Keras .h5 handler (slow)")
    args = parser.parse_args()
    print(describe_machine(), flush=True)  # the CPU and load every figure below was measured on

    from lamb import manifest as mf
    from lamb.package.standin import unpack_artifact

    OUT.mkdir(parents=True, exist_ok=True)
    h5 = ensure_xception_h5()
    manifest = convert(h5)
    tflite = mf.read(manifest).model_path(manifest)
    python = args.python or find_python312()
    runtime = "python3.12" if python else f"python{sys.version_info.major}.{sys.version_info.minor}"
    artifact = package(manifest, runtime)
    artifact_nopyc = package(manifest, runtime, bytecode=False)
    event = sample_event()

    work = Path(tempfile.mkdtemp(prefix="bench-invoke-"))
    try:
        root = unpack_artifact(artifact, work / "lamb")
        from lamb import runtime_lib
        from lamb.release.wheels import installed_distributions

        lib = {k: v for k, v in installed_distributions(root).items() if k in runtime_lib.names()}
        print(f"lamb artifact: {artifact.name} ({artifact.stat().st_size / 2**20:.0f} MB zip), {lib}, "
              f"run with {python or sys.executable}; {args.threads} thread(s), {args.memory} MB", flush=True)
        litert_medians: list[float] = []
        litert_cmd = ""

        def reference() -> None:
            nonlocal litert_cmd
            median, litert_cmd = litert_benchmark(tflite, args.threads, max(10, args.warm // 3))
            litert_medians.append(median)

        nopyc = unpack_artifact(artifact_nopyc, work / "lamb-nopyc")
        variants = [
            Variant("lamb artifact", root, python, args.memory, cold=args.cold),
            Variant("lamb, no .pyc", nopyc, python, args.memory, cold=args.cold),
            Variant("TensorFlow handler", tf_task_root(work, root, h5, keras=False), None, 4096, init_timeout=180, cold=args.cold),
        ]
        if args.keras:
            variants.append(Variant("Keras .h5 handler", tf_task_root(work, root, h5, keras=True), None, 4096, init_timeout=180, cold=3))
        print(f"cold starts, round-robin ({', '.join(v.name for v in variants)}) ...", flush=True)
        cold_starts(variants, event, args.threads)
        print("warm invocations (the lamb artifact's interleaved with litert-benchmark) ...", flush=True)
        warm_runs(variants[0], event, args.threads, args.warm, between=reference)
        for v in variants[1:]:
            warm_runs(v, event, args.threads, max(6, args.warm // 3), rounds=1)
        rows = {v.name: v.row() for v in variants}
        litert_ms = statistics.median(litert_medians)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    header = (f"{'':22} {'init ms':>8} {'1st call':>9} {'cold ms':>8} {'warm inference':>15} {'(CPU ms)':>9} "
              f"{'warm handler':>13} {'preprocess':>11} {'peak RSS':>9}")
    print(header)
    print("-" * len(header))
    for name, r in rows.items():
        print(f"{name:22} {r['init_ms']:8.0f} {r['first_ms']:9.0f} {r['cold_ms']:8.0f} {r['inference_ms']:15.1f} "
              f"{r['inference_cpu_ms']:9.1f} {r['handler_ms']:13.1f} {r['preprocess_ms']:11.1f} {r['peak_rss_mb']:8.0f}M")
    print(f"{'litert-benchmark':22} {'':8} {'':9} {'':8} {litert_ms:15.1f}   (median of per-round medians; {litert_cmd})")
    print("(medians; init = process start + handler import incl. model load, Lambda's Init Duration; cold = init + first\n"
          " invocation; preprocess = base64 + JPEG decode + resize + scaling, not in 'inference')")

    print(f"litert-benchmark medians per round: {', '.join(f'{m:.1f}' for m in litert_medians)} ms; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    tf_row = rows["TensorFlow handler"]
    ratio = rows["lamb artifact"]["inference_ms"] / litert_ms
    checks = []
    for name in ("lamb artifact", "lamb, no .pyc"):
        row = rows[name]
        # "Cold start" is Lambda's Init Duration: starting the runtime and importing the handler,
        # model load included. The first invocation is inference, which both pay alike.
        speedup = tf_row["init_ms"] / row["init_ms"]
        checks.append((f"{name}: init {row['init_ms']:.0f} ms <= {INIT_TARGET_MS:.0f} ms", row["init_ms"] <= INIT_TARGET_MS))
        checks.append((f"{name}: cold start (init) {speedup:.1f}x faster than the TensorFlow handler's "
                       f"(target >= {COLD_SPEEDUP_TARGET:.0f}x; init + first call: {tf_row['cold_ms'] / row['cold_ms']:.1f}x)",
                       speedup >= COLD_SPEEDUP_TARGET))
    checks.append((f"warm inference {ratio:.2f}x the litert-benchmark median (target <= {WARM_RATIO_TARGET}x)", ratio <= WARM_RATIO_TARGET))
    print()
    for text, ok in checks:
        print(f"  [{'PASS' if ok else 'MISS'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
