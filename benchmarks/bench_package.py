"""Benchmark: lamb's Lambda zip vs the naive `pip install --target` zip, on the Xception-shaped model.

Baseline (what the course does): ``pip install --target`` of ``ai-edge-litert`` + Pillow for the
python3.12 Lambda runtime, plus the float32 .tflite, zipped as is. We measured it at 130 MB zipped
/ 237 MB unzipped: over the 50 MB direct-upload limit and close to the 250 MB unzipped one.

lamb: ``build_package`` for python3.12-x86_64 with the model converted float32, float16 and
dynamic-range. Targets: dynamic-range zip <= 50 MB (direct upload), float16 <= 120 MB unzipped.
Every lamb artifact is smoke-run and its cold start and inference time are printed: on the
artifact itself where this machine has the target's Python (pyenv's python3.12, say), else on a
labelled host stand-in.

    .venv/bin/python benchmarks/bench_package.py [--runtime python3.12] [--arch x86_64]

Conversions are cached in benchmarks/out/package/ (git-ignored); wheels in the lamb cache.
Packaging skips `lamb verify` (bench_verify measures that); the smoke run proves each zip runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from xception_model import OUT_DIR, ensure_xception_h5

MB = 2**20
TARGET_DYNAMIC_ZIP = 50 * MB
TARGET_FLOAT16_UNZIPPED = 120 * MB


def converted(h5: Path, quantize: str) -> Path:
    """The manifest of the Xception model converted with ``quantize`` (cached)."""
    from lamb import manifest as mf

    out = OUT_DIR / "package" / f"xception_{quantize}.tflite"
    manifest = mf.manifest_path_for(out)
    if manifest.is_file() and out.is_file():
        return manifest
    from lamb import tflog
    from lamb.convert import convert_model

    tflog.configure(False)
    with tflog.capture_fd2():
        result = convert_model(h5, out, quantize=quantize, preprocess="xception")
    return result.manifest_path


def naive_zip(tflite: Path, runtime: str, arch: str, work: Path) -> tuple[int, int, float]:
    """What the course does: plain `pip install --target` (pip's defaults, so with bytecode) of
    ai-edge-litert + Pillow for the target's tags, plus the float32 model, zipped as is."""
    import subprocess

    from lamb import targets
    from lamb.release import wheels

    target = targets.get_target(runtime, arch)
    start = time.perf_counter()
    deps = work / "naive"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(deps), "--find-links", str(wheels.cache_dir()),
         *wheels.target_args(target), "ai-edge-litert", "pillow"],
        check=True,
    )
    shutil.copyfile(tflite, deps / "model.tflite")
    zpath = work / "naive.zip"
    unzipped = 0
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(deps.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(deps).as_posix())
                unzipped += p.stat().st_size
    return zpath.stat().st_size, unzipped, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--arch", default="x86_64")
    args = parser.parse_args()
    print(describe_machine(), flush=True)  # the CPU and load every figure below was measured on

    from lamb.package import build_package

    h5 = ensure_xception_h5()
    manifests = {q: converted(h5, q) for q in ("float32", "float16", "dynamic")}
    from lamb import manifest as mf

    work = Path(tempfile.mkdtemp(prefix="bench-package-"))
    try:
        float32_tflite = mf.read(manifests["float32"]).model_path(manifests["float32"])
        n_zip, n_unzipped, n_s = naive_zip(float32_tflite, args.runtime, args.arch, work)
        rows = [("naive pip --target + float32", n_zip, n_unzipped, n_s, None)]
        for q, manifest in manifests.items():
            report = build_package(
                manifest, runtime=args.runtime, arch=args.arch, output=work / f"lamb_{q}.zip", skip_verify=True
            )
            rows.append((f"lamb {q}", report.budget.total_zipped, report.budget.total_unzipped, report.seconds, report))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nlamb package benchmark: Xception-shaped model (299x299, 10 classes), {args.runtime}-{args.arch}")
    print("baseline measured by the project: naive zip 130 MB zipped / 237 MB unzipped (python3.12)\n")
    head = f"{'artifact':32} {'zipped MB':>10} {'unzipped MB':>12} {'build s':>8} {'cold ms':>8} {'infer ms':>9}  runtime lib"
    print("(MB = 2**20 bytes, as Lambda counts its limits; the baseline above is in 10**6-byte MB: 124 / 226 MiB)")
    print(head)
    print("-" * len(head))
    for name, zipped, unzipped, seconds, report in rows:
        cold = infer = "-"
        lib = "ai-edge-litert (unpinned)"
        if report is not None:
            if report.smoke.ran and report.smoke.passed:
                cold, infer = f"{report.smoke.init_ms:.0f}", f"{report.smoke.invoke_ms:.0f}"
            lib = report.runtime_lib.requirement
        print(f"{name:32} {zipped / MB:10.1f} {unzipped / MB:12.1f} {seconds:8.1f} {cold:>8} {infer:>9}  {lib}")
    dynamic = next(r for r in rows if r[0] == "lamb dynamic")
    float16 = next(r for r in rows if r[0] == "lamb float16")
    ok_dyn = dynamic[1] <= TARGET_DYNAMIC_ZIP
    ok_f16 = float16[2] <= TARGET_FLOAT16_UNZIPPED
    print()
    print(f"target: dynamic-range zip <= 50 MB:      {dynamic[1] / MB:.1f} MB  {'MET' if ok_dyn else 'MISSED'}")
    print(f"target: float16 unzipped <= 120 MB:      {float16[2] / MB:.1f} MB  {'MET' if ok_f16 else 'MISSED'}")
    smoke = rows[1][4].smoke
    print(f"smoke runs: {smoke.label}")
    slim_total = rows[1][4].slimmed_bytes
    print(f"slimming removed {slim_total / MB:.1f} MB unzipped from the dependencies:")
    for r in rows[1][4].slimming:
        print(f"  {r.rule:30} {r.files:5d} files {r.bytes_saved / MB:7.1f} MB")
    return 0 if (ok_dyn and ok_f16) else 1


if __name__ == "__main__":
    sys.exit(main())
