"""What a failed smoke test teaches about the target: a symbol version the real loader lacks.

When the deployed function fails with ``Runtime.ImportModuleError`` naming a versioned symbol
the dynamic loader could not find (``version `GLIBCXX_3.4.30' not found (required by ...)``),
that is a measurement on the real target: its runtime, arch and region lack that version. It is
written to lamb's cache (``facts/measured.json``), keyed ``<runtime>-<arch>-<region>``, with
the date and the loader's message, for the target facts (``lamb.targets``) to rank as measured.
``record_missing_version`` is the one writer; the target facts' store can adopt it.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Any

from lamb import manifest as mf

# glibc's loader: "version `GLIBCXX_3.4.30' not found (required by /var/task/x.so)"; quotes vary.
MISSING_VERSION = re.compile(r"version\W+((?:GLIBCXX|GLIBC|CXXABI|GCC)_[0-9][0-9.]*)\W+not found(?:\s*\(required by ([^)]+)\))?")
FACTS_FILE = "facts/measured.json"


def missing_version(message: str) -> tuple[str, str | None] | None:
    """(the symbol version, the library that needs it) named in a loader error, if any."""
    match = MISSING_VERSION.search(message or "")
    return (match.group(1), match.group(2)) if match else None


def facts_path() -> Path:
    from lamb.package.wheels import cache_root

    return cache_root() / FACTS_FILE


def record_missing_version(runtime: str, arch: str, region: str, version: str, evidence: str, path: Path | None = None) -> Path:
    """Record that ``runtime``/``arch`` in ``region`` lacks the symbol ``version`` (measured today)."""
    path = path or facts_path()
    try:
        facts: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        facts = {}
    entry = facts.setdefault(f"{runtime}-{arch}-{region}", {"runtime": runtime, "arch": arch, "region": region, "lacks": {}})
    entry["lacks"][version] = {
        "rank": "measured",
        "source": "lamb deploy's smoke invocation: Runtime.ImportModuleError",
        "date": _dt.date.today().isoformat(),
        "evidence": evidence[:500],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.atomic_write_bytes(path, (json.dumps(facts, indent=2, sort_keys=True) + "\n").encode())
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
