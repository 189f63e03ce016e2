"""Rich rendering of a PackageReport for the CLI (the library returns data; this draws it)."""

from __future__ import annotations

from rich.table import Table

from lamb.handler.lambkit.cpu import Cpu
from lamb.markup import plain
from lamb.package.report import PackageReport
from lamb.units import mb


def render(report: PackageReport, verbose: bool = False) -> list[Table | str]:
    out: list[Table | str] = []
    summary = Table(title="lamb package", show_header=False, title_justify="left")
    summary.add_column(style="bold", overflow="fold")
    summary.add_column(overflow="fold")
    summary.add_row("artifact", f"{plain(report.artifact)} ({report.format}, {mb(report.bytes)} MB)")
    if report.sha256:
        summary.add_row("sha256", report.sha256)
    summary.add_row("target", plain(report.target_description))
    summary.add_row("runtime lib", plain(f"{report.runtime_lib.requirement}: {report.runtime_lib.reason}"))
    pins = ", ".join(f"{n} {v}" for n, v in sorted(report.installed.items()))
    summary.add_row("wheels", plain(f"{pins} (from the {report.wheel_source})"))
    summary.add_row("verification", plain(report.verification))
    entry = "lamb's lambda_function.py" if report.handler == "lambda_function.py" else f"{report.handler}, shipped as lambda_function.py"
    summary.add_row("handler", plain(f"{entry}; lambkit beside it offers {', '.join(report.handler_offers)} (--handler ships your own)"))
    summary.add_row("bytecode", plain(report.bytecode.note))
    if report.optimized:
        summary.add_row("optimized", plain(report.optimized))
    if report.audit is not None:
        a = report.audit
        summary.add_row("ELF audit", f"[green]{plain(a.summary())}[/]" if a.passed else f"[red]{plain(a.summary())}[/]")
    s = report.smoke
    if s.ran:
        status = "[green]passed[/]" if s.passed else f"[red]failed[/]: {plain(s.error)}"
        cpu = f" on {plain(Cpu.from_dict(s.cpu).describe())}" if s.cpu else ""
        timing = f"cold start {s.init_ms:.0f} ms, inference {s.invoke_ms:.1f} ms{cpu}, peak {s.peak_rss_mb:.0f} MB" if s.passed else ""
        summary.add_row("smoke run", f"{status}; {timing}; answered {plain(s.top)}" if s.passed else status)
        summary.add_row("", f"[yellow]{plain(s.label)}[/]" if s.stand_in else plain(s.label))
    else:
        summary.add_row("smoke run", plain(s.label))
    summary.add_row("time", f"{report.seconds:.1f} s")
    out.append(summary)

    b = report.budget
    sizes = Table(title="size budget (MB)", title_justify="left")
    sizes.add_column("component", overflow="fold")
    sizes.add_column("files", justify="right", overflow="fold")
    sizes.add_column("unzipped", justify="right", overflow="fold")
    if b.total_zipped is not None:
        sizes.add_column("zipped", justify="right", overflow="fold")
    for c in b.components:
        row = [plain(c.name), str(c.files), mb(c.unzipped)]
        if b.total_zipped is not None:
            row.append(mb(c.zipped))
        sizes.add_row(*row)
    total = ["total", str(sum(c.files for c in b.components)), mb(b.total_unzipped)]
    if b.total_zipped is not None:
        total.append(mb(b.total_zipped))
    sizes.add_row(*total, style="bold")
    out.append(sizes)

    limits = Table(title="Lambda limits", title_justify="left")
    limits.add_column("limit", overflow="fold")
    limits.add_column("actual MB", justify="right", overflow="fold")
    limits.add_column("limit MB", justify="right", overflow="fold")
    limits.add_column("", overflow="fold")
    for check in b.checks:
        verdict = "[green]ok[/]" if check.ok else ("[yellow]warn[/]" if check.severity == "warn" else "[red]FAIL[/]")
        limits.add_row(plain(check.name), mb(check.actual), mb(check.limit), verdict)
    out.append(limits)

    if report.slimming:
        slim = Table(title=f"slimming (saved {mb(report.slimmed_bytes)} MB unzipped)", title_justify="left")
        slim.add_column("rule", overflow="fold")
        slim.add_column("files", justify="right", overflow="fold")
        slim.add_column("saved MB", justify="right", overflow="fold")
        if verbose:
            slim.add_column("why", overflow="fold")
        for r in report.slimming:
            row = [plain(r.rule), str(r.files), mb(r.bytes_saved)]
            if verbose:
                row.append(plain(r.why))
            slim.add_row(*row)
        out.append(slim)
    for w in report.warnings:
        out.append(f"[yellow]warning:[/] {plain(w)}")
    return out
