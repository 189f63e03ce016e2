"""Remove from the installed dependencies what the handler never loads.

Each rule is data: a name, why the files are dead weight in a Lambda function, and the glob
patterns (relative to the install root) it removes. ``slim`` reports the bytes each rule saved.
The rules were read off the real wheels (``unzip -l`` of NumPy 2, Pillow 12/13, and each runtime
library's, whose own rules are in its record: ``lamb.runtime_lib``): the handler only loads the
model with the runtime library, NumPy arrays and Pillow's decoders. Slimming is never trusted
blind: ``build_package`` runs the slimmed artifact (the smoke run) before it replaces anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lamb import runtime_lib
from lamb.release import audit
from lamb.runtime_lib import SlimRule


@dataclass
class SlimResult:
    rule: str
    why: str
    files: int
    bytes_saved: int


_SHARED: tuple[SlimRule, ...] = (
    SlimRule("tests", "test suites ship inside NumPy and others; never imported at run time",
             ("**/tests", "numpy/_core/_*_tests.*.so", "numpy/_core/_simd.*.so")),
    SlimRule("bytecode", "__pycache__ compiled by the build host's Python is ignored by another Python version",
             ("**/__pycache__", "**/*.pyc")),
    SlimRule("type stubs", "*.pyi files are for type checkers, not the interpreter", ("**/*.pyi",)),
    SlimRule("docs", "documentation files and NumPy's doc module", ("**/*.md", "**/*.rst", "numpy/doc")),
    SlimRule("build-time files", "C headers, Cython declarations, NumPy's Fortran wrapper generator (f2py) and "
             "PyInstaller hooks: used to build against a package, never to run it",
             ("**/*.pxd", "**/*.h", "**/*.hpp", "numpy/_core/include", "numpy/f2py", "numpy/_pyinstaller")),
    SlimRule("console scripts", "bin/ entry points (f2py, tqdm, the engines' benchmark tools ...) cannot run in Lambda",
             ("bin",)),
)
_PILLOW: tuple[SlimRule, ...] = (
    # PIL imports these extension modules lazily (ImageFont, AvifImagePlugin, ImageTk) and treats
    # an ImportError as "feature not available". Not _imagingcms: Image.convert() needs it to turn
    # a LAB image (a TIFF mode the handler receives) into RGB; without it the handler answered 500.
    SlimRule("pillow extras", "Pillow's font rendering, AVIF codec and Tk bridge",
             ("PIL/_imagingft.*.so", "PIL/_avif.*.so", "PIL/_imagingtk.*.so")),
)


def _library_rules(root: Path | None = None) -> tuple[SlimRule, ...]:
    """The runtime libraries' own rules (their records'), each once; with ``root``, only those of
    the libraries installed there: a rule says why in its library's terms, and a file another
    library needs is not its business."""
    rules: list[SlimRule] = []
    for lib in runtime_lib.LIBRARIES.values():
        if root is None or (Path(root) / lib.module).is_dir():
            rules.extend(r for r in lib.slim_rules if r not in rules)
    return tuple(rules)


#: Every rule lamb knows, in the order ``slim`` applies them.
RULES: tuple[SlimRule, ...] = (*_SHARED, *_library_rules(), *_PILLOW)


def rules_for(root: Path) -> tuple[SlimRule, ...]:
    """The rules for the tree at ``root``: the shared ones, its runtime library's, Pillow's."""
    return (*_SHARED, *_library_rules(root), *_PILLOW)

# Computed, not globbed: see ``_orphaned_libraries``.
ORPHANS = SlimRule("orphaned vendored libraries",
                   "shared libraries bundled by auditwheel (*.libs/) that no remaining module links to", ())


def slim(root: Path, rules: tuple[SlimRule, ...] | None = None) -> list[SlimResult]:
    """Apply ``rules`` (default: ``rules_for(root)``) under ``root`` in order, then drop orphaned
    vendored libraries.

    A shared library that a remaining ELF file links to (DT_NEEDED) is never removed, whatever
    the rule says: ai-edge-litert 1.4's interpreter wrapper links libLiteRtRuntimeCApi.so, 2.x's
    does not link libLiteRt.so.
    """
    root = Path(root)
    rules = rules_for(root) if rules is None else rules
    elves = {p: elf_needed(p) for p in root.rglob("*") if p.is_file() and not p.is_symlink() and audit.is_elf(p)}
    results = []
    for rule in rules:
        doomed: set[Path] = set()
        for pattern in rule.patterns:
            for match in root.glob(pattern):
                if match.is_dir() and not match.is_symlink():
                    doomed.update(p for p in match.rglob("*") if p.is_file() or p.is_symlink())
                elif match.is_file() or match.is_symlink():
                    doomed.add(match)
        linked = {name for p, names in elves.items() if p not in doomed for name in names}
        doomed = {p for p in doomed if p.name not in linked}
        saved = 0
        for p in sorted(doomed):
            saved += p.lstat().st_size
            p.unlink()
            elves.pop(p, None)
        _prune_empty_dirs(root)
        results.append(SlimResult(rule.name, rule.why, len(doomed), saved))
    orphans = _orphaned_libraries(root, elves)
    saved = 0
    for p in orphans:
        saved += p.stat().st_size
        p.unlink()
    results.append(SlimResult(ORPHANS.name, ORPHANS.why, len(orphans), saved))
    return results


def _prune_empty_dirs(root: Path) -> None:
    for d in sorted((p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()


def _orphaned_libraries(root: Path, known: dict[Path, list[str]]) -> list[Path]:
    """Libraries in ``<dist>.libs/`` folders that no ELF file left in ``root`` needs.

    auditwheel copies a wheel's external libraries into ``<dist>.libs/`` and links them by
    DT_NEEDED with an RPATH, never by dlopen, so "nobody NEEDs it" means "nobody loads it".
    Repeats until stable: removing one library can orphan the libraries only it needed.
    ``known``: the DT_NEEDED already read for the files left, so no ELF file is parsed twice.
    """

    def needed(p: Path) -> list[str]:
        return known[p] if p in known else elf_needed(p)

    vendored = {p for d in root.glob("*.libs") if d.is_dir() for p in d.iterdir() if p.is_file()}
    if not vendored:
        return []
    others = [p for p in root.rglob("*") if p.is_file() and p not in vendored and (p in known or audit.is_elf(p))]
    needed_by_others: set[str] = set()
    for p in others:
        needed_by_others.update(needed(p))
    alive = {p for p in vendored if p.name in needed_by_others}
    frontier = list(alive)
    while frontier:
        lib = frontier.pop()
        for name in needed(lib):
            for candidate in vendored:
                if candidate.name == name and candidate not in alive:
                    alive.add(candidate)
                    frontier.append(candidate)
    return sorted(vendored - alive)


def elf_needed(path: Path) -> list[str]:
    """The DT_NEEDED entries of an ELF file (what the dynamic loader loads for it); [] otherwise.

    Read with the audit's ELF reader (pyelftools), so slimming works on any host: no binutils, and
    the target's arch may differ from this machine's.
    """
    try:
        info = audit.read_elf(path)
    except (OSError, ValueError):
        return []
    return list(info.needed) if info is not None else []
