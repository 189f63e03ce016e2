"""Judge the ELF files an artifact ships by what they need, against what the target's system has.

A smoke run on this machine loads the artifact with this machine's glibc and libstdc++, so it
cannot see the commonest way a Lambda deployment fails: ``/lib64/libm.so.6: version
`GLIBC_2.29' not found``. Like auditwheel, the audit reads each ELF file's headers (pyelftools,
no binutils needed) and compares them with the target's system as data
(``targets.LinuxSystem``):

- every versioned-symbol need (``.gnu.version_r``: GLIBC_, GLIBCXX_, CXXABI_, GCC_) on a library
  the system provides must be a version that library has on the target;
- every DT_NEEDED library must resolve: inside the artifact (the file's RPATH/RUNPATH with
  ``$ORIGIN``, which is how auditwheel's ``<dist>.libs/`` folders are found, or the task root and
  ``lib/`` on Lambda's LD_LIBRARY_PATH), or in the target's base system;
- every ELF file must be built for the target's machine.

Wheel tags are not trusted: several runtime-library wheels tagged manylinux2014 need glibc 2.29.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from lamb import files, targets
from lamb.release.loader import SYSTEM, Loader, normalise
from lamb.release.zip_check import check_wheel
from lamb.targets import Target

log = logging.getLogger(__name__)

# The versioned-symbol families a Lambda OS provides, and the library that defines each.
FAMILIES = {"GLIBC": "glibc", "GLIBCXX": "libstdc++", "CXXABI": "libstdc++", "GCC": "libgcc_s"}
# e_machine of the ELF header -> Lambda's architecture name.
MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "arm64"}
# glibc >= 2.36 links DT_RELR relocations and then requires this marker version, which no older
# glibc defines (glibc 2.36 NEWS, "--enable-dt-relr"): it means "needs glibc 2.36".
_MARKERS = {"GLIBC_ABI_DT_RELR": ("GLIBC", (2, 36))}
_VERSION = re.compile(r"^([A-Z]+)_(\d+(?:\.\d+)*)$")


@dataclass(frozen=True)
class ElfInfo:
    """What the dynamic loader reads from one ELF file."""

    path: str  # posix path inside the audited tree
    arch: str | None  # Lambda's arch name, or None for another machine
    machine: str  # e_machine as pyelftools names it, e.g. "EM_X86_64"
    soname: str | None
    needed: tuple[str, ...]  # DT_NEEDED, in order
    rpath: tuple[str, ...]  # DT_RPATH, unexpanded: searched for this file's and its loadees' needs
    runpath: tuple[str, ...]  # DT_RUNPATH, unexpanded: for this file's own needs only (and voids DT_RPATH)
    version_needs: tuple[tuple[str, str], ...]  # (library file, version name), from .gnu.version_r
    version_defs: tuple[str, ...]  # the versions it defines (.gnu.version_d), for vendored libraries
    extension: bool = False  # a Python extension module (exports PyInit_<name>): loaded by import


@dataclass(frozen=True)
class Problem:
    """One reason an ELF file will not load on the target."""

    file: str
    kind: str  # "symbol version" | "missing library" | "architecture" | "unreadable"
    detail: str  # "needs GLIBC_2.29 (from libm.so.6); Amazon Linux 2 has glibc 2.26"
    need: str = ""  # the version or library named, e.g. "GLIBC_2.29" or "libfoo.so.1"

    def sentence(self) -> str:
        return f"{self.file} {self.detail}"


@dataclass
class AuditReport:
    """The audit of one artifact (or one wheel) against one target."""

    target: str  # "python3.11-arm64"
    system: str  # "Amazon Linux 2 (glibc 2.26, libstdc++ of GCC 7.3)"
    files: int  # ELF files checked
    resolved_in_artifact: int  # DT_NEEDED entries found inside the artifact
    resolved_in_system: int  # DT_NEEDED entries the target's base system provides
    newest: dict[str, str]  # family -> newest version needed from the system, e.g. {"GLIBC": "2.27"}
    provided: dict[str, str]  # family -> newest version the target has
    problems: list[Problem] = field(default_factory=list)
    subject: str = "the artifact"  # what was audited: "the artifact", "ai_edge_litert-2.3.0-....whl"
    # Libraries missing for files that no import loads (plugins and tools opened on demand, e.g.
    # LiteRT's NPU compiler plugins needing the vendor's SDK): they fail only if something asks.
    on_demand: list[Problem] = field(default_factory=list)
    # How lamb knows each fact of the target it judged by: fact -> "documented (source)"; and the
    # rank the verdict rests on (targets.RANKS): a refusal's, the weakest fact it failed on; a
    # pass's, the weakest versioned-symbol fact it needed. Which libraries the base system has is
    # inferred unless measured, and said in ``evidence``.
    evidence: dict[str, str] = field(default_factory=dict)
    rests_on: str = targets.DOCUMENTED
    # Derived, but fields so that --json and the manifest carry them.
    passed: bool = field(init=False)
    libraries_resolved: int = field(init=False)

    def __post_init__(self) -> None:
        self.passed = not self.problems
        self.libraries_resolved = self.resolved_in_artifact + self.resolved_in_system

    def record(self) -> dict:
        """What the manifest and the shipped ``lamb.json`` keep of the audit (no file lists)."""
        return {
            "passed": self.passed, "system": self.system, "files": self.files, "newest": dict(self.newest),
            "provided": dict(self.provided), "libraries_resolved": self.libraries_resolved,
            "resolved_in_artifact": self.resolved_in_artifact, "resolved_in_system": self.resolved_in_system,
            "problems": [p.sentence() for p in self.problems], "summary": self.summary(),
            "rests_on": self.rests_on, "evidence": dict(self.evidence),
        }

    def summary(self) -> str:
        """One line for the package report: newest needs against what the target has."""
        needs = ", ".join(
            f"{family} {self.newest[family]} (target has {self.provided.get(family, '?')})"
            for family in FAMILIES if family in self.newest
        ) or "no versioned symbols"
        verdict = "PASS" if self.passed else f"FAIL ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''})"
        return (
            f"{verdict} on {self.rests_on} facts: {self.files} ELF files; newest needs: {needs}; {self.libraries_resolved} libraries "
            f"resolved ({self.resolved_in_artifact} in the artifact, {self.resolved_in_system} from {self.system})"
        )

    def first_problem(self) -> str:
        return self.problems[0].sentence() if self.problems else ""


# -- reading --------------------------------------------------------------------------------------


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def read_elf(path: Path, name: str | None = None) -> ElfInfo | None:
    """The loader-relevant headers of ``path``, or None when it is not an ELF file.

    Raises ``ValueError`` for a file that starts like ELF but cannot be parsed.
    """
    with open(path, "rb") as f:
        return _read(f, name or Path(path).name)


def _read(stream, name: str) -> ElfInfo | None:
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection
    from elftools.elf.hash import ELFHashSection, GNUHashSection

    if stream.read(4) != b"\x7fELF":
        return None
    stream.seek(0)
    try:
        elf = ELFFile(stream)
        needed: list[str] = []
        rpath: list[str] = []
        runpath: list[str] = []
        soname = None
        needs: list[tuple[str, str]] = []
        defs: list[str] = []
        extension = False
        init = "PyInit_" + PurePosixPath(name).name.split(".")[0]
        tag: Any  # pyelftools sets .needed, .rpath, .runpath and .soname by the tag's type
        verneed: Any  # its .name (vn_file) is set for every entry; pyelftools types it optional
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_RPATH":
                        rpath.extend(p for p in tag.rpath.split(":") if p)
                    elif tag.entry.d_tag == "DT_RUNPATH":
                        runpath.extend(p for p in tag.runpath.split(":") if p)
                    elif tag.entry.d_tag == "DT_SONAME":
                        soname = tag.soname
            elif isinstance(section, GNUVerNeedSection):
                for verneed, auxiliaries in section.iter_versions():
                    needs.extend((verneed.name, aux.name) for aux in auxiliaries)
            elif isinstance(section, GNUVerDefSection):
                for _verdef, auxiliaries in section.iter_versions():
                    defs.extend(aux.name for aux in auxiliaries)
            elif isinstance(section, (GNUHashSection, ELFHashSection)) and not extension:
                # A hash-table lookup, not a walk of the whole symbol table (LiteRT's are huge).
                symbol = section.get_symbol(init)
                extension = symbol is not None and symbol["st_shndx"] != "SHN_UNDEF"
        machine = elf.header["e_machine"]
    except (ELFError, ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"{name}: not a readable ELF file ({exc})") from None
    return ElfInfo(
        path=name,
        arch=MACHINES.get(machine),
        machine=str(machine),
        soname=soname,
        needed=tuple(needed),
        rpath=tuple(rpath),
        runpath=tuple(runpath),
        version_needs=tuple(needs),
        version_defs=tuple(defs),
        extension=extension,
    )


def parse_version(name: str) -> tuple[str, tuple[int, ...]] | None:
    """``"GLIBC_2.29"`` -> ``("GLIBC", (2, 29))``; None for names that carry no comparable version."""
    if name in _MARKERS:
        return _MARKERS[name]
    match = _VERSION.match(name)
    if not match or match.group(1) not in FAMILIES:
        return None
    return match.group(1), tuple(int(x) for x in match.group(2).split("."))


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in version)


# -- judging --------------------------------------------------------------------------------------


def audit_tree(root: Path, target: Target, subject: str = "the artifact") -> AuditReport:
    """Audit every ELF file under ``root``, a task root laid out as it will be on Lambda."""
    root = Path(root)
    elves: list[ElfInfo] = []
    problems: list[Problem] = []
    present: set[str] = set()
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            if path.is_symlink() and path.exists():
                present.add(path.relative_to(root).as_posix())
            continue
        rel = path.relative_to(root).as_posix()
        present.add(rel)
        try:
            info = read_elf(path, rel)
        except ValueError as exc:
            problems.append(Problem(rel, "unreadable", str(exc).split(": ", 1)[-1]))
            continue
        if info is not None:
            elves.append(info)
    return judge(elves, present, target, subject, problems)


def audit_wheel(wheel: Path, target: Target) -> AuditReport:
    """Audit the ELF files of one wheel as ``pip install --target`` would lay them out."""
    import io

    wheel = Path(wheel)
    check_wheel(wheel)  # before a member is read: no bomb, no entry outside its root
    elves: list[ElfInfo] = []
    problems: list[Problem] = []
    present: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.infolist():
            if member.is_dir():
                continue
            rel = _installed_path(member.filename)
            present.add(rel)
            with zf.open(member) as f:
                head = f.read(4)
            if head != b"\x7fELF":
                continue
            try:
                info = _read(io.BytesIO(zf.read(member)), rel)
            except ValueError as exc:
                problems.append(Problem(rel, "unreadable", str(exc).split(": ", 1)[-1]))
                continue
            if info is not None:
                elves.append(info)
    return judge(elves, present, target, wheel.name, problems)


def audit_wheel_as_shipped(wheel: Path, target: Target, slim: Callable[[Path], Any] | None) -> AuditReport:
    """Audit a wheel's files as the artifact will ship them: installed, then slimmed by ``slim``
    (``lamb.release.slim.slim``; passed in, since slimming reads ELF through this module) if it
    will be.

    Slimming removes files (LiteRT's accelerators, vendor plugins) whose needs must not decide
    the choice of a runtime library that ships without them.
    """
    if slim is None:
        return audit_wheel(wheel, target)
    import shutil

    wheel = Path(wheel)
    check_wheel(wheel)  # before anything is unpacked: no bomb, no entry outside ``root``
    with files.scratch("lamb-audit-") as root, zipfile.ZipFile(wheel) as zf:
        for member in zf.infolist():
            rel = normalise(PurePosixPath(_installed_path(member.filename)))
            if member.is_dir() or not rel:
                continue
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
        slim(root)
        return audit_tree(root, target, subject=wheel.name)


def _installed_path(member: str) -> str:
    """Where pip puts a wheel member: ``<dist>.data/purelib|platlib/x`` lands at ``x``."""
    parts = PurePosixPath(member).parts
    if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in ("purelib", "platlib"):
        return PurePosixPath(*parts[2:]).as_posix()
    return member


def judge(
    elves: list[ElfInfo], present: set[str], target: Target, subject: str = "the artifact",
    problems: list[Problem] | None = None,
) -> AuditReport:
    """Judge already-read ELF files (paths relative to the task root) against ``target``."""
    system = target.system
    problems = list(problems or [])
    provided = system.provides()
    newest: dict[str, tuple[int, ...]] = {}
    on_demand: list[Problem] = []
    wrong_machine = {e.path for e in elves if e.arch != target.arch}
    for path in sorted(wrong_machine):
        elf = next(e for e in elves if e.path == path)
        built_for = elf.arch or elf.machine
        problems.append(Problem(path, "architecture", f"is built for {built_for}, not {target.arch}", built_for))
    elves = [e for e in elves if e.path not in wrong_machine]
    loader = Loader(elves, present, lambda name: system.has_library(name, target.arch, target.python_version))
    resolutions = loader.import_all()
    imported = {path for path, _name in resolutions}
    # Names an import has loaded into the process: a plugin dlopen'ed later reuses them.
    in_process = {
        alias: path for path in {w for w in resolutions.values() if w not in (None, SYSTEM)} | imported
        for alias in (PurePosixPath(path).name, loader.by_path[path].soname) if alias and path in loader.by_path
    }
    for elf in elves:  # what no import loads (plugins, tools): resolved as a dlopen of it would be
        if elf.path not in imported:
            for name in elf.needed:
                where = loader.locate(name, elf, loader.own_rpath(elf))
                resolutions[(elf.path, name)] = in_process.get(name) if where is None else where

    for (path, name), where in resolutions.items():
        if where is None:
            missing = Problem(
                path, "missing library",
                f"needs {name}, which is neither in the artifact nor in {system.name}'s base system", name,
            )
            (problems if path in imported else on_demand).append(missing)
    for elf in elves:
        for library, version in elf.version_needs:
            where = resolutions.get((elf.path, library))
            if where is None:
                continue  # missing: said above
            if where != SYSTEM:
                vendored = loader.by_path.get(where)
                # A library shipped in the artifact must itself define the version.
                if vendored is not None and vendored.version_defs and version not in vendored.version_defs:
                    problems.append(Problem(
                        elf.path, "symbol version",
                        f"needs {version} from {library}, which the artifact's {vendored.path} does not define",
                        version,
                    ))
                continue
            parsed = parse_version(version)
            if parsed is None:
                if version == "GLIBC_PRIVATE":
                    problems.append(Problem(
                        elf.path, "symbol version", "needs GLIBC_PRIVATE symbols, which differ between glibc builds",
                        version,
                    ))
                continue
            family, number = parsed
            newest[family] = max(newest.get(family, ()), number)
            have = provided.get(family)
            if have is not None and number > have:
                problems.append(Problem(
                    elf.path, "symbol version",
                    f"needs {version} (from {library}); {system.name} has {_have_phrase(family, have)}", version,
                ))
    problems.sort(key=_severity)
    report = AuditReport(
        evidence={**{fact: e.phrase() for fact, e in system.evidence.items()},
                  **{f"{fact} ceiling": e.phrase() for fact, (_v, e) in system.ceilings.items()}},
        rests_on=_rests_on(system, problems, newest),
        target=target.name,
        system=system.describe(),
        files=len(elves) + len(wrong_machine),
        resolved_in_artifact=sum(1 for w in resolutions.values() if w is not None and w != SYSTEM),
        resolved_in_system=sum(1 for w in resolutions.values() if w == SYSTEM),
        newest={f: _dotted(v) for f, v in newest.items()},
        provided={f: _dotted(v) for f, v in provided.items()},
        problems=problems,
        subject=subject,
        on_demand=on_demand,
    )
    _log(report, resolutions)
    return report


def _log(report: AuditReport, resolutions: dict[tuple[str, str], str | None]) -> None:
    """The audit's trail for --verbose: where each DT_NEEDED resolved, then the verdict."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    for (path, name), where in sorted(resolutions.items()):
        log.debug("audit %s: %s -> %s", path, name, "the base system" if where == SYSTEM else where or "NOT FOUND")
    for problem in report.problems:
        log.debug("audit problem: %s", problem.sentence())
    log.debug("audit of %s for %s: %s", report.subject, report.target, report.summary())




def _rests_on(system: targets.LinuxSystem, problems: list[Problem], newest: dict[str, tuple[int, ...]]) -> str:
    """The rank of the facts the verdict depends on (see ``AuditReport.rests_on``)."""
    if problems:
        ranks = []
        for p in problems:
            parsed = parse_version(p.need) if p.kind == "symbol version" else None
            if parsed is not None:
                ranks.append(system.rank_of_need(*parsed))
            elif p.kind == "missing library":
                ranks.append(system.rank("libraries"))
        # No target fact at all (wrong machine, unreadable file): the ELF files themselves decide.
        return targets.weakest(ranks) if ranks else targets.MEASURED
    return targets.weakest(system.rank(f) for f in newest) if newest else targets.DOCUMENTED


def _have_phrase(family: str, have: tuple[int, ...]) -> str:
    if family == "GLIBC":
        return f"glibc {_dotted(have)}"
    return f"{family}_{_dotted(have)} at most"


def _severity(problem: Problem) -> tuple:
    """Worst first: the sentence a refusal quotes should name the highest version needed."""
    order = {"architecture": 0, "symbol version": 1, "missing library": 2, "unreadable": 3}
    parsed = parse_version(problem.need) if problem.kind == "symbol version" else None
    family_rank = list(FAMILIES).index(parsed[0]) if parsed else 9
    version = tuple(-x for x in parsed[1]) if parsed else ()
    return (order.get(problem.kind, 9), family_rank, version, problem.file)
