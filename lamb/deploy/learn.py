"""What a failed smoke test teaches about the target: a symbol version the real loader lacks.

When the deployed function fails with ``Runtime.ImportModuleError`` naming a versioned symbol
the dynamic loader could not find (``version `GLIBCXX_3.4.30' not found (required by ...)``),
that is a measurement on the real target: its runtime, arch and region lack that version. It is
kept in lamb's cache beside what ``lamb probe`` measures (``lamb.measured``), one file per
target, ``<cache>/learned/<runtime>-<arch>-<region>.json``, with the date and the loader's
message. A probe reads the whole loader; this is one upper bound, so it is a record of its own,
not a ``lamb.measured.Measurement``: ``lacks`` reads it back, and ``lamb.measured.lacks`` for the
target facts of every region.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

from lamb import manifest as mf
from lamb import measured

# glibc's loader: "version `GLIBCXX_3.4.30' not found (required by /var/task/x.so)"; quotes vary.
MISSING_VERSION = re.compile(r"version\W+((?:GLIBCXX|GLIBC|CXXABI|GCC)_[0-9][0-9.]*)\W+not found(?:\s*\(required by ([^)]+)\))?")


def missing_version(message: str) -> tuple[str, str | None] | None:
    """(the symbol version, the library that needs it) named in a loader error, if any."""
    match = MISSING_VERSION.search(message or "")
    return (match.group(1), match.group(2)) if match else None


def path_for(runtime: str, arch: str, region: str) -> Path:
    return measured.learned_dir() / f"{runtime}-{arch}-{region}.json"


def lacks(runtime: str, arch: str, region: str) -> dict[str, Any]:
    """The symbol versions a deploy found missing on this target: version -> its record."""
    try:
        return dict(json.loads(path_for(runtime, arch, region).read_text(encoding="utf-8")).get("lacks", {}))
    except (OSError, ValueError, AttributeError):  # none recorded, or a damaged file: no evidence
        return {}


def record_missing_version(runtime: str, arch: str, region: str, version: str, evidence: str) -> Path:
    """Record that ``runtime``/``arch`` in ``region`` lacks the symbol ``version`` (measured today)."""
    known = lacks(runtime, arch, region)
    known[version] = {
        "rank": "measured",
        "source": "lamb deploy's smoke invocation: Runtime.ImportModuleError",
        "date": _dt.date.today().isoformat(),
        "evidence": evidence[:500],
    }
    path = path_for(runtime, arch, region)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"runtime": runtime, "arch": arch, "region": region, "lacks": known}
    mf.atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return path


def from_smoke(smoke: Any, facts: Any, region: str) -> str | None:
    """One line when the smoke test failed for a symbol version the target lacks (and record it)."""
    response = smoke.response if not smoke.passed else None
    if not isinstance(response, dict) or response.get("errorType") != "Runtime.ImportModuleError":
        return None
    found = missing_version(str(response.get("errorMessage", "")))
    if found is None:
        return None
    version, needed_by = found
    runtime = facts.runtime or "image"
    where = record_missing_version(runtime, facts.arch, region, version, str(response.get("errorMessage")))
    by = f" ({Path(needed_by.strip()).name} needs it)" if needed_by else ""
    return (f"{runtime} on {facts.arch} in {region} lacks {version}{by}: the artifact cannot import there; "
            f"recorded as a measured fact in {where}")
