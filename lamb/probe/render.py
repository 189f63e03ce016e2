"""What ``lamb probe`` prints: the calls of a plan, or the measured facts as a table."""

from __future__ import annotations

from typing import Any

from lamb.markup import plain
from lamb.probe.report import ProbeReport

_ROWS = (("glibc", "glibc"), ("glibcxx", "newest GLIBCXX_"), ("cxxabi", "newest CXXABI_"), ("gcc", "newest GCC_ (libgcc_s)"),
         ("libstdcxx", "libstdc++ resolved"), ("libgcc_s", "libgcc_s resolved"), ("python", "Python"),
         ("machine", "machine"), ("aws_execution_env", "AWS_EXECUTION_ENV"))


def render(report: ProbeReport) -> list[Any]:
    """Rich renderables: a plan's AWS CLI commands, else the facts, where they were stored, what was kept."""
    if report.commands:
        out: list[Any] = [plain(f"# lamb probe of {report.target} in {report.region}: the calls it makes")]
        out += [plain(command) for commands in report.commands for command in commands]
        return out
    from rich.table import Table

    table = Table(title=plain(f"{report.target} ({report.region}, {report.measured_at})"), show_header=False)
    for key, label in _ROWS:
        table.add_row(label, plain(report.facts.get(key)))
    table.add_row("system libraries", f"{len(report.facts.get('system_libraries') or [])} found")
    table.add_row("OS", plain((report.facts.get("os_release") or {}).get("PRETTY_NAME")))
    table.add_row("CPU", plain(report.cpu.describe()) if report.cpu is not None else "not read (a probe older than lamb 25's)")
    out = [table]
    if report.stored:
        out.append(f"stored as measured facts in {plain(report.stored)}")
    if report.kept:
        out.append(f"kept the function {plain(report.function_name)} and its role (--keep)")
    return out
