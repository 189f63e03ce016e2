"""Which runtime client runs a function locally: AWS's own (``awslambdaric``) where it has a wheel.

AWS's Python base images run the handler under ``awslambdaric``, the runtime interface client,
which talks to Lambda's Runtime API. ``lamb invoke`` and ``lamb serve`` do the same: the client is
installed for the interpreter that runs the artifact, outside the task root (as ``/var/runtime``
is on Lambda), once, in lamb's cache; lamb serves it the Runtime API (``lamb.runtime_api``). Where
no wheel exists for that interpreter (lamb's own Python 3.11, or a host stand-in for a Python this
machine lacks) lamb's stand-in bootstrap runs instead, and the output says so.
"""

from __future__ import annotations

from pathlib import Path

from lamb.cache import cache_root
from lamb.errors import DependencyError

# awslambdaric 4.2.2 publishes manylinux2014 wheels for CPython 3.12, 3.13 and 3.14 on x86_64 and
# aarch64, and an sdist that needs a C++ toolchain and libcurl to build
# (https://pypi.org/project/awslambdaric/4.2.2/#files, read 2026-12-07).
AWSLAMBDARIC = "awslambdaric==4.2.2"
WHEEL_PYTHONS = ("3.12", "3.13", "3.14")


def runtime_client_for(python: str, arch: str) -> tuple[Path | None, str | None]:
    """(awslambdaric's folder, None), or (None, why the stand-in runs) for CPython ``python`` ("3.12") on ``arch``."""
    if python not in WHEEL_PYTHONS:
        return None, f"awslambdaric has no wheel for Python {python}: lamb's stand-in bootstrap ran the handler"
    from lamb import targets
    from lamb.release import wheels

    dest = cache_root() / "runtime-client" / f"{wheels.requirements_slug([AWSLAMBDARIC])}-py{python}-{arch}"
    target = targets.get_target(f"python{python}", arch)
    try:
        return wheels.cached_tree(dest, lambda tmp: wheels.install_for_target([AWSLAMBDARIC], target, tmp)), None
    except DependencyError as exc:  # no network and no cached wheel: the stand-in still runs it
        return None, f"could not install {AWSLAMBDARIC} for Python {python} ({exc.message}): lamb's stand-in bootstrap ran the handler"
