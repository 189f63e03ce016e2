"""The TFLite library that runs a ``.tflite`` without TensorFlow: which ones exist, and which one to use.

Two libraries can run a .tflite in a Lambda function: ``ai-edge-litert`` (Google's current one)
and ``tflite-runtime`` (its predecessor, frozen at 2.14). "Runtime" in lamb means a Lambda runtime
(``targets.Runtime``); the interpreter library is the *TFLite library*, and this module owns every
fact about it: the libraries (``LIBRARIES``), which releases have wheels for which Lambda target
(``WHEELS``, a fact of the package index, measured by the command quoted below), and the choice.
``choose`` picks what ``lamb package`` ships for a target, using what ``lamb verify`` proved;
``choose_for_host`` is ``lamb verify --runtime-lib NAME`` with no Lambda runtime named.

Nothing here imports TensorFlow, NumPy or another lamb step: ``verify`` and ``package`` both ask it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lamb import quantization
from lamb.errors import DependencyError, InputError, TFLiteLibError
from lamb.targets import Target


@dataclass(frozen=True)
class Library:
    """One TFLite library: its distribution, what the handler imports, what its wheels omit."""

    name: str  # distribution name on the index
    module: str  # what the handler imports (``<module>.interpreter.Interpreter``)
    aliases: tuple[str, ...]  # what --runtime-lib also accepts
    # Requirements its wheels need at run time but do not declare.
    needs: tuple[str, ...] = ()
    # No new releases: without a target to decide, its last release is the one to use.
    frozen: bool = False


# In preference order: when verify has no say, the maintained library first.
LIBRARIES: dict[str, Library] = {
    "ai-edge-litert": Library("ai-edge-litert", "ai_edge_litert", ("litert",)),
    # tflite-runtime 2.14 was built against NumPy 1.x's ABI: with NumPy 2 its extension fails
    # to import ("module compiled against ABI version 0x1000009"), and its wheel does not say so.
    "tflite-runtime": Library("tflite-runtime", "tflite_runtime", ("tflite",), needs=("numpy<2",), frozen=True),
}
NAMES = tuple(LIBRARIES)

# Measured on PyPI on 2026-11-24 with, for each Lambda runtime and arch,
#   pip index versions PKG --only-binary=:all: --implementation cp --python-version 3.X \
#       --platform manylinux_2_<glibc..17>_<machine> --platform manylinux2014_<machine>
# (glibc 2.26 for python3.10/3.11 on Amazon Linux 2, 2.34 for python3.12+ on AL2023), and by
# downloading the wheels: ai-edge-litert 2.x is tagged manylinux_2_27, 1.x manylinux_2_17,
# tflite-runtime manylinux2014 (= 2_17). ai-edge-litert 2.1.0 is here because the ELF audit
# (lamb.package.lib_choice) needs a fallback on arm64: its aarch64 wheels need GLIBCXX_3.4.26,
# while every aarch64 release from 2.1.1 to 2.3.0 needs GLIBCXX_3.4.30, past AL2023's documented
# GCC 11 (audited 2026-12-06; 2.1.0 has no cp314 wheel, so python3.14 on arm64 has none).


@dataclass(frozen=True)
class WheelRow:
    """One release of a TFLite library and the targets it has wheels for."""

    name: str  # a key of LIBRARIES
    version: str
    pythons: tuple[str, ...]
    arches: tuple[str, ...]  # Lambda's arch names
    min_glibc: tuple[int, int]

    def lacks(self, mode: str) -> bool:
        """Known to lack kernels (op versions) for models in quantization ``mode`` from the TensorFlow
        lamb converts with (``lamb.quantization``'s ``lacked_by``); others still face the smoke run."""
        row = quantization.BY_NAME.get(mode)
        return row is not None and self.name in row.lacked_by

    @property
    def module(self) -> str:
        return LIBRARIES[self.name].module

    @property
    def needs(self) -> tuple[str, ...]:
        return LIBRARIES[self.name].needs


_BOTH = ("x86_64", "arm64")

# Newest first within each library; the first row that fits a target wins.
WHEELS: tuple[WheelRow, ...] = (
    WheelRow("ai-edge-litert", "2.3.0", ("3.12", "3.13", "3.14"), _BOTH, (2, 27)),
    WheelRow("ai-edge-litert", "2.1.0", ("3.10", "3.11", "3.12", "3.13"), _BOTH, (2, 27)),
    WheelRow("ai-edge-litert", "1.4.0", ("3.10", "3.11", "3.12"), _BOTH, (2, 17)),
    WheelRow("tflite-runtime", "2.14.0", ("3.10", "3.11"), ("x86_64",), (2, 17)),
    WheelRow("tflite-runtime", "2.13.0", ("3.10",), ("arm64",), (2, 17)),
)


@dataclass
class TFLiteLibChoice:
    """The TFLite library to use, pinned, and the sentence explaining the pick."""

    name: str  # a key of LIBRARIES
    requirement: str  # "ai-edge-litert==2.3.0"
    reason: str
    version: str = ""  # "" when unpinned
    module: str = ""  # "ai_edge_litert" | "tflite_runtime"
    extra_requirements: list[str] = field(default_factory=list)  # e.g. ["numpy<2"]

    @property
    def requirements(self) -> list[str]:
        return [self.requirement, *self.extra_requirements]


def available(target: Target, name: str | None = None) -> list[WheelRow]:
    """Rows of ``WHEELS`` with a wheel for ``target`` (optionally one library only), newest first."""
    return [
        row
        for row in WHEELS
        if (name is None or row.name == name)
        and target.runtime.python in row.pythons
        and target.arch in row.arches
        and target.runtime.glibc >= row.min_glibc
    ]


def normalise_name(name: str) -> str:
    """The library ``name`` means (``tflite_runtime``, ``litert``, ...), or InputError."""
    wanted = name.strip().lower().replace("_", "-")
    for lib in LIBRARIES.values():
        if wanted == lib.name or wanted in lib.aliases:
            return lib.name
    raise InputError(f"unknown runtime library {name!r}", f"use one of: {', '.join(NAMES)}")


def choice_of(row: WheelRow, reason: str = "") -> TFLiteLibChoice:
    """``row`` pinned as the library to ship, with the sentence saying why."""
    return TFLiteLibChoice(
        name=row.name,
        requirement=f"{row.name}=={row.version}",
        reason=reason,
        version=row.version,
        module=row.module,
        extra_requirements=list(row.needs),
    )


def unpinned(name: str, reason: str) -> TFLiteLibChoice:
    """``name`` with no target to pick a wheel: a frozen library at its last release, else any version."""
    lib = LIBRARIES[name]
    if lib.frozen:
        last = next(row for row in WHEELS if row.name == name)
        return choice_of(last, reason)
    return TFLiteLibChoice(name=name, requirement=name, reason=reason, module=lib.module, extra_requirements=list(lib.needs))


def refuse_flex(manifest: Any) -> None:
    """A Flex model cannot ship: neither library carries the Flex delegate."""
    if manifest is not None and getattr(manifest, "requires_flex", False):
        ops = ", ".join(manifest.flex_ops) or "TensorFlow ops"
        raise TFLiteLibError(
            f"the model needs the Flex delegate ({ops}); neither ai-edge-litert nor tflite-runtime ships it",
            "re-run `lamb convert` without --allow-flex (replace the layers that need TF ops), "
            "or deploy full TensorFlow in a container image yourself",
        )


def choose(target: Target, manifest: Any, override: str | None = None) -> TFLiteLibChoice:
    """Pick the TFLite library for ``target`` that can run the model described by ``manifest``.

    Order of evidence: ``override`` (``--runtime-lib``), then the library ``lamb verify`` ran the
    model on, then the first library in preference order whose kernels cover the model's
    quantization. A Flex model is refused: neither library ships the Flex delegate.
    """
    mode = getattr(manifest, "quantization", quantization.DEFAULT) if manifest is not None else quantization.DEFAULT
    refuse_flex(manifest)

    if override:
        name = normalise_name(override)
        rows = available(target, name)
        if not rows:
            raise DependencyError(
                f"{name} has no wheel for {target.describe()}",
                f"choose another --runtime-lib; for this target: {_offer(target)}",
            )
        row = rows[0]
        note = ""
        if row.lacks(mode):
            note = f"; warning: {name} {row.version} lacks kernels for {mode} models, the smoke run will tell"
        return choice_of(row, f"--runtime-lib {name} asked for; {row.version} is its newest wheel for {target.name}{note}")

    verification = getattr(manifest, "verification", None) if manifest is not None else None
    if verification is not None and verification.passed and verification.runtime_lib:
        name = normalise_name(verification.runtime_lib)
        rows = [r for r in available(target, name) if not r.lacks(mode)]
        if rows:
            row = rows[0]
            same = row.version == verification.runtime_version
            how = "the same version" if same else f"{row.version}, its newest wheel for {target.name}"
            return choice_of(row, f"lamb verify ran the model on {name} {verification.runtime_version}; shipping {how}")

    for name in NAMES:
        rows = available(target, name)
        fitting = [r for r in rows if not r.lacks(mode)]
        if fitting:
            row = fitting[0]
            why = f"{row.name} {row.version} is the newest runtime library with a wheel for {target.describe()}"
            if verification is not None and verification.passed and verification.runtime_lib:
                why += f" ({verification.runtime_lib} {verification.runtime_version}, which verify used, has none)"
            skipped = [r for r in rows if r not in fitting]
            if skipped:
                why += f"; {skipped[0].name} {skipped[0].version} lacks {mode} kernels"
            return choice_of(row, why)
    raise DependencyError(
        f"no TFLite runtime library has a wheel for {target.describe()} that runs {mode} models",
        f"pick another --runtime or --arch; available: {_offer(target) or 'none'}",
    )


def choose_for_host(name: str, host: Target | None) -> TFLiteLibChoice:
    """``name``'s newest wheel for this machine's Lambda target (``host``), to run a model here."""
    name = normalise_name(name)
    rows = available(host, name) if host is not None else []
    if not rows:
        return unpinned(name, f"--runtime-lib {name}")
    row = rows[0]
    return choice_of(row, f"{row.name}=={row.version}, its newest wheel for this machine")


def isolation_help() -> str:
    """For --help: which libraries lamb verify runs in an environment of their own, and why."""
    return " ".join(
        f"{lib.name} gets its own cached environment (it needs {', '.join(lib.needs)})."
        for lib in LIBRARIES.values()
        if lib.needs
    )


def _offer(target: Target) -> str:
    rows = available(target)
    return ", ".join(f"{r.name} {r.version}" for r in rows) or "no runtime library at all"
