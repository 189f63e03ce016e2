"""``lamb compare``: convert a model for every runtime library and in every quantization mode, and
measure what each (runtime library, mode) would cost.

By default every library that can run the model on the target is compared: for each model format,
the library ``lamb package`` would ship it with (``runtime_libs``); ``--runtime-lib``
restricts the comparison to one. The source model is loaded once and run once: every row is
converted from the same loaded model (one export per format) and compared with the same reference
outputs, on the same inputs, on its library as the target ships it (``lamb verify``'s runner and
comparison, ``reference``). Each row's artifact is projected from the target's real, slimmed
dependencies (``deps``); its handler is timed cold and warm (``timing``); Lambda's bill follows from
the timing (``lamb.cost``). A row that fails to convert or that its library cannot run is marked;
the comparison goes on.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamb import cost as cost_mod
from lamb import manifest as mf
from lamb import runtime_lib
from lamb.compare import deps as deps_mod
from lamb.compare.accuracy import LabeledReference
from lamb.compare.reference import LibraryRun, Reference, judge, run_on_library
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
from lamb.errors import ArtifactError, ConversionError, DependencyError, InputError, LambError
from lamb.source import Source, apply_input_shape, open_source

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
    # labelled images: each mode judged by its accuracy against the source model's; int8's calibration without --calibration
    labeled_images: Path | None = None
    calibration: Path | None = None  # for the calibrated modes (int8)
    samples: int | None = None  # seeded random inputs; None: 32
    seed: int = 0
    runtime: str | None = None  # the Lambda target; None: the newest runtime
    arch: str | None = None
    memory: Sequence[int] | None = None  # the settings to price; None: DEFAULT_MEMORY_MB
    modes: Sequence[str] | str | None = None  # None: every mode
    runtime_lib: str | None = None  # compare on this runtime library only; None: every one the target has (runtime_libs)
    preprocess: str | None = None
    labels: list[str] | None = None
    labels_file: Path | None = None
    head: str | None = None  # what the output is (lambkit.heads); None: as lamb convert decides
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
    """Convert ``source`` for each runtime library in each mode; verify, size, time and price each
    (runtime library, mode); recommend one.

    ``options`` (default: the command's defaults) with ``changes`` applied field by field, so
    ``compare_models(path, modes="float32,float16")`` reads as the command line does. The
    converted models (and their manifests, each with its verification recorded) are written to
    ``output_dir`` as ``<runtime library>/<stem>-<mode><suffix>``; without one they go to a temp
    folder that is removed. Raises ``LambError`` for what ``convert`` or ``verify`` would refuse.
    """
    o = dataclasses.replace(options or CompareOptions(), **changes)
    step = progress or (lambda _msg: None)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    notes: list[str] = []
    source = Path(source)
    o, wanted, settings, target = _checked(source, o)  # wanted: the modes, per library
    samples = o.samples
    assert samples is not None  # _checked settled the default

    keep = o.output_dir is not None
    out = Path(o.output_dir) if o.output_dir is not None else Path(tempfile.mkdtemp(prefix="lamb-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    try:
        from lamb import tflog

        src = open_source(source)
        step(f"loading the {src.title}")
        t0 = time.perf_counter()
        with tflog.capture_fd2():
            loaded = src.load(allow_unsafe_lambda=o.allow_unsafe_lambda)
        seconds["load_source"] = time.perf_counter() - t0

        rows, reference, done = _convert_and_run(loaded, source, o, wanted, out, target, step, seconds)
        converted = [r for r in rows if r.status == VERIFIED]
        for row in converted:
            assert reference is not None
            judge(row, reference, done[row.key])
        if reference is not None and reference.images:
            notes.append(f"verified on {o.samples} random sample(s) and {reference.images} image(s), the source model run once")

        runnable = [r for r in rows if r.status == VERIFIED]
        if runnable:
            t0 = time.perf_counter()
            _size_and_time(runnable, target, o.images, {k: r.zipped_model for k, r in done.items()}, step, notes)
            seconds["size_and_time"] = time.perf_counter() - t0
        _advise(runnable, settings, target, o.max_latency_ms, notes)

        best, why = recommend(rows)
        seconds["total"] = time.perf_counter() - started
        report = CompareReport(
            source=source, target=target.name, arch=target.arch, samples=samples, seed=o.seed,
            images=reference.images if reference is not None else 0,
            preprocess=reference.preprocess if reference is not None else (o.preprocess or "none"),
            memory_settings=settings, rows=rows, recommended=best.mode if best else None, why=why, notes=notes,
            recommended_runtime_lib=best.runtime_lib if best else None,
            estimate_note=cost_mod.ESTIMATE_NOTE, seconds=seconds, source_accuracy=reference.labeled.source if reference and reference.labeled else None,
        )
        if not keep:
            for row in rows:  # the paths pointed into a folder that is about to go
                row.model_path = row.manifest_path = None
        return report
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


def runtime_libs(target: Any, name: str | None = None, source: Source | None = None) -> list[runtime_lib.RuntimeLib]:
    """The runtime libraries to compare on ``target``: ``name`` alone when given, else for each
    model format the source can become (every one, without a source) the library ``lamb package``
    would ship a model of that format with (``lib_choice.resolve``, from the wheel tables). With no
    wheel at all, the format's first library: its rows say why they cannot run."""
    from lamb.release import lib_choice

    if name is not None:
        from lamb.convert.core import runtime_lib_for

        return [runtime_lib_for(source, name) if source is not None else runtime_lib.get(name)]
    wanted = [fmt for fmt in runtime_lib.formats() if source is None or source.converts_to(fmt)]
    found = []
    for fmt in wanted:
        try:
            found.append(runtime_lib.get(lib_choice.resolve(target, None, model_format=fmt, purpose=lib_choice.TAGGED).choice.name))
        except DependencyError:
            continue  # no library of this format has a wheel for the target
    return found or [runtime_lib.for_format(wanted[0])[0]]


def _checked(source: Path, o: CompareOptions) -> tuple[CompareOptions, dict[str, list[str]], list[int], Any]:
    """Cheap checks first, a typo should not cost a model load: the options with their defaults
    settled, the modes per runtime library, the memory settings and the target."""
    from lamb import targets
    from lamb.convert.preprocess import check_preprocess
    from lamb.verify.inputs import DEFAULT_SAMPLES, VerifyInputs

    src = open_source(source)  # nothing there, or not a model lamb reads: said before anything else
    settings = sorted(set(cost_mod.check_memory(int(m)) for m in (o.memory or DEFAULT_MEMORY_MB)))
    target = targets.get_target(o.runtime, o.arch)
    o = dataclasses.replace(o, runtime_lib=o.runtime_lib and runtime_lib.normalise_name(o.runtime_lib))
    wanted = {lib.name: parse_modes(o.modes, lib.format) for lib in runtime_libs(target, o.runtime_lib, src)}
    every = {m for modes in wanted.values() for m in modes}
    calibrated = sorted({m.name for name in wanted for m in runtime_lib.get(name).format.modes if m.calibrated})
    # Unlike `lamb verify`, the random samples stay on beside --images (the default is not 0 with images).
    samples = DEFAULT_SAMPLES if o.samples is None else o.samples
    o = dataclasses.replace(o, samples=VerifyInputs(samples=samples, images=o.images).sample_count())
    if o.images is not None and not Path(o.images).is_dir():
        raise InputError(f"no image folder at {o.images}", "pass --images with a folder of .jpg/.png files")
    if o.preprocess is not None:
        o = dataclasses.replace(o, preprocess=check_preprocess(o.preprocess))
    if o.labeled_images is not None and o.calibration is None and set(calibrated) & every:
        o = dataclasses.replace(o, calibration=o.labeled_images)  # checked as --calibration is; the images calibrate int8
    if o.calibration is not None and not set(calibrated) & every:
        raise InputError(f"--calibration only applies to {' or '.join(calibrated)}", f"add {calibrated[0]} to --modes, or drop --calibration")
    return o, wanted, settings, target


def _convert_and_run(
    loaded: Any, source: Path, o: CompareOptions, wanted: dict[str, list[str]], out: Path, target: Any, step: Any,
    seconds: dict[str, float],
) -> tuple[list[ModeResult], Reference | None, dict[tuple[str, str], LibraryRun]]:
    """Every (runtime library, mode) converted; each converted row run on its library; the source
    model run once."""
    # Each library's converted rows start running on it (one thread, in its own process: the
    # other core) while the next converts.
    from concurrent.futures import Future, ThreadPoolExecutor

    rows: list[ModeResult] = []
    runs: dict[tuple[str, str], Future] = {}
    lane = _Lane(loaded, source, o, target, rows, runs)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamb-runtime-lib") as lane.pool:
        for name, modes in wanted.items():
            lib = runtime_lib.get(name)
            try:
                _convert_for(lib, modes, lane, out / lib.name, step)
            except ConversionError as exc:  # the export itself: no mode of this library converts
                tried = {r.mode for r in rows if r.runtime_lib == lib.name}
                rows.extend(ModeResult(m, CONVERSION_FAILED, exc.message, runtime_lib=lib.name) for m in modes if m not in tried)
        seconds["convert"] = sum(r.seconds.get("convert", 0.0) for r in rows)
        # The source runs once, on the inputs the first library run built, while the lane finishes.
        reference = lane.reference
        if reference is not None:
            # Until a library run has built them, or every run has ended (failed, or refused).
            while not reference.ready.wait(0.05) and not all(run.done() for run in runs.values()):
                pass
            if reference.inputs is not None:
                step("running the source model once")
                reference.predict()
                seconds["source_predict"] = reference.predict_s
        t0 = time.perf_counter()
        done = {key: run.result() for key, run in runs.items()}
        seconds["library_wait"] = time.perf_counter() - t0
    return rows, reference, done


@dataclass
class _Lane:
    """What every library's conversions share: the loaded model, the options, the rows so far, and
    the lane their library runs go to."""

    loaded: Any
    source: Path
    o: CompareOptions
    target: Any
    rows: list[ModeResult]
    runs: dict[tuple[str, str], Any]
    pool: Any = None
    reference: Reference | None = None


def _convert_for(lib: runtime_lib.RuntimeLib, modes: list[str], lane: _Lane, out: Path, step: Any) -> None:
    """``lib``'s modes converted from one export of the model for its format, each row sent to the lane."""
    from lamb import tflog
    from lamb.convert import convert_model, engine
    from lamb.convert.preprocess import read_labels

    o = lane.o
    assert o.samples is not None  # _checked settled the default
    stem = open_source(lane.source).stem
    out.mkdir(parents=True, exist_ok=True)  # one folder per library: each mode's manifest is <stem>-<mode>.lamb.json
    step(f"exporting for {lib.name}")
    with engine.export(lane.loaded, lib.format, apply_input_shape(lane.loaded.inputs(), o.input_shape)) as shared:
        for mode in modes:
            if lib.format.mode(mode).calibrated and o.calibration is None:
                lane.rows.append(ModeResult(mode, SKIPPED, f"{mode} needs calibration images: pass --calibration DIR (~100 representative images)",
                                            runtime_lib=lib.name))
                continue
            step(f"converting for {lib.name}: {mode}")
            t0 = time.perf_counter()
            try:
                with tflog.capture_fd2():
                    result = convert_model(
                        shared, out / f"{stem}-{mode}{lib.format.suffix}", quantize=mode,
                        calibration=o.calibration if lib.format.mode(mode).calibrated else None,
                        runtime_lib_name=lib.name,
                        input_shape=o.input_shape, preprocess=o.preprocess, labels=read_labels(o.labels, o.labels_file),
                        head=o.head,
                    )
            except ConversionError as exc:
                # The converter refused this mode; others may still convert.
                lane.rows.append(ModeResult(mode, CONVERSION_FAILED, exc.message, runtime_lib=lib.name,
                                            seconds={"convert": time.perf_counter() - t0}))
                continue
            row = ModeResult(
                mode, VERIFIED, model_path=result.model_path, manifest_path=result.manifest_path, runtime_lib=lib.name,
                seconds={"convert": time.perf_counter() - t0},
            )
            lane.rows.append(row)
            if lane.reference is None:
                lane.reference = Reference(
                    lane.loaded, lane.source, o.samples, o.images, o.seed, result.manifest.preprocess, result.manifest.labels,
                    LabeledReference(o.labeled_images) if o.labeled_images is not None else None,
                )
            lane.runs[row.key] = lane.pool.submit(run_on_library, row, lane.reference, lane.target)


def _advise(runnable: list[ModeResult], settings: list[int], target: Any, max_latency_ms: float | None, notes: list[str]) -> None:
    """Each timed mode's memory advice and its cost at each setting, at the warm time the target's
    CPU is known to give it (``timing.credited_warm_ms``)."""
    from lamb.compare.timing import credited_warm_ms, isa_check

    isa = isa_check(target.arch)
    for row in runnable:
        if row.speed is None:
            continue
        warm_ms = credited_warm_ms(row, runnable, isa)
        # The same floors as `lamb invoke`: the peak RSS, and room for the largest image the
        # handler's pixel budget admits at the setting.
        floors = {"the pixel budget": cost_mod.pixel_budget_floor(row.speed.peak_rss_mb)}
        advice = cost_mod.advise_memory(
            warm_ms, peak_rss_mb=row.speed.peak_rss_mb, floors=floors, max_latency_ms=max_latency_ms,
            arch=target.arch, speedup=row.speed.speedup,
        )
        row.memory = advice
        row.costs = cost_mod.memory_points(warm_ms, settings, target.arch, advice.floor_mb, row.speed.speedup)
    notes.extend(isa.notes(runnable))


# -- size and speed ---------------------------------------------------------------------------------


def _size_and_time(
    rows: list[ModeResult], target: Any, images: Path | None, zipped_models: dict[tuple[str, str], int], step: Any,
    notes: list[str],
) -> None:
    from lamb import layout
    from lamb.convert import engine
    from lamb.package import build, smoke
    from lamb.release import lib_choice, wheels

    preoptimized: list[str] = []

    for row in rows:
        assert row.model_path is not None and row.manifest_path is not None
        manifest = mf.read(row.manifest_path)
        try:
            # As `lamb package` picks it: the newest release whose wheel passes the ELF audit for the
            # target, so no row projects an artifact that package would refuse to build.
            choice = lib_choice.resolve(target, manifest, row.runtime_lib).choice
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
            fmt = runtime_lib.get(choice.name).format
            model_file = fmt.file
            # The model as `lamb package` writes it into the artifact (its converter's ``ship``: a
            # one-file ONNX model with its weights apart), timed and sized as it ships.
            laid_out = Path(scratch) / "model"
            laid_out.mkdir()
            sources = [row.model_path.parent / name for name in manifest.model.external_data]  # an .onnx's weights
            written = engine.for_format(fmt).ship(row.model_path, sources, laid_out / model_file)
            external = {p.name: p for p in written}
            shipped_model = build.shipped_model(manifest, laid_out / model_file, written)
            shipped = mf.write(build.shipped_manifest(manifest, record, shipped_model), files_dir / layout.MANIFEST_FILE)
            own = {layout.HANDLER_FILE: build.HANDLER_TEMPLATE, model_file: laid_out / model_file, layout.MANIFEST_FILE: shipped}
            own.update(external)
            own.update({f"{layout.HANDLER_PACKAGE}/{p.relative_to(build.HANDLER_PACKAGE).as_posix()}": p
                        for p in sorted(build.HANDLER_PACKAGE.rglob("*.py"))})
            zipped = deps.zipped + zipped_models[row.key] + sum(
                deps_mod.deflated_size(p, name) for name, p in own.items() if name != model_file
            )
            unzipped = deps.unzipped + sum(Path(p).stat().st_size for p in own.values())
            model_bytes = sum(p.stat().st_size for p in [laid_out / model_file, *external.values()])
            row.size = ModeSize(model_bytes, zipped, unzipped, fits_direct_upload(zipped))

            step(f"timing the handler: {row.label}")
            tree, python, where = deps_mod.timing_deps(deps, target, choice.name)
            root = deps_mod.task_root(tree, own, Path(scratch) / "task")
            if _preoptimized(row, target, choice.name, tree, root, build.shipped_manifest(manifest, record, shipped_model), model_file):
                preoptimized.append(row.label)
            event = smoke.sample_event(manifest, _first_image(images))
            from lamb.compare.timing import time_handler

            t0 = time.perf_counter()
            try:
                row.speed = time_handler(root, event, python=python, where=where)
            except ArtifactError as exc:  # verified, but the shipped handler cannot serve it
                row.status, row.reason = CANNOT_RUN, exc.message
            row.seconds["time"] = time.perf_counter() - t0
    if preoptimized:
        notes.append(f"{', '.join(preoptimized)} timed and sized with the model pre-optimized for this CPU, as `lamb package` ships it")
    notes.extend(timing_notes(rows))


def _preoptimized(row: ModeResult, target: Any, lib: str, tree: Path, root: Path, shipped: mf.Manifest, model_file: str) -> bool:
    """The model pre-optimized in ``root`` as ``lamb package`` ships it (ONNX Runtime, on the
    target's own wheels), so the row is timed and sized as it ships."""
    from lamb import layout
    from lamb.package import budget, optimize

    made = optimize.preoptimize(target, lib, tree, root, model_file, limit=budget.UNZIPPED)  # as package decides for a zip
    if made.entry is None or shipped.package is None or row.size is None:
        return False
    for optimized in optimize.files_of(root, made.entry):
        row.size.zip += deps_mod.deflated_size(optimized, optimized.name)
        row.size.unzipped += optimized.stat().st_size
    row.size.fits_direct_upload = fits_direct_upload(row.size.zip)
    record = dataclasses.replace(shipped.package, optimized=made.entry)
    mf.write(dataclasses.replace(shipped, package=record), root / layout.MANIFEST_FILE)  # the task root's own copy
    return True


def _first_image(images: Path | None) -> Path | None:
    if images is None:
        return None
    files = sorted(p for p in Path(images).rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    return files[0] if files else None
