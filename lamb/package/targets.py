"""Lambda Python runtimes as data: one row per runtime, one per architecture.

Adding a runtime is one line in ``RUNTIMES``. Every fact has its source beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lamb.errors import InputError

# Lambda runtimes and their OS: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
# glibc: Amazon Linux 2 ships glibc 2.26, Amazon Linux 2023 glibc 2.34 (AL2023 release notes).


@dataclass(frozen=True)
class Runtime:
    name: str  # "python3.12"
    python: str  # "3.12"
    os: str  # "Amazon Linux 2" | "Amazon Linux 2023"
    glibc: tuple[int, int]


RUNTIMES: tuple[Runtime, ...] = (
    Runtime("python3.10", "3.10", "Amazon Linux 2", (2, 26)),
    Runtime("python3.11", "3.11", "Amazon Linux 2", (2, 26)),
    Runtime("python3.12", "3.12", "Amazon Linux 2023", (2, 34)),
    Runtime("python3.13", "3.13", "Amazon Linux 2023", (2, 34)),
    Runtime("python3.14", "3.14", "Amazon Linux 2023", (2, 34)),
)

# Lambda's names for architectures -> the machine name in wheel platform tags.
ARCHES = {"x86_64": "x86_64", "arm64": "aarch64"}

# The oldest manylinux glibc any wheel we ship may target (manylinux2014 == manylinux_2_17).
_OLDEST_GLIBC_MINOR = 17


@dataclass(frozen=True)
class Target:
    """A runtime on an architecture: what wheels must be built for, and what image to start from."""

    runtime: Runtime
    arch: str  # Lambda's name: "x86_64" | "arm64"

    @property
    def name(self) -> str:
        return f"{self.runtime.name}-{self.arch}"

    @property
    def python_version(self) -> str:
        return self.runtime.python

    @property
    def abi(self) -> str:
        return "cp" + self.runtime.python.replace(".", "")

    @property
    def machine(self) -> str:
        return ARCHES[self.arch]

    @property
    def platform_tags(self) -> list[str]:
        """pip ``--platform`` values, newest first: every manylinux the target's glibc can load."""
        major, minor = self.runtime.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, _OLDEST_GLIBC_MINOR - 1, -1)]
        tags.append(f"manylinux2014_{self.machine}")  # legacy alias of manylinux_2_17 (PEP 599)
        return tags

    @property
    def base_image(self) -> str:
        # AWS base images: https://gallery.ecr.aws/lambda/python ; tags are the Python version.
        return f"public.ecr.aws/lambda/python:{self.runtime.python}"

    @property
    def docker_platform(self) -> str:
        return "linux/amd64" if self.arch == "x86_64" else "linux/arm64"

    @property
    def glibc(self) -> str:
        return "%d.%d" % self.runtime.glibc

    def describe(self) -> str:
        """One phrase a user can check against the AWS console: runtime, arch, OS and glibc."""
        return f"{self.runtime.name} on {self.arch} ({self.runtime.os}, glibc {self.glibc})"


DEFAULT_ARCH = "x86_64"


def runtime_names() -> list[str]:
    return [r.name for r in RUNTIMES]


def default_runtime() -> Runtime:
    """The newest runtime in the table."""
    return RUNTIMES[-1]


def get_target(runtime: str | None = None, arch: str | None = None) -> Target:
    """Look up a target by Lambda's names; ``None`` means the default."""
    arch = arch or DEFAULT_ARCH
    if arch not in ARCHES:
        raise InputError(f"unknown architecture {arch!r}", f"use one of: {', '.join(ARCHES)}")
    if runtime is None:
        return Target(default_runtime(), arch)
    wanted = runtime if runtime.startswith("python") else f"python{runtime}"
    for r in RUNTIMES:
        if r.name == wanted:
            return Target(r, arch)
    raise InputError(f"unknown Lambda runtime {runtime!r}", f"use one of: {', '.join(runtime_names())}")


def host_target() -> Target | None:
    """The table row this machine matches (its Python and arch), or None when it matches none.

    Only a matching row can be smoke-tested with the target's own wheels; glibc is not compared
    here: a host with a newer glibc still loads the target's (older-glibc) wheels.
    """
    import platform
    import sys

    machine = platform.machine()
    arch = next((lam for lam, m in ARCHES.items() if m == machine or lam == machine), None)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    runtime = next((r for r in RUNTIMES if r.python == python), None)
    if arch is None or runtime is None or sys.implementation.name != "cpython":
        return None
    return Target(runtime, arch)


def host_glibc() -> tuple[int, int] | None:
    """This machine's glibc version, or None (musl, macOS, Windows)."""
    import platform

    lib, version = platform.libc_ver()
    if lib != "glibc" or not version:
        return None
    major, minor = (int(x) for x in version.split(".")[:2])
    return (major, minor)


def host_smoke_target() -> Target | None:
    """A target describing this machine itself, for a smoke run with host-loadable wheels.

    Unlike ``host_target()`` it carries the host's own glibc, so wheels that need a newer glibc
    than the Lambda OS of the same Python version (ai-edge-litert 2.x needs 2.27; AL2 has 2.26)
    still resolve. None when the host is not CPython on Linux x86_64/aarch64 with glibc.
    """
    import platform
    import sys

    glibc = host_glibc()
    machine = platform.machine()
    arch = next((lam for lam, m in ARCHES.items() if m == machine or lam == machine), None)
    if glibc is None or arch is None or sys.implementation.name != "cpython":
        return None
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Target(Runtime(f"python{python}", python, "this machine", glibc), arch)


def can_run_on_host(target: Target) -> bool:
    """True when this machine can load the target's wheels: same CPython minor, arch, and a glibc
    at least as new as the target's."""
    host = host_smoke_target()
    return (
        host is not None
        and host.runtime.python == target.runtime.python
        and host.arch == target.arch
        and host.runtime.glibc >= target.runtime.glibc
    )
