"""Prove that a ``.tflite`` computes what its Keras model computes, on the runtime Lambda will use.

``verify_model`` runs both models on the same inputs — seeded random pixels pushed through the
model's preprocessing, and/or real images decoded by the very functions the deployed handler uses —
and compares them output by output (``compare_outputs``, a pure function). The Keras side runs
in this process, batched; the ``.tflite`` runs in a subprocess (``_tflite_runner.py``) on the
runtime library the artifact ships (``ai-edge-litert`` or ``tflite-runtime``), never on
``tf.lite.Interpreter``: TensorFlow's own interpreter is always new enough for the converter that
produced the model, the shipped runtime may not be.

The verdict is a ``VerifyReport`` and is written into the manifest, so ``lamb package`` can refuse
a model that failed or was never verified. ``VerifyReport.raise_for_failure()`` raises
``OutputMismatch`` (a ``VerificationFailed`` carrying the report and the numbers).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lamb import manifest as manifest_mod
from lamb.errors import InputError, VerificationFailed
from lamb.manifest import Manifest, Verification
from lamb.runtime import RuntimeFailure, TFLiteRunner, explain_runtime_failure, lib_version, pick_runtime, resolve_runtime

DEFAULT_SAMPLES = 32
DEFAULT_SEED = 0
KERAS_BATCH = 32  # Keras runs batched; 32 bounds memory on a 299x299 model (~1 GB of activations)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


# -- tolerances ---------------------------------------------------------------------------------


@dataclass
class Tolerances:
    """What counts as "computes the same".

    Values agree when ``max |keras - tflite| <= atol + rtol * range(keras output)``: numpy's
    ``allclose`` shape, but relative to the reference output's *range* rather than to each element,
    because per-element relative error explodes on logits near zero and a whole-output scale is
    what a reader of the numbers cares about.
    """

    atol: float
    rtol: float
    min_cosine: float
    min_top1: float  # fraction of samples whose arg-max class agrees (classifier outputs only)
    top_k: int | None = None
    min_topk: float | None = None  # mean overlap of the two top-k class sets

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


# Defaults per quantization mode. Measured with TF 2.21 -> ai-edge-litert 2.3 as max error / output
# range, mean cosine, top-1 agreement on 100-200 seeded random inputs (benchmarks/bench_verify.py
# --modes prints the Xception column):
#              small CNN (tests)          Xception, random weights   demo model (trained, models/)
#   float32    2.6e-7 / 1.0     / 100 %   9.2e-7 / 1.0      / 100 %  2.3e-7 / 1.0      / 100 %
#   float16    2.6e-4 / 1.0     / 100 %   2.1e-4 / 1.0      / 100 %  3.7e-4 / 1.0      / 100 %
#   dynamic    4.0e-3 / 0.99999 / 100 %   7.0e-3 / 0.99998  / 100 %  1.2e-2 / 0.9999   / 100 %
#   int8       2.4e-2 / 0.99997 / 100 %   1.1e-2 / 0.99994  /  98 %  0.35   / 0.975    / 100 %
# - float32: the kernels differ from TensorFlow's only in summation order and fused ops, so the
#   bound sits ~100x above what we measured and still catches a 5 % change to one layer's weights.
# - float16: weights rounded to 11 significant bits: ~3e-4 of the range; bound 1e-2.
# - dynamic: int8 weights, activations quantized on the fly: ~1 % of the range; bound 10 %.
# - int8: the demo's 0.35 is random noise pushed through ranges calibrated on real images
#   (activations clip); on its own images it is 1.2 % and cosine 0.9999. So values are bounded
#   loosely and cosine plus top-1 agreement carry the verdict; verify int8 models with --images.
# atol only matters for outputs whose range is ~0 (a constant head); it is kept far below the
# range of any real logits. Cosine below these limits means the output's direction changed, which
# no rounding explains.
DEFAULT_TOLERANCES: dict[str, Tolerances] = {
    "float32": Tolerances(atol=1e-6, rtol=1e-4, min_cosine=0.9999, min_top1=0.99),
    "float16": Tolerances(atol=1e-5, rtol=1e-2, min_cosine=0.999, min_top1=0.97),
    "dynamic": Tolerances(atol=1e-4, rtol=0.1, min_cosine=0.99, min_top1=0.9),
    "int8": Tolerances(atol=1e-3, rtol=0.5, min_cosine=0.9, min_top1=0.8),
}


def default_tolerances(
    quantization: str,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    min_top1: float | None = None,
    min_cosine: float | None = None,
    top_k: int | None = None,
    min_topk: float | None = None,
) -> Tolerances:
    """The mode's defaults with any explicit value laid over them."""
    try:
        base = DEFAULT_TOLERANCES[quantization]
    except KeyError:
        raise InputError(
            f"unknown quantization mode {quantization!r}", f"use one of: {', '.join(DEFAULT_TOLERANCES)}"
        ) from None
    tol = dataclasses.replace(base)
    for name, value in (("atol", atol), ("rtol", rtol), ("min_top1", min_top1), ("min_cosine", min_cosine)):
        if value is not None:
            if value < 0 or (name.startswith("min_") and value > 1):
                raise InputError(
                    f"--{name.replace('_', '-')} {value} is out of range",
                    "tolerances are >= 0; --min-top1 and --min-cosine are fractions in [0, 1]",
                )
            setattr(tol, name, float(value))
    if top_k is not None:
        if top_k < 2:
            raise InputError(f"--top-k {top_k} is too small", "top-1 is always checked; use --top-k 2 or more")
        tol.top_k = int(top_k)
        tol.min_topk = float(min_topk if min_topk is not None else tol.min_top1)
    return tol


# -- the report -----------------------------------------------------------------------------------


@dataclass
class Check:
    """One row of the verdict: a metric of one output against its limit."""

    output: str
    metric: str  # "max_abs" | "max_rel" | "mean_abs" | "cosine" | "top1" | "top<k>" | "finite"
    value: float
    limit: float | None  # None: reported, not judged
    passed: bool | None  # None: reported, not judged
    comparison: str = "<="  # how value relates to limit when it passes: "<=" or ">="


@dataclass
class OutputMetrics:
    """How one output of the .tflite compares with the Keras model's."""

    name: str  # the Keras output's name
    tflite_name: str  # the signature key (or tensor name) on the TFLite side
    shape: list[int]  # per sample, without the batch dimension
    reference_range: float  # max - min of the Keras output over all samples
    # None when the .tflite produced NaN/inf (no meaningful number; the "finite" check fails).
    max_abs: float | None
    max_rel: float | None  # max_abs / reference_range; None when the reference is constant
    mean_abs: float | None
    cosine: float | None  # mean over samples of the cosine similarity of the flattened outputs
    top1: float | None = None  # classifier-shaped outputs only: (N, C) with C > 1
    topk: float | None = None
    k: int | None = None
    disagreements: list[int] = field(default_factory=list)  # sample indices whose top-1 differs (first 10)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class VerifyReport:
    passed: bool
    keras_path: Path
    tflite_path: Path
    tflite_sha256: str
    manifest_path: Path | None
    quantization: str
    quantization_source: str  # "manifest" | "inferred from the .tflite" | "given"
    preprocess: str
    runtime_lib: str
    runtime_version: str
    runtime_python: str  # the interpreter the runner ran on, and where the library came from
    samples: int
    seed: int
    images: int
    skipped_images: int
    tolerances: Tolerances
    outputs: list[OutputMetrics] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one sentence per failed check
    error: str | None = None  # the runtime could not load or run the model at all
    skipped: list[str] = field(default_factory=list)  # "<file>: <why>" for undecodable images
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    recorded: bool = False  # the verdict was written into the manifest

    def raise_for_failure(self) -> None:
        if not self.passed:
            raise OutputMismatch(self)

    def to_verification(self) -> Verification:
        return Verification(
            passed=self.passed,
            tflite_sha256=self.tflite_sha256,
            runtime_lib=self.runtime_lib,
            runtime_version=self.runtime_version,
            samples=self.samples,
            images=self.images,
            skipped_images=self.skipped_images,
            tolerances=self.tolerances.as_dict(),
            metrics=[m.as_dict() for m in self.outputs],
            failures=list(self.failures),
            error=self.error,
        )


class OutputMismatch(VerificationFailed):
    """The .tflite does not compute what the Keras model computes; carries the report."""

    def __init__(self, report: VerifyReport):
        self.report = report
        if report.error:
            message = report.error
            hint = (
                "ship a runtime library that can run the model (ai-edge-litert, lamb's default), or convert "
                "with a TensorFlow no newer than the runtime library"
            )
        else:
            first = report.failures[0] if report.failures else "a check failed"
            more = f" (and {len(report.failures) - 1} more)" if len(report.failures) > 1 else ""
            message = f"{report.tflite_path.name} does not match {report.keras_path.name}: {first}{more}"
            hint = (
                "re-run `lamb convert`; if the model is quantized, a looser --atol/--rtol/--min-top1 "
                "may be justified, or try a less aggressive --quantize mode"
            )
        super().__init__(message, hint)


# -- comparing outputs (pure) ---------------------------------------------------------------------


def compare_outputs(
    reference: Sequence[np.ndarray],
    candidate: Sequence[np.ndarray],
    names: Sequence[str],
    tolerances: Tolerances,
    *,
    tflite_names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[list[OutputMetrics], list[Check], list[str]]:
    """Compare paired outputs (each ``(N, ...)``); return metrics, checks and failure sentences."""
    all_metrics: list[OutputMetrics] = []
    checks: list[Check] = []
    failures: list[str] = []
    tflite_names = list(tflite_names or names)
    for name, tname, ref, out in zip(names, tflite_names, reference, candidate):
        ref = np.asarray(ref, dtype=np.float64)
        out = np.asarray(out, dtype=np.float64)
        n = ref.shape[0]
        if not np.all(np.isfinite(out)):
            bad = int(np.count_nonzero(~np.isfinite(out)))
            checks.append(Check(name, "finite", float(bad), 0.0, False))
            failures.append(f"output {name!r}: the .tflite produced {bad} NaN/inf values")
            all_metrics.append(OutputMetrics(name, tname, list(ref.shape[1:]), _range(ref), None, None, None, None))
            continue
        diff = np.abs(ref - out)
        value_range = _range(ref)
        max_abs = float(diff.max()) if diff.size else 0.0
        max_rel = max_abs / value_range if value_range > 0 else None
        mean_abs = float(diff.mean()) if diff.size else 0.0
        cosine = _mean_cosine(ref.reshape(n, -1), out.reshape(n, -1))
        m = OutputMetrics(name, tname, list(ref.shape[1:]), value_range, max_abs, max_rel, mean_abs, cosine)

        limit = tolerances.atol + tolerances.rtol * value_range
        ok = max_abs <= limit
        checks.append(Check(name, "max_abs", max_abs, limit, ok))
        if not ok:
            failures.append(
                f"output {name!r}: max abs error {max_abs:.3g} exceeds {limit:.3g} "
                f"(atol {tolerances.atol:g} + rtol {tolerances.rtol:g} x range {value_range:.3g})"
            )
        if max_rel is not None:
            checks.append(Check(name, "max_rel", max_rel, None, None))
        checks.append(Check(name, "mean_abs", mean_abs, None, None))
        ok = cosine >= tolerances.min_cosine
        checks.append(Check(name, "cosine", cosine, tolerances.min_cosine, ok, ">="))
        if not ok:
            failures.append(f"output {name!r}: cosine similarity {cosine:.6f} is below {tolerances.min_cosine:g}")

        if ref.ndim == 2 and ref.shape[1] > 1:  # classifier-shaped: (N, C)
            ref_top = np.argmax(ref, axis=1)
            out_top = np.argmax(out, axis=1)
            agree = ref_top == out_top
            m.top1 = float(agree.mean())
            m.disagreements = [int(i) for i in np.flatnonzero(~agree)[:10]]
            ok = m.top1 >= tolerances.min_top1
            checks.append(Check(name, "top1", m.top1, tolerances.min_top1, ok, ">="))
            if not ok:
                first = m.disagreements[0]
                what = _class_name(ref_top[first], labels), _class_name(out_top[first], labels)
                failures.append(
                    f"output {name!r}: top-1 agreement {m.top1:.1%} is below {tolerances.min_top1:.1%} "
                    f"({int((~agree).sum())} of {n} differ; sample {first}: Keras says {what[0]}, TFLite says {what[1]})"
                )
            k = tolerances.top_k
            if k is not None and k < ref.shape[1]:
                ref_k = np.argsort(-ref, axis=1)[:, :k]
                out_k = np.argsort(-out, axis=1)[:, :k]
                overlap = [len(set(a) & set(b)) / k for a, b in zip(ref_k.tolist(), out_k.tolist())]
                m.topk, m.k = float(np.mean(overlap)), k
                limit_k = float(tolerances.min_topk if tolerances.min_topk is not None else tolerances.min_top1)
                ok = m.topk >= limit_k
                checks.append(Check(name, f"top{k}", m.topk, limit_k, ok, ">="))
                if not ok:
                    failures.append(f"output {name!r}: top-{k} overlap {m.topk:.1%} is below {limit_k:.1%}")
        all_metrics.append(m)
    return all_metrics, checks, failures


def _range(x: np.ndarray) -> float:
    return float(x.max() - x.min()) if x.size else 0.0


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    dot = np.sum(a * b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (na * nb)
    # Two all-zero vectors are identical; one zero and one not are as different as can be.
    cos = np.where((na == 0) & (nb == 0), 1.0, np.where((na == 0) | (nb == 0), 0.0, cos))
    return float(np.clip(cos, -1.0, 1.0).mean()) if cos.size else 1.0


def _class_name(index: int, labels: Sequence[str] | None) -> str:
    if labels and 0 <= index < len(labels):
        return f"{labels[index]!r} (class {index})"
    return f"class {index}"


# -- inputs ---------------------------------------------------------------------------------------


def random_inputs(shapes: Sequence[Sequence[int]], samples: int, seed: int, preprocess: str) -> list[np.ndarray]:
    """Seeded uniform random pixels in [0, 255], through the model's preprocessing.

    Drawing pixels rather than model inputs keeps the values in the range the preprocessing
    produces, which is the range the deployed function feeds the model.
    """
    from lamb.handler.lambda_function import preprocess as apply_preprocess

    rng = np.random.default_rng(seed)
    arrays = []
    for shape in shapes:
        pixels = rng.uniform(0.0, 255.0, size=(samples, *shape)).astype(np.float32)
        if preprocess in ("caffe", "torch") and (not shape or shape[-1] != 3):
            raise InputError(
                f"--preprocess {preprocess} needs RGB inputs (last dimension 3); this input has shape {list(shape)}",
                "pass the preprocessing the model was trained with (--preprocess), or none",
            )
        arrays.append(apply_preprocess(pixels, preprocess))
    return arrays


def image_inputs(folder: Path, shape: Sequence[int], preprocess: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Every image under ``folder`` (sorted, recursive), decoded and preprocessed as the handler does.

    Returns the batch, the names used, and ``"<name>: <why>"`` for each file that was skipped.
    """
    from lamb.handler.lambda_function import decode_image, image_to_pixels
    from lamb.handler.lambda_function import preprocess as apply_preprocess

    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"no image folder at {folder}", "pass --images with a folder of .jpg/.png files")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", "pass --images with a folder of images, not a single file")
    if len(shape) != 3 or shape[-1] != 3:
        raise InputError(
            f"--images needs a model whose input is one RGB image (height, width, 3); this one takes {list(shape)}",
            "verify with --samples instead",
        )
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts))
    if not files:
        raise InputError(f"the image folder {folder} is empty", "put a few .jpg/.png images in it, or use --samples")
    used: list[str] = []
    skipped: list[str] = []
    batch: list[np.ndarray] = []
    height, width = int(shape[0]), int(shape[1])
    for path in files:
        name = path.relative_to(folder).as_posix()
        try:
            image = decode_image(path.read_bytes())
        except ValueError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        batch.append(image_to_pixels(image, (height, width)))
        used.append(name)
    if not batch:
        raise InputError(
            f"none of the {len(files)} files in {folder} is a decodable image",
            "put .jpg/.png images in the folder, or use --samples",
        )
    return apply_preprocess(np.stack(batch), preprocess), used, skipped


# -- signatures -----------------------------------------------------------------------------------


def _keras_signature(loaded: Any) -> tuple[list[str], list[list[int | None]], list[str], list[list[int | None]]]:
    """Names and per-sample shapes (None for open dimensions) of the source model's inputs/outputs."""
    if loaded.is_keras:
        model = loaded.model

        def shape_of(t: Any) -> list[int | None]:
            return [None if d is None else int(d) for d in tuple(t.shape)[1:]]

        in_names = [getattr(t, "name", f"input_{i}").split(":")[0] for i, t in enumerate(model.inputs)]
        out_names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))])
        return in_names, [shape_of(t) for t in model.inputs], out_names, [shape_of(t) for t in model.outputs]
    sig = loaded.signature
    ins = sig.structured_input_signature[1]
    outs = sig.structured_outputs
    in_names = sorted(ins)
    out_names = sorted(outs)

    def tshape(spec: Any) -> list[int | None]:
        return [None if d is None else int(d) for d in spec.shape.as_list()[1:]]

    return in_names, [tshape(ins[n]) for n in in_names], out_names, [tshape(outs[n]) for n in out_names]


def _pair(keras_names: list[str], tflite_keys: list[str], what: str) -> list[int]:
    """For each Keras input/output, the index of its TFLite counterpart.

    The converter names signature entries after the Keras outputs (tf_keras: sorted layer names)
    or ``output_0``, ``output_1``, ... in Keras order (Keras 3); either way the interpreter's own
    tensor order is not the model's, so pair by name, then by ``output_<i>``, then by position.
    """
    import re

    # lamb convert names signature entries after the Keras names with anything but [A-Za-z0-9_]
    # replaced (``serving_default_<name>:0`` must stay a valid tensor name).
    cleaned = [re.sub(r"[^A-Za-z0-9_]", "_", n.split(":")[0]).strip("_") for n in keras_names]
    for names in (keras_names, cleaned):
        if sorted(names) == sorted(tflite_keys) and len(set(names)) == len(names):
            return [tflite_keys.index(n) for n in names]
    prefix = "output_" if what == "output" else "args_"
    indexed = {f"{prefix}{i}": i for i in range(len(tflite_keys))}
    if set(tflite_keys) == set(indexed):
        return [tflite_keys.index(f"{prefix}{i}") for i in range(len(keras_names))]
    return list(range(len(keras_names)))


def _shapes_agree(keras_shape: Sequence[int | None], tflite_shape: Sequence[int]) -> bool:
    return len(keras_shape) == len(tflite_shape) and all(k is None or k == t for k, t in zip(keras_shape, tflite_shape))


def _infer_quantization(info: dict[str, Any]) -> str:
    counts: dict[str, int] = info.get("tensor_dtypes", {})
    if counts.get("float16"):
        return "float16"
    ints = counts.get("int8", 0) + counts.get("uint8", 0)
    if not ints:
        return "float32"
    # Full-integer models carry int8 activations everywhere; dynamic-range models keep float
    # activations and only their weights are int8.
    return "int8" if ints > counts.get("float32", 0) else "dynamic"


# -- the step ---------------------------------------------------------------------------------------


def verify_model(
    keras_model: Path | None = None,
    tflite_model: Path | None = None,
    *,
    manifest_path: Path | None = None,
    samples: int | None = None,
    images: Path | None = None,
    seed: int = DEFAULT_SEED,
    preprocess: str | None = None,
    labels: list[str] | None = None,
    quantization: str | None = None,
    runtime_lib: str | None = None,
    runtime: str | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    min_top1: float | None = None,
    min_cosine: float | None = None,
    top_k: int | None = None,
    allow_unsafe_lambda: bool = False,
    write_manifest: bool = True,
) -> VerifyReport:
    """Run the Keras model and the .tflite on the same inputs and compare them output by output.

    With no paths, the manifest in the current directory names both models. ``samples`` random
    inputs (default 32 when no ``images`` are given) and the images under ``images`` can be
    combined. The verdict is written into the manifest when there is one (``write_manifest``).
    Raises ``LambError`` for bad input; a mismatch or a runtime that cannot run the model is a
    report with ``passed=False`` (``report.raise_for_failure()`` turns it into ``OutputMismatch``).
    """
    from lamb.handler.lambda_function import PREPROCESSORS

    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    notes: list[str] = []

    keras_path, tflite_path, manifest_path, manifest = _resolve_paths(keras_model, tflite_model, manifest_path)
    if preprocess is None:
        if manifest is not None:
            preprocess = manifest.preprocess
        else:
            preprocess = "none"
            notes.append("no manifest and no --preprocess: inputs are raw pixels in [0, 255] (preprocess 'none')")
    if preprocess not in PREPROCESSORS:
        raise InputError(f"unknown preprocessing {preprocess!r}", f"use one of: {', '.join(PREPROCESSORS)}")
    if manifest is not None and preprocess != manifest.preprocess and write_manifest:
        # The deployed handler preprocesses as the manifest says; a verdict reached on other inputs
        # says nothing about the artifact, so it must not vouch for it.
        write_manifest = False
        notes.append(
            f"verified with --preprocess {preprocess}, but the manifest (and so the artifact) uses "
            f"{manifest.preprocess}: the verdict is not recorded; re-run `lamb convert --preprocess {preprocess}` to change it"
        )
    if labels is None and manifest is not None:
        labels = manifest.labels
    if samples is None:
        samples = 0 if images is not None else DEFAULT_SAMPLES
    if samples < 0:
        raise InputError(f"--samples {samples} is negative", "use --samples 0 or more")
    if samples == 0 and images is None:
        raise InputError("nothing to verify with: --samples 0 and no --images", "use --samples N, --images DIR, or both")

    # Cheap checks first: a typo in a tolerance should not cost a model load.
    default_tolerances(quantization or "float32", atol=atol, rtol=rtol, min_top1=min_top1, min_cosine=min_cosine, top_k=top_k)

    tflite_sha256 = manifest_mod.sha256_file(tflite_path)
    if manifest is not None and manifest.tflite_sha256 != tflite_sha256:
        notes.append(f"{tflite_path.name} changed since `lamb convert` wrote the manifest; verifying the file as it is now")

    t0 = time.perf_counter()
    runtime_lib, requirements, why = pick_runtime(runtime_lib, runtime, manifest)
    env = resolve_runtime(runtime_lib, requirements)
    notes.append(f"runtime library: {why}")
    timings["runtime_env"] = time.perf_counter() - t0

    # Start the runtime first: it loads the .tflite while this process imports TensorFlow and
    # loads the Keras model (two cores, two processes).
    with TFLiteRunner(env, tflite_path) as runner, tempfile.TemporaryDirectory(prefix="lamb-verify-") as workdir:
        t0 = time.perf_counter()
        from lamb import tflog
        from lamb.convert import load_keras_model

        # TensorFlow's C++ core writes its start-up chatter straight to fd 2.
        with tflog.capture_fd2():
            loaded = load_keras_model(keras_path, allow_unsafe_lambda=allow_unsafe_lambda)
        timings["load_keras"] = time.perf_counter() - t0
        k_in_names, k_in_shapes, k_out_names, k_out_shapes = _keras_signature(loaded)

        def report(**kw: Any) -> VerifyReport:
            timings["total"] = time.perf_counter() - t_start
            return VerifyReport(
                keras_path=keras_path, tflite_path=tflite_path, tflite_sha256=tflite_sha256,
                manifest_path=manifest_path, preprocess=preprocess, runtime_python=f"{env.python} ({env.origin})",
                samples=samples, seed=seed, notes=notes, timings=timings, **kw,
            )

        t0 = time.perf_counter()
        try:
            info = runner.wait_ready()
        except RuntimeFailure as failure:
            quant = quantization or (manifest.quantization if manifest else "float32")
            tol = default_tolerances(quant, atol=atol, rtol=rtol, min_top1=min_top1, min_cosine=min_cosine, top_k=top_k)
            version = lib_version(env)
            result = report(
                passed=False, quantization=quant,
                quantization_source="manifest" if manifest else ("given" if quantization else "default"),
                runtime_lib=runtime_lib, runtime_version=version, images=0, skipped_images=0, tolerances=tol,
                error=explain_runtime_failure(runtime_lib, version, tflite_path, failure),
            )
            result.failures.append(result.error)  # type: ignore[arg-type]
            return _record(result, manifest, manifest_path, write_manifest)
        # Measured inside the runner: it overlaps the Keras load, so wall time here would mislead.
        timings["tflite_load"] = float(info.get("import_s", 0.0)) + float(info.get("load_s", 0.0))

        if quantization is not None:
            quant, quant_source = quantization, "given"
        elif manifest is not None:
            quant, quant_source = manifest.quantization, "manifest"
        else:
            quant, quant_source = _infer_quantization(info), "inferred from the .tflite"
        tol = default_tolerances(quant, atol=atol, rtol=rtol, min_top1=min_top1, min_cosine=min_cosine, top_k=top_k)
        if quant == "int8" and images is None:
            notes.append(
                "int8 model verified on random pixels only: they reach activations outside the ranges it was "
                "calibrated on, so add --images with real images for a meaningful check"
            )

        # -- signatures must line up before anything runs
        t_ins, t_outs = info["inputs"], info["outputs"]
        _check_counts(len(k_in_names), len(t_ins), "inputs", keras_path, tflite_path)
        _check_counts(len(k_out_names), len(t_outs), "outputs", keras_path, tflite_path)
        in_pairs = _pair(k_in_names, [t["key"] for t in t_ins], "input")
        out_pairs = _pair(k_out_names, [t["key"] for t in t_outs], "output")
        for kname, kshape, j in zip(k_in_names, k_in_shapes, in_pairs):
            tshape = t_ins[j]["shape"][1:]
            if not _shapes_agree(kshape, tshape):
                raise InputError(
                    f"the models' inputs differ: {keras_path.name} input {kname!r} is {_fmt(kshape)}, "
                    f"{tflite_path.name} input {t_ins[j]['key']!r} is {_fmt(tshape)}",
                    "verify a .tflite against the Keras model it was converted from",
                )
        for kname, kshape, j in zip(k_out_names, k_out_shapes, out_pairs):
            tshape = t_outs[j]["shape"][1:]
            if not _shapes_agree(kshape, tshape):
                raise InputError(
                    f"the models' outputs differ: {keras_path.name} output {kname!r} is {_fmt(kshape)}, "
                    f"{tflite_path.name} output {t_outs[j]['key']!r} is {_fmt(tshape)}",
                    "verify a .tflite against the Keras model it was converted from",
                )
        if labels:
            classifier = [s for s in k_out_shapes if len(s) == 1]
            if len(k_out_shapes) == 1 and classifier and classifier[0][0] not in (None, len(labels)):
                raise InputError(
                    f"{len(labels)} labels given but the model has {classifier[0][0]} classes",
                    "pass one label per class, in class-index order",
                )

        # -- inputs: tflite shapes are concrete where Keras may leave dimensions open
        shapes = [t_ins[j]["shape"][1:] for j in in_pairs]
        batches: list[list[np.ndarray]] = [[] for _ in shapes]
        used_images: list[str] = []
        skipped: list[str] = []
        if samples:
            for b, x in zip(batches, random_inputs(shapes, samples, seed, preprocess)):
                b.append(x)
        if images is not None:
            if len(shapes) != 1:
                raise InputError(
                    f"--images needs a model with one image input; this one has {len(shapes)} inputs",
                    "verify with --samples instead",
                )
            x, used_images, skipped = image_inputs(images, shapes[0], preprocess)
            batches[0].append(x)
        inputs = [np.concatenate(b) for b in batches]
        n = len(inputs[0])

        # -- Keras here, then the .tflite in the runner. One after the other, not overlapped: both
        # use every core, and on two cores running them together was 15 % slower (thread
        # oversubscription; see benchmarks/bench_verify.py).
        t0 = time.perf_counter()
        with tflog.capture_fd2():
            reference = _predict_batched(loaded, inputs)
        timings["keras_predict"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        tflite_inputs = {t_ins[j]["key"]: x for j, x in zip(in_pairs, inputs)}
        failure: RuntimeFailure | None = None
        try:
            tflite_outputs, answer = runner.run(tflite_inputs, Path(workdir))
        except RuntimeFailure as exc:
            failure = exc
        timings["tflite_run"] = time.perf_counter() - t0
        version = info.get("version", "unknown")
        common = dict(
            quantization=quant, quantization_source=quant_source, runtime_lib=runtime_lib, runtime_version=version,
            images=len(used_images), skipped_images=len(skipped), tolerances=tol, skipped=skipped,
        )
        if failure is not None:
            result = report(passed=False, error=explain_runtime_failure(runtime_lib, version, tflite_path, failure), **common)
            result.failures.append(result.error)  # type: ignore[arg-type]
            return _record(result, manifest, manifest_path, write_manifest)
        timings["tflite_invoke"] = float(answer.get("invoke_s", 0.0))

        t0 = time.perf_counter()
        candidate = [tflite_outputs[t_outs[j]["key"]] for j in out_pairs]
        reference = [np.asarray(r).reshape(len(r), *c.shape[1:]) for r, c in zip(reference, candidate)]
        metrics, checks, failures = compare_outputs(
            reference, candidate, k_out_names, tol, tflite_names=[t_outs[j]["key"] for j in out_pairs], labels=labels
        )
        timings["metrics"] = time.perf_counter() - t0
    result = report(passed=not failures, outputs=metrics, checks=checks, failures=failures, **common)
    assert n == result.samples + result.images
    return _record(result, manifest, manifest_path, write_manifest)


def _predict_batched(loaded: Any, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The source model's outputs, in its own output order, KERAS_BATCH samples at a time."""
    if loaded.is_keras:
        # predict() runs a traced graph: ~25 % faster than eager calls on Xception, same numbers.
        out = loaded.model.predict(inputs[0] if len(inputs) == 1 else list(inputs), batch_size=KERAS_BATCH, verbose=0)
        if isinstance(out, dict):
            names = list(getattr(loaded.model, "output_names", None) or [])
            names = names if sorted(names) == sorted(out) else list(out)
            return [np.asarray(out[k]) for k in names]
        return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]
    n = len(inputs[0])
    chunks: list[list[np.ndarray]] = []
    for start in range(0, n, KERAS_BATCH):
        chunks.append(loaded.predict(*[x[start : start + KERAS_BATCH] for x in inputs]))
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]


def _check_counts(k: int, t: int, what: str, keras_path: Path, tflite_path: Path) -> None:
    if k != t:
        raise InputError(
            f"the models' signatures differ: {keras_path.name} has {k} {what}, {tflite_path.name} has {t}",
            "verify a .tflite against the Keras model it was converted from",
        )


def _fmt(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _resolve_paths(
    keras_model: Path | None, tflite_model: Path | None, manifest_path: Path | None
) -> tuple[Path, Path, Path | None, Manifest | None]:
    manifest: Manifest | None = None
    if manifest_path is None and keras_model is None and tflite_model is None:
        manifest_path = manifest_mod.find()
    if manifest_path is None and tflite_model is not None:
        beside = manifest_mod.manifest_path_for(Path(tflite_model))
        if beside.is_file():
            candidate = manifest_mod.read(beside)
            if candidate.tflite_path(beside).resolve() == Path(tflite_model).resolve():
                manifest_path = beside
    if manifest_path is not None:
        manifest_path = Path(manifest_path)
        manifest = manifest_mod.read(manifest_path)
        keras_model = Path(keras_model) if keras_model is not None else manifest.source_path(manifest_path)
        tflite_model = Path(tflite_model) if tflite_model is not None else manifest.tflite_path(manifest_path)
    if keras_model is None or tflite_model is None:
        raise InputError(
            "name both models: lamb verify MODEL.h5 MODEL.tflite",
            "or run `lamb verify` with no arguments where `lamb convert` wrote its manifest",
        )
    keras_model, tflite_model = Path(keras_model), Path(tflite_model)
    if not keras_model.exists():
        raise InputError(f"no Keras model at {keras_model}", "check the path (the manifest records where the source was)")
    if not tflite_model.is_file():
        raise InputError(f"no .tflite at {tflite_model}", "run `lamb convert MODEL` to produce it, or check the path")
    with open(tflite_model, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise InputError(
            f"{tflite_model} is not a TensorFlow Lite model (no TFL3 identifier)",
            "pass the .tflite that `lamb convert` wrote",
        )
    return keras_model, tflite_model, manifest_path, manifest


def _record(report: VerifyReport, manifest: Manifest | None, manifest_path: Path | None, write: bool) -> VerifyReport:
    if write and manifest is not None and manifest_path is not None:
        manifest.verification = report.to_verification()
        manifest_mod.write(manifest, manifest_path)
        report.recorded = True
    return report


# -- rendering (the CLI prints these) ---------------------------------------------------------------

_METRIC_TITLES = {
    "finite": "NaN/inf values",
    "max_abs": "max abs error",
    "max_rel": "max error / range",
    "mean_abs": "mean abs error",
    "cosine": "cosine similarity",
    "top1": "top-1 agreement",
}


def render_report(report: VerifyReport) -> list[Any]:
    """Rich renderables: a one-line summary and a PASS/FAIL table, one row per metric per output."""
    from rich.table import Table
    from rich.text import Text

    inputs = []
    if report.samples:
        inputs.append(f"{report.samples} random sample{'s' if report.samples != 1 else ''} (seed {report.seed})")
    if report.images or report.skipped_images:
        skipped = f", {report.skipped_images} skipped" if report.skipped_images else ""
        inputs.append(f"{report.images} image{'s' if report.images != 1 else ''}{skipped}")
    verdict = "[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]"
    head = (
        f"{verdict} {report.tflite_path.name} vs {report.keras_path.name} on "
        f"{report.runtime_lib} {report.runtime_version}: {' + '.join(inputs) or 'no inputs'}, "
        f"preprocess {report.preprocess}, {report.quantization} tolerances ({report.quantization_source})"
    )
    out: list[Any] = [Text.from_markup(head)]
    if report.error:
        out.append(Text.from_markup(f"[red]{report.error}[/]"))
        return out
    table = Table(title_justify="left", padding=(0, 1))
    for col, justify in (("output", "left"), ("metric", "left"), ("value", "right"), ("limit", "right"), ("result", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    last = None
    for c in report.checks:
        title = _METRIC_TITLES.get(c.metric) or (f"top-{c.metric[3:]} overlap" if c.metric.startswith("top") else c.metric)
        if c.metric in ("top1",) or c.metric.startswith("top"):
            value = f"{c.value:.1%}"
            limit = f"≥ {c.limit:.1%}" if c.limit is not None else ""
        elif c.metric == "cosine":
            value = f"{c.value:.6f}"
            limit = f"≥ {c.limit:g}" if c.limit is not None else ""
        elif c.metric == "finite":
            value = f"{int(c.value)}"
            limit = "0"
        else:
            value = f"{c.value:.3g}"
            limit = f"≤ {c.limit:.3g}" if c.limit is not None else ""
        result = "[green]PASS[/]" if c.passed else ("[red]FAIL[/]" if c.passed is False else "[dim]info[/]")
        table.add_row(c.output if c.output != last else "", title, value, limit, result)
        last = c.output
    out.append(table)
    for line in report.skipped[:5]:
        out.append(Text(f"skipped {line}", style="yellow"))
    if len(report.skipped) > 5:
        out.append(Text(f"... and {len(report.skipped) - 5} more skipped files", style="yellow"))
    return out
