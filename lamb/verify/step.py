"""``verify_model``: the ``lamb verify`` step, from two model files (or a manifest) to a ``VerifyReport``."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lamb import manifest as manifest_mod
from lamb import quantization as quantization_modes
from lamb import runtime_lib
from lamb.errors import InputError
from lamb.manifest import Manifest
from lamb.progress import SILENT, current
from lamb.quantization import Tolerances
from lamb.verify.accuracy import AccuracyReport, LabeledRun
from lamb.verify.compare import Check, OutputMetrics, compare_outputs
from lamb.verify.evidence import Judgement, judge_outputs
from lamb.verify.inputs import VerifyInputs, build_inputs
from lamb.verify.report import VerifyReport
from lamb.verify.runner import (
    ModelRunner,
    RunnerFailure,
    RuntimeEnv,
    explain_failure,
    lib_version,
    pick_runtime_lib,
    resolve_runtime_env,
)
from lamb.verify.signature import PairedSignature, check_labels, infer_quantization, pair_signatures
from lamb.verify.tolerances import ToleranceOverrides, default_tolerances

KERAS_BATCH = 32  # Keras runs batched; 32 bounds memory on a 299x299 model (~1 GB of activations)


def verify_model(
    keras_model: Path | None = None,
    converted_model: Path | None = None,
    *,
    manifest_path: Path | None = None,
    inputs: VerifyInputs | None = None,
    tolerances: ToleranceOverrides | None = None,
    labels: list[str] | None = None,
    quantization: str | None = None,
    runtime_lib_name: str | None = None,
    runtime: str | None = None,
    allow_unsafe_lambda: bool = False,
) -> VerifyReport:
    """Run the Keras model and the converted model on the same inputs and compare them output by output.

    With no paths, the manifest in the current directory names both models. ``inputs`` says what
    to feed both (random samples, images, or both); ``tolerances`` overrides the quantization
    mode's defaults. The converted model runs on ``runtime_lib_name`` (default: the library ``lamb package``
    ships for ``runtime``, the newest Lambda runtime by default). The verdict is written into the
    manifest when there is one. Raises ``LambError`` for bad input; a mismatch or a library that
    cannot run the model is a report with ``passed=False`` (``report.raise_for_failure()`` turns
    it into ``OutputMismatch``).
    """
    run = _prepare(keras_model, converted_model, manifest_path, inputs or VerifyInputs(), labels)
    overrides = tolerances or ToleranceOverrides()
    # Cheap checks first: a typo in a tolerance should not cost a model load.
    default_tolerances(quantization or quantization_modes.DEFAULT, overrides, run.format)

    t0 = time.perf_counter()
    choice = pick_runtime_lib(runtime_lib_name, runtime, run.manifest, run.format.name)
    run.env = resolve_runtime_env(choice.name, choice.requirements)
    run.notes.append(f"runtime library: {choice.reason}")
    run.timings["runtime_env"] = time.perf_counter() - t0

    # Start the library first: it loads the model while this process imports TensorFlow and
    # loads the Keras model (two cores, two processes).
    progress = current()
    with ModelRunner(run.env, run.model_path) as runner, tempfile.TemporaryDirectory(prefix="lamb-verify-") as workdir:
        if run.keras_path.suffix.lower() == ".onnx":  # a model given as .onnx: no Keras to compare with
            return _verify_against_reference(run, runner, Path(workdir), overrides, quantization, choice.name)
        progress.phase(f"loading the Keras model, and the {run.format.suffix} on {choice.name}")
        loaded = _load_keras(run, allow_unsafe_lambda)
        try:
            info = runner.wait_ready()
        except RunnerFailure as failure:
            quant, source = _quantization(quantization, run.manifest, None, run.format)
            tol = default_tolerances(quant, overrides, run.format)
            return run.failed(failure, lib_version(run.env), quantization=quant, quantization_source=source, tolerances=tol)
        # Measured inside the runner: it overlaps the Keras load, so wall time here would mislead.
        run.timings["model_load"] = float(info.get("import_s", 0.0)) + float(info.get("load_s", 0.0))

        quant, quant_source = _quantization(quantization, run.manifest, info, run.format)
        tol = default_tolerances(quant, overrides, run.format)

        paired = pair_signatures(loaded, info, run.keras_path, run.model_path)
        check_labels(run.labels, paired)
        labeled = _labeled(run, paired)
        arrays, used_images, skipped = build_inputs(
            paired.input_shapes, run.inputs, run.samples, run.preprocess, labeled.recorded if labeled else None
        )

        # Keras here, then the converted model in the runner. One after the other, not overlapped: both
        # use every core, and on two cores running them together was 15 % slower (thread
        # oversubscription; see benchmarks/bench_verify.py).
        progress.phase(f"Keras: {len(arrays[0])} inputs", total=len(arrays[0]))
        reference = _predict_keras(run, loaded, arrays)

        t0 = time.perf_counter()
        version = info.get("version", "unknown")
        common: dict[str, Any] = dict(
            quantization=quant, quantization_source=quant_source, tolerances=tol,
            images=len(used_images) + (len(labeled.labeled) if labeled else 0), skipped_images=len(skipped), skipped=skipped,
        )
        progress.phase(f"{choice.name} {version}: {len(arrays[0])} inputs", total=len(arrays[0]))
        try:
            model_outputs, answer = runner.run(dict(zip(paired.input_keys, arrays)), Path(workdir), on_progress=progress.advance)
            others = _other_modes(runner, labeled, paired, Path(workdir)) if labeled else {}
        except RunnerFailure as failure:
            run.timings["model_run"] = time.perf_counter() - t0
            return run.failed(failure, version, **common)
        run.timings["model_run"] = time.perf_counter() - t0
        run.timings["model_invoke"] = float(answer.get("invoke_s", 0.0))

        accuracy = _accuracy(run, labeled, paired, model_outputs, others, reference, tol.top_k)
        metrics, checks, judged = _judge(run, paired, model_outputs, reference, tol, quant, common["images"])
    failures = judged.failures + (accuracy.failures if accuracy else [])
    passed = judged.passed and not failures
    result = run.report(
        passed=passed, verdict=judged.verdict if passed or judged.failures else "fail", warnings=judged.warnings,
        runtime_lib_version=version, outputs=metrics, checks=checks, failures=failures, accuracy=accuracy, **common,
    )
    assert len(arrays[0]) == result.samples + result.images
    return run.finish(result)


def _verify_against_reference(
    run: _Run, runner: ModelRunner, workdir: Path, overrides: ToleranceOverrides, quantization: str | None, lib: str,
) -> VerifyReport:
    """The shipped model on ``runner`` against its source ``.onnx`` on an independent implementation."""
    from lamb.verify import reference

    assert run.env is not None
    progress = current()
    progress.phase(f"loading the {run.format.suffix} on {lib}")
    try:
        info = runner.wait_ready()
    except RunnerFailure as failure:
        quant, source = _quantization(quantization, run.manifest, None, run.format)
        return run.failed(failure, lib_version(run.env), quantization=quant, quantization_source=source,
                          tolerances=default_tolerances(quant, overrides, run.format))
    quant, quant_source = _quantization(quantization, run.manifest, info, run.format)
    tol = default_tolerances(quant, overrides, run.format)
    pairs = reference.paired(info)
    labeled = _labeled(run, dataclasses.replace(pairs, input_shapes=reference.image_shapes(run, info)))
    feeds, used_images, skipped = reference.model_inputs(run, info, labeled.recorded if labeled else None)
    n = len(next(iter(feeds.values())))
    progress.phase(f"reference: {n} inputs")
    t0 = time.perf_counter()
    # The references run in lamb's own environment (onnx, and its onnxruntime), whatever the shipped one is.
    expected, which, label = reference.reference_outputs(resolve_runtime_env(lib), run.keras_path, feeds, pairs.output_keys)
    run.timings["reference"] = time.perf_counter() - t0
    version = info.get("version", "unknown")
    images = len(used_images) + (len(labeled.labeled) if labeled else 0)
    common: dict[str, Any] = dict(quantization=quant, quantization_source=quant_source, tolerances=tol, images=images,
                                  skipped_images=len(skipped), skipped=skipped, reference=which, reference_label=label)
    progress.phase(f"{lib} {version}: {n} inputs", total=n)
    t0 = time.perf_counter()
    try:
        outputs, _ = runner.run(feeds, workdir, on_progress=progress.advance)
        nchw = reference.channel_first(run, info)[0]
        others = _other_modes(runner, labeled, pairs, workdir, nchw) if labeled else {}
    except RunnerFailure as failure:
        return run.failed(failure, version, **common)
    run.timings["model_run"] = time.perf_counter() - t0
    metrics, checks, judged = _judge(run, pairs, outputs, expected, tol, quant, images)
    accuracy = _accuracy(run, labeled, pairs, outputs, others, expected, tol.top_k)
    if accuracy is not None and accuracy.keras is not None:
        accuracy.keras.model = which  # the source .onnx on the reference, not Keras
    failures = judged.failures + (accuracy.failures if accuracy else [])
    passed = judged.passed and not failures
    result = run.report(passed=passed, verdict=judged.verdict if passed or judged.failures else "fail", warnings=judged.warnings,
                        runtime_lib_version=version, outputs=metrics, checks=checks, failures=failures, accuracy=accuracy, **common)
    return run.finish(result)


def _images_dir(images: Path | None, manifest_path: Path | None) -> str | None:
    """The images folder as the manifest records it: relative to the manifest's folder when inside it."""
    if images is None:
        return None
    folder = Path(images).resolve()
    if manifest_path is not None:
        try:
            return folder.relative_to(Path(manifest_path).resolve().parent).as_posix() or "."
        except ValueError:
            pass
    return str(folder)


@dataclass
class _Run:
    """One verification's settled facts, shared by its phases."""

    keras_path: Path
    model_path: Path
    model_sha256: str
    manifest_path: Path | None
    manifest: Manifest | None
    inputs: VerifyInputs
    samples: int
    preprocess: str
    labels: list[str] | None
    record: bool  # write the verdict into the manifest
    format: runtime_lib.ModelFormat
    notes: list[str]
    started: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    env: RuntimeEnv | None = None

    def report(self, **kw: Any) -> VerifyReport:
        assert self.env is not None
        self.timings["total"] = time.perf_counter() - self.started
        return VerifyReport(
            keras_path=self.keras_path, model_path=self.model_path, model_sha256=self.model_sha256,
            manifest_path=self.manifest_path, preprocess=self.preprocess, runtime_lib=self.env.lib,
            runtime_python=f"{self.env.python} ({self.env.origin})", samples=self.samples, seed=self.inputs.seed,
            notes=self.notes, timings=self.timings, images_dir=_images_dir(self.inputs.images, self.manifest_path), **kw,
        )

    def failed(self, failure: RunnerFailure, version: str, *, tolerances: Tolerances, **kw: Any) -> VerifyReport:
        """The library could not load or run the model: a failed verdict carrying the reason."""
        assert self.env is not None
        error = explain_failure(self.env.lib, version, self.model_path, failure)
        kw.setdefault("images", 0)
        kw.setdefault("skipped_images", 0)
        result = self.report(passed=False, runtime_lib_version=version, tolerances=tolerances, error=error, failures=[error], **kw)
        return self.finish(result)

    def finish(self, result: VerifyReport) -> VerifyReport:
        if self.record and self.manifest is not None and self.manifest_path is not None:
            verification = result.to_verification()
            self.manifest.verification = verification
            # written into the manifest as it is now: a package record made meanwhile stays
            manifest_mod.update(self.manifest_path, lambda current: dataclasses.replace(current, verification=verification))
            result.recorded = True
        return result


def _prepare(
    keras_model: Path | None, converted_model: Path | None, manifest_path: Path | None, inputs: VerifyInputs,
    labels: list[str] | None,
) -> _Run:
    """Resolve the files and settle every option that can be settled before a model loads."""
    from lamb.convert.preprocess import check_preprocess

    started = time.perf_counter()
    notes: list[str] = []
    keras_path, model_path, manifest_path, manifest = _resolve_paths(keras_model, converted_model, manifest_path)
    preprocess = inputs.preprocess
    if preprocess is None:
        if manifest is not None:
            preprocess = manifest.preprocess
        else:
            preprocess = "none"
            notes.append("no manifest and no --preprocess: inputs are raw pixels in [0, 255] (preprocess 'none')")
    preprocess = check_preprocess(preprocess)
    record = True
    if manifest is not None and preprocess != manifest.preprocess:
        # The deployed handler preprocesses as the manifest says; a verdict reached on other inputs
        # says nothing about the artifact, so it must not vouch for it.
        record = False
        notes.append(
            f"verified with --preprocess {preprocess}, but the manifest (and so the artifact) uses "
            f"{manifest.preprocess}: the verdict is not recorded; re-run `lamb convert --preprocess {preprocess}` to change it"
        )
    if labels is None and manifest is not None:
        labels = manifest.labels
    samples = inputs.sample_count()

    model_sha256 = manifest_mod.sha256_file(model_path)
    if manifest is not None and manifest.model.sha256 != model_sha256:
        notes.append(f"{model_path.name} changed since `lamb convert` wrote the manifest; verifying the file as it is now")
    return _Run(
        keras_path=keras_path, model_path=model_path, model_sha256=model_sha256, manifest_path=manifest_path,
        manifest=manifest, inputs=inputs, samples=samples, preprocess=preprocess, labels=labels, record=record,
        notes=notes, started=started, format=_format_of(model_path, manifest),
    )


def _labeled(run: _Run, paired: PairedSignature) -> LabeledRun | None:
    if run.inputs.labeled_images is None:
        return None
    from lamb.verify.accuracy import prepare

    head = run.manifest.head if run.manifest is not None else None
    return prepare(run.inputs.labeled_images, paired.input_shapes, paired.output_shapes, run.labels, run.preprocess, head=head)


def _other_modes(
    runner: ModelRunner, labeled: LabeledRun, paired: PairedSignature, workdir: Path, channel_first: bool = False,
) -> dict[str, np.ndarray]:
    """The converted model's class scores on the labelled images in every other preprocessing mode."""
    progress = current()
    others = labeled.modes[1:]
    progress.phase(f"the labelled images in {len(others)} other preprocessing modes", total=len(others) * len(labeled.labeled))
    scores = {}
    for mode in others:
        batch = labeled.batch(mode)
        batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2)) if channel_first else batch
        outputs, _ = runner.run({paired.input_keys[0]: batch}, workdir, on_progress=progress.advance)
        scores[mode] = outputs[paired.output_keys[labeled.output]]
    return scores


def _accuracy(
    run: _Run, labeled: LabeledRun | None, paired: PairedSignature, model_outputs: dict[str, np.ndarray],
    others: dict[str, np.ndarray], reference: list[np.ndarray], top_k: int | None,
) -> AccuracyReport | None:
    """The labelled images' accuracy in every mode, judged (lamb.verify.accuracy)."""
    if labeled is None:
        return None
    from lamb.verify.accuracy import judge_accuracy

    scores = [model_outputs[key] for key in paired.output_keys]
    return judge_accuracy(labeled.report(scores, others, reference, top_k), run.keras_path)


def _predict_keras(run: _Run, loaded: Any, arrays: list[np.ndarray]) -> list[np.ndarray]:
    from lamb import tflog

    t0 = time.perf_counter()
    with tflog.capture_fd2():
        progress = current()  # the per-batch callback only when someone is watching
        reference = predict_batched(loaded, arrays, on_batch=None if progress is SILENT else progress.advance)
    run.timings["keras_predict"] = time.perf_counter() - t0
    return reference


def _judge(
    run: _Run, paired: PairedSignature, model_outputs: dict[str, np.ndarray], reference: list[np.ndarray],
    tol: Tolerances, quant: str, images: int,
) -> tuple[list[OutputMetrics], list[Check], Judgement]:
    """Compare the outputs pair by pair, then weigh what the inputs can carry."""
    t0 = time.perf_counter()
    candidate = [model_outputs[key] for key in paired.output_keys]
    reference = [np.asarray(r).reshape(len(r), *c.shape[1:]) for r, c in zip(reference, candidate)]
    metrics, checks, failures = compare_outputs(
        reference, candidate, paired.output_names, tol, model_names=paired.output_keys, labels=run.labels
    )
    # How much the inputs can carry: the top-1 rate's 95 % lower bound, int8 on random pixels alone.
    judged = judge_outputs(metrics, checks, failures, len(candidate[0]), tol.min_top1, quantization=quant, images=images)
    run.timings["metrics"] = time.perf_counter() - t0
    return metrics, checks, judged


def _load_keras(run: _Run, allow_unsafe_lambda: bool) -> Any:
    from lamb import tflog
    from lamb.convert import load_keras_model

    t0 = time.perf_counter()
    # TensorFlow's C++ core writes its start-up chatter straight to fd 2.
    with tflog.capture_fd2():
        loaded = load_keras_model(run.keras_path, allow_unsafe_lambda=allow_unsafe_lambda or _lambda_allowed(run))
    run.timings["load_keras"] = time.perf_counter() - t0
    return loaded


def _lambda_allowed(run: _Run) -> bool:
    """`lamb convert --allow-unsafe-lambda` gave the permission for this very file (same sha256)."""
    m = run.manifest
    if m is None or not m.allow_unsafe_lambda or not m.source_sha256 or not run.keras_path.is_file():
        return False
    return manifest_mod.sha256_file(run.keras_path) == m.source_sha256


def _quantization(
    given: str | None, manifest: Manifest | None, info: dict[str, Any] | None, fmt: runtime_lib.ModelFormat
) -> tuple[str, str]:
    """Whose default tolerances apply, and where that came from."""
    if given is not None:
        return given, "given"
    if manifest is not None:
        return manifest.quantization, "manifest"
    if info is None:  # the library could not even load the model to say
        return quantization_modes.DEFAULT, "default"
    return infer_quantization(info, fmt.modes), "inferred from the converted model"


def predict_batched(loaded: Any, inputs: list[np.ndarray], on_batch: Callable[[int], None] | None = None) -> list[np.ndarray]:
    """The source model's outputs, in its own output order, KERAS_BATCH samples at a time;
    ``on_batch(n)`` after each batch of ``n`` samples."""
    n = len(inputs[0])
    if loaded.is_keras:
        # predict() runs a traced graph: ~25 % faster than eager calls on Xception, same numbers.
        callbacks = [_batch_callback(loaded, n, on_batch)] if on_batch is not None else None
        out = loaded.model.predict(
            inputs[0] if len(inputs) == 1 else list(inputs), batch_size=KERAS_BATCH, verbose=0, callbacks=callbacks
        )
        if isinstance(out, dict):
            names = list(getattr(loaded.model, "output_names", None) or [])
            names = names if sorted(names) == sorted(out) else list(out)
            return [np.asarray(out[k]) for k in names]
        return [np.asarray(o) for o in out] if isinstance(out, (list, tuple)) else [np.asarray(out)]
    chunks: list[list[np.ndarray]] = []
    for start in range(0, n, KERAS_BATCH):
        chunks.append(loaded.predict(*[x[start : start + KERAS_BATCH] for x in inputs]))
        if on_batch is not None:
            on_batch(min(KERAS_BATCH, n - start))
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]



def _batch_callback(loaded: Any, n: int, on_batch: Callable[[int], None]) -> Any:
    """A predict() callback, from the framework that built the model (Keras 3 or tf_keras)."""
    import importlib

    callbacks = importlib.import_module("tf_keras.callbacks" if loaded.loader == "tf_keras" else "keras.callbacks")
    done = [0]

    def batch_end(batch: int, logs: Any = None) -> None:
        step = min(KERAS_BATCH, n - done[0])
        done[0] += step
        on_batch(step)

    return callbacks.LambdaCallback(on_predict_batch_end=batch_end)

def _resolve_paths(
    keras_model: Path | None, converted_model: Path | None, manifest_path: Path | None
) -> tuple[Path, Path, Path | None, Manifest | None]:
    manifest: Manifest | None = None
    if manifest_path is None and keras_model is None and converted_model is None:
        manifest_path = manifest_mod.find()
    if manifest_path is None and converted_model is not None:
        beside = manifest_mod.manifest_path_for(Path(converted_model))
        if beside.is_file():
            candidate = manifest_mod.read(beside)
            if candidate.model_path(beside).resolve() == Path(converted_model).resolve():
                manifest_path = beside
    if manifest_path is not None:
        manifest_path = Path(manifest_path)
        manifest = manifest_mod.read(manifest_path)
        keras_model = Path(keras_model) if keras_model is not None else manifest.source_path(manifest_path)
        if converted_model is None or Path(converted_model).resolve() == manifest.model_path(manifest_path).resolve():
            # in the manifest's folder, a regular file; a changed one is verified as it is (_prepare notes it)
            converted_model = manifest.model_files(manifest_path, as_recorded=False)[0]
    if keras_model is None or converted_model is None:
        raise InputError(
            f"name both models: lamb verify MODEL.h5 MODEL{runtime_lib.default().format.suffix}",
            "or run `lamb verify` with no arguments where `lamb convert` wrote its manifest",
        )
    keras_model, converted_model = Path(keras_model), Path(converted_model)
    if not keras_model.exists():
        raise InputError(f"no Keras model at {keras_model}", "check the path (the manifest records where the source was)")
    fmt = _format_of(converted_model, manifest)
    if not converted_model.is_file():
        raise InputError(f"no {fmt.suffix} at {converted_model}", "run `lamb convert MODEL` to produce it, or check the path")
    if fmt.magic is not None:
        offset, magic = fmt.magic
        with open(converted_model, "rb") as f:
            head = f.read(offset + len(magic))
        if head[offset:] != magic:
            raise InputError(
                f"{converted_model} is not {fmt.title} model (no {magic.decode()} identifier)",
                f"pass the {fmt.suffix} that `lamb convert` wrote",
            )
    return keras_model, converted_model, manifest_path, manifest


def _format_of(path: Path, manifest: Manifest | None) -> runtime_lib.ModelFormat:
    """The model format of ``path``: the manifest's, else the one its suffix names, else the default."""
    if manifest is not None:
        return runtime_lib.model_format(manifest.model.format)
    return runtime_lib.format_for_suffix(path.suffix) or runtime_lib.default().format
