"""Compile the artifact's Python files to bytecode for the target's own Python.

Why: Lambda mounts the task root read-only, so a zip without ``__pycache__`` makes every cold
start compile NumPy, Pillow and the runtime library again (the cold-start table in docs/figures.md, from
``benchmarks/bench_invoke.py``, has the dated figures with and without it). ``.pyc`` files are
specific to one Python minor version, so only an interpreter of the target's version can write
them (the build host's are removed by slimming); they do not depend on the machine's arch, so an
x86_64 python3.13 writes an arm64 artifact's bytecode. When no interpreter of the target's
version is on this machine, the artifact ships without bytecode and the report says what that
costs.

The files are deterministic: ``unchecked-hash`` pycs carry a hash of their source instead of its
mtime (PEP 552) and Python does not re-validate them, which is right for a read-only task root;
source paths are rewritten to ``/var/task`` (``LAMBDA_TASK_ROOT``) so tracebacks name the real
place and the temp build folder leaves no trace in the zip.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from lamb import targets
from lamb.errors import ArtifactError
from lamb.layout import TASK_ROOT


@dataclass
class BytecodeResult:
    compiled: bool
    python: str | None  # the interpreter that compiled, when one did
    files: int
    bytes_added: int
    note: str  # one sentence for the report


def target_python(target: targets.Target) -> str | None:
    """An interpreter on this machine that is the target's Python on the target's arch, or None."""
    import sys

    host = targets.host_smoke_target()
    if host is None or host.arch != target.arch or host.runtime.glibc < target.runtime.glibc:
        return None
    if host.python_version == target.python_version:
        return sys.executable
    return targets.find_python(target.python_version)


def compiler_python(target: targets.Target) -> str | None:
    """An interpreter on this machine of the target's Python version, whatever its arch: CPython's
    bytecode depends on the version alone (the magic number), not on the machine."""
    import sys

    if f"{sys.version_info.major}.{sys.version_info.minor}" == target.python_version:
        return sys.executable
    return targets.find_python(target.python_version)


def compile_tree(root: Path, target: targets.Target, python: str | None = None) -> BytecodeResult:
    """Write ``__pycache__/*.cpython-XY.pyc`` beside every ``.py`` under ``root``."""
    python = python or compiler_python(target)
    if python is None:
        return BytecodeResult(
            False, None, 0, 0,
            f"not compiled: no Python {target.python_version} here (looked on PATH, in pyenv and "
            f"in uv's interpreters), so each cold start compiles the imported modules again; "
            f"install {targets.python_offer(target.python_version)} or build with --format image",
        )
    before = _pyc_sizes(root)
    proc = subprocess.run(
        [python, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(root), "-p", TASK_ROOT, str(root)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    # compileall exits 1 when a file does not compile (e.g. Python-2 leftovers in a wheel): those
    # stay source-only, which costs nothing at run time unless imported. Anything else is a bug.
    if proc.returncode not in (0, 1):
        raise ArtifactError(
            f"compiling the artifact's bytecode with {python} failed: {(proc.stderr or proc.stdout).strip()[-300:]}",
            "run with --verbose, or pass --no-bytecode",
        )
    after = _pyc_sizes(root)
    added = {p: s for p, s in after.items() if p not in before}
    return BytecodeResult(
        True, python, len(added), sum(added.values()),
        f"compiled with Python {target.python_version} ({python}): unchecked-hash .pyc, so cold starts skip compiling",
    )


def _pyc_sizes(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in root.rglob("*.pyc")}
