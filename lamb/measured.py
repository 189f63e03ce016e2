"""What ``lamb probe`` measured on a real Lambda target, kept in lamb's cache.

One JSON file per runtime, arch and region (``<cache>/probe/python3.13-arm64-eu-west-1.json``):
the probe function's own reading (``lamb.probe.function.probe``) plus when and where it ran.
``targets.Target.system`` prefers these over the documented facts: a measurement is the
strongest evidence lamb can have of what a target's loader provides.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lamb import manifest as mf
from lamb.cache import cache_root

if TYPE_CHECKING:  # lambkit's package imports NumPy and Pillow: not at `lamb --help` (targets import this module)
    from lamb.handler.lambkit.cpu import Cpu

_VERSION = re.compile(r"^(\d+(?:\.\d+)*)$")


@dataclass(frozen=True)
class Measurement:
    """The facts one probe read on one target, and when and where."""

    runtime: str  # "python3.13"
    arch: str  # "arm64"
    region: str  # "eu-west-1", or "local" for `lamb probe --local`
    measured_at: str  # ISO 8601, UTC
    facts: dict  # the probe function's payload, as it answered

    def version(self, key: str) -> tuple[int, ...] | None:
        """A dotted version fact ("glibc", "glibcxx", "cxxabi", "gcc") as a tuple, or None."""
        value = self.facts.get(key)
        if not isinstance(value, str) or not _VERSION.match(value):
            return None
        return tuple(int(x) for x in value.split("."))

    @property
    def libraries(self) -> frozenset[str]:
        """Sonames the probe found in the system library folders (/lib64, /usr/lib64)."""
        found = self.facts.get("system_libraries") or []
        return frozenset(name for name in found if isinstance(name, str))

    @property
    def cpu(self) -> Cpu | None:
        return cpu_in(self.facts, self.arch)

    def source(self) -> str:
        """The citation an audit gives for a fact it took from here."""
        where = "this machine" if self.region == "local" else self.region
        return f"lamb probe on {self.runtime}-{self.arch}, {where}, {self.measured_at[:10]}"


def cpu_in(facts: dict, arch: str) -> Cpu | None:
    """The CPU a probe ran on, from its copy of ``/proc/cpuinfo``; None from a probe older than that."""
    text = facts.get("cpuinfo")
    if not isinstance(text, str) or not text.strip():
        return None
    from lamb.handler.lambkit.cpu import parse

    return parse(text, str(facts.get("machine") or arch))


def probe_dir() -> Path:
    return cache_root() / "probe"


# What a failed deploy smoke test measured (``lamb.deploy.learn`` writes it, one file per runtime,
# arch and region): versions the real loader did not find, e.g. GLIBCXX_3.4.30.
def learned_dir() -> Path:
    return cache_root() / "learned"


@dataclass(frozen=True)
class Lack:
    """A symbol version a target's loader was seen to lack, and where and when."""

    version: str  # "GLIBCXX_3.4.30"
    region: str
    date: str
    how: str  # "lamb deploy's smoke invocation: Runtime.ImportModuleError"

    def source(self) -> str:
        return f"{self.how}: lacks {self.version}, {self.region}, {self.date}"


def lacks(runtime: str, arch: str) -> list[Lack]:
    """Every version ``runtime`` on ``arch`` was seen to lack, in any region."""
    folder = learned_dir()
    found = []
    for path in sorted(folder.glob(f"{runtime}-{arch}-*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            region, known = str(record["region"]), dict(record.get("lacks") or {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # damaged: no evidence
            continue
        for version, fact in known.items():
            if isinstance(fact, dict):
                found.append(Lack(str(version), region, str(fact.get("date")), str(fact.get("source"))))
    return sorted(found, key=lambda lack: lack.version)


def path_for(runtime: str, arch: str, region: str) -> Path:
    return probe_dir() / f"{runtime}-{arch}-{region}.json"


def store(measurement: Measurement) -> Path:
    """Write ``measurement`` atomically (temp file, then rename); return its path."""
    path = path_for(measurement.runtime, measurement.arch, measurement.region)
    record = {
        "runtime": measurement.runtime, "arch": measurement.arch, "region": measurement.region,
        "measured_at": measurement.measured_at, "facts": measurement.facts,
    }
    mf.atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return path


def load(runtime: str, arch: str, region: str | None = None) -> Measurement | None:
    """The newest measurement of ``runtime`` on ``arch`` (in ``region``, or any Lambda region), or
    None. A ``--local`` reading of this machine is never one: it measures the host, not Lambda."""
    folder = probe_dir()
    if not folder.is_dir():
        return None
    pattern = f"{runtime}-{arch}-{region or '*'}.json"
    found = [m for m in (_read(p) for p in sorted(folder.glob(pattern))) if m is not None and m.region != "local"]
    if not found:
        return None
    return max(found, key=lambda m: m.measured_at)


def cpus(arch: str) -> list[tuple[Cpu, Measurement]]:
    """Every CPU ``lamb probe`` read on Lambda on ``arch``, whatever the runtime and region (a
    function's CPU does not follow its Python), each with the measurement that read it."""
    folder = probe_dir()
    found = [m for m in (_read(p) for p in sorted(folder.glob(f"*-{arch}-*.json")))] if folder.is_dir() else []
    return [(m.cpu, m) for m in found if m is not None and m.region != "local" and m.arch == arch and m.cpu is not None]


def _read(path: Path) -> Measurement | None:
    # A damaged or foreign file is not evidence; the audit falls back to the documented facts.
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        measurement = Measurement(
            runtime=str(record["runtime"]), arch=str(record["arch"]), region=str(record["region"]),
            measured_at=str(record["measured_at"]), facts=dict(record["facts"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return measurement if measurement.version("glibc") is not None else None
