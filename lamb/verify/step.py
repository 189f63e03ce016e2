"""``verify_model``: the ``lamb verify`` step, from two model files (or a manifest) to a ``VerifyReport``."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lamb import manifest as manifest_mod
from lamb import quantization as quantization_modes
from lamb import runtime_lib
from lamb.errors import InputError
from lamb.manifest import Manifest, format_shape
from lamb.progress import SILENT, current
from lamb.quantization import Tolerances
from lamb.source import Loaded, ReferenceOutputs, Source, open_source
from lamb.source.base import NCHW
from lamb.verify._runner_protocol import Ready
from lamb.verify.accuracy import AccuracyReport, LabeledRun
from lamb.verify.evidence import judge_against
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


def verify_model(
    source_model: Path | None = None,
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
    """Run the source model and the converted model on the same inputs and compare them output by output.

    With no paths, the manifest in the current directory names both models. The source is what
    ``lamb.source`` opens (a Keras file or SavedModel, run here; an .onnx, run on an evaluator
    independent of the shipped library): its outputs are the reference. ``inputs`` says what to
    feed both (random samples, images, or both); ``tolerances`` overrides the quantization mode's
    defaults. The converted model runs on ``runtime_lib_name`` (default: the library ``lamb package``
    ships for ``runtime``, the newest Lambda runtime by default). The verdict is written into the
    manifest when there is one. Raises ``LambError`` for bad input; a mismatch or a library that
    cannot run the model is a report with ``passed=False`` (``report.raise_for_failure()`` turns
    it into ``OutputMismatch``).
    """
    run = _prepare(source_model, converted_model, manifest_path, inputs or VerifyInputs(), labels)
    overrides = tolerances or ToleranceOverrides()
    # Cheap checks first: a typo in a tolerance should not cost a model load.
    default_tolerances(quantization or quantization_modes.DEFAULT, overrides, run.format)

    t0 = time.perf_counter()
    choice = pick_runtime_lib(runtime_lib_name, runtime, run.manifest, run.format.name)
    run.env = resolve_runtime_env(choice.name, choice.requirements)
    run.notes.append(f"runtime library: {choice.reason}")
    run.timings["runtime_env"] = time.perf_counter() - t0

    # Start the library first: it loads the model while this process loads the source (two
    # cores, two processes).
    progress = current()
    record = run.manifest.to_dict() if run.manifest is not None else {}  # what the shipped lamb.json tells the backend
    with ModelRunner(run.env, run.model_path, record) as runner, tempfile.TemporaryDirectory(prefix="lamb-verify-") as workdir:
        progress.phase(f"loading the {run.source.title} {run.source.path.name}, and the {run.format.suffix} on {choice.name}")
        loaded = _load_source(run, allow_unsafe_lambda)
        try:
            info = runner.wait_ready()
        except RunnerFailure as failure:
            quant, source = _quantization(quantization, run, None)
            tol = default_tolerances(quant, overrides, run.format)
            return run.failed(failure, lib_version(run.env), quantization=quant, quantization_source=source, tolerances=tol)
        # Measured inside the runner: it overlaps the source's load, so wall time here would mislead.
        run.timings["model_load"] = float(info.get("import_s", 0.0)) + float(info.get("load_s", 0.0))

        quant, quant_source = _quantization(quantization, run, info)
        tol = default_tolerances(quant, overrides, run.format)

        paired = pair_signatures(loaded, info, run.source.path, run.model_path)
        check_labels(run.labels, paired)
        paired, channel_first = image_layout(run.manifest, paired, [s.layout for s in loaded.inputs()])
        labeled = _labeled(run, paired)
        arrays, used_images, skipped = build_inputs(
            paired.input_shapes, run.inputs, run.samples, run.preprocess, labeled.recorded if labeled else None
        )
        arrays = [np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if first else a for a, first in zip(arrays, channel_first)]

        # The source here (or in its reference runner), then the converted model in its runner. One
        # after the other, not overlapped: both use every core, and on two cores running them together
        # was 15 % slower (thread oversubscription; see benchmarks/bench_verify.py).
        reference = _reference(run, loaded, arrays, choice.name)

        t0 = time.perf_counter()
        version = info.get("version", "unknown")
        common: dict[str, Any] = dict(
            quantization=quant, quantization_source=quant_source, tolerances=tol,
            images=len(used_images) + (len(labeled.labeled) if labeled else 0), skipped_images=len(skipped), skipped=skipped,
            reference=reference.which, reference_label=reference.label,
        )
        progress.phase(f"{choice.name} {version}: {len(arrays[0])} inputs", total=len(arrays[0]))
        try:
            model_outputs, answer = runner.run(dict(zip(paired.input_keys, arrays)), Path(workdir), on_progress=progress.advance)
            others = _other_modes(runner, labeled, paired, Path(workdir), channel_first[0]) if labeled else {}
        except RunnerFailure as failure:
            run.timings["model_run"] = time.perf_counter() - t0
            return run.failed(failure, version, **common)
        run.timings["model_run"] = time.perf_counter() - t0
        run.timings["model_invoke"] = float(answer.get("invoke_s", 0.0))

        accuracy = _accuracy(run, labeled, paired, model_outputs, others, reference, tol.top_k)
        t0 = time.perf_counter()
        metrics, checks, judged = judge_against(paired, reference.outputs, model_outputs, tol, quantization=quant, images=common["images"],
                                                labels=run.labels, head=run.manifest.head if run.manifest is not None else None)
        run.timings["metrics"] = time.perf_counter() - t0
    failures = judged.failures + (accuracy.failures if accuracy else [])
    passed = judged.passed and not failures
    result = run.report(
        passed=passed, verdict=judged.verdict if passed or judged.failures else "fail", warnings=judged.warnings,
        runtime_lib_version=version, outputs=metrics, checks=checks, failures=failures, accuracy=accuracy, **common,
    )
    assert len(arrays[0]) == result.samples + result.images
    return run.finish(result)


def image_layout(
    manifest: Manifest | None, paired: PairedSignature, source_layouts: list[str] | None = None,
) -> tuple[PairedSignature, list[bool]]:
    """``paired`` with each input's per-sample shape channels last, as the handler's preprocessing
    makes it (the manifest's fixed shape where the model leaves one open), and which inputs the
    model takes channel-first (the manifest's ``layout``; without a manifest, the source's, in
    ``paired``'s order: lamb keeps a model's layout when it converts it)."""
    declared = {s.name: s for s in manifest.inputs} if manifest is not None else {}
    shapes, channel_first = [], []
    for i, (key, shape) in enumerate(zip(paired.input_keys, paired.input_shapes)):
        spec = declared.get(key)
        dims = list(spec.shape[1:]) if spec is not None else list(shape)
        if any(d is None or d < 0 for d in dims):
            raise InputError(f"the model's input {key} has open dimensions {format_shape([-1, *dims])}",
                             "re-run `lamb convert MODEL --input-shape ...` with the size the model takes")
        layout = spec.layout if spec is not None else source_layouts[i] if source_layouts is not None else None
        first = layout == NCHW and len(dims) == 3
        shapes.append([dims[1], dims[2], dims[0]] if first else dims)
        channel_first.append(first)
    return dataclasses.replace(paired, input_shapes=shapes), channel_first


def _reference(run: _Run, loaded: Loaded, arrays: list[np.ndarray], lib: str) -> ReferenceOutputs:
    """The source's outputs on ``arrays``: what the converted model's are judged against."""
    progress = current()
    progress.phase(f"the source {run.source.path.name}: {len(arrays[0])} inputs", total=len(arrays[0]))
    t0 = time.perf_counter()

    def start_runner(model: Path, module: str) -> ModelRunner:
        # A reference runner runs in lamb's own environment (onnx, and its onnxruntime), whatever the shipped one is.
        return ModelRunner.reference(resolve_runtime_env(lib), model, module)

    reference = loaded.reference_outputs(arrays, start_runner, on_batch=None if progress is SILENT else progress.advance)
    run.timings["reference"] = time.perf_counter() - t0
    return reference


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

    source: Source
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
            source_path=self.source.path, model_path=self.model_path, model_sha256=self.model_sha256,
            manifest_path=self.manifest_path, preprocess=self.preprocess, runtime_lib=self.env.lib,
            runtime_python=f"{self.env.python} ({self.env.origin})", samples=self.samples, seed=self.inputs.seed,
            notes=self.notes, timings=self.timings, images_dir=_images_dir(self.inputs.images, self.manifest_path), **kw,
        )

    def failed(self, failure: RunnerFailure, version: str, *, tolerances: Tolerances, **kw: Any) -> VerifyReport:
        """The library could not load or run the model: a failed verdict carrying the reason."""
        assert self.env is not None
        error, hint = explain_failure(self.env.lib, version, self.model_path, failure)
        kw.setdefault("images", 0)
        kw.setdefault("skipped_images", 0)
        result = self.report(passed=False, runtime_lib_version=version, tolerances=tolerances, error=error,
                             error_hint=hint, failures=[error], **kw)
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
    source_model: Path | None, converted_model: Path | None, manifest_path: Path | None, inputs: VerifyInputs,
    labels: list[str] | None,
) -> _Run:
    """Resolve the files and settle every option that can be settled before a model loads."""
    from lamb.convert.preprocess import check_preprocess

    started = time.perf_counter()
    notes: list[str] = []
    source, model_path, manifest_path, manifest = _resolve_paths(source_model, converted_model, manifest_path)
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
        source=source, model_path=model_path, model_sha256=model_sha256, manifest_path=manifest_path,
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
    others: dict[str, np.ndarray], reference: ReferenceOutputs, top_k: int | None,
) -> AccuracyReport | None:
    """The labelled images' accuracy in every mode, judged (lamb.verify.accuracy)."""
    if labeled is None:
        return None
    from lamb.verify.accuracy import judge_accuracy

    scores = [model_outputs[key] for key in paired.output_keys]
    accuracy = judge_accuracy(labeled.report(scores, others, reference.outputs, top_k), run.source.path)
    if accuracy.source is not None:
        accuracy.source.model = reference.which  # the source's accuracy, on what computed its outputs
    return accuracy


def _load_source(run: _Run, allow_unsafe_lambda: bool) -> Loaded:
    from lamb import tflog

    t0 = time.perf_counter()
    # TensorFlow's C++ core writes its start-up chatter straight to fd 2.
    with tflog.capture_fd2():
        loaded = run.source.load(allow_unsafe_lambda=allow_unsafe_lambda or _lambda_allowed(run))
    run.timings["load_source"] = time.perf_counter() - t0
    return loaded


def _lambda_allowed(run: _Run) -> bool:
    """`lamb convert --allow-unsafe-lambda` gave the permission for this very file (same sha256)."""
    m = run.manifest
    if m is None or not m.allow_unsafe_lambda or not m.source_sha256 or not run.source.path.is_file():
        return False
    return manifest_mod.sha256_file(run.source.path) == m.source_sha256


def _quantization(given: str | None, run: _Run, info: Ready | None) -> tuple[str, str]:
    """Whose default tolerances apply, and where that came from."""
    if given is not None:
        return given, "given"
    if run.manifest is not None:
        return run.manifest.quantization, "manifest"
    if info is None:  # the library could not even load the model to say
        return quantization_modes.DEFAULT, "default"
    from lamb.convert import engine

    read = engine.for_format(run.format).quantization_of(run.model_path)
    return read or infer_quantization(info, run.format.modes), "inferred from the converted model"


def _resolve_paths(
    source_model: Path | None, converted_model: Path | None, manifest_path: Path | None
) -> tuple[Source, Path, Path | None, Manifest | None]:
    manifest: Manifest | None = None
    if manifest_path is None and source_model is None and converted_model is None:
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
        source_model = Path(source_model) if source_model is not None else manifest.source_path(manifest_path)
        if converted_model is None or Path(converted_model).resolve() == manifest.model_path(manifest_path).resolve():
            # in the manifest's folder, a regular file; a changed one is verified as it is (_prepare notes it)
            converted_model = manifest.model_files(manifest_path, as_recorded=False)[0]
    if source_model is None or converted_model is None:
        raise InputError(
            f"name both models: lamb verify SOURCE CONVERTED (e.g. model.h5 model{runtime_lib.default().format.suffix})",
            "or run `lamb verify` with no arguments where `lamb convert` wrote its manifest",
        )
    source_model, converted_model = Path(source_model), Path(converted_model)
    if not source_model.exists():
        raise InputError(f"no source model at {source_model}", "check the path (the manifest records where the source was)")
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
    return open_source(source_model), converted_model, manifest_path, manifest


def _format_of(path: Path, manifest: Manifest | None) -> runtime_lib.ModelFormat:
    """The model format of ``path``: the manifest's, else the one its suffix names, else the default."""
    if manifest is not None:
        return runtime_lib.model_format(manifest.model.format)
    return runtime_lib.format_for_suffix(path.suffix) or runtime_lib.default().format
