"""Rich rendering of an ``InvokeReport`` for the CLI (the library returns data; this draws it)."""

from __future__ import annotations

import json

from lamb.cost import TIMEOUT_STEP_S
from lamb.invoke.report import InvokeReport
from lamb.markup import plain


def render(report: InvokeReport, verbose: bool = False) -> list:
    """Rich renderables: the response as returned, then the figures."""
    from rich.syntax import Syntax
    from rich.table import Table

    out: list = []
    if report.error is not None:
        out.append("[bold red]unhandled error[/] (what Lambda returns with X-Amz-Function-Error: Unhandled):")
        out.append(Syntax(json.dumps(report.error, indent=2), "json", word_wrap=True))
    else:
        status = report.status_code
        title = "response" + (f" (the handler's own status {status})" if status else "")
        out.append(f"[bold]{title}[/]")
        out.append(Syntax(json.dumps(report.response, indent=2), "json", word_wrap=True))
    out.append(f"[bold]{plain(report.artifact.name)}[/] on Python {report.python}, {report.memory_mb} MB memory setting"
               + (f", timed on {plain(report.cpu.describe())}" if report.cpu is not None else ""))
    if report.runtime_client:
        out.append(f"run by {plain(report.runtime_client)}")
    table = Table()
    table.add_column("measure", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    ms = lambda v: "-" if v is None else f"{v:,.1f} ms"  # noqa: E731
    table.add_row("init (cold start)", ms(report.init_ms))
    table.add_row("first invoke", ms(report.invoke_ms))
    if report.warm_ms:
        table.add_row(f"warm p50 ({len(report.warm_ms)} runs)", ms(report.warm_p50_ms))
        table.add_row("warm p95", ms(report.warm_p95_ms))
    table.add_row("peak memory (RSS)", "-" if report.peak_rss_mb is None else f"{report.peak_rss_mb:,.0f} MB")
    if report.recommended_memory_mb:
        table.add_row("recommended memory", f"{report.recommended_memory_mb:,} MB")
    if report.recommended_timeout_s:
        table.add_row("recommended timeout", f"{report.recommended_timeout_s} s (cold start at that memory x2, + a url fetch, in {TIMEOUT_STEP_S} s steps)")
    out.append(table)
    if report.memory_advice:
        out.append(f"[dim]memory:[/] {plain(report.memory_advice)}")
    for note in report.notes:
        out.append(f"[dim]note:[/] {plain(note)}")
    if verbose and report.logs:
        out.append("[dim]logs:[/]")
        out.append(plain(report.logs.rstrip()))
    return out
