"""Which engine: every (runtime library, quantization mode) on the Xception shape, side by side.

For each row, from the same .h5 (benchmarks/xception_model.py: 299x299, 10 classes, random
weights), in fresh processes:

- ``lamb convert MODEL --runtime-lib LIB -q MODE`` (int8 calibrated on models/demo/samples), then
  ``lamb verify --samples N --images models/demo/samples --json``: the error against Keras (max
  error / output range, cosine, top-1 agreement) as verify reports it, on the library that ships;
- ``lamb package --json`` (python3.12, x86_64): the zip and unzipped MB, where packaging succeeds
  (otherwise the reason is printed in the row);
- timing, as the shipped handler runs the model: 1 thread, ``--rounds`` fresh processes, each
  importing the library and loading the model (init ms), one first call (first-call ms) and
  ``--warm`` warm calls (warm ms, median); medians over rounds. The rounds are interleaved (round
  1 of every row, then round 2 of every row...), so a noisy neighbour on a shared machine slows
  every row alike rather than one;
- $ per million requests at 1,769 MB (one full vCPU, what a 1-thread figure measures) from
  ``lamb.cost.cost_per_million`` (x86_64 prices);

and prints every row beside the baseline from the same run, ai-edge-litert float32 (what lamb
shipped before ONNX Runtime), under a line naming the CPU (model, arch, the instruction sets that
decide int8's speed), the load while it ran and the library versions timed.

    .venv/bin/python benchmarks/bench_engines.py [--rounds 3] [--warm 15] [--samples 32] [--json out.json]

``--settings`` instead times ONNX Runtime's quantizer settings (lamb/convert/onnx.py's docstring
quotes the figures): the float32 ONNX model quantized with each of ``SETTINGS``, same timing loop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine
from xception_model import ensure_xception_h5

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "models" / "demo" / "samples"
ROWS = [(lib, mode) for lib in ("ai-edge-litert", "onnxruntime") for mode in ("float32", "float16", "dynamic", "int8")]
BASELINE = ("ai-edge-litert", "float32")
MEMORY_MB = 1769  # Lambda's one full vCPU (lamb.cost.FULL_VCPU_MB)
MB = 2**20  # MiB, as Lambda counts its limits and the docs' figures do

# One fresh process: import the library, load the model with 1 thread, one first call, warm calls.
TIMER = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
lib, path, warm = sys.argv[1], sys.argv[2], int(sys.argv[3])
if lib == "onnxruntime":
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in i.shape]
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    call = lambda: s.run(None, {i.name: x})
else:
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=1); it.allocate_tensors()
    d = it.get_input_details()[0]
    x = np.random.default_rng(0).uniform(-1, 1, d["shape"]).astype(np.float32)
    scale, zero = d["quantization"]
    if d["dtype"] != np.float32:
        x = np.clip(np.round(x / scale + zero), -128, 127).astype(d["dtype"])
    def call():
        it.set_tensor(d["index"], x); it.invoke()
init = (time.perf_counter() - t0) * 1e3
t = time.perf_counter(); call(); first = (time.perf_counter() - t) * 1e3
times = []
for _ in range(warm):
    t = time.perf_counter(); call(); times.append((time.perf_counter() - t) * 1e3)
times.sort()
print(json.dumps({"init": init, "first": first, "warm": times[len(times) // 2]}))
"""


def lamb(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The ``lamb`` CLI of this checkout, in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", "from lamb.cli import app; app()", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)


def time_once(lib: str, model: Path, warm: int) -> dict[str, float]:
    """One fresh process: init, first call and the median warm call, in ms."""
    done = subprocess.run([sys.executable, "-c", TIMER, lib, str(model), str(warm)], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "timer failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in ("init", "first", "warm")}


def timing(lib: str, model: Path, rounds: int, warm: int) -> dict[str, float]:
    return medians([time_once(lib, model, warm) for _ in range(rounds)])


def time_interleaved(rows: list[dict[str, Any]], rounds: int, warm: int) -> None:
    """Each row's medians over ``rounds``, the rows taking turns round by round."""
    runs: dict[int, list[dict[str, float]]] = {i: [] for i, r in enumerate(rows) if "model" in r}
    for _ in range(rounds):
        for i in runs:
            runs[i].append(time_once(rows[i]["runtime_lib"], Path(rows[i]["model"]), warm))
    for i, done in runs.items():
        rows[i].update(medians(done))
        rows[i]["usd_per_million"] = cost_per_million(rows[i]["warm"])


def cost_per_million(warm_ms: float) -> float:
    from lamb import cost

    return cost.cost_per_million(warm_ms, MEMORY_MB)


def versions() -> str:
    """The runtime library releases this Python times (the venv's, not the target's)."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for lib in ("ai-edge-litert", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{lib} {version(lib)}")
    return ", ".join(found)


def prepare(h5: Path, lib: str, mode: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Convert, verify and package one row; its timing comes later (``time_interleaved``)."""
    from lamb import runtime_lib

    folder = work / f"{lib}-{mode}"
    folder.mkdir()
    suffix = runtime_lib.get(lib).format.suffix
    row: dict[str, Any] = {"runtime_lib": lib, "mode": mode}
    convert = ["convert", str(h5), "--runtime-lib", lib, "-q", mode, "--preprocess", "xception", "-o", f"model{suffix}"]
    if mode == "int8":
        convert += ["--calibration", str(SAMPLES)]
    done = lamb(*convert, cwd=folder)
    if done.returncode:
        return {**row, "error": f"convert: {done.stderr.strip()[-200:]}"}
    model = folder / f"model{suffix}"
    row["file_mb"] = model.stat().st_size / MB
    # The library the manifest's format ships, the version `lamb package` would ship (as verify chooses it).
    done = lamb("verify", "--samples", str(args.samples), "--images", str(SAMPLES), "--json", cwd=folder)
    try:
        verified = json.loads(done.stdout)
        out = verified["outputs"][0]
        row.update(verdict=verified["verdict"], max_rel=out["max_rel"], cosine=out["cosine"], top1=out["top1"])
    except (json.JSONDecodeError, KeyError, IndexError):
        row["verdict"] = f"verify failed: {done.stderr.strip()[-160:]}"
    done = lamb("package", "--runtime", "python3.12", "--json", cwd=folder)
    try:
        packaged = json.loads(done.stdout)
        unzipped = sum(c["unzipped"] for c in packaged["budget"]["components"])
        row.update(zip_mb=packaged["bytes"] / MB, unzipped_mb=unzipped / MB)
    except (json.JSONDecodeError, KeyError, TypeError):
        row["package"] = " ".join(done.stderr.split())[:200] or "no output"
    row["model"] = str(model)
    return row


def _settings() -> dict[str, Any]:
    """ONNX Runtime quantizer settings to compare: name -> function(src, pre, out, reader)."""
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    def static(fmt, act, rr=False):
        return lambda src, pre, out, reader: quantize_static(pre, out, reader(), quant_format=fmt, per_channel=True,
                                                             reduce_range=rr, activation_type=act, weight_type=QuantType.QInt8)

    return {
        "dynamic QInt8 (defaults, no pre-processing)": lambda src, pre, out, reader: quantize_dynamic(src, out, weight_type=QuantType.QInt8),
        "dynamic QInt8 per-channel": lambda src, pre, out, reader: quantize_dynamic(pre, out, weight_type=QuantType.QInt8, per_channel=True),
        "dynamic MatMul/Gemm only": lambda src, pre, out, reader: quantize_dynamic(pre, out, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"]),
        "dynamic QUInt8 (lamb's dynamic)": lambda src, pre, out, reader: quantize_dynamic(pre, out, weight_type=QuantType.QUInt8),
        "static QDQ per-channel U8/S8": static(QuantFormat.QDQ, QuantType.QUInt8),
        "static QDQ per-channel S8/S8": static(QuantFormat.QDQ, QuantType.QInt8),
        "static QOperator per-channel U8/S8": static(QuantFormat.QOperator, QuantType.QUInt8),
        "static QDQ per-channel U8/S8 reduce_range (lamb's int8)": static(QuantFormat.QDQ, QuantType.QUInt8, rr=True),
    }


def settings_table(h5: Path, args: argparse.Namespace) -> str:
    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="bench-engines-settings-") as tmp:
        work = Path(tmp)
        done = lamb("convert", str(h5), "--runtime-lib", "onnxruntime", "--preprocess", "xception", "-o", "f32.onnx", cwd=work)
        if done.returncode:
            raise SystemExit(f"convert failed: {done.stderr.strip()[-300:]}")
        src, pre = work / "f32.onnx", work / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        name = onnx.load(str(src), load_external_data=False).graph.input[0].name

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                rng = np.random.default_rng(0)
                self._it = iter([{name: rng.uniform(-1, 1, (1, 299, 299, 3)).astype(np.float32)} for _ in range(8)])

            def get_next(self):
                return next(self._it, None)

        lines = ["| setting | MB | init ms | first ms | warm ms |", "|---|---:|---:|---:|---:|"]
        t = timing("onnxruntime", src, args.rounds, args.warm)
        lines.append(f"| float32 | {src.stat().st_size / MB:.1f} | {t['init']:.0f} | {t['first']:.0f} | {t['warm']:.0f} |")
        for i, (label, make) in enumerate(_settings().items()):
            out = work / f"s{i}.onnx"
            make(str(src), str(pre), str(out), Reader)
            t = timing("onnxruntime", out, args.rounds, args.warm)
            lines.append(f"| {label} | {out.stat().st_size / MB:.1f} | {t['init']:.0f} | {t['first']:.0f} | {t['warm']:.0f} |")
            print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines)


def render(rows: list[dict[str, Any]], machine: str) -> str:
    base = next((r for r in rows if (r["runtime_lib"], r["mode"]) == BASELINE and "warm" in r), None)
    head = ("| runtime library | mode | max err / range | top-1 | file MB | zip MB | unzipped MB | init ms | first ms "
            "| warm ms | vs baseline | $ / 1M |")
    lines = [machine, "", head, "|" + "---|" * 2 + "---:|" * 10]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['runtime_lib']} | {r['mode']} | {r['error']} |" + " |" * 9)
            continue
        ratio = f"{r['warm'] / base['warm']:.2f}x" if base else "-"
        zip_mb = f"{r['zip_mb']:.1f}" if "zip_mb" in r else "n/a"
        unzipped = f"{r['unzipped_mb']:.1f}" if "unzipped_mb" in r else "n/a"
        err = f"{r['max_rel']:.1e}" if "max_rel" in r else r.get("verdict", "-")
        top1 = f"{r['top1']:.0%}" if "top1" in r else "-"
        lines.append(
            f"| {r['runtime_lib']} | {r['mode']} | {err} | {top1} | {r['file_mb']:.1f} | {zip_mb} | {unzipped} "
            f"| {r['init']:.0f} | {r['first']:.0f} | {r['warm']:.0f} | {ratio} | {r['usd_per_million']:.2f} |"
        )
    notes = sorted({f"{r['runtime_lib']} {r['mode']}: package: {r['package']}" for r in rows if "package" in r})
    return "\n".join([*lines, "", *notes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm", type=int, default=15)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--rows", default=None, help="comma-separated LIB:MODE to measure (default: all)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--settings", action="store_true", help="time ONNX Runtime's quantizer settings instead")
    args = parser.parse_args()
    h5 = ensure_xception_h5()
    if args.settings:
        print(describe_machine() + f"; timed on {versions()}")
        print(settings_table(h5, args))
        return
    wanted = [tuple(r.split(":")) for r in args.rows.split(",")] if args.rows else ROWS
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        rows = []
        for lib, mode in wanted:
            rows.append(prepare(h5, lib, mode, Path(tmp), args))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        before = describe_machine()
        time_interleaved(rows, args.rounds, args.warm)
        # The load before and after the timing: both, so a reader sees what the rows shared the CPU with.
        machine = f"{before}; after timing: {describe_machine().rsplit('; ', 1)[-1]}; timed on {versions()}"
    for row in rows:
        row.pop("model", None)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(render(rows, machine))


if __name__ == "__main__":
    main()
