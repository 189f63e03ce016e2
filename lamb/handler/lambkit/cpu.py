"""The CPU a figure was measured on: its model, its arch, and the instruction-set features that
decide how fast a model runs on it.

Every timing lamb prints names the CPU that made it (``Cpu.describe``), because the same model
runs at different speeds on different instruction sets: int8 pays on a CPU with an int8
dot-product instruction (AVX-512 VNNI, AVX-VNNI or AMX on x86_64; the dot-product or i8mm
extensions on arm64) and hardly at all without one. Lambda does not document which CPU a function
gets, so ``lamb probe`` reads it there (the probe function copies ``/proc/cpuinfo``'s first
processor and lamb reads it with ``parse``).

Stdlib only, and shipped in the handler: the ONNX Runtime backend loads a model pre-optimized for
an instruction set only on a CPU with that instruction set (``Cpu.isa``).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import lru_cache

# (shown as, /proc/cpuinfo flag, arch, an int8 dot-product instruction). The flag names are the
# Linux kernel's (arch/x86/include/asm/cpufeatures.h; arm64: Documentation/arch/arm64/elf_hwcaps.rst).
FEATURES = (
    ("AVX2", "avx2", "x86_64", False),
    ("AVX-512F", "avx512f", "x86_64", False),
    ("AVX-512 VNNI", "avx512_vnni", "x86_64", True),
    ("AVX-VNNI", "avx_vnni", "x86_64", True),
    ("AMX", "amx_int8", "x86_64", True),
    ("ASIMD dot-product", "asimddp", "arm64", True),
    ("SVE", "sve", "arm64", False),
    ("i8mm", "i8mm", "arm64", True),
)

# arm64 names no model in /proc/cpuinfo, only the implementer and part of its MIDR: Arm's
# Neoverse parts (Linux's arch/arm64/include/asm/cputype.h), the cores of AWS Graviton 2, 3 and 4.
ARM_PARTS = {
    ("0x41", "0xd0c"): "Neoverse-N1 (Graviton2)",
    ("0x41", "0xd40"): "Neoverse-V1 (Graviton3)",
    ("0x41", "0xd4f"): "Neoverse-V2 (Graviton4)",
}

# Lambda's arch names for the machine names Python reports.
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Cpu:
    """One CPU: what a timing on it means."""

    model: str  # "AMD EPYC 9R14", "Neoverse-V1 (Graviton3)", "unknown"
    arch: str  # Lambda's name: "x86_64" | "arm64"
    features: tuple[str, ...]  # the FEATURES it has, by their shown names, in FEATURES order

    @property
    def isa(self) -> str:
        """The instruction sets that matter, as a key: "x86_64+avx2+avx512f+avx512_vnni"."""
        flags = [flag for shown, flag, _arch, _dot in FEATURES if shown in self.features]
        return "+".join([self.arch, *flags])

    @property
    def int8_features(self) -> tuple[str, ...]:
        """Its int8 dot-product instructions: where int8 can run faster than float32."""
        return tuple(shown for shown, _flag, _arch, dot in FEATURES if dot and shown in self.features)

    @property
    def int8_dot(self) -> bool:
        return bool(self.int8_features)

    def describe(self) -> str:
        """"AMD EPYC (x86_64: AVX2, AVX-512F, AVX-512 VNNI)": the CPU beside a figure."""
        return f"{self.model} ({self.arch}: {', '.join(self.features) or 'none of ' + _names(self.arch)})"

    def as_dict(self) -> dict:
        return {"model": self.model, "arch": self.arch, "features": list(self.features), "isa": self.isa}

    @classmethod
    def from_dict(cls, data: dict) -> Cpu:
        return cls(str(data.get("model") or "unknown"), str(data.get("arch") or ""), tuple(data.get("features") or ()))


def _names(arch: str) -> str:
    return ", ".join(shown for shown, _flag, a, _dot in FEATURES if a == arch)


def isa_features(isa: str) -> set[str]:
    """The /proc/cpuinfo flags an ``isa`` key names (the arch excluded)."""
    return set(isa.split("+")[1:])


def parse(text: str, machine: str) -> Cpu:
    """The first processor of a ``/proc/cpuinfo`` text, on a machine ``machine`` (``uname -m``)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block ends at the first blank line
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    arch = _ARCH.get(machine.lower(), machine)
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    model = fields.get("model name") or ARM_PARTS.get((fields.get("cpu implementer", ""), fields.get("cpu part", "")))
    if model is None and "cpu part" in fields:
        model = f"arm part {fields.get('cpu implementer')}/{fields['cpu part']}"
    features = tuple(shown for shown, flag, a, _dot in FEATURES if a == arch and flag in flags)
    return Cpu(" ".join((model or "unknown").split()), arch, features)


def read_cpuinfo() -> str:
    """``/proc/cpuinfo``'s first processor block ("" where there is none: not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read().split("\n\n", 1)[0]
    except OSError:
        return ""


@lru_cache(maxsize=1)
def this_cpu() -> Cpu:
    """The CPU this process runs on."""
    return parse(read_cpuinfo(), platform.machine())
