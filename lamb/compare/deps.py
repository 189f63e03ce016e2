"""The target's dependencies, as ``lamb package`` would ship them, measured once and cached.

``lamb compare`` projects each mode's artifact from the real thing: the target's wheels resolved by
pip, slimmed and byte-compiled exactly as ``lamb package`` does, zipped once to measure them. The
model and the handler are then added by size (each deflated as the zip writer deflates it). The
tree is cached under the lamb cache by requirements and target, so a second comparison is offline.

For timing, the handler must run on the library the target ships. When this machine runs the
target's Python and arch, the cached tree is used as is; otherwise the same package versions are
installed for this machine (the host stand-in ``lamb invoke`` uses), also cached, and labelled.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from lamb import layout, targets
from lamb.package import artifact, budget, bytecode
from lamb.release import slim, wheels
from lamb.targets import Target


@dataclass
class TargetDeps:
    """A slimmed dependency tree for one target and its measured zip."""

    root: Path  # the installed, slimmed, compiled tree
    requirements: list[str]
    target: str
    zipped: int  # the whole tree zipped (central directory included)
    unzipped: int
    files: int
    pins: dict[str, str]  # distribution -> version, as installed
    bytecode: bool  # compiled with the target's own Python


def _slug(requirements: list[str], target: Target) -> str:
    return f"{wheels.requirements_slug(requirements)}-{target.name}"


def target_deps(requirements: list[str], target: Target, *, cache: Path | None = None) -> TargetDeps:
    """The target's dependencies installed, slimmed and compiled as ``lamb package`` would, measured."""
    requirements = [*requirements, layout.IMAGE_LIBRARY]
    dest = wheels.cache_root() / "compare-deps" / _slug(requirements, target)

    def build(tmp: Path) -> None:
        deps = tmp / "deps"
        wheels.install_for_target(requirements, target, deps, cache=cache)
        slim.slim(deps)
        compiled = bytecode.compile_tree(deps, target)
        with tempfile.TemporaryDirectory(prefix="lamb-compare-zip-") as scratch:
            zipped = Path(scratch) / "deps.zip"
            artifact.write_zip_to(artifact.collect(deps), zipped)
            parts = budget.measure_zip(zipped)
            size = {
                "zipped": zipped.stat().st_size,
                "unzipped": sum(p.unzipped for p in parts),
                "files": sum(p.files for p in parts),
                "bytecode": bool(compiled.compiled),
            }
        (tmp / "sizes.json").write_text(json.dumps(size) + "\n")

    root = wheels.cached_tree(dest, build)
    size = json.loads((root / "sizes.json").read_text())
    return TargetDeps(
        root=root / "deps", requirements=requirements, target=target.name, zipped=size["zipped"],
        unzipped=size["unzipped"], files=size["files"], pins=wheels.installed_distributions(root / "deps"),
        bytecode=size["bytecode"],
    )


def deflated_size(path: Path, arcname: str) -> int:
    """Bytes ``path`` takes in the artifact's zip as ``arcname``: deflated as the writer does, plus its headers."""
    packer = zlib.compressobj(artifact.COMPRESS_LEVEL, zlib.DEFLATED, -15)
    total = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            total += len(packer.compress(chunk))
    total += len(packer.flush())
    return total + artifact.entry_overhead(arcname)


def timing_deps(deps: TargetDeps, target: Target, lib: str, *, cache: Path | None = None) -> tuple[Path, str | None, str]:
    """(tree, interpreter, label) to time the handler on the library the target ships.

    The target's own tree when this machine has the target's Python and arch; otherwise the same
    package versions built for this machine (never another version of the runtime library).
    """
    python = bytecode.target_python(target)
    host = targets.host_smoke_target()
    if python is not None and host is not None and host.arch == target.arch:
        return deps.root, python, f"the target's own wheels on Python {target.python_version}"
    if host is None:
        from lamb.errors import ArtifactError

        raise ArtifactError(
            "this machine cannot load any Lambda wheel (not Linux CPython with glibc on x86_64/arm64)",
            "compare on a Linux machine, or time the artifact on Lambda",
        )
    dest = wheels.cache_root() / "compare-deps" / f"standin-{_slug(sorted(f'{n}=={v}' for n, v in deps.pins.items()), host)}"

    def build(tmp: Path) -> None:
        _, differences = wheels.install_same_versions(deps.pins, host, tmp / "deps", keep=lib, cache=cache)
        slim.slim(tmp / "deps")
        (tmp / "differences.json").write_text(json.dumps(differences) + "\n")

    root = wheels.cached_tree(dest, build)
    differences = json.loads((root / "differences.json").read_text())
    label = f"host stand-in: the target's package versions built for Python {host.python_version} here"
    if differences:
        label += " except " + ", ".join(differences)
    return root / "deps", None, label


def task_root(deps_root: Path, files: dict[str, Path], dest: Path) -> Path:
    """A task root in ``dest``: the dependency tree linked in, the function's own files copied."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in deps_root.iterdir():
        (dest / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for name, source in files.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest / name)
    return dest
