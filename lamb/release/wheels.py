"""Install wheels built for a Lambda target, never for this machine.

Like Chalice's packager, pip is asked for wheels matching the *target's* tags only: its CPython
version and ABI, and every manylinux platform its glibc can load on its architecture, with
``--only-binary=:all:`` so nothing is compiled on the host. Downloads land in a cache
(``$LAMB_CACHE_DIR`` or ``~/.cache/lamb``) that is tried first, so a rebuild is offline and fast;
``wheelhouse`` builds from a folder of wheels with no index at all.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from lamb.cache import cache_root
from lamb.errors import DependencyError, InputError
from lamb.progress import Progress, current
from lamb.release.zip_check import check_folder, check_total
from lamb.targets import Target

log = logging.getLogger(__name__)


@dataclass
class InstallResult:
    """What ``install_for_target`` put in ``dest``."""

    dest: Path
    target: str  # Target.name
    requirements: list[str]
    installed: dict[str, str]  # distribution name (normalised) -> version
    source: str  # "cache" | "index" | "wheelhouse"
    seconds: float
    wheels: list[str] = field(default_factory=list)  # wheel file names used

    def pinned(self) -> list[str]:
        """``name==version`` lines for every installed distribution, sorted."""
        return [f"{name}=={version}" for name, version in sorted(self.installed.items())]


def requirements_slug(requirements: list[str]) -> str:
    """A folder name for a set of requirements: ``ai-edge-litert-2.3.0-numpylt2``."""
    return "-".join(r.replace("==", "-").replace("<", "lt").replace(">", "gt").replace("=", "") for r in requirements)


def cached_tree(dest: Path, build: Callable[[Path], object]) -> Path:
    """``dest`` once complete; else ``build(tmp)`` fills a temp folder beside it, which is renamed.

    An interrupted build never looks complete; when another lamb finished the same tree first,
    theirs is as good and is kept.
    """
    if (dest / ".complete").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        build(tmp)
        (tmp / ".complete").write_text("{}\n")
        try:
            os.replace(tmp, dest)
        except OSError:
            if not (dest / ".complete").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def extra_requirements(values: tuple[str, ...] | list[str]) -> list[str]:
    """``--requirement`` values -> requirement strings: each a requirement (``keras-image-helper``,
    ``keras-image-helper==0.0.2``) or a requirements file, one requirement a line (``#`` comments)."""
    from packaging.requirements import InvalidRequirement, Requirement

    found: list[str] = []
    for value in values:
        path = Path(value)
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else [value]
        for line in (ln.split("#", 1)[0].strip() for ln in lines):
            if not line:
                continue
            try:
                Requirement(line)
            except InvalidRequirement:
                where = f" in {path}" if path.is_file() else ""
                raise InputError(f"--requirement {line!r}{where} is not a requirement",
                                 "name a package (keras-image-helper, keras-image-helper==0.0.2) or a requirements file, one a line (no pip options)") from None
            found.append(line)
    return found


def cache_dir() -> Path:
    """Where downloaded wheels are kept between builds."""
    return cache_root() / "wheels"


def target_args(target: Target, local_builds: bool = False) -> list[str]:
    """pip options that describe the target instead of this machine.

    ``local_builds`` also accepts ``linux_<machine>`` wheels: built on some Linux (say on Amazon
    Linux itself, as the course's old runtime-library wheels were) and tagged for nothing more. Only a
    wheelhouse offers them (PyPI refuses them); the ELF audit then judges what they need.
    """
    args = [
        "--only-binary=:all:",
        "--implementation", "cp",
        "--python-version", target.python_version,
        "--abi", target.abi,
        "--abi", "abi3",  # stable-ABI wheels (cp3X-abi3) load on any newer CPython
        "--abi", "none",
    ]
    for tag in target.platform_tags + ([f"linux_{target.machine}"] if local_builds else []):
        args += ["--platform", tag]
    return args


def install_for_target(
    requirements: list[str],
    target: Target,
    dest: Path,
    *,
    wheelhouse: Path | None = None,
    cache: Path | None = None,
    pip: PipRunner | None = None,
    progress: Progress | None = None,
) -> InstallResult:
    """Resolve ``requirements`` for ``target`` and install them into ``dest`` (``pip --target``).

    With ``wheelhouse`` only that folder is used (``--no-index``). Otherwise the wheel cache is
    tried first, offline; when it cannot satisfy the requirements the missing wheels are
    downloaded from the index into it. Raises ``DependencyError`` naming the package and target
    when a requirement has no wheel for the target. ``pip``: the runner (tests pass a fake).
    """
    pip = pip or PipRunner()
    start = time.perf_counter()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    requirements = list(requirements)
    if wheelhouse is not None:
        wheelhouse = Path(wheelhouse)
        if not wheelhouse.is_dir():
            raise InputError(f"the wheelhouse {wheelhouse} is not a folder", "pass a folder of .whl files to --wheelhouse")
        # pip refuses some unsafe entries itself, in words that blame the resolution; none reach it.
        check_folder(wheelhouse, supported_tags(target, local_builds=True))
        # Each wheel is bounded, but a wheel's dependencies can name a chain of others: bound the
        # sum of what pip picked before it unpacks any.
        where = "the wheelhouse " + str(wheelhouse)
        check_total(pip.plan(requirements, target, [wheelhouse], where, local_builds=True), where)
        pip.install(requirements, target, dest, [wheelhouse], "the wheelhouse " + str(wheelhouse), local_builds=True)
        source = "wheelhouse"
        links = [wheelhouse]
    else:
        cache = Path(cache) if cache is not None else cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        links = [cache]
        check_folder(cache, supported_tags(target))  # outside the try: a hostile wheel is no cache miss
        try:
            pip.install(requirements, target, dest, links, "the wheel cache")
            source = "cache"
        except DependencyError as exc:
            log.debug("the wheel cache cannot satisfy %s for %s (%s); asking the index", requirements, target.name, exc.message)
            (progress or current()).phase(f"downloading wheels for {target.name} from the package index")
            pip.download(requirements, target, cache)
            check_folder(cache, supported_tags(target))
            pip.install(requirements, target, dest, links, "the wheel cache")
            source = "index"
    installed = installed_distributions(dest)
    supported = supported_tags(target, local_builds=wheelhouse is not None)
    wheels = sorted({
        p.name for link in links for p in Path(link).glob("*.whl") if _installed_wheel(p.name, installed, supported)
    })
    log.debug("installed for %s from the %s: %s", target.name, source, ", ".join(f"{n} {v}" for n, v in installed.items()))
    return InstallResult(dest, target.name, requirements, installed, source, time.perf_counter() - start, wheels)


def install_same_versions(
    pins: dict[str, str],
    host: Target,
    dest: Path,
    *,
    keep: str,
    extra: list[str] | None = None,
    wheelhouse: Path | None = None,
    cache: Path | None = None,
    pip: PipRunner | None = None,
) -> tuple[InstallResult, list[str]]:
    """Install for ``host`` the versions another target got, for a stand-in run on this machine.

    Packages the host has no such wheel for are unpinned one at a time (e.g. NumPy 2.5 needs
    Python 3.12, the host has 3.11) and the resolver picks for them; ``keep`` (the runtime
    library) is never unpinned: a stand-in on another version of it would prove nothing. Returns
    the install and one line per package whose version differs from ``pins``.
    """
    import tempfile

    pins = {canonicalize_name(n): v for n, v in pins.items()}
    keep = canonicalize_name(keep)
    free: set[str] = set()
    while True:
        reqs = [f"{n}=={v}" for n, v in sorted(pins.items()) if n not in free] + list(extra or [])
        # Each attempt starts clean, apart from ``dest``, which may already hold the function's files.
        scratch = Path(tempfile.mkdtemp(prefix="lamb-standin-deps-"))
        try:
            try:
                got = install_for_target(reqs, host, scratch, wheelhouse=wheelhouse, cache=cache, pip=pip)
            except DependencyError:
                if wheelhouse is None:
                    raise
                # A wheelhouse holds the target's wheels; the host's come from the cache or index.
                got = install_for_target(reqs, host, scratch, cache=cache, pip=pip)
            shutil.copytree(scratch, dest, dirs_exist_ok=True, symlinks=True)
            got.dest = Path(dest)
            break
        except DependencyError as exc:
            package = exc.package
            if package is None or package == keep or package in free or package not in pins:
                raise DependencyError(
                    f"cannot run a stand-in on this machine: {exc.message}",
                    "package for this machine's Python to test here, or run it on Lambda",
                ) from None
            free.add(package)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    differences = [
        f"{n} {got.installed.get(n, 'absent')} (target {v})" for n, v in sorted(pins.items()) if got.installed.get(n) != v
    ]
    return got, differences


def installed_distributions(root: Path) -> dict[str, str]:
    """Distribution name (normalised, PEP 503) -> version for every ``*.dist-info`` under ``root``."""
    from importlib.metadata import distributions

    found = {}
    for dist in distributions(path=[str(root)]):
        name, version = dist.metadata["Name"], dist.version
        if name and version:
            found[canonicalize_name(name)] = version
    return dict(sorted(found.items()))


def supported_tags(target: Target, local_builds: bool = False) -> set:
    """Every wheel tag the target's interpreter accepts (``packaging.tags`` for its CPython)."""
    return set(_ordered_tags(target, local_builds))


def _ordered_tags(target: Target, local_builds: bool = False) -> list:
    """The target's tags, most specific first (pip's order of preference)."""
    from packaging import tags

    version = tuple(int(x) for x in target.python_version.split("."))
    platforms = target.platform_tags + ([f"linux_{target.machine}"] if local_builds else [])
    ordered = list(tags.cpython_tags(version, abis=[target.abi, "abi3", "none"], platforms=platforms))
    ordered += list(tags.compatible_tags(version, interpreter=target.abi, platforms=platforms))
    return ordered


def wheel_versions(folder: Path, name: str, target: Target, local_builds: bool = False) -> dict[str, Path]:
    """version -> the best wheel file of distribution ``name`` in ``folder`` for ``target``, newest first."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import Version

    rank = {tag: i for i, tag in enumerate(_ordered_tags(target, local_builds))}
    best: dict[str, tuple[int, Path]] = {}
    for path in Path(folder).glob("*.whl"):
        try:
            dist, version, _build, wheel_tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if canonicalize_name(dist) != canonicalize_name(name):
            continue
        score = min((rank[t] for t in wheel_tags if t in rank), default=None)
        if score is not None and (str(version) not in best or score < best[str(version)][0]):
            best[str(version)] = (score, path)
    return {v: best[v][1] for v in sorted(best, key=Version, reverse=True)}


def fetch_wheel(
    name: str, version: str, target: Target, *, wheelhouse: Path | None = None, cache: Path | None = None,
    pip: PipRunner | None = None,
) -> Path:
    """The one wheel of ``name==version`` that pip would install for ``target`` (no dependencies):
    from the wheelhouse, else the cache, else downloaded from the index into the cache."""
    if wheelhouse is not None:
        found = wheel_versions(wheelhouse, name, target, local_builds=True).get(version)
        if found is None:
            raise DependencyError(f"no wheel of {name} {version} for {target.name} in the wheelhouse {wheelhouse}",
                                  "add the wheel to the wheelhouse, or pick another --runtime-lib")
        return found
    cache = Path(cache) if cache is not None else cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    found = wheel_versions(cache, name, target).get(version)
    if found is None:
        (pip or PipRunner()).download([f"{name}=={version}"], target, cache, deps=False)
        found = wheel_versions(cache, name, target).get(version)
    if found is None:
        raise DependencyError(f"pip found no wheel of {name} {version} for {target.name}", "run with --verbose")
    return found


def _installed_wheel(wheel_name: str, installed: dict[str, str], supported: set) -> bool:
    """Whether ``wheel_name`` is the wheel of an installed distribution, at its version, for the target."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        name, version, _build, tags = parse_wheel_filename(wheel_name)
        return name in installed and Version(installed[name]) == version and bool(tags & supported)
    except (InvalidWheelFilename, InvalidVersion):
        return False


# -- pip ------------------------------------------------------------------------------------------


class SubprocessPip:
    """The real pip, in a subprocess of lamb's own Python (as Chalice's ``SubprocessPip``)."""

    def main(self, args: list[str]) -> tuple[int, str]:
        """Run ``pip ARGS``; returns its exit status and its stderr."""
        cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"]
        env = dict(os.environ)
        # pip must not see the host's user site or a PYTHONPATH: the target gets only what it asks for.
        env.pop("PYTHONPATH", None)
        env["PYTHONNOUSERSITE"] = "1"
        log.debug("pip %s", shlex.join(args))
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        log.debug("pip exited %d after %.1f s%s", proc.returncode, time.perf_counter() - started,
                  "".join(f"\n  {line}" for line in proc.stderr.splitlines()[-20:]))
        return proc.returncode, proc.stderr


class PipRunner:
    """pip asked for a target's wheels, its failures mapped to ``DependencyError``.

    The pip it drives is injected (``SubprocessPip`` unless given), so tests swap in a fake and
    cover every error mapping offline, as Chalice's ``PipRunner(SubprocessPip())`` does.
    """

    def __init__(self, pip: SubprocessPip | None = None):
        self.pip = pip or SubprocessPip()

    def install(
        self, requirements: list[str], target: Target, dest: Path, links: list[Path], where: str, local_builds: bool = False,
    ) -> None:
        args = ["install", "--no-index", "--no-compile", "--upgrade", "--target", str(dest), "--quiet"]
        for link in links:
            args += ["--find-links", str(link)]
        status, stderr = self.pip.main(args + target_args(target, local_builds) + requirements)
        if status != 0:
            raise _dependency_error(stderr, target, where)

    def plan(
        self, requirements: list[str], target: Target, links: list[Path], where: str, local_builds: bool = False,
    ) -> list[Path]:
        """The wheel files ``install`` would unpack (pip's ``--dry-run --report``), none unpacked."""
        import json
        from urllib.parse import unquote, urlparse

        with tempfile.TemporaryDirectory(prefix="lamb-pip-plan-") as tmp:
            report = Path(tmp) / "report.json"
            args = ["install", "--dry-run", "--report", str(report), "--no-index", "--target", str(Path(tmp) / "target"),
                    "--quiet"]
            for link in links:
                args += ["--find-links", str(link)]
            status, stderr = self.pip.main(args + target_args(target, local_builds) + requirements)
            if status != 0:
                raise _dependency_error(stderr, target, where)
            picked = json.loads(report.read_text())["install"]
        return [Path(unquote(urlparse(item["download_info"]["url"]).path)) for item in picked]

    def download(self, requirements: list[str], target: Target, cache: Path, deps: bool = True) -> None:
        args = ["download", *([] if deps else ["--no-deps"]), "--dest", str(cache), "--find-links", str(cache), "--quiet"]
        status, stderr = self.pip.main(args + target_args(target) + requirements)
        if status != 0:
            raise _dependency_error(stderr, target, "the package index")


_NO_MATCH = re.compile(r"No matching distribution found for ([^\s]+)")
_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)")
_WRONG_PYTHON = re.compile(r"Package '([^']+)' requires a different Python: ([^\n]+)")


def _requirement_name(text: str) -> str:
    """The normalised distribution name of a requirement pip printed (``numpy==2.5``), else ``text``."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return canonicalize_name(text)


def _dependency_error(stderr: str, target: Target, where: str) -> DependencyError:
    wrong = _WRONG_PYTHON.search(stderr)
    if wrong:
        return DependencyError(
            f"{wrong.group(1)} does not support Python {target.python_version} ({wrong.group(2).strip()}), needed for {target.name}",
            "pin a version of it that supports the target's Python, or pick another --runtime",
            package=canonicalize_name(wrong.group(1)),
        )
    match = _NO_MATCH.search(stderr) or _NO_VERSION.search(stderr)
    tags = f"CPython {target.python_version}, {target.machine}, manylinux glibc <= {target.glibc}"
    if match:
        package = match.group(1)
        return DependencyError(
            f"no wheel of {package} for {target.name} ({tags}) in {where}",
            "pick another --runtime/--arch, or a version of the package that ships such a wheel"
            + ("; or add the wheel to the wheelhouse" if "wheelhouse" in where else ""),
            package=_requirement_name(package),  # for callers that retry
        )
    if "ResolutionImpossible" in stderr or "conflict" in stderr.lower():
        detail = _last_lines(stderr)
        return DependencyError(
            f"the requirements conflict for {target.name}: {detail}",
            "loosen or change the pins (see the message above)",
        )
    return DependencyError(f"pip failed resolving wheels for {target.name}: {_last_lines(stderr)}", "run with --verbose and check pip's message")


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("WARNING")]
    return " / ".join(lines[-n:]) if lines else "(no output)"
