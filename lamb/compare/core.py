"""``lamb compare``: convert a model in every quantization mode and measure what each would cost.

The Keras model is loaded once and run once: every mode is converted from the same loaded model
and compared with the same reference outputs, on the same inputs, on the runtime library the
target ships (``lamb verify``'s runner and comparison). Each mode's artifact is projected from the
target's real, slimmed dependencies (``deps``); its handler is timed cold and warm at one thread
(``timing``); Lambda's bill follows from the timing (``lamb.cost``). A mode that fails to convert
or that the library cannot run becomes a marked row; the comparison goes on.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lamb import cost as cost_mod
from lamb import manifest as mf
from lamb import runtime_lib
from lamb.compare import deps as deps_mod
from lamb.compare.accuracy import LabeledReference, accuracy_report, judge_by_accuracy
from lamb.compare.report import (
    CANNOT_RUN,
    CONVERSION_FAILED,
    SKIPPED,
    VERIFIED,
    CompareReport,
    ModeResult,
    ModeSize,
    fits_direct_upload,
    recommend,
    timing_notes,
)
from lamb.errors import ArtifactError, ConversionError, InputError, LambError

DEFAULT_MODES = runtime_lib.default().format.mode_names
DEFAULT_MEMORY_MB = (512, 1024, 1769, 3008)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")  # what the sample request sends


def parse_modes(text: str | Sequence[str] | None, fmt: runtime_lib.ModelFormat | None = None) -> list[str]:
    names = (fmt or runtime_lib.default().format).mode_names  # the model format's modes
    if text is None:
        return list(names)
    items = text.split(",") if isinstance(text, str) else list(text)
    modes = []
    for item in items:
        mode = item.strip().lower()
        if mode == "dynamic-range":
            mode = "dynamic"
        if not mode:
            continue
        if mode not in names:
            raise InputError(f"unknown quantization mode {item.strip()!r} in --modes", f"use some of: {', '.join(names)}")
        if mode not in modes:
            modes.append(mode)
    if not modes:
        raise InputError("--modes names no mode", f"e.g. --modes {','.join(names[:3])}")
    return modes


@dataclass
class CompareOptions:
    """Every choice ``lamb compare`` offers; the defaults are the command's."""

    images: Path | None = None  # real images to verify with, besides the random samples
    # labelled images: each mode judged by its accuracy against Keras's; int8's calibration without --calibration
    labeled_images: Path | None = None
    calibration: Path | None = None  # for the calibrated modes (int8)
    samples: int | None = None  # seeded random inputs; None: 32
    seed: int = 0
    runtime: str | None = None  # the Lambda target; None: the newest runtime
    arch: str | None = None
    memory: Sequence[int] | None = None  # the settings to price; None: DEFAULT_MEMORY_MB
    modes: Sequence[str] | str | None = None  # None: every mode
    runtime_lib: str | None = None  # the runtime library; None: what the target ships
    preprocess: str | None = None
    labels: list[str] | None = None
    labels_file: Path | None = None
    input_shape: tuple[int, ...] | None = None
    allow_unsafe_lambda: bool = False
    max_latency_ms: float | None = None
    output_dir: Path | None = None  # keep the converted models here; None: a temp folder, removed


def compare_models(
    source: Path,
    options: CompareOptions | None = None,
    *,
    progress: Any = None,
    **changes: Any,
) -> CompareReport:
    """Convert ``source`` in each mode, verify, size, time and price each; recommend one.

    ``options`` (default: the command's defaults) with ``changes`` applied field by field, so
    ``compare_models(path, modes="float32,float16")`` reads as the command line does. The
    converted models (and their manifests, each with its verification recorded) are written to
    ``output_dir`` as ``<stem>-<mode><suffix>``; without one they go to a temp folder that is
    removed. Raises ``LambError`` for what ``convert`` or ``verify`` would refuse.
    """
    o = dataclasses.replace(options or CompareOptions(), **changes)
    step = progress or (lambda _msg: None)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    notes: list[str] = []
    source = Path(source)
    o, wanted, settings, target = _checked(source, o)
    samples = o.samples
    assert samples is not None  # _checked settled the default

    keep = o.output_dir is not None
    out = Path(o.output_dir) if o.output_dir is not None else Path(tempfile.mkdtemp(prefix="lamb-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        from lamb import tflog
        from lamb.convert import load_keras_model

        step("loading the Keras model")
        t0 = time.perf_counter()
        with tflog.capture_fd2():
            loaded = load_keras_model(source, allow_unsafe_lambda=o.allow_unsafe_lambda)
        seconds["load_keras"] = time.perf_counter() - t0

        rows, reference, done = _convert_and_run(loaded, source, o, wanted, out, target, step, seconds)
        converted = [r for r in rows if r.status == VERIFIED]
        for row in converted:
            assert reference is not None
            _judge(row, reference, done[row.mode])
        if reference is not None and reference.images:
            notes.append(f"verified on {o.samples} random sample(s) and {reference.images} image(s), the Keras model run once")

        runnable = [r for r in rows if r.status == VERIFIED]
        if runnable:
            t0 = time.perf_counter()
            _size_and_time(runnable, target, o.images, o.runtime_lib, {m: r.zipped_model for m, r in done.items()}, step, notes)
            seconds["size_and_time"] = time.perf_counter() - t0
        _advise(runnable, settings, target, o.max_latency_ms)

        mode, why = recommend(rows)
        seconds["total"] = time.perf_counter() - started
        report = CompareReport(
            source=source, target=target.name, arch=target.arch, samples=samples, seed=o.seed,
            images=reference.images if reference is not None else 0,
            preprocess=reference.preprocess if reference is not None else (o.preprocess or "none"),
            memory_settings=settings, rows=rows, recommended=mode, why=why, notes=notes,
            estimate_note=cost_mod.ESTIMATE_NOTE, seconds=seconds, keras_accuracy=reference.labeled.keras if reference and reference.labeled else None,
        )
        if not keep:
            for row in rows:  # the paths pointed into a folder that is about to go
                row.model_path = row.manifest_path = None
        return report
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


def _checked(source: Path, o: CompareOptions) -> tuple[CompareOptions, list[str], list[int], Any]:
    """Cheap checks first, a typo should not cost a model load: the options with their defaults
    settled, the modes, the memory settings and the target."""
    from lamb import targets
    from lamb.convert.preprocess import check_preprocess
    from lamb.verify.inputs import DEFAULT_SAMPLES, VerifyInputs

    if not source.exists():
        raise InputError(f"no model at {source}", "check the path: an .h5 or .keras file, or a SavedModel folder")
    fmt = (runtime_lib.get(o.runtime_lib) if o.runtime_lib is not None else runtime_lib.default()).format
    wanted = parse_modes(o.modes, fmt)
    settings = sorted(set(cost_mod.check_memory(int(m)) for m in (o.memory or DEFAULT_MEMORY_MB)))
    target = targets.get_target(o.runtime, o.arch)
    o = dataclasses.replace(o, runtime_lib=o.runtime_lib and runtime_lib.normalise_name(o.runtime_lib))
    # Unlike `lamb verify`, the random samples stay on beside --images (the default is not 0 with images).
    samples = DEFAULT_SAMPLES if o.samples is None else o.samples
    o = dataclasses.replace(o, samples=VerifyInputs(samples=samples, images=o.images).sample_count())
    if o.images is not None and not Path(o.images).is_dir():
        raise InputError(f"no image folder at {o.images}", "pass --images with a folder of .jpg/.png files")
    if o.preprocess is not None:
        o = dataclasses.replace(o, preprocess=check_preprocess(o.preprocess))
    if o.labeled_images is not None and o.calibration is None and {m.name for m in fmt.modes if m.calibrated} & set(wanted):
        o = dataclasses.replace(o, calibration=o.labeled_images)  # checked as --calibration is; the images calibrate int8
    calibrated = [m.name for m in fmt.modes if m.calibrated]
    if o.calibration is not None and not set(calibrated) & set(wanted):
        raise InputError(f"--calibration only applies to {' or '.join(calibrated)}", f"add {calibrated[0]} to --modes, or drop --calibration")
    return o, wanted, settings, target


def _convert_and_run(
    loaded: Any, source: Path, o: CompareOptions, wanted: list[str], out: Path, target: Any, step: Any,
    seconds: dict[str, float],
) -> tuple[list[ModeResult], _Reference | None, dict[str, Any]]:
    """Every mode converted; each converted mode's library run; the Keras model run once."""
    assert o.samples is not None  # _checked settled the default
    from lamb import tflog
    from lamb.convert import convert_model
    from lamb.convert.preprocess import read_labels

    stem = source.name if source.is_dir() else source.stem
    # One export serves every conversion, and each converted mode's model starts running on the
    # runtime library (one thread, in its own process: the other core) while the next converts.
    from concurrent.futures import Future, ThreadPoolExecutor

    from lamb.convert import engine
    from lamb.convert.signature import apply_input_shape, input_specs

    lib = runtime_lib.get(o.runtime_lib) if o.runtime_lib is not None else runtime_lib.default()
    rows: list[ModeResult] = []
    runs: dict[str, Future] = {}
    reference: _Reference | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamb-runtime-lib") as lane:
        with engine.for_format(lib.format).export(loaded, apply_input_shape(input_specs(loaded), o.input_shape)) as shared:
            for mode in wanted:
                if lib.format.mode(mode).calibrated and o.calibration is None:
                    rows.append(ModeResult(mode, SKIPPED, f"{mode} needs calibration images: pass --calibration DIR (~100 representative images)"))
                    continue
                step(f"converting: {mode}")
                t0 = time.perf_counter()
                try:
                    with tflog.capture_fd2():
                        result = convert_model(
                            shared, out / f"{stem}-{mode}{lib.format.suffix}", quantize=mode,
                            calibration=o.calibration if lib.format.mode(mode).calibrated else None,
                            runtime_lib_name=lib.name,
                            input_shape=o.input_shape, preprocess=o.preprocess, labels=read_labels(o.labels, o.labels_file),
                        )
                except ConversionError as exc:
                    # The converter refused this mode; others may still convert.
                    rows.append(ModeResult(mode, CONVERSION_FAILED, exc.message, seconds={"convert": time.perf_counter() - t0}))
                    continue
                row = ModeResult(
                    mode, VERIFIED, model_path=result.model_path, manifest_path=result.manifest_path,
                    seconds={"convert": time.perf_counter() - t0},
                )
                rows.append(row)
                if reference is None:
                    reference = _Reference(
                        loaded, source, o.samples, o.images, o.seed, result.manifest.preprocess, result.manifest.labels,
                        LabeledReference(o.labeled_images) if o.labeled_images is not None else None,
                    )
                runs[mode] = lane.submit(_run_on_library, row, reference, o.runtime_lib, target)
        seconds["convert"] = sum(r.seconds.get("convert", 0.0) for r in rows)
        # Keras runs once, on the inputs the first library run built, while the lane finishes.
        if reference is not None:
            # Until a library run has built them, or every run has ended (failed, or refused).
            while not reference.ready.wait(0.05) and not all(run.done() for run in runs.values()):
                pass
            if reference.inputs is not None:
                step("running the Keras model once")
                reference.predict()
                seconds["keras_predict"] = reference.predict_s
        t0 = time.perf_counter()
        done = {mode: run.result() for mode, run in runs.items()}
        seconds["library_wait"] = time.perf_counter() - t0
    return rows, reference, done


def _advise(runnable: list[ModeResult], settings: list[int], target: Any, max_latency_ms: float | None) -> None:
    """Each timed mode's memory advice and its cost at each setting."""
    for row in runnable:
        if row.speed is None:
            continue
        # The same floors as `lamb invoke`: the peak RSS, and room for the largest image the
        # handler's pixel budget admits at the setting.
        floors = {"the pixel budget": cost_mod.pixel_budget_floor(row.speed.peak_rss_mb)}
        advice = cost_mod.advise_memory(
            row.speed.warm_ms, peak_rss_mb=row.speed.peak_rss_mb, floors=floors, max_latency_ms=max_latency_ms,
            arch=target.arch, speedup=row.speed.speedup,
        )
        row.memory = advice
        row.costs = cost_mod.memory_points(row.speed.warm_ms, settings, target.arch, advice.floor_mb, row.speed.speedup)


# -- verification against one reference ------------------------------------------------------------


class _Reference:
    """The Keras model's outputs on the comparison's inputs, computed on first use, once."""

    def __init__(self, loaded: Any, source: Path, samples: int, images: Path | None, seed: int, preprocess: str,
                 labels: list[str] | None, labeled: LabeledReference | None = None):
        self.loaded = loaded
        self.labeled = labeled
        self.source = source
        self.samples = samples
        self.images_dir = images
        self.seed = seed
        self.preprocess = preprocess
        self.labels = labels
        self.inputs: list[np.ndarray] | None = None
        self.outputs: list[np.ndarray] | None = None
        self.images = 0
        self.skipped: list[str] = []
        self.predict_s = 0.0
        self._lock = threading.Lock()  # the library lane's thread builds the inputs
        self.ready = threading.Event()  # set once the inputs are built, or could not be

    def prepare(self, paired: Any) -> None:
        """The inputs, built once (the first mode's library run asks; later ones reuse them); the
        labelled images, when there are any, last."""
        with self._lock:
            if self.inputs is not None:
                return
            from lamb.verify.inputs import VerifyInputs, build_inputs

            wanted = VerifyInputs(samples=self.samples, images=self.images_dir, seed=self.seed, preprocess=self.preprocess)
            try:
                labeled = self.labeled.batch(paired, self.labels, self.preprocess) if self.labeled is not None else None
                self.inputs, used, self.skipped = build_inputs(paired.input_shapes, wanted, self.samples, self.preprocess, labeled)
                self.images = len(used) + (len(self.labeled) if self.labeled is not None else 0)
            finally:
                self.ready.set()

    def predict(self) -> None:
        from lamb import tflog
        from lamb.verify.step import predict_batched

        assert self.inputs is not None
        t0 = time.perf_counter()
        with tflog.capture_fd2():
            self.outputs = predict_batched(self.loaded, self.inputs)
        self.predict_s = time.perf_counter() - t0

    def judged_part(self, mode: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """What a mode is judged on: everything, but a calibrated mode's real images only, when
        there are any (random pixels reach activations outside the ranges it was calibrated on:
        0.36 of the range on the demo model, 0.097 on images)."""
        if runtime_lib.default().format.mode(mode).calibrated and self.images:
            return [x[-self.images:] for x in arrays]
        return arrays


@dataclass
class _LibraryRun:
    """One mode's model run on the target's runtime library (or why it could not)."""

    lib: str
    version: str
    python: str
    outputs: dict[str, np.ndarray] | None = None
    paired: Any = None
    failure: str | None = None
    zipped_model: int = 0  # the model deflated as the artifact's zip writer does
    seconds: float = 0.0


def _run_on_library(row: ModeResult, ref: _Reference, lib_name: str | None, target: Any) -> _LibraryRun:
    """The library lane: start the runner, pair signatures, run the inputs (no Keras here)."""
    from lamb.verify.runner import (
        ModelRunner,
        RunnerFailure,
        explain_failure,
        lib_version,
        pick_runtime_lib,
        resolve_runtime_env,
    )
    from lamb.verify.signature import pair_signatures

    t0 = time.perf_counter()
    assert row.model_path is not None and row.manifest_path is not None
    choice = pick_runtime_lib(lib_name, target.runtime.name, mf.read(row.manifest_path))
    env = resolve_runtime_env(choice.name, choice.requirements)
    run = _LibraryRun(choice.name, lib_version(env), f"{env.python} ({env.origin})")
    with ModelRunner(env, row.model_path) as runner, tempfile.TemporaryDirectory(prefix="lamb-compare-") as workdir:
        try:
            info = runner.wait_ready()
            run.paired = pair_signatures(ref.loaded, info, ref.source, row.model_path)
            ref.prepare(run.paired)
            assert ref.inputs is not None
            inputs = ref.judged_part(row.mode, ref.inputs)
            run.outputs, _answer = runner.run(dict(zip(run.paired.input_keys, inputs)), Path(workdir))
        except RunnerFailure as failure:
            run.failure = explain_failure(run.lib, run.version, row.model_path, failure)
    # zlib lets go of the GIL: the model deflates here while the next mode converts.
    run.zipped_model = deps_mod.deflated_size(row.model_path, runtime_lib.get(choice.name).format.file)
    run.seconds = time.perf_counter() - t0
    return run


def _judge(row: ModeResult, ref: _Reference, run: _LibraryRun) -> None:
    """Compare the mode's outputs with the reference, judge the evidence, record the verdict."""
    from lamb.verify import VerifyReport, compare_outputs, default_tolerances
    from lamb.verify.evidence import judge_outputs

    t0 = time.perf_counter()
    assert row.model_path is not None and row.manifest_path is not None
    row.runtime_lib = f"{run.lib} {run.version}"
    row.seconds["library"] = run.seconds
    if run.failure is not None or run.outputs is None:
        row.status, row.reason = CANNOT_RUN, run.failure
        return
    assert ref.outputs is not None
    manifest = mf.read(row.manifest_path)
    tol = default_tolerances(row.mode)
    paired = run.paired
    expected = ref.judged_part(row.mode, ref.outputs)
    got = run.outputs
    candidate = [got[key] for key in paired.output_keys]
    reference = [np.asarray(r).reshape(len(r), *c.shape[1:]) for r, c in zip(expected, candidate)]
    metrics, checks, failures = compare_outputs(
        reference, candidate, paired.output_names, tol, model_names=paired.output_keys, labels=ref.labels
    )
    n = len(candidate[0])
    judged = judge_outputs(metrics, checks, failures, n, tol.min_top1, quantization=row.mode, images=ref.images)
    accuracy = accuracy_report(ref.labeled, candidate, expected) if ref.labeled is not None else None
    if accuracy is not None:
        row.accuracy, row.accuracy_low, row.accuracy_high = accuracy.converted.top1, accuracy.converted.top1_low, accuracy.converted.top1_high
        judged = judge_by_accuracy(row.mode, accuracy.converted, accuracy.keras, checks, judged)
        accuracy.passed, accuracy.failures = judged.passed, list(judged.failures)
    failures = judged.failures
    report = VerifyReport(
        passed=judged.passed, keras_path=ref.source, model_path=row.model_path,
        model_sha256=manifest.model.sha256, manifest_path=row.manifest_path, quantization=row.mode,
        quantization_source="given", preprocess=ref.preprocess, runtime_lib=run.lib, runtime_lib_version=run.version,
        runtime_python=run.python, samples=n - ref.images, seed=ref.seed, images=ref.images,
        skipped_images=len(ref.skipped), tolerances=tol, outputs=metrics, checks=checks, failures=failures,
        skipped=list(ref.skipped), verdict=judged.verdict, warnings=list(judged.warnings), accuracy=accuracy,
    )
    manifest.verification = report.to_verification()
    mf.write(manifest, row.manifest_path)
    row.passed = report.passed
    row.verdict = judged.verdict
    row.failures = list(failures)
    row.warnings = list(judged.warnings)
    bounds = [m.top1_lower for m in metrics if m.top1_lower is not None]
    row.top1_lower = min(bounds) if bounds else None
    rels = [m.max_rel for m in metrics if m.max_rel is not None]
    row.max_rel = max(rels) if rels else None
    cosines = [m.cosine for m in metrics if m.cosine is not None]
    row.cosine = min(cosines) if cosines else None
    row.seconds["judge"] = time.perf_counter() - t0
    tops = [m.top1 for m in metrics if m.top1 is not None]
    row.top1 = min(tops) if tops else None


# -- size and speed ---------------------------------------------------------------------------------


def _size_and_time(
    rows: list[ModeResult], target: Any, images: Path | None, lib: str | None, zipped_models: dict[str, int], step: Any,
    notes: list[str],
) -> None:
    from lamb import layout
    from lamb.package import build, lib_choice, wheels

    for row in rows:
        assert row.model_path is not None and row.manifest_path is not None
        manifest = mf.read(row.manifest_path)
        try:
            # As `lamb package` picks it: the newest release whose wheel passes the ELF audit for the
            # target, so no row projects an artifact that package would refuse to build.
            choice = lib_choice.choose(target, manifest, lib).choice
        except LambError as exc:
            row.status, row.reason = CANNOT_RUN, exc.message
            continue
        step(f"measuring the dependencies {target.name} ships: {', '.join(choice.requirements)}")
        deps = deps_mod.target_deps(choice.requirements, target)
        with tempfile.TemporaryDirectory(prefix="lamb-compare-root-") as scratch:
            files_dir = Path(scratch) / "files"
            files_dir.mkdir()
            installed = wheels.InstallResult(deps.root, target.name, deps.requirements, deps.pins, "cache", 0.0)
            record = build.package_record(target, "zip", choice, installed)
            shipped = mf.write(build.shipped_manifest(manifest, record), files_dir / layout.MANIFEST_FILE)
            model_file = runtime_lib.get(choice.name).format.file
            own = {layout.HANDLER_FILE: build.HANDLER_TEMPLATE, model_file: row.model_path, layout.MANIFEST_FILE: shipped}
            own.update({f"{layout.HANDLER_PACKAGE}/{p.relative_to(build.HANDLER_PACKAGE).as_posix()}": p
                        for p in sorted(build.HANDLER_PACKAGE.rglob("*.py"))})
            zipped = deps.zipped + zipped_models[row.mode] + sum(
                deps_mod.deflated_size(p, name) for name, p in own.items() if name != model_file
            )
            unzipped = deps.unzipped + sum(Path(p).stat().st_size for p in own.values())
            row.size = ModeSize(row.model_path.stat().st_size, zipped, unzipped, fits_direct_upload(zipped))

            step(f"timing the handler: {row.mode}")
            tree, python, where = deps_mod.timing_deps(deps, target, choice.name)
            root = deps_mod.task_root(tree, own, Path(scratch) / "task")
            event = build.sample_event(manifest, _first_image(images))
            from lamb.compare.timing import time_handler

            t0 = time.perf_counter()
            try:
                row.speed = time_handler(root, event, python=python, where=where)
            except ArtifactError as exc:  # verified, but the shipped handler cannot serve it
                row.status, row.reason = CANNOT_RUN, exc.message
            row.seconds["time"] = time.perf_counter() - t0
    notes.extend(timing_notes(rows))


def _first_image(images: Path | None) -> Path | None:
    if images is None:
        return None
    files = sorted(p for p in Path(images).rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    return files[0] if files else None
