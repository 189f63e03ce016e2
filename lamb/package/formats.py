"""One writer per artifact format: all that ``lamb package`` does differently for a zip and for an
image context lives in one class each, found in ``FORMATS``.

A writer names its output, slims the dependencies and compiles their bytecode (or not), writes the artifact to
a temp path beside the output, measures it against Lambda's limits, lays it out as a task root
this machine can run (for the smoke run), and finally puts it in place or throws it away.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lamb import files, layout, runtime_lib, targets
from lamb import manifest as mf
from lamb.errors import InputError
from lamb.package import artifact, budget, bytecode, standin
from lamb.progress import Progress
from lamb.release import slim, wheels


@dataclass
class Build:
    """What the steps of one ``build_package`` share."""

    target: targets.Target
    manifest: mf.Manifest
    manifest_path: Path
    install: wheels.InstallResult  # the target's wheels, in ``deps``
    deps: Path
    files: Path  # lamb's own root files: handler, model, shipped manifest (written after the audit)
    slim_deps: bool
    compile_bytecode: bool
    max_bytes: int | None
    sample_event: dict
    progress: Progress
    base_image: str | None = None  # --base-image: the image format's FROM instead of the target's
    # Written with lamb's own files (``build._write_own_files``), the steps after read them:
    # the files the model reads beside itself as it ships (its converter's ``ship``: a one-file
    # ONNX model ships its weights apart), by the names it reads them under;
    external_files: tuple[str, ...] = ()
    # and the model pre-optimized for this CPU and its weights (``optimize.files_of``).
    optimized_files: tuple[str, ...] = ()

    @property
    def model_file(self) -> str:
        """The model's name in the artifact: its format's (``lamb.runtime_lib``)."""
        return runtime_lib.model_format(self.manifest.model.format).file

    @property
    def root_files(self) -> tuple[str, ...]:
        return layout.root_files(self.model_file, self.beside_model)

    @property
    def beside_model(self) -> tuple[str, ...]:
        """Every file that ships beside the model and is part of it: its external data, and its
        pre-optimized copy (the size budget counts them all as the model)."""
        return (*self.external_files, *self.optimized_files)

    @property
    def own(self) -> dict[str, Path]:
        return {name: self.files / name for name in self.root_files}


class ArtifactFormat:
    """The format-specific steps; see the module docstring."""

    name: ClassVar[str]
    runs_itself: ClassVar[bool]  # can its own task root run on another Python of the target's version?
    # Does building it run the model on the target's own base image (docker build), so that build,
    # not the ELF audit's unmeasured facts, has the last word on what loads there?
    proves_itself: ClassVar[bool] = False
    accepts_base_image: ClassVar[bool] = False  # --base-image: only an image is built on one

    def output(self, path: Path) -> Path:
        raise NotImplementedError

    def slim(self, build: Build) -> list[slim.SlimResult]:
        """Remove what the handler never loads from the dependencies (before the ELF audit)."""
        raise NotImplementedError

    def compile(self, build: Build) -> bytecode.BytecodeResult:
        raise NotImplementedError

    def write(self, build: Build, output: Path) -> tuple[Path, budget.BudgetReport]:
        """The artifact at a temp path beside ``output``, and its size budget (not yet enforced)."""
        raise NotImplementedError

    def task_root(self, build: Build, temp: Path, dest: Path) -> tuple[Path, str]:
        """The built artifact as a task root with the target's own wheels, and what that is."""
        raise NotImplementedError

    def record_smoke(self, build: Build, temp: Path, smoke: mf.SmokeResult) -> None:
        """Write what the smoke run measured into the artifact where it says so (after the run)."""

    def publish(self, temp: Path, output: Path) -> tuple[str | None, int]:
        """Put the finished artifact in place; its sha256 (zip only) and size."""
        raise NotImplementedError

    def discard(self, temp: Path) -> None:
        raise NotImplementedError


class ZipFormat(ArtifactFormat):
    """A deterministic zip for Lambda's zip package type: slimmed, with the target's bytecode."""

    name = "zip"
    runs_itself = True

    def output(self, path: Path) -> Path:
        if path.suffix != ".zip":
            path = path.with_name(path.name + ".zip")
        path = path.resolve()
        if path.is_dir():
            raise InputError(f"{path} is a folder", "name a .zip file with --output, or remove the folder")
        return path

    def slim(self, build: Build) -> list[slim.SlimResult]:
        if not build.slim_deps:
            return []
        build.progress.phase("slimming the dependencies")
        return slim.slim(build.deps)

    def compile(self, build: Build) -> bytecode.BytecodeResult:
        if not build.compile_bytecode:
            return bytecode.BytecodeResult(False, None, 0, 0, "not compiled (--no-bytecode)")
        build.progress.phase(f"compiling bytecode for Python {build.target.python_version}")
        compiled = bytecode.compile_tree(build.deps, build.target)
        if compiled.compiled:
            handler = bytecode.compile_tree(build.files, build.target, compiled.python)
            compiled.files += handler.files
            compiled.bytes_added += handler.bytes_added
        return compiled

    def write(self, build: Build, output: Path) -> tuple[Path, budget.BudgetReport]:
        entries = artifact.collect(build.deps) + artifact.collect(build.files)
        build.progress.phase(f"writing {output.name}", total=len(entries))
        temp = mf.atomic_output(output)
        try:
            artifact.write_zip_to(entries, temp, on_entry=build.progress.advance)
            zip_bytes = temp.stat().st_size
            report = budget.check(budget.measure_zip(temp, build.beside_model), fmt="zip", max_size=build.max_bytes, zip_bytes=zip_bytes)
        except BaseException:
            self.discard(temp)
            raise
        return temp, report

    def task_root(self, build: Build, temp: Path, dest: Path) -> tuple[Path, str]:
        return standin.unpack_artifact(temp, dest), "the artifact itself, unpacked"

    def publish(self, temp: Path, output: Path) -> tuple[str | None, int]:
        sha, size = mf.sha256_file(temp), temp.stat().st_size
        temp.chmod(0o644)  # mkstemp's 0600 is not what a build artifact should be
        files.publish(temp, output)
        return sha, size

    def discard(self, temp: Path) -> None:
        temp.unlink(missing_ok=True)


class ImageFormat(ArtifactFormat):
    """A Docker build context on AWS's Lambda base image: pip installs the pinned wheels (whole,
    and compiled with the image's own Python) at ``docker build`` time."""

    name = "image"
    runs_itself = False
    proves_itself = True
    accepts_base_image = True

    def output(self, path: Path) -> Path:
        path = path.resolve()
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} is a file, not an image-context folder", "name a folder with --output")
        return path

    def slim(self, build: Build) -> list[slim.SlimResult]:
        return []  # pip installs the wheels whole at `docker build` time

    def compile(self, build: Build) -> bytecode.BytecodeResult:
        return bytecode.BytecodeResult(False, None, 0, 0, "compiled by pip inside the image at docker build time")

    def write(self, build: Build, output: Path) -> tuple[Path, budget.BudgetReport]:
        build.progress.phase(f"writing {output.name}/")
        temp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
        try:
            temp.chmod(0o755)  # mkdtemp's 0700 would hide the context from `docker build` run by others
            _write_image_context(temp, build, function_name(build.manifest_path))
            own = build.own
            context = {p.name: p for p in temp.iterdir() if p.name not in own}
            report = budget.check(budget.measure_tree(build.deps, {**own, **context}, build.beside_model), fmt="image", max_size=build.max_bytes)
        except BaseException:
            self.discard(temp)
            raise
        return temp, report

    def record_smoke(self, build: Build, temp: Path, smoke: mf.SmokeResult) -> None:
        """The README's create-function command gets the memory and timeout lamb advises for the
        smoke run's figures (``lamb.cost.advise_function``: what invoke says and deploy applies)."""
        if not (smoke.ran and smoke.passed):
            return
        from lamb.cost import advise_function

        advice = advise_function(smoke.invoke_ms, init_ms=smoke.init_ms, peak_rss_mb=smoke.peak_rss_mb, arch=build.target.arch)
        readme = artifact.image_readme(build.target, function_name(build.manifest_path), advice, build.base_image)
        (temp / "README.md").write_text(readme, encoding="utf-8")

    def task_root(self, build: Build, temp: Path, dest: Path) -> tuple[Path, str]:
        shutil.copytree(build.deps, dest)
        for name, path in build.own.items():
            artifact.copy_entry(path, dest / name)
        return dest, "the image's files with its pinned wheels"

    def publish(self, temp: Path, output: Path) -> tuple[str | None, int]:
        size = sum(p.stat().st_size for p in temp.rglob("*") if p.is_file())
        artifact.replace_dir(temp, output)
        return None, size

    def discard(self, temp: Path) -> None:
        shutil.rmtree(temp, ignore_errors=True)


FORMATS: dict[str, ArtifactFormat] = {f.name: f for f in (ZipFormat(), ImageFormat())}


def function_name(manifest_path: Path) -> str:
    """The model's name as ECR, Lambda and IAM all accept it (lowercase letters, digits, hyphens;
    short enough for "<name>-role", IAM's limit being 64)."""
    import re

    name = re.sub(r"[^a-z0-9]+", "-", mf.model_stem(manifest_path).lower()).strip("-")[:48].strip("-")
    return name if name and name[0].isalpha() else f"lamb-{name or 'model'}"


def _write_image_context(folder: Path, build: Build, name: str) -> None:
    from lamb import __version__

    for filename, path in build.own.items():
        artifact.copy_entry(path, folder / filename)
    (folder / artifact.SAMPLE_EVENT).write_text(json.dumps(build.sample_event) + "\n", encoding="utf-8")
    target = build.target
    pinned = build.install.pinned()
    header = f"# Resolved by lamb package for {target.describe()}; installed with --no-deps, so this is the whole set.\n"
    (folder / "requirements.txt").write_text(header + "\n".join(pinned) + "\n", encoding="utf-8")
    (folder / "Dockerfile").write_text(artifact.dockerfile(target, pinned, __version__, build.root_files, build.base_image), encoding="utf-8")
    (folder / ".dockerignore").write_text(artifact.dockerignore(build.root_files), encoding="utf-8")
    (folder / "README.md").write_text(artifact.image_readme(target, name, base_image=build.base_image), encoding="utf-8")  # settings once the smoke run measured them
