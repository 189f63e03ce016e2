"""``build_package``: manifest in, verified, size-checked, smoke-tested Lambda artifact out.

Steps: trust check (the model is the one verify passed) -> target and runtime library ->
wheels for the target -> slimming -> artifact in a temp file beside the output -> size budget ->
smoke run of the built files in a fresh interpreter -> rename over the old artifact. Any failure
before the rename leaves the previous artifact untouched.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

from lamb import files, layout, runtime_lib, targets
from lamb import manifest as mf
from lamb.errors import DependencyError, InputError, VerificationFailed
from lamb.manifest import SmokeResult
from lamb.package import artifact, budget, formats, optimize, smoke, verified
from lamb.package.formats import Build
from lamb.package.report import PackageReport
from lamb.package.smoke import sample_event
from lamb.progress import Progress, current
from lamb.release import audit, lib_choice, wheels
from lamb.units import MiB

# The shipped handler: lamb's short entry module and the package it imports (lamb/handler/).
HANDLER_DIR = Path(__file__).resolve().parent.parent / "handler"
HANDLER_TEMPLATE = HANDLER_DIR / layout.HANDLER_FILE
HANDLER_PACKAGE = HANDLER_DIR / layout.HANDLER_PACKAGE
FORMATS = tuple(formats.FORMATS)


_NAME_IT = "as lamb package's argument: `lamb package model.lamb.json`"


def resolve_manifest(path: Path | None) -> Path:
    """A manifest path from what the user named: nothing (cwd), a folder, a converted model or a manifest."""
    if path is None:
        return mf.find(name_it=_NAME_IT)
    path = Path(path)
    if path.is_dir():
        return mf.find(path, _NAME_IT)
    if runtime_lib.format_for_suffix(path.suffix) is not None:
        return mf.manifest_path_for(path)
    return path


def check_verification(manifest: mf.Manifest, model: Path, skip_verify: bool) -> str:
    """Refuse a model that verify did not pass, or that changed since; returns a one-line status."""
    if skip_verify:
        return "skipped (--skip-verify)"
    v = manifest.verification
    hint = "run `lamb verify` first, or pass --skip-verify to package it anyway"
    if v is None:
        raise VerificationFailed("the model has not been verified", hint)
    if not v.passed:
        why = "; ".join(v.failures[:2]) or v.error or "see `lamb verify`"
        raise VerificationFailed(f"the model failed verification ({why})", "fix the conversion and re-run `lamb verify`, or pass --skip-verify")
    actual = mf.sha256_file(model)
    if actual != v.model_sha256:
        raise VerificationFailed(
            f"{model.name} changed since it was verified (sha256 {actual[:12]}... != {v.model_sha256[:12]}...)",
            hint,
        )
    return f"passed on {v.runtime_lib} {v.runtime_lib_version} ({v.samples} samples, {v.images} images)"


def check_evidence(manifest: mf.Manifest) -> list[str]:
    """Refuse a preprocessing "none" nothing showed; warn (one line) of a model without labels."""
    if mf.preprocess_unconfirmed(manifest):
        raise InputError(
            'the manifest records preprocessing "none" (raw [0, 255] pixels) only because nothing in the model showed '
            "how it was trained: a model trained on scaled pixels would answer confidently wrong",
            "re-run `lamb convert` with --preprocess (none to confirm raw pixels), or show it with "
            "`lamb verify --labeled-images DIR`",
        )
    if mf.unlabelled_classifier(manifest):
        return ['no class labels: the function answers with output indices ("0", "1", ...); `lamb convert --labels-file` names them']
    return []


def check_audit(report: audit.AuditReport, target: targets.Target, proves_itself: bool = False) -> audit.AuditReport:
    """Refuse an artifact with an ELF file the target's system cannot load; return the report.

    ``proves_itself``: the artifact runs the model on the target's own base image while it is built
    (an image context), so a verdict resting on unmeasured facts is left to that build.
    """
    if not report.passed and not (proves_itself and report.rests_on != targets.MEASURED):
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        probe = "" if report.rests_on == targets.MEASURED else (
            f", or measure the target with `lamb probe --runtime {target.runtime.name} --arch {target.arch}` "
            f"(this rests on {report.rests_on} facts)"
        )
        raise DependencyError(
            f"the artifact would not load on {target.describe()}: {report.first_problem()}{more}",
            "give --wheelhouse wheels built for that system, or choose a newer --runtime (python3.12+ runs "
            f"Amazon Linux 2023, glibc 2.34) or another --arch{probe}",
        )
    return report


def default_output(manifest_path: Path, target: targets.Target, fmt: str) -> Path:
    stem = mf.model_stem(manifest_path)
    return Path.cwd() / (f"{stem}-{target.name}.zip" if fmt == "zip" else f"{stem}-{target.name}-image")


@dataclass
class PackageOptions:
    """Every choice ``lamb package`` offers; the defaults are the command's."""

    runtime: str | None = None  # None: targets.DEFAULT_RUNTIME
    arch: str | None = None  # None: x86_64
    fmt: str = "zip"  # a key of formats.FORMATS
    output: Path | None = None  # None: <stem>-<runtime>-<arch>.zip (or -image/) in the current folder
    runtime_lib_name: str | None = None  # the runtime library; None: the audit-driven choice
    wheelhouse: Path | None = None  # build offline from this folder of wheels
    slim_deps: bool = True
    max_size: int | str | None = None  # the user's budget, on top of Lambda's limits
    skip_verify: bool = False
    smoke: bool = True
    compile_bytecode: bool = True
    sample_image: Path | None = None  # for the smoke run; None: a seeded synthetic image
    handler: Path | None = None  # the user's own entry module, shipped as lambda_function.py; None: lamb's
    # What the handler imports beyond lamb's (--requirement): resolved, audited and slimmed like the rest.
    requirements: tuple[str, ...] = ()
    base_image: str | None = None  # --format image: build on this image instead of AWS's base image
    # Verifies the model again on the release that ships when verify ran another (by default
    # lamb.verify.verify_again, so Python and the command decide alike); None: such a build is
    # refused with the command that verifies it.
    reverify: verified.Reverify | None = verified.verify_again


def build_package(
    manifest_path: Path | None = None,
    options: PackageOptions | None = None,
    *,
    progress: Progress | None = None,
    **changes,
) -> PackageReport:
    """Build a Lambda artifact for the model a manifest describes; see the module docstring.

    ``options`` (default: the command's defaults) with ``changes`` applied field by field, so
    ``build_package(path, runtime="python3.12", smoke=False)`` reads as the command line does.
    ``progress`` hears each phase as it starts.
    """
    o = replace(options or PackageOptions(), **changes)
    progress = progress or current()
    start = time.perf_counter()
    writer = formats.FORMATS.get(o.fmt)
    if writer is None:
        raise InputError(f"unknown format {o.fmt!r}", f"use --format {' or --format '.join(formats.FORMATS)}")
    max_bytes = budget.parse_size(o.max_size)
    target = targets.get_target(o.runtime, o.arch)  # option values first: no work for a typo
    manifest_path = resolve_manifest(manifest_path)
    manifest = mf.read(manifest_path)
    model = manifest.model_files(manifest_path)[0]  # in the manifest's folder, as recorded: --skip-verify too
    verification = check_verification(manifest, model, o.skip_verify)
    evidence = check_evidence(manifest)
    entry = check_handler(o.handler)
    extra = wheels.extra_requirements(o.requirements)
    if o.base_image is not None and not writer.accepts_base_image:
        raise InputError(f"--base-image needs --format image (a {o.fmt} has no base image)", "add --format image, or drop --base-image")
    output = writer.output(Path(o.output) if o.output is not None else default_output(manifest_path, target, o.fmt))
    with files.writing(output.parent):  # a read-only folder refused now, not after the build
        output.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=output.parent).close()
    slim_deps = o.slim_deps and writer.name == "zip"
    # The library release: the newest whose wheel passes the ELF audit for the target, as it will
    # ship (slimmed for a zip); refused here, before anything is built, when none does.
    audited_choice = lib_choice.resolve(
        target, manifest, o.runtime_lib_name, slimmed=slim_deps, wheelhouse=o.wheelhouse, progress=progress.phase,
        proven_at_build=writer.proves_itself,
    )
    choice = audited_choice.choice
    if not o.skip_verify:  # ship only what a verification ran on (verify again on it when it did not)
        manifest, again = verified.ensure(manifest_path, manifest, choice, target, o.reverify)
        verification = f"{check_verification(manifest, model, False)}: {again}" if again else verification

    temp: Path | None = None
    with files.scratch("lamb-package-") as work:
        try:
            requirements = [*choice.requirements, layout.IMAGE_LIBRARY, *extra]
            progress.phase(f"resolving wheels for {target.name}: {', '.join(requirements)}")
            install = wheels.install_for_target(requirements, target, work / "deps", wheelhouse=o.wheelhouse, progress=progress)
            build = Build(
                target, manifest, manifest_path, install, install.dest, work / "files", slim_deps=slim_deps,
                compile_bytecode=o.compile_bytecode, max_bytes=max_bytes,
                sample_event=sample_event(manifest, o.sample_image), progress=progress, base_image=o.base_image,
            )
            slimmed = writer.slim(build)
            progress.phase(f"auditing the ELF files against {target.system.describe()}")
            audited = check_audit(audit.audit_tree(build.deps, target), target, writer.proves_itself)
            record = replace(package_record(target, o.fmt, choice, install), audit=audited.record())
            record, optimized = _write_own_files(build, entry, record, choice, writer.name)
            compiled = writer.compile(build)
            with files.writing(output):
                temp, report_budget = writer.write(build, output)
                temp, report_budget, record, optimized = _keep_direct_upload(build, writer, output, temp, report_budget, record, optimized)
            budget.enforce(report_budget)
            smoke_result = smoke.run(build, writer, temp, choice, compiled.compiled, work, o.wheelhouse) if o.smoke else \
                SmokeResult(False, False, False, "not run (--no-smoke)")
            with files.writing(output):
                sha, size = writer.publish(temp, output)
            temp = None
        finally:
            if temp is not None:
                writer.discard(temp)

    record = replace(
        record, artifact=mf.relative_to_manifest(manifest_path, output), sha256=sha,
        zipped_bytes=report_budget.total_zipped, unzipped_bytes=report_budget.total_unzipped, smoke=smoke_result,
    )
    warnings = evidence + _warnings(report_budget, audited, target, o.skip_verify)
    try:  # kept beside every other build's record, also one made meanwhile by another lamb package
        mf.update(manifest_path, lambda current: current.with_package(record))
    except InputError as exc:  # the artifact is built and sound; only its record could not be kept (read-only, gone)
        warnings.append(f"could not record the package: {exc.message}")
    return PackageReport(
        artifact=output, format=o.fmt, target=target.name, target_description=target.describe(), runtime_lib=choice,
        installed=install.installed, wheel_source=install.source, slimming=slimmed, bytecode=compiled,
        budget=report_budget, smoke=smoke_result, audit=audited, verification=verification, sha256=sha, bytes=size,
        seconds=time.perf_counter() - start, warnings=warnings, record=record, optimized=optimized.note,
        handler=str(o.handler) if o.handler is not None else layout.HANDLER_FILE, handler_offers=handler_offers(),
    )


def _warnings(report_budget: budget.BudgetReport, audited: audit.AuditReport, target: targets.Target, skip_verify: bool) -> list[str]:
    warnings = list(report_budget.warnings)
    if audited.on_demand:
        files = sorted({p.file.rsplit("/", 1)[-1] for p in audited.on_demand})
        warnings.append(
            f"{len(files)} shipped librar{'y' if len(files) == 1 else 'ies'} loaded only on demand "
            f"({', '.join(files[:3])}{', ...' if len(files) > 3 else ''}) need libraries the artifact and "
            f"{target.system.name} lack (e.g. {audited.on_demand[0].need}); the handler never loads them"
        )
    if not audited.passed:  # only an image gets here: its docker build decides
        warnings.append(f"the ELF audit fails on {audited.rests_on} facts ({audited.first_problem()}); the image's "
                        "docker build runs the model on the base image's own libraries and fails there if the function would")
    if skip_verify:
        warnings.append("the model was packaged without a passed verification (--skip-verify)")
    return warnings


def handler_offers() -> list[str]:
    """What the shipped package offers an entry module to import: its ``__all__``, read from the
    source (lamb never imports the handler's package as a top-level module)."""
    import ast

    tree = ast.parse((HANDLER_PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return [str(ast.literal_eval(e)) for e in node.value.elts]  # type: ignore[attr-defined]
    return []


def check_handler(path: Path | None) -> Path:
    """The entry module to ship: lamb's, or the user's ``--handler`` file once it is Python that
    defines ``lambda_handler`` at its top level (Lambda's handler setting names that function)."""
    import ast

    if path is None:
        return HANDLER_TEMPLATE
    path = Path(path)
    hint = "give --handler a Python file that defines lambda_handler(event, context); `lamb handler init` writes lamb's own to start from"
    if not path.is_file():
        raise InputError(f"--handler {path} is not a file", hint)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"--handler {path} is not valid Python ({exc.__class__.__name__}: {exc})", hint) from None
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    if layout.HANDLER.rsplit(".", 1)[1] not in defined:
        raise InputError(f"--handler {path} defines no lambda_handler at its top level", hint)
    return path


def _write_own_files(
    build: Build, entry: Path, record: mf.PackageRecord, choice: runtime_lib.RuntimeLibChoice, fmt: str,
) -> tuple[mf.PackageRecord, optimize.Optimized]:
    """lamb's own root files in ``build.files``: handler entry and package, model and its external
    data, the model pre-optimized for this CPU where the library has that (recorded), shipped manifest."""
    from lamb.convert import engine

    own, manifest = build.files, build.manifest
    own.mkdir()
    shutil.copyfile(entry, own / layout.HANDLER_FILE)
    artifact.copy_entry(HANDLER_PACKAGE, own / layout.HANDLER_PACKAGE)
    model, *external = manifest.model_files(build.manifest_path)  # checked again as it is copied in
    written = engine.for_format(runtime_lib.model_format(manifest.model.format)).ship(model, external, own / build.model_file)
    build.external_files = tuple(p.name for p in written)
    limit = budget.UNZIPPED if fmt == "zip" else None
    optimized = optimize.preoptimize(build.target, choice.name, build.deps, own, build.model_file, limit=limit, progress=build.progress)
    record = replace(record, optimized=optimized.entry)
    build.optimized_files = tuple(p.name for p in optimize.files_of(own, optimized.entry)) if optimized.entry else ()
    _write_shipped_manifest(build, record)
    return record, optimized


def _write_shipped_manifest(build: Build, record: mf.PackageRecord) -> None:
    """The artifact's ``lamb.json``: this build's record, and the model's files as they ship."""
    own = build.files
    model = shipped_model(build.manifest, own / build.model_file, [own / name for name in build.external_files])
    mf.write(shipped_manifest(build.manifest, record, model), own / layout.MANIFEST_FILE)


def _keep_direct_upload(
    build: Build, writer: formats.ArtifactFormat, output: Path, temp: Path, report: budget.BudgetReport,
    record: mf.PackageRecord, optimized: optimize.Optimized,
) -> tuple[Path, budget.BudgetReport, mf.PackageRecord, optimize.Optimized]:
    """The zip again without the pre-optimized copy when that copy alone takes it past Lambda's
    50 MB direct upload: it saves tens of milliseconds of cold start, and only on a CPU with the
    packaging one's instruction sets (bench_ort_init: int8 144 -> 130 ms), while past 50 MB the
    code must go through S3. A zip over 50 MB without it keeps it."""
    zipped = report.total_zipped
    if not build.optimized_files or zipped is None or zipped <= targets.ZIP_DIRECT_UPLOAD:
        return temp, report, record, optimized
    with zipfile.ZipFile(temp) as zf:  # what the copy takes in the zip: its deflated bytes and headers
        its = sum(i.compress_size + artifact.entry_overhead(i.filename) for i in zf.infolist() if i.filename in build.optimized_files)
    if zipped - its > targets.ZIP_DIRECT_UPLOAD:
        return temp, report, record, optimized
    for name in build.optimized_files:
        (build.files / name).unlink()
    build.optimized_files = ()
    record = replace(record, optimized=None)
    _write_shipped_manifest(build, record)
    writer.discard(temp)
    temp, without = writer.write(build, output)
    limit = targets.ZIP_DIRECT_UPLOAD
    note = (f"not pre-optimized: with the optimized copy the zip was {zipped / MiB:.1f} MB, past Lambda's {limit / MiB:.0f} MB "
            f"direct upload; without it, {(without.total_zipped or 0) / MiB:.1f} MB (the copy would shorten a cold start only on a "
            "CPU like this one)")
    return temp, without, record, optimize.Optimized(None, note)


def shipped_model(manifest: mf.Manifest, model: Path, external: list[Path]) -> mf.ModelEntry:
    """The artifact's model entry: the files as they ship (a one-file ONNX model's weights apart:
    other bytes, the same tensors; the verification record keeps the sha256 verify saw)."""
    return replace(manifest.model, file=model.name, sha256=mf.sha256_file(model), bytes=model.stat().st_size,
                   external_data=[p.name for p in external], external_sha256={p.name: mf.sha256_file(p) for p in external})


def package_record(
    target: targets.Target, fmt: str, choice: runtime_lib.RuntimeLibChoice, install: wheels.InstallResult
) -> mf.PackageRecord:
    """The facts the artifact ships about itself (the manifest's copy adds sha256, sizes, smoke run)."""
    from lamb import __version__

    return mf.PackageRecord(
        target=target.name, runtime=target.runtime.name, python=target.python_version, arch=target.arch,
        os=target.runtime.os, glibc=target.glibc, format=fmt, handler=layout.HANDLER,
        runtime_lib=choice.name, runtime_lib_version=choice.version, installed=dict(sorted(install.installed.items())),
        lamb_version=__version__, handler_backend=runtime_lib.get(choice.name).handler_backend,
    )


def shipped_manifest(manifest: mf.Manifest, record: mf.PackageRecord | None = None, model: mf.ModelEntry | None = None) -> mf.Manifest:
    """The copy that ships: the model sits beside the handler (``model``: as it ships, else as
    verified); host paths stay on the host; the package record is this build's (None: no artifact
    is being built, as in lamb compare)."""
    calibration = manifest.calibration
    if calibration and calibration.get("dir"):
        calibration = {**calibration, "dir": Path(str(calibration["dir"])).name}
    model = model or replace(manifest.model, file=runtime_lib.model_format(manifest.model.format).file)
    return replace(
        manifest, model=model, source=Path(manifest.source).name, source_absolute=None,
        calibration=calibration, package=record, packages={},
    )
