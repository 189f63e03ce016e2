"""What ``lamb serve`` prints: the endpoint as soon as it listens, that the function is ready once
the workers are warm, and the session when it stops."""

from __future__ import annotations

from typing import Any

from lamb.markup import plain
from lamb.serve.report import ServeReport


def render_listening(server: Any) -> list[str]:
    """Rich markup lines for a ``LocalServer`` that listens and is loading its function."""
    return [
        f"listening on [bold]{server.page_url}[/] (open it in a browser to try the function); "
        f"loading {plain(server.report.artifact.name) if server.report.artifact else 'the function'}: requests wait until it is ready",
    ]


def render_ready(server: Any) -> list[str]:
    """Rich markup lines for a ``LocalServer`` whose workers are warm: where to POST, and any init failure."""
    inits = ", ".join(f"{ms:,.0f}" for ms in server.report.init_ms)
    out = [f"ready: serving [bold]{plain(server.report.artifact)}[/] with {server.n_workers} worker(s) (cold starts: {inits} ms)"]
    if server.report.runtime_client:
        out.append(f"run by {plain(server.report.runtime_client)}")
    for failure in server.init_failures:
        out.append(f"[bold red]init failed:[/] {plain(failure.error.get('errorType'))}: {plain(failure.error.get('errorMessage'))}")
    for note in server.report.notes:
        out.append(f"[dim]note:[/] {plain(note)}")
    out.append(f"POST JSON events to [bold]{server.url}[/]")
    out.append(f"""[dim]e.g. curl -s -X POST {server.url} -d '{{"url": "https://.../image.jpg"}}'   Ctrl-C to stop[/]""")
    return out


def render(report: ServeReport) -> list[str]:
    """The session's summary line."""
    p50 = "-" if report.p50_ms is None else f"{report.p50_ms:,.1f} ms"
    p95 = "-" if report.p95_ms is None else f"{report.p95_ms:,.1f} ms"
    return [
        f"stopped after {report.seconds:,.0f} s: {report.requests} requests ({report.unhandled_errors} unhandled errors, "
        f"{report.rejected} rejected), latency p50 {p50}, p95 {p95}; no processes left"
    ] + ([f"advice from the requests served: memory {report.advice.memory_mb:,} MB, timeout {report.advice.timeout_s} s "
          f"(as lamb invoke, lamb deploy and the image README state it): {plain(report.advice.memory.reason)}"]
         if report.advice is not None and report.advice.timeout_s is not None else [])
