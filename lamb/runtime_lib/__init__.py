"""The runtime library: the engine that runs a converted model inside the Lambda function.

"Runtime" in lamb means only a Lambda runtime (``targets.Runtime``); the engine (LiteRT, ONNX
Runtime) is the *runtime library*. Each library is one record (``RuntimeLib``), registered by its
engine family's module (``litert``): its distribution and import module, the model format it runs
(``ModelFormat``: file name in the artifact, converter, quantization modes with their tolerances),
the handler's backend (which verify runs too), what its failures mean, what slimming may remove from its wheels, and which
releases have wheels for which Lambda target (``WheelRow``). Generic code asks these records
(``get``, ``for_format``, ``available``) and never names an engine: adding an engine is adding its
module here and its backend in the handler. Which release ships is ``lamb.release.lib_choice.resolve``'s
to decide, from these records.

Nothing here imports TensorFlow, NumPy or another lamb step: convert, verify, compare and package
all ask it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lamb.errors import InputError, RuntimeLibError
from lamb.quantization import Mode
from lamb.targets import Target


@dataclass(frozen=True)
class SlimRule:
    """Files a function never loads: a name, why they are dead weight, and the globs (relative to
    the install root) that remove them. ``lamb.release.slim`` applies them."""

    name: str
    why: str
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Explanation:
    """What one of a library's error texts means for the artifact (``lamb.verify.runner.explain_failure``)."""

    pattern: str  # a regular expression, searched in the library's message and in what it printed
    # One sentence: ``{where}`` is the library and its version, ``{model}`` the model file's name, and
    # the pattern's named groups fill their own fields.
    says: str
    hint: str  # the way out


@dataclass(frozen=True)
class ModelFormat:
    """A converted model's file format, shared by every library that runs it."""

    name: str  # the manifest's ``model.format``
    suffix: str  # of the converted file
    file: str  # its name inside every artifact, whatever the user's file was called
    converter: str  # the module whose ``convert`` and ``export`` write this format (imported lazily)
    modes: tuple[Mode, ...]  # quantization modes, each with the tolerances verify judges it by
    title: str  # what a person calls such a file: "a TensorFlow Lite"
    # (offset, bytes) that every file of the format carries, checked before a runner loads it.
    magic: tuple[int, bytes] | None = None

    def mode(self, name: str) -> Mode:
        """The row for ``name``; KeyError for a mode this format does not offer."""
        for m in self.modes:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def mode_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modes)


@dataclass(frozen=True)
class RuntimeLib:
    """One runtime library: everything lamb needs to convert for it, verify on it and ship it."""

    name: str  # distribution name on the index
    module: str  # what the handler and the verify runner import
    aliases: tuple[str, ...]  # what --runtime-lib also accepts
    format: ModelFormat
    # The shipped handler's backend for it (``lambkit.backends``): the one code that loads and runs
    # its models, in the function and in lamb verify's runner alike.
    handler_backend: str
    slim_rules: tuple[SlimRule, ...] = ()  # what its wheels carry that the handler never loads
    explanations: tuple[Explanation, ...] = ()  # its error texts that mean something for the artifact
    # Quantization modes of its format whose kernels (op versions) it lacks: the resolver avoids it for them.
    lacks: tuple[str, ...] = ()
    # Requirements its wheels need at run time but do not declare.
    needs: tuple[str, ...] = ()
    # No new releases: without a target to decide, its last release is the one to use.
    frozen: bool = False
    summary: str = ""  # for --help
    # Lambda runtimes ("python3.15") it has no wheel for yet, said explicitly: every other runtime
    # in lamb.targets.RUNTIMES needs a row in WHEELS (tests/test_runtime_lib.py checks).
    no_wheels_yet: tuple[str, ...] = ()


@dataclass(frozen=True)
class WheelRow:
    """One release of a runtime library and the targets it has wheels for."""

    name: str  # a registered library
    version: str
    pythons: tuple[str, ...]
    arches: tuple[str, ...]  # Lambda's arch names
    min_glibc: tuple[int, int]
    # What this release needs at run time beyond its library's ``needs`` and does not declare
    # (a release built against NumPy 1.x: "numpy<2").
    extra_needs: tuple[str, ...] = ()

    def lacks(self, mode: str) -> bool:
        """Known to lack kernels for models in quantization ``mode`` (``RuntimeLib.lacks``); others
        still face the smoke run."""
        return mode in get(self.name).lacks

    @property
    def module(self) -> str:
        return get(self.name).module

    @property
    def needs(self) -> tuple[str, ...]:
        return (*get(self.name).needs, *(n for n in self.extra_needs if n not in get(self.name).needs))


@dataclass
class RuntimeLibChoice:
    """The runtime library to use, pinned, and the sentence explaining the pick."""

    name: str  # a registered library
    requirement: str  # "ai-edge-litert==2.3.0"
    reason: str
    version: str = ""  # "" when unpinned
    module: str = ""  # what it imports as
    extra_requirements: list[str] = field(default_factory=list)  # e.g. ["numpy<2"]

    @property
    def requirements(self) -> list[str]:
        return [self.requirement, *self.extra_requirements]


# -- the registry ---------------------------------------------------------------------------------

# In preference order: when nothing else decides, the first library that fits wins.
LIBRARIES: dict[str, RuntimeLib] = {}
WHEELS: list[WheelRow] = []  # newest first within each library; the first row that fits a target wins


def register(libs: tuple[RuntimeLib, ...], wheels: tuple[WheelRow, ...]) -> None:
    """Add an engine family's records (its module calls this once, at import)."""
    for lib in libs:
        LIBRARIES[lib.name] = lib
    WHEELS.extend(wheels)


def names() -> tuple[str, ...]:
    return tuple(LIBRARIES)


def get(name: str) -> RuntimeLib:
    """The record of ``name`` or one of its aliases (``litert``, ...); InputError otherwise."""
    return LIBRARIES[normalise_name(name)]


def normalise_name(name: str) -> str:
    """The library ``name`` means (an alias, or the distribution in any spelling), or InputError."""
    from packaging.utils import canonicalize_name

    wanted = canonicalize_name(name.strip())
    for lib in LIBRARIES.values():
        if wanted == lib.name or wanted in lib.aliases:
            return lib.name
    raise InputError(f"unknown runtime library {name!r}", f"use one of: {', '.join(LIBRARIES)}")


def default() -> RuntimeLib:
    """The first library in preference order: what lamb converts for when nothing says otherwise."""
    return next(iter(LIBRARIES.values()))


def formats() -> dict[str, ModelFormat]:
    """Every model format some library runs, by name, in preference order."""
    found: dict[str, ModelFormat] = {}
    for lib in LIBRARIES.values():
        found.setdefault(lib.format.name, lib.format)
    return found


def model_format(name: str) -> ModelFormat:
    """The format called ``name`` (a manifest's ``model.format``); InputError for one no library runs."""
    try:
        return formats()[name]
    except KeyError:
        raise InputError(
            f"no runtime library here runs {name!r} models", f"known model formats: {', '.join(formats())}"
        ) from None


def for_format(name: str) -> tuple[RuntimeLib, ...]:
    """The libraries that run models of format ``name``, in preference order."""
    return tuple(lib for lib in LIBRARIES.values() if lib.format.name == name)


def format_for_suffix(suffix: str) -> ModelFormat | None:
    """The format whose converted files end in ``suffix``, or None."""
    return next((f for f in formats().values() if f.suffix == suffix.lower()), None)


def mode_names() -> tuple[str, ...]:
    """Every quantization mode some format offers, in the order the formats list them."""
    seen: list[str] = []
    for fmt in formats().values():
        seen.extend(m for m in fmt.mode_names if m not in seen)
    return tuple(seen)


def find_mode(name: str, format_name: str | None = None) -> Mode | None:
    """The mode ``name`` of the format ``format_name`` (default: the first format offering it), or None."""
    for fmt in formats().values():
        if (format_name is None or fmt.name == format_name) and name in fmt.mode_names:
            return fmt.mode(name)
    return None


def isolation_help() -> str:
    """For --help: which libraries lamb verify runs in an environment of their own, and why."""
    return " ".join(
        f"{lib.name} gets its own cached environment (it needs {', '.join(lib.needs)})."
        for lib in LIBRARIES.values()
        if lib.needs
    )


# -- which release to ship --------------------------------------------------------------------------


def available(target: Target, name: str | None = None, model_format: str | None = None) -> list[WheelRow]:
    """Rows of ``WHEELS`` with a wheel for ``target`` (optionally one library, or one format's), newest first."""
    return [
        row
        for row in WHEELS
        if (name is None or row.name == name)
        and (model_format is None or LIBRARIES[row.name].format.name == model_format)
        and target.runtime.python in row.pythons
        and target.arch in row.arches
        and target.runtime.glibc >= row.min_glibc
    ]


def choice_of(row: WheelRow, reason: str = "") -> RuntimeLibChoice:
    """``row`` pinned as the library to ship, with the sentence saying why."""
    return RuntimeLibChoice(
        name=row.name, requirement=f"{row.name}=={row.version}", reason=reason, version=row.version,
        module=row.module, extra_requirements=list(row.needs),
    )


def unpinned(name: str, reason: str) -> RuntimeLibChoice:
    """``name`` with no target to pick a wheel: a frozen library at its last release, else any version."""
    lib = get(name)
    if lib.frozen:
        last = next(row for row in WHEELS if row.name == lib.name)
        return choice_of(last, reason)
    return RuntimeLibChoice(name=lib.name, requirement=lib.name, reason=reason, module=lib.module, extra_requirements=list(lib.needs))


def manifest_format(manifest: Any) -> str | None:
    """The model format a manifest describes (None: no manifest, any format)."""
    model = getattr(manifest, "model", None) if manifest is not None else None
    return getattr(model, "format", None)


def refuse_flex(manifest: Any) -> None:
    """A Flex model cannot ship: no slim runtime library carries the Flex delegate."""
    if manifest is not None and getattr(manifest, "requires_flex", False):
        ops = ", ".join(manifest.flex_ops) or "TensorFlow ops"
        libs = " nor ".join(lib.name for lib in for_format(manifest_format(manifest) or default().format.name))
        raise RuntimeLibError(
            f"the model needs the Flex delegate ({ops}); neither {libs} ships it",
            "re-run `lamb convert` without --allow-flex (replace the layers that need TF ops), "
            "or deploy full TensorFlow in a container image yourself",
        )


# The engine families, in preference order. Each module registers its records on import.
from lamb.runtime_lib import litert, onnxruntime  # noqa: E402,F401
