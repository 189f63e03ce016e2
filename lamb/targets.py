"""Lambda Python runtimes as data: one row per runtime, one per architecture; and this machine.

Adding a runtime is one line in ``RUNTIMES``. Every fact has its source beside it. The host
functions say which of these targets this machine can stand for, and find the Python
interpreters it has for the others.
"""

from __future__ import annotations

import functools
import platform
import sys
from dataclasses import dataclass, field, replace

from lamb import measured
from lamb.errors import InputError
from lamb.units import MiB

# Lambda runtimes and their OS: https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
# ("Python 3.12 and later base images are based on the Amazon Linux 2023 minimal container image.
# The Python 3.8-3.11 base images are based on the Amazon Linux 2 image": lambda/latest/dg/python-image.html).

# Lambda quotas: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
#   "Deployment package (.zip file archive) size: 50 MB (zipped, when uploaded through the Lambda
#    API or SDKs) ... 250 MB unzipped, including layers ... Container image code package size:
#    10 GB (maximum uncompressed image size, including all layers)". The console and API count
#   MB as MiB (the unzipped limit is 262,144,000 bytes).
ZIP_DIRECT_UPLOAD = 50 * MiB
UNZIPPED = 250 * MiB
IMAGE = 10 * 1024 * MiB
# The AWS Python base images are ~0.6 GB uncompressed; counting 1 GiB for them keeps the image
# check conservative without pulling the image.
IMAGE_BASE_ALLOWANCE = 1024 * MiB


# How strong a target fact is, strongest first. The audit uses the strongest it has and says which.
MEASURED = "measured"  # read on the real target by `lamb probe` (date and region in its source)
DOCUMENTED = "documented"  # stated by AWS (cited), or fixed by what AWS states (GCC -> its libstdc++)
INFERRED = "inferred"  # lamb's reading of indirect evidence (cited); weakest
RANKS = (MEASURED, DOCUMENTED, INFERRED)


@dataclass(frozen=True)
class Evidence:
    """Where a target fact comes from: its rank, and the citation or measurement behind it."""

    rank: str  # one of RANKS
    source: str

    def phrase(self) -> str:
        return f"{self.rank} ({self.source})"


def weakest(ranks) -> str:
    """The rank a verdict resting on facts of ``ranks`` has: its weakest fact's."""
    present = [r for r in ranks if r in RANKS]
    return max(present, key=RANKS.index) if present else DOCUMENTED


@dataclass(frozen=True)
class LinuxSystem:
    """What a Lambda OS gives an artifact's ELF files: versioned symbols and shared libraries.

    The audit (``lamb.release.audit``) judges every ELF file the artifact ships against this, the
    way auditwheel judges a wheel against a manylinux policy. ``gcc`` is the GCC release whose
    runtime libraries (libstdc++.so.6, libgcc_s.so.1) the system ships: a ``GCC_x.y`` version
    node of libgcc_s first appears in GCC x.y, so ``GCC_`` needs are judged against it.
    ``evidence`` says, per fact (GLIBC, GLIBCXX, CXXABI, GCC, libraries), how lamb knows it.
    """

    name: str
    glibc: tuple[int, int]
    gcc: tuple[int, ...]
    glibcxx: tuple[int, ...]  # newest GLIBCXX_ version of its libstdc++.so.6
    cxxabi: tuple[int, ...]  # newest CXXABI_ version of its libstdc++.so.6
    libraries: frozenset[str]  # sonames the base system provides on every architecture
    evidence: dict[str, Evidence] = field(default_factory=dict, hash=False, compare=False)
    # family -> the oldest version the real loader was seen to lack (a deploy's smoke test), and how
    # lamb knows: an upper bound, measured, on what ``evidence`` says it has.
    ceilings: dict[str, tuple[tuple[int, ...], Evidence]] = field(default_factory=dict, hash=False, compare=False)

    def provides(self) -> dict[str, tuple[int, ...]]:
        """Versioned-symbol family -> the newest version this system defines."""
        have = {"GLIBC": self.glibc, "GLIBCXX": self.glibcxx, "CXXABI": self.cxxabi, "GCC": self.gcc}
        for family, (lacked, _evidence) in self.ceilings.items():
            below = (*lacked[:-1], lacked[-1] - 1)  # the version just below the one it lacks
            have[family] = min(have[family], below)
        return have

    def rank(self, fact: str) -> str:
        found = self.evidence.get(fact)
        return found.rank if found is not None else INFERRED

    def rank_of_need(self, family: str, version: tuple[int, ...]) -> str:
        """How lamb knows that a need of ``family`` ``version`` is (not) met: measured when the loader
        was seen to lack that version or an older one, else the family's own rank."""
        ceiling = self.ceilings.get(family)
        return MEASURED if ceiling is not None and version >= ceiling[0] else self.rank(family)

    def has_library(self, soname: str, arch: str, python: str) -> bool:
        # The dynamic loader's own name differs per architecture; the runtime's libpython lives
        # in /var/lang/lib, first on Lambda's LD_LIBRARY_PATH (aws/aws-lambda-base-images
        # Dockerfiles), for the rare extension that links it.
        return soname in self.libraries or soname == LOADERS[arch] or soname == f"libpython{python}.so.1.0"

    def describe(self) -> str:
        cxx = "%d.%d.%d" % self.glibcxx[:3] if len(self.glibcxx) >= 3 else ".".join(map(str, self.glibcxx))
        return f"{self.name} (glibc {'%d.%d' % self.glibc[:2]}, GLIBCXX_{cxx}, {self.rank('GLIBCXX')})"


# The loader every dynamically linked program needs, per Lambda architecture (glibc's names).
LOADERS = {"x86_64": "ld-linux-x86-64.so.2", "arm64": "ld-linux-aarch64.so.1"}

# glibc's own shared libraries (the glibc package; AL2023's libcrypt comes from libxcrypt, same soname).
_GLIBC_LIBRARIES = frozenset({
    "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libresolv.so.2",
    "libutil.so.1", "libanl.so.1", "libcrypt.so.1",
})
# libstdc++ and libgcc_s: not listed by AWS for Lambda, but the Python runtime's own runtime
# interface client (awslambdaric's runtime_client, C++ built without -static-libstdc++: its
# setup.py) cannot load without them. libz: curl-minimal and rpm in the images need it
# (`rpm -qa` in public.ecr.aws/lambda/python:3.12, amazonlinux/amazon-linux-2023#585).
_LIBRARIES_INFERRED = Evidence(INFERRED, "the runtime interface client links libstdc++ and libgcc_s; curl links libz")
_BASE_LIBRARIES = _GLIBC_LIBRARIES | {"libstdc++.so.6", "libgcc_s.so.1", "libz.so.1"}

# AWS's toolchain table ("Improved toolchain: gcc, binutils, and glibc",
# https://docs.aws.amazon.com/linux/al2023/ug/glibc-gcc-and-binutils.html): glibc 2.26 and GCC 7.3
# on Amazon Linux 2, glibc 2.34 and GCC 11.3 on AL2023. A GCC release fixes the newest GLIBCXX_
# and CXXABI_ its libstdc++ defines (GCC's ABI policy, https://gcc.gnu.org/onlinedocs/libstdc++/manual/abi.html):
# GCC 7: GLIBCXX_3.4.24, CXXABI_1.3.11; GCC 11: GLIBCXX_3.4.29, CXXABI_1.3.13.
_TOOLCHAIN = "https://docs.aws.amazon.com/linux/al2023/ug/glibc-gcc-and-binutils.html"
AMAZON_LINUX_2 = LinuxSystem(
    "Amazon Linux 2", glibc=(2, 26), gcc=(7, 3), glibcxx=(3, 4, 24), cxxabi=(1, 3, 11),
    libraries=_BASE_LIBRARIES,
    evidence={
        "GLIBC": Evidence(DOCUMENTED, f"AL2 glibc 2.26, {_TOOLCHAIN}"),
        "GCC": Evidence(DOCUMENTED, f"AL2 gcc 7.3, {_TOOLCHAIN}"),
        "GLIBCXX": Evidence(DOCUMENTED, f"AL2 gcc 7.3 ({_TOOLCHAIN}) -> GLIBCXX_3.4.24 (GCC's ABI policy)"),
        "CXXABI": Evidence(DOCUMENTED, f"AL2 gcc 7.3 ({_TOOLCHAIN}) -> CXXABI_1.3.11 (GCC's ABI policy)"),
        "libraries": _LIBRARIES_INFERRED,
    },
)
# AL2023's GCC: "AL2023 includes version 11 of GCC as the default compiler ... Additionally, AL2023
# provides GCC version 14 as an optional alternative compiler" (C, C++, and Fortran in AL2023,
# https://docs.aws.amazon.com/linux/al2023/ug/c-cplusplus.html). Since AL2023 2023.7 (2025-03-31)
# its gcc core runtimes are GCC 14's (amazonlinux/container-images#132), and a provided.al2023
# function then failed with `GLIBCXX_3.4.30 not found` (same issue): Lambda images pin an AL2023
# release that AWS does not name (aws/aws-lambda-base-images#163). So GCC 11's libstdc++ is the
# documented fact until `lamb probe` measures the target.
_AL2023_GCC = "https://docs.aws.amazon.com/linux/al2023/ug/c-cplusplus.html"
AMAZON_LINUX_2023 = LinuxSystem(
    "Amazon Linux 2023", glibc=(2, 34), gcc=(11, 3), glibcxx=(3, 4, 29), cxxabi=(1, 3, 13),
    libraries=_BASE_LIBRARIES,
    evidence={
        "GLIBC": Evidence(DOCUMENTED, f"AL2023 glibc 2.34, {_TOOLCHAIN}"),
        "GCC": Evidence(DOCUMENTED, f"AL2023 gcc 11, {_AL2023_GCC}"),
        "GLIBCXX": Evidence(DOCUMENTED, f"AL2023 gcc 11 ({_AL2023_GCC}) -> GLIBCXX_3.4.29 (GCC's ABI policy)"),
        "CXXABI": Evidence(DOCUMENTED, f"AL2023 gcc 11 ({_AL2023_GCC}) -> CXXABI_1.3.13 (GCC's ABI policy)"),
        "libraries": _LIBRARIES_INFERRED,
    },
)


def measured_system(base: LinuxSystem, measurement: measured.Measurement) -> LinuxSystem:
    """``base`` with every fact ``measurement`` read replacing the documented or inferred one."""
    values: dict[str, object] = {}
    evidence = dict(base.evidence)
    got = Evidence(MEASURED, measurement.source())
    for fact, attr in (("GLIBC", "glibc"), ("GLIBCXX", "glibcxx"), ("CXXABI", "cxxabi"), ("GCC", "gcc")):
        version = measurement.version(attr)
        if version is not None:
            values[attr], evidence[fact] = version, got
    if measurement.libraries:
        values["libraries"], evidence["libraries"] = measurement.libraries, got
    return replace(base, **values, evidence=evidence)  # type: ignore[arg-type]


def with_lacks(base: LinuxSystem, lacks: list[measured.Lack]) -> LinuxSystem:
    """``base`` capped below every version a deploy's smoke test found the real loader lacking."""
    import re

    ceilings = dict(base.ceilings)
    for lack in lacks:
        match = re.match(r"^(GLIBCXX|GLIBC|CXXABI|GCC)_(\d+(?:\.\d+)*)$", lack.version)
        if match is None:
            continue
        family, version = match.group(1), tuple(int(x) for x in match.group(2).split("."))
        if family not in ceilings or version < ceilings[family][0]:
            ceilings[family] = (version, Evidence(MEASURED, lack.source()))
    return replace(base, ceilings=ceilings)


SYSTEMS = {s.name: s for s in (AMAZON_LINUX_2, AMAZON_LINUX_2023)}


@dataclass(frozen=True)
class Runtime:
    name: str  # "python3.12"
    python: str  # "3.12"
    os: str  # "Amazon Linux 2" | "Amazon Linux 2023"
    glibc: tuple[int, int]


RUNTIMES: tuple[Runtime, ...] = (
    Runtime("python3.10", "3.10", AMAZON_LINUX_2.name, AMAZON_LINUX_2.glibc),
    Runtime("python3.11", "3.11", AMAZON_LINUX_2.name, AMAZON_LINUX_2.glibc),
    Runtime("python3.12", "3.12", AMAZON_LINUX_2023.name, AMAZON_LINUX_2023.glibc),
    Runtime("python3.13", "3.13", AMAZON_LINUX_2023.name, AMAZON_LINUX_2023.glibc),
    Runtime("python3.14", "3.14", AMAZON_LINUX_2023.name, AMAZON_LINUX_2023.glibc),
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

    @functools.cached_property
    def system(self) -> LinuxSystem:
        """The target's base system, as the ELF audit judges it (``LinuxSystem``): what
        ``lamb probe`` measured on it when it has, else the documented facts.

        Read once per Target (the audit asks for every wheel it judges); ``get_target`` makes a
        new Target, so each command reads the cache afresh."""
        known = SYSTEMS.get(self.runtime.os)
        if known is not None:
            measurement = measured.load(self.runtime.name, self.arch)
            system = known if measurement is None else measured_system(known, measurement)
            lacks = measured.lacks(self.runtime.name, self.arch)
            return with_lacks(system, lacks) if lacks else system
        # A target that is not a Lambda OS (this machine, for a stand-in): judged on glibc alone.
        return LinuxSystem(
            self.runtime.os, self.runtime.glibc, (99, 0), (3, 4, 999), (1, 3, 999), _BASE_LIBRARIES,
            evidence={"GLIBC": Evidence(MEASURED, "this machine")},
        )

    def describe(self) -> str:
        """One phrase a user can check against the AWS console: runtime, arch, OS and glibc."""
        return f"{self.runtime.name} on {self.arch} ({self.runtime.os}, glibc {self.glibc})"


DEFAULT_ARCH = "x86_64"


def runtime_names() -> list[str]:
    return [r.name for r in RUNTIMES]


# The default target, named here rather than derived from this machine (its Python, what pyenv
# has), so the same command builds the same artifact everywhere. Chosen by what serves users: the
# newest runtime on which the default engine (LiteRT) has a release that passes the ELF audit on
# both arches. python3.14 has none on arm64 (ai-edge-litert 2.1.0 has no cp314 wheel, and every
# newer aarch64 wheel needs GLIBCXX_3.4.30, past AL2023's GCC 11: lamb.runtime_lib.litert, audited
# 2026-12-06), and the course builds its images on python3.13.
DEFAULT_RUNTIME = "python3.13"
DEFAULT_RUNTIME_WHY = ("the newest runtime whose default engine passes the audit on both x86_64 and arm64 "
                       "(python3.14 has no such arm64 release), and the course's")


def default_runtime() -> Runtime:
    """The default runtime (``DEFAULT_RUNTIME``; see ``DEFAULT_RUNTIME_WHY``)."""
    return next(r for r in RUNTIMES if r.name == DEFAULT_RUNTIME)


def get_target(runtime: str | None = None, arch: str | None = None) -> Target:
    """Look up a target by Lambda's names; ``None`` means the default. ``runtime`` may also be a
    target's name, ``python3.13-arm64`` (its arch then wins over the default)."""
    if runtime is not None and arch is None:
        named, _, suffix = runtime.rpartition("-")
        if named and suffix in ARCHES:
            runtime, arch = named, suffix
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


# -- this machine -------------------------------------------------------------------------------


def host_python() -> str:
    """The Python version lamb itself runs on: "3.11"."""
    return "%d.%d" % sys.version_info[:2]


def host_arch() -> str | None:
    """This machine's architecture in Lambda's words ("x86_64" | "arm64"), or None for another."""
    machine = platform.machine()
    return next((lam for lam, m in ARCHES.items() if machine in (m, lam)), None)


def host_target() -> Target | None:
    """The table row this machine matches (its Python and arch), or None when it matches none.

    Only a matching row can be smoke-tested with the target's own wheels; glibc is not compared
    here: a host with a newer glibc still loads the target's (older-glibc) wheels.
    """
    arch = host_arch()
    runtime = next((r for r in RUNTIMES if r.python == host_python()), None)
    if arch is None or runtime is None or sys.implementation.name != "cpython":
        return None
    return Target(runtime, arch)


def host_glibc() -> tuple[int, int] | None:
    """This machine's glibc version, or None (musl, macOS, Windows)."""
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
    glibc = host_glibc()
    arch = host_arch()
    if glibc is None or arch is None or sys.implementation.name != "cpython":
        return None
    python = host_python()
    return Target(Runtime(f"python{python}", python, "this machine", glibc), arch)


def find_python(version: str) -> str | None:
    """A CPython ``version`` ("3.12") on this machine that actually starts, or None.

    Looks on PATH, then where pyenv and uv keep the interpreters they manage: pyenv's shims
    refuse a version that is installed but not selected, and uv puts none on PATH by default.
    """
    import glob
    import os
    import shutil

    candidates = [shutil.which(f"python{version}")]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*", "bin", f"python{version}")), reverse=True)
    # uv's managed interpreters: $UV_PYTHON_INSTALL_DIR, else $XDG_DATA_HOME/uv/python (uv's docs, "Python versions").
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    uv_root = os.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.join(data_home, "uv", "python")
    candidates += sorted(glob.glob(os.path.join(uv_root, f"cpython-{version}.*", "bin", f"python{version}")), reverse=True)
    for path in candidates:
        if path and python_version(path) == version:
            return path
    return None


def native_runtimes() -> list[Runtime]:
    """The runtimes this machine can smoke-test natively: their own Python (lamb's, or one found by
    ``find_python``) on this machine's arch, with a glibc at least as new as theirs."""
    host = host_smoke_target()
    if host is None:
        return []
    return [r for r in RUNTIMES if host.runtime.glibc >= r.glibc and (r.python == host_python() or find_python(r.python))]


def python_offer(version: str) -> str:
    """How to get CPython ``version`` here, as a phrase for a hint. uv's install is offered only
    when uv is installed and allowed to download; lamb itself never downloads an interpreter."""
    import os
    import shutil

    downloads = os.environ.get("UV_PYTHON_DOWNLOADS", "automatic").lower() not in ("never", "manual", "0", "false")
    if shutil.which("uv") and downloads and not os.environ.get("UV_OFFLINE"):
        return f"`uv python install {version}` (uv is installed here)"
    return f"python{version} (pyenv, uv or the system's package manager)"


def native_note(exclude: str | None = None) -> str:
    """One phrase naming the runtimes this machine can smoke natively (for a stand-in's note)."""
    names = [r.name for r in native_runtimes() if r.name != exclude]
    if not names:
        return "this machine has no Lambda runtime's Python to smoke-test with natively"
    return f"this machine smoke-tests {', '.join(names)} natively (their own Python is here)"


def python_version(python: str | None = None) -> str | None:
    """The CPython version ("3.12") of the interpreter at ``python`` (None: lamb's own), or None
    when it does not start or is not CPython."""
    if python is None:
        return host_python()
    import subprocess

    try:
        probe = subprocess.run(
            [python, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2], sys.implementation.name)"],
            capture_output=True, text=True, check=False, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version, _, implementation = probe.stdout.strip().partition(" ")
    return version if probe.returncode == 0 and implementation == "cpython" else None


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
