"""Task roots this machine can run: an artifact unpacked as it is, or a host stand-in.

An artifact's wheels are built for its target. When this machine cannot load them (another Python
version, another arch, an older glibc), the same handler, model and manifest run on a *host
stand-in*: the same package versions installed for this machine, those it has no wheel for
replaced by what the resolver picks (never the runtime library: a stand-in on another version of
it would prove nothing), slimmed as ``lamb package`` slims. One builder serves ``lamb package``'s
smoke run, ``lamb invoke`` / ``lamb serve``, and image contexts, whose wheels Docker would install.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from lamb import layout, runtime_lib, targets
from lamb import manifest as mf
from lamb.errors import ArtifactError, InputError, ManifestError
from lamb.local import extract_zip
from lamb.package import artifact, budget, bytecode
from lamb.release import slim, wheels, zip_check


@dataclass
class StandIn:
    """A task root with the artifact's own files and wheels this machine loads."""

    root: Path
    host: targets.Target
    differences: list[str] = field(default_factory=list)  # "numpy 2.3.5 (target 2.5.0)"

    @property
    def how(self) -> str:
        """What it runs with, in one phrase for the report."""
        how = f"the same package versions built for {self.host.name}"
        return how + (" except " + ", ".join(self.differences) if self.differences else "")


def build_stand_in(
    pins: dict[str, str],
    dest: Path,
    *,
    own: Path | None = None,
    keep: str | None = None,
    extra: list[str] | None = None,
    slim_deps: bool = True,
    compile_bytecode: bool = False,
    wheelhouse: Path | None = None,
    cache: Path | None = None,
) -> StandIn:
    """Install ``pins`` (distribution -> version) for this machine into ``dest``; see the module
    docstring. ``own``: a folder whose artifact root files (handler, model, manifest) are copied
    in after slimming; ``keep``: the runtime library never unpinned (default: the one in ``pins``);
    ``compile_bytecode``: as the artifact was, so the stand-in's cold start is comparable."""
    host = targets.host_smoke_target()
    if host is None:
        raise ArtifactError(
            "this machine cannot load any Lambda wheel (not Linux CPython with glibc on x86_64/arm64)",
            "run the artifact on Lambda, or in its container image",
        )
    if keep is None:
        names = {canonicalize_name(p) for p in pins}
        keep = next((n for n in runtime_lib.names() if n in names), runtime_lib.names()[0])
    _, differences = wheels.install_same_versions(
        pins, host, dest, keep=keep, extra=extra, wheelhouse=wheelhouse, cache=cache
    )
    if slim_deps:
        slim.slim(dest)
    if own is not None:
        for name in _root_files(own):
            if (own / name).exists():
                artifact.copy_entry(own / name, dest / name)
    if compile_bytecode:
        bytecode.compile_tree(dest, host)
    return StandIn(Path(dest), host, differences)


def _root_files(own: Path) -> tuple[str, ...]:
    """lamb's own files at the root of ``own`` (its shipped manifest names the model), not the wheels."""
    from lamb.package.optimize import files_of

    try:
        shipped = mf.read_shipped(own)
    except ManifestError:
        return (layout.HANDLER_FILE, layout.MANIFEST_FILE)
    optimized = shipped.package.optimized if shipped.package is not None else None
    beside = [Path(p).name for p in shipped.model.external_data] + [p.name for p in files_of(Path(), optimized or {})]
    return layout.root_files(Path(shipped.model.file).name, tuple(beside))


def host_stand_in(task_root: Path, notes: list[str]) -> Path:
    """A new temp task root running ``task_root``'s handler, model and manifest on this machine
    (the caller removes it); ``notes`` gets the label."""
    pins = wheels.installed_distributions(task_root)
    dest = Path(tempfile.mkdtemp(prefix="lamb-standin-"))
    try:
        stand_in = build_stand_in(pins, dest, own=task_root)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    notes.append(f"HOST STAND-IN: this machine cannot load the artifact's wheels; ran its handler, model and "
                 f"manifest with {stand_in.how} ({targets.native_note()})")
    return dest


def unpack_artifact(path: Path, dest: Path | None = None, notes: list[str] | None = None) -> Path:
    """The artifact (zip, or image-context folder) laid out as a Lambda task root.

    ``dest`` defaults to a new temp folder; the caller removes it (``shutil.rmtree``) when done.
    For an image folder the dependencies its Dockerfile would install are installed here, for
    this machine; ``notes`` (if given) receives a sentence when they differ from the image's pins.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no artifact at {path}", "run `lamb package` first, or name the .zip or image folder")
    dest = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="lamb-task-"))
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if path.is_dir():
            check_folder(path)
            _copy_image_context(path, dest, notes if notes is not None else [])
        elif zipfile.is_zipfile(path):
            zip_check.check_artifact(path)
            try:
                extract_zip(path, dest)  # each entry's CRC is checked as it is written
            except zip_check.DAMAGED as exc:
                raise zip_check.artifact_refused(path, f"is damaged: {exc}") from None
            except OSError as exc:  # a full or read-only disk: say so in one line
                raise ArtifactError(f"cannot unpack {path} into {dest}: {exc.strerror or exc}",
                                    "free some space in the temp folder (TMPDIR), or point TMPDIR elsewhere") from None
        else:
            raise InputError(f"{path} is neither a zip nor an image-context folder", "name the artifact `lamb package` built")
        if not (dest / layout.HANDLER_FILE).is_file():
            raise ArtifactError(
                f"{path} has no {layout.HANDLER_FILE} at its root",
                "Lambda looks for the handler at the root of the zip; rebuild it with `lamb package`",
            )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return dest


def _pins(requirements: str) -> dict[str, str]:
    """Name -> version of each ``name==version`` line of a requirements file (the image context's)."""
    from packaging.requirements import InvalidRequirement, Requirement

    pins: dict[str, str] = {}
    for raw in requirements.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[canonicalize_name(req.name)] = exact[0]
    return pins


def check_folder(path: Path) -> None:
    """Refuse an image-context folder (``ArtifactError``, one line) that holds what ``lamb package``
    never writes there, before a byte of it is copied: a symbolic link (copying follows it, so a
    link to /etc/passwd would bring the host's file in), a pipe, socket or device (reading a pipe
    waits forever), more entries than a zip may hold, or more than a container image's 10 GB."""
    entries = total = 0
    for folder, dirs, names in os.walk(path):
        for name in dirs + names:
            entry = Path(folder) / name
            mode = entry.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                what = "a symbolic link" if stat.S_ISLNK(mode) else "a pipe, socket or device"
                raise zip_check.artifact_refused(path, f"holds {what} ({entry.relative_to(path)}); lamb package writes regular files only")
            entries, total = entries + 1, total + (entry.lstat().st_size if stat.S_ISREG(mode) else 0)
        if entries > zip_check.MAX_ENTRIES or total > budget.IMAGE:
            raise zip_check.artifact_refused(path, f"holds more than {zip_check.MAX_ENTRIES:,} entries or "
                                                   f"{budget.IMAGE // 2**30} GB, more than a function's image may")


def _copy_image_context(path: Path, dest: Path, notes: list[str]) -> None:
    # An image context holds what `docker build` copies into ${LAMBDA_TASK_ROOT}; its dependencies
    # are installed by the Dockerfile, so they are resolved here for the host instead.
    shutil.copytree(path, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("Dockerfile", ".dockerignore", "README.md"))
    requirements = dest / "requirements.txt"
    if not requirements.is_file():
        return
    pins = _pins(requirements.read_text(encoding="utf-8"))
    # Not slimmed: the image is not (pip installs the wheels whole at docker build time).
    stand_in = build_stand_in(pins, dest, slim_deps=False)
    if stand_in.differences:
        notes.append(f"STAND-IN: the image's pinned wheels do not all install here; ran its files with {stand_in.how}")
