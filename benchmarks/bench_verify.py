"""How long does ``lamb verify`` take on the Xception-shaped model, and where does the time go?

Both sides check the same float32 .tflite against the same .h5 (299x299, 10 classes) on the same
100 seeded inputs (uniform pixels through Xception preprocessing):

- baseline: the check people write by hand: ``keras.models.load_model`` -> ``predict`` (batch 32)
  -> ``ai_edge_litert`` Interpreter in the same process, one ``invoke`` per sample -> max |diff|;
- lamb: ``lamb.verify.verify_model`` (runtime library in a subprocess started first, so it loads
  while Keras loads; Keras predicts, then the runner invokes; all metrics; verdict written to the
  manifest). Overlapping the two computations was tried and was 15 % slower on 2 cores.

Phases come from ``VerifyReport.timings``. TensorFlow is imported and the model loaded once,
unmeasured, before anything is timed; runs alternate so drift on a shared machine hits both.
With ``--modes`` it also converts the model in other quantization modes and prints the errors
each one shows: the measurements behind the default tolerances in ``lamb.runtime_lib.litert.MODES``.

    .venv/bin/python benchmarks/bench_verify.py [--samples 100] [--reps 3] [--modes float16,dynamic,int8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine
from xception_model import OUT_DIR, ensure_xception_h5

PHASES = [
    ("load_keras", "load Keras model"),
    ("keras_predict", "Keras predict (batched)"),
    ("model_load", "import runtime lib + load .tflite"),
    ("model_invoke", "TFLite invoke (in the runner)"),
    ("model_run", "TFLite run incl. .npy transfer"),
    ("metrics", "metrics"),
    ("total", "total"),
]


def converted(h5: Path, mode: str) -> Path:
    """The model converted by ``lamb convert`` in ``mode``; reused when newer than the .h5."""
    from lamb.convert import convert_model

    out = OUT_DIR / "verify" / mode / "xception.tflite"
    manifest = out.with_name("xception.lamb.json")
    if out.is_file() and manifest.is_file() and out.stat().st_mtime > h5.stat().st_mtime:
        return manifest
    from lamb import runtime_lib

    calibration = None
    if runtime_lib.find_mode(mode).calibrated:
        calibration = calibration_images(OUT_DIR / "verify" / "calibration")
    t0 = time.perf_counter()
    result = convert_model(h5, out, quantize=mode, preprocess="xception", calibration=calibration)
    print(f"  (converted {mode} in {time.perf_counter() - t0:.1f} s)", flush=True)
    return result.manifest_path


def calibration_images(folder: Path, n: int = 32) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        path = folder / f"calib_{i:02d}.png"
        if not path.exists():
            Image.fromarray(rng.integers(0, 256, (299, 299, 3), dtype=np.uint8)).save(path)
    return folder


def baseline(h5: Path, tflite: Path, samples: int, seed: int) -> dict[str, float]:
    """The hand-written check, timed phase by phase."""
    import keras
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    from lamb.handler.lambkit import preprocess

    t = {}
    start = time.perf_counter()
    t0 = time.perf_counter()
    model = keras.models.load_model(h5, compile=False)
    t["load_keras"] = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    x = preprocess(rng.uniform(0, 255, size=(samples, 299, 299, 3)).astype(np.float32), "xception")
    t0 = time.perf_counter()
    expected = model.predict(x, batch_size=32, verbose=0)
    t["keras_predict"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    t["model_load"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = []
    for i in range(samples):
        interpreter.set_tensor(inp, x[i : i + 1])
        interpreter.invoke()
        got.append(interpreter.get_tensor(out).copy())
    t["model_invoke"] = t["model_run"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    float(np.abs(np.concatenate(got) - expected).max())
    t["metrics"] = time.perf_counter() - t0
    t["total"] = time.perf_counter() - start
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)  # ~2 min per rep on 2 cores; medians, the machine is shared
    parser.add_argument("--modes", default="", help="also measure these quantization modes' errors, e.g. float16,dynamic,int8")
    args = parser.parse_args()
    print(describe_machine(), flush=True)  # the CPU and load every figure below was measured on

    from lamb import tflog

    tflog.configure(False)
    h5 = ensure_xception_h5()
    manifest = converted(h5, "float32")
    from lamb import manifest as mf
    from lamb.verify import VerifyInputs, verify_model

    tflite = mf.read(manifest).model_path(manifest)

    # Warm-up, unmeasured: TensorFlow import, Keras kernels, file cache for both sides.
    print("warm-up ...", flush=True)
    with tflog.capture_fd2():
        baseline(h5, tflite, 4, seed=1)
    # (its verdict lands in the manifest; the measured runs below overwrite it)
    verify_model(manifest_path=manifest, inputs=VerifyInputs(samples=4, seed=1))

    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "lamb": []}
    for rep in range(args.reps):
        with tflog.capture_fd2():
            runs["baseline"].append(baseline(h5, tflite, args.samples, seed=0))
        report = verify_model(manifest_path=manifest, inputs=VerifyInputs(samples=args.samples, seed=0))
        assert report.passed, report.failures
        runs["lamb"].append(dict(report.timings))
        print(f"rep {rep + 1}: baseline {runs['baseline'][-1]['total']:.1f} s, lamb {report.timings['total']:.1f} s", flush=True)

    print()
    print(f"lamb verify, {args.samples} samples, Xception 299x299x3 -> 10 (float32), median of {args.reps} runs; "
          f"runtime {report.runtime_lib} {report.runtime_lib_version}; {os.cpu_count()} CPUs")
    print(f"{'phase':<42}{'baseline':>10}{'lamb':>10}")
    for key, title in PHASES:
        b = statistics.median(r.get(key, 0.0) for r in runs["baseline"])
        lam = statistics.median(r.get(key, 0.0) for r in runs["lamb"])
        print(f"{title:<42}{b:>9.2f}s{lam:>9.2f}s")
    b_total = statistics.median(r["total"] for r in runs["baseline"])
    l_total = statistics.median(r["total"] for r in runs["lamb"])
    print(f"lamb / baseline: {l_total / b_total:.2f}x  (the runtime's load overlaps the Keras load)")
    m = report.outputs[0]
    print(f"float32 errors: max abs {m.max_abs:.3g}, max/range {m.max_rel:.3g}, cosine {m.cosine:.8f}, top-1 {m.top1:.0%}")

    modes = [m for m in args.modes.split(",") if m]
    if modes:
        print()
        print(f"errors per quantization mode ({args.samples} samples):")
        print(f"{'mode':<9}{'max abs':>10}{'max/range':>11}{'mean abs':>10}{'cosine':>11}{'top-1':>8}  verdict with defaults")
        for mode in ["float32", *modes]:
            path = converted(h5, mode)
            r = verify_model(manifest_path=path, inputs=VerifyInputs(samples=args.samples, seed=0))
            o = r.outputs[0]
            print(f"{mode:<9}{o.max_abs:>10.3g}{o.max_rel:>11.3g}{o.mean_abs:>10.3g}{o.cosine:>11.6f}{o.top1:>8.0%}  "
                  f"{'PASS' if r.passed else 'FAIL: ' + '; '.join(r.failures)}")


if __name__ == "__main__":
    main()
