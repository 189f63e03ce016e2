"""Which TFLite runtime library ships for a target, and why.

Two libraries can run a .tflite in a Lambda function without TensorFlow: ``ai-edge-litert``
(Google's current one) and ``tflite-runtime`` (its predecessor, frozen at 2.14). Which versions have
wheels for which Lambda runtime is a fact of the package index, so it lives below as data, with
the command that measured it. ``choose`` picks from that table using what ``lamb verify`` proved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lamb.errors import DependencyError, InputError, RuntimeLibError
from lamb.package.targets import Target

# Measured on PyPI on 2026-11-24 with, for each Lambda runtime and arch,
#   pip index versions PKG --only-binary=:all: --implementation cp --python-version 3.X \
#       --platform manylinux_2_<glibc..17>_<machine> --platform manylinux2014_<machine>
# (glibc 2.26 for python3.10/3.11 on Amazon Linux 2, 2.34 for python3.12+ on AL2023), and by
# downloading the wheels: ai-edge-litert 2.x is tagged manylinux_2_27, 1.x manylinux_2_17,
# tflite-runtime manylinux2014 (= 2_17).


@dataclass(frozen=True)
class WheelRow:
    """One release of a runtime library and the targets it has wheels for."""

    name: str  # distribution name on the index
    version: str
    pythons: tuple[str, ...]
    arches: tuple[str, ...]  # Lambda's arch names
    min_glibc: tuple[int, int]
    module: str  # what the handler imports
    # Extra requirements the wheel needs at run time but does not declare.
    needs: tuple[str, ...] = ()
    # Quantization modes whose kernels (op versions) this release is known to lack for models from
    # the TensorFlow lamb converts with; models in other modes still run through the smoke test.
    lacks_quantization: tuple[str, ...] = ()


_BOTH = ("x86_64", "arm64")

# Newest first within each library; the first row that fits a target wins.
WHEELS: tuple[WheelRow, ...] = (
    WheelRow("ai-edge-litert", "2.3.0", ("3.12", "3.13", "3.14"), _BOTH, (2, 27), "ai_edge_litert"),
    WheelRow("ai-edge-litert", "1.4.0", ("3.10", "3.11", "3.12"), _BOTH, (2, 17), "ai_edge_litert"),
    # tflite-runtime 2.14 was built against NumPy 1.x's ABI: with NumPy 2 its extension fails
    # to import ("module compiled against ABI version 0x1000009"), and its wheel does not say so.
    # Its kernels predate the op versions TF 2.16+ writes for hybrid (dynamic-range) and int8
    # models, so those models fail in AllocateTensors.
    WheelRow(
        "tflite-runtime", "2.14.0", ("3.10", "3.11"), ("x86_64",), (2, 17), "tflite_runtime",
        needs=("numpy<2",), lacks_quantization=("dynamic", "int8"),
    ),
    WheelRow(
        "tflite-runtime", "2.13.0", ("3.10",), ("arm64",), (2, 17), "tflite_runtime",
        needs=("numpy<2",), lacks_quantization=("dynamic", "int8"),
    ),
)

LIBRARIES = ("ai-edge-litert", "tflite-runtime")
# When verify has no say: the maintained library first.
_PREFERENCE = LIBRARIES


@dataclass
class RuntimeLibChoice:
    """The runtime library that ships, pinned, and the sentence explaining the pick."""

    name: str  # "ai-edge-litert" | "tflite-runtime"
    requirement: str  # "ai-edge-litert==2.3.0"
    reason: str
    version: str = ""
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
    wanted = name.strip().lower().replace("_", "-")
    if wanted in ("litert", "ai-edge-litert"):
        return "ai-edge-litert"
    if wanted in ("tflite-runtime", "tflite"):
        return "tflite-runtime"
    raise InputError(f"unknown runtime library {name!r}", f"use one of: {', '.join(LIBRARIES)}")


def _choice(row: WheelRow, reason: str) -> RuntimeLibChoice:
    return RuntimeLibChoice(
        name=row.name,
        requirement=f"{row.name}=={row.version}",
        reason=reason,
        version=row.version,
        module=row.module,
        extra_requirements=list(row.needs),
    )


def choose(target: Target, manifest, override: str | None = None) -> RuntimeLibChoice:
    """Pick the runtime library for ``target`` that can run the model described by ``manifest``.

    Order of evidence: ``override`` (``--runtime-lib``), then the library ``lamb verify`` ran the
    model on, then the first library in preference order whose kernels cover the model's
    quantization. A Flex model is refused: neither library ships the Flex delegate.
    """
    quantization = getattr(manifest, "quantization", "float32") if manifest is not None else "float32"
    if manifest is not None and getattr(manifest, "requires_flex", False):
        ops = ", ".join(manifest.flex_ops) or "TensorFlow ops"
        raise RuntimeLibError(
            f"the model needs the Flex delegate ({ops}); neither ai-edge-litert nor tflite-runtime ships it",
            "re-run `lamb convert` without --allow-flex (replace the layers that need TF ops), "
            "or deploy full TensorFlow in a container image yourself",
        )

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
        if quantization in row.lacks_quantization:
            note = f"; warning: {name} {row.version} lacks kernels for {quantization} models, the smoke run will tell"
        return _choice(row, f"--runtime-lib {name} asked for; {row.version} is its newest wheel for {target.name}{note}")

    verification = getattr(manifest, "verification", None) if manifest is not None else None
    if verification is not None and verification.passed and verification.runtime_lib:
        name = normalise_name(verification.runtime_lib)
        rows = [r for r in available(target, name) if quantization not in r.lacks_quantization]
        if rows:
            row = rows[0]
            same = row.version == verification.runtime_version
            how = "the same version" if same else f"{row.version}, its newest wheel for {target.name}"
            return _choice(row, f"lamb verify ran the model on {name} {verification.runtime_version}; shipping {how}")

    for name in _PREFERENCE:
        rows = available(target, name)
        fitting = [r for r in rows if quantization not in r.lacks_quantization]
        if fitting:
            row = fitting[0]
            why = f"{row.name} {row.version} is the newest runtime library with a wheel for {target.describe()}"
            if verification is not None and verification.passed and verification.runtime_lib:
                why += f" ({verification.runtime_lib} {verification.runtime_version}, which verify used, has none)"
            skipped = [r for r in rows if r not in fitting]
            if skipped:
                why += f"; {skipped[0].name} {skipped[0].version} lacks {quantization} kernels"
            return _choice(row, why)
    raise DependencyError(
        f"no TFLite runtime library has a wheel for {target.describe()} that runs {quantization} models",
        f"pick another --runtime or --arch; available: {_offer(target) or 'none'}",
    )


def _offer(target: Target) -> str:
    rows = available(target)
    return ", ".join(f"{r.name} {r.version}" for r in rows) or "no runtime library at all"
