"""The comparison as a Rich table (the CLI prints it) and as a PNG (``--plot``, matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lamb.compare.report import VERIFIED, CompareReport, ModeResult
from lamb.errors import DependencyError
from lamb.markup import plain
from lamb.units import MiB
from lamb.verify.accuracy import ACCURACY_SLACK

PLOT_INSTALL = "pip install 'lamb[plot]'"


def _verdict(row: ModeResult) -> str:
    if row.status != VERIFIED:
        return f"[yellow]{plain(row.status)}[/]"
    colour = {"pass": "green", "pass with warning": "yellow", "not enough evidence": "yellow"}.get(row.verdict or "", "red")
    return f"[{colour}]{(row.verdict or '').upper()}[/]"


def _recommended(report: CompareReport, row: ModeResult) -> bool:
    return report.recommended is not None and row.key == (report.recommended_runtime_lib, report.recommended)


def _mark(report: CompareReport, row: ModeResult) -> str:
    return "[bold green]★[/]" if _recommended(report, row) else ""


def _by_library(report: CompareReport, rows: list[ModeResult]) -> list[tuple[str, list[ModeResult]]]:
    """``rows`` grouped by runtime library, each group titled by the library and the release it ran on."""
    groups = []
    for name in report.runtime_libs:
        mine = [r for r in rows if r.runtime_lib == name]
        if mine:
            version = next((r.runtime_lib_version for r in mine if r.runtime_lib_version), None)
            groups.append((f"{name} {version}" if version else name, mine))
    return groups


def _accuracy(row: ModeResult) -> str:
    if row.accuracy is None or row.accuracy_low is None or row.accuracy_high is None:
        return "-"
    return f"{row.accuracy:.1%}\n({row.accuracy_low * 100:.0f}-{row.accuracy_high:.0%})"


def _top1(row: ModeResult) -> str:
    if row.top1 is None:
        return "-"
    low = f"\n({row.top1_lower:.1%})" if row.top1_lower is not None else ""
    return f"{row.top1:.1%}{low}"


def render(report: CompareReport) -> list[Any]:
    """Rich renderables: a table per runtime library (recommendation marked), why, then the notes."""
    from rich.text import Text

    inputs = []
    if report.samples:
        inputs.append(f"{report.samples} random samples (seed {report.seed})")
    if report.images:
        inputs.append(f"{report.images} images")
    out: list[Any] = [Text.from_markup(
        f"[bold]{plain(report.source.name)}[/] for [bold]{report.target}[/]: every runtime library and mode checked against one run of the source model on "
        f"{' + '.join(inputs)}, preprocess {plain(report.preprocess)}"
    )]
    for title, rows in _by_library(report, report.rows):
        out.append(_mode_table(report, rows, title))
    if report.source_accuracy is not None:
        source = report.source_accuracy
        out.append(Text(
            f"accuracy: top-1 on {source.images} labelled images; the source model scores {source.interval()}, and a mode passes "
            f"while its interval reaches {ACCURACY_SLACK * 100:.0f} point below that, whatever its agreement"
        ))

    for title, rows in _by_library(report, [r for r in report.rows if r.costs]):
        out.append(_cost_table(report, rows, title))
    for row in report.rows:
        if row.reason:
            out.append(Text.from_markup(f"[yellow]{plain(row.label)}:[/] {plain(row.reason)}"))
        for failure in row.failures[:2]:
            out.append(Text.from_markup(f"[red]{plain(row.label)}:[/] {plain(failure)}"))
        for warning in row.warnings:
            out.append(Text.from_markup(f"[yellow]{plain(row.label)}:[/] {plain(warning)}"))
    if report.recommended:
        out.append(Text.from_markup(f"[bold green]★ recommended:[/] {plain(report.why)}"))
        best = report.recommended_row
        if best is not None and best.memory is not None:
            out.append(Text.from_markup(f"[dim]memory:[/] {plain(best.memory.reason)}"))
    else:
        out.append(Text.from_markup(f"[bold red]no recommendation:[/] {plain(report.why)}"))
    if any(p.below_floor for r in report.rows for p in r.costs):
        out.append(Text("† below the memory the peak RSS needs: the function would be killed there", style="dim"))
    if any(r.size is not None and not r.size.fits_direct_upload for r in report.rows):
        out.append(Text("zip MB in yellow: over Lambda's 50 MB direct upload (deploy through S3)", style="dim"))
    out.append(Text(report.estimate_note, style="dim"))
    for note in report.notes:
        out.append(Text.from_markup(f"[dim]note:[/] {plain(note)}"))
    return out


def _mode_table(report: CompareReport, rows: list[ModeResult], title: str) -> Any:
    """One runtime library's modes: verdict, error, agreement, size and time."""
    from rich import box
    from rich.table import Table

    cpus = sorted({r.speed.cpu.describe() for r in rows if r.speed is not None and r.speed.cpu is not None})
    caption = plain(f"ms measured on {'; '.join(cpus)}") if cpus else None
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left", padding=(0, 1), box=box.SIMPLE_HEAD,
                  collapse_padding=True, pad_edge=False)
    # Piped output is 80 columns: names and numbers never wrap (headers are two lines instead), the
    # verdict and the top-1 pair wrap at their spaces, and anything still too wide folds, never "…".
    for heading, justify, no_wrap in (
        ("", "left", True), ("mode", "left", True), ("verdict", "left", False), ("err/\nrange", "right", True),
        ("top-1\n(95% low)", "right", True), ("model\nMB", "right", True), ("zip\nMB", "right", True),
        ("init\nms", "right", True), ("warm\nms", "right", True),
    ):
        table.add_column(heading, justify=justify, overflow="fold", no_wrap=no_wrap)  # type: ignore[arg-type]
    accuracy = report.source_accuracy is not None
    if accuracy:
        table.add_column("accuracy\n(95%)", justify="right", overflow="fold", no_wrap=True)
    for row in rows:
        size = row.size
        zip_mb = "-" if size is None else (f"{size.zip / MiB:.1f}" if size.fits_direct_upload else f"[yellow]{size.zip / MiB:.1f}[/]")
        table.add_row(
            _mark(report, row), row.mode, _verdict(row),
            "-" if row.max_rel is None else f"{row.max_rel:.1e}",
            _top1(row),
            "-" if size is None else f"{size.model / MiB:.1f}",
            zip_mb,
            "-" if row.speed is None else f"{row.speed.init_ms:,.0f}",
            "-" if row.speed is None else f"{row.speed.warm_ms:,.1f}",
            *([_accuracy(row)] if accuracy else []),
        )
    return table


def _cost_table(report: CompareReport, rows: list[ModeResult], title: str) -> Any:
    """One runtime library's priced modes: $ per million requests at each --memory, and the advised setting."""
    from rich import box
    from rich.table import Table

    costs = Table(title=f"{title}: Lambda $ per million requests ({report.arch}, estimate)", title_justify="left", padding=(0, 1),
                  box=box.SIMPLE_HEAD)
    costs.add_column("", overflow="fold")
    costs.add_column("mode", overflow="fold")
    for m in report.memory_settings:
        costs.add_column(f"{m:,} MB", justify="right", overflow="fold")
    costs.add_column("advised", justify="right", overflow="fold")
    for row in rows:
        points = {p.memory_mb: p for p in row.costs}
        cells = [_mark(report, row), row.mode]
        for m in report.memory_settings:
            p = points[m]
            text = f"{p.cost_per_million:,.2f} ({p.duration_ms:,.0f} ms)"
            cells.append(f"[dim]{text}†[/]" if p.below_floor else text)
        assert row.memory is not None
        cells.append(f"{row.memory.recommended_mb:,} MB: {row.memory.cost_per_million:,.2f}")
        costs.add_row(*cells)
    return costs


def check_plot(path: Path | None) -> None:
    """Refuse ``--plot`` before any work when matplotlib is missing or the path is no PNG."""
    if path is None:
        return
    if Path(path).suffix.lower() != ".png":
        from lamb.errors import InputError

        raise InputError(f"--plot {path} does not end in .png", "name a PNG file, e.g. --plot compare.png")
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise DependencyError("--plot needs matplotlib, which is not installed", f"install the plot extra: {PLOT_INSTALL}")


def write_plot(report: CompareReport, path: Path) -> Path:
    """A PNG of each mode's error against its warm time, marker area by zip size. Atomic."""
    check_plot(path)
    import matplotlib

    matplotlib.use("Agg")  # no display: write the file only
    import matplotlib.pyplot as plt

    from lamb.files import publish
    from lamb.manifest import atomic_output

    path = Path(path)
    rows = [r for r in report.rows if r.speed is not None and r.max_rel is not None and r.size is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    try:
        biggest = max((r.size.zip for r in rows), default=1)  # type: ignore[union-attr]
        for r in rows:
            assert r.size is not None and r.speed is not None and r.max_rel is not None
            colour = "tab:green" if r.passed else "tab:red"
            ax.scatter([r.speed.warm_ms], [max(r.max_rel, 1e-9)], s=80 + 1200 * r.size.zip / biggest, c=colour, alpha=0.6,
                       edgecolors="black" if _recommended(report, r) else "none", linewidths=2)
            accuracy = f", {r.accuracy:.1%} accurate" if r.accuracy is not None else ""
            label = f"{r.label} ({r.size.zip / MiB:.0f} MB zip{accuracy})" + (" ★" if _recommended(report, r) else "")
            ax.annotate(label, (r.speed.warm_ms, max(r.max_rel, 1e-9)), textcoords="offset points", xytext=(10, 6))
        ax.set_yscale("log")
        ax.set_xlabel("warm request, ms (1 thread, through the shipped handler)")
        ax.set_ylabel("max error / output range")
        ax.set_title(f"{report.source.name} on {report.target}: error vs time (marker area: zip size)")
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        tmp = atomic_output(path)
        try:
            fig.savefig(tmp, format="png")
            tmp.chmod(0o644)
            publish(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    finally:
        plt.close(fig)
    return path


def render_on_lambda(report: Any) -> list[Any]:
    """``lamb time``: a plan's AWS CLI commands, else Lambda's own figures per artifact."""
    if report.commands:
        return [plain(f"# lamb time in {report.region}: the calls it makes"), *(plain(c) for commands in report.commands for c in commands)]
    from rich.table import Table

    table = Table(title=plain(f"timed on AWS Lambda ({report.region}): Lambda's REPORT figures, medians"), title_justify="left")
    for heading in ("artifact", "arch", "memory MB", "init ms", "cold ms", "warm ms", "max memory MB", "requests"):
        table.add_column(heading, justify="left" if heading in ("artifact", "arch") else "right", overflow="fold")
    ms = lambda v: "-" if v is None else f"{v:,.1f}"  # noqa: E731
    for t in report.timings:
        table.add_row(plain(t.artifact.name), t.arch, "-" if t.memory_mb is None else f"{t.memory_mb:,}", ms(t.init_ms), ms(t.cold_ms),
                      ms(t.warm_ms), "-" if t.max_memory_used_mb is None else f"{t.max_memory_used_mb:,}",
                      f"{len(t.cold)} cold, {len(t.warm)} warm")
    out: list[Any] = [table]
    for t in report.timings:
        cpus = "; ".join(t.cpus) or "not measured yet (`lamb probe --arch " + t.arch + "` reads it)"
        out.append(f"{t.artifact.name}: on Lambda's {t.arch} CPU, which lamb probe read as: {cpus}")
        if t.missing:
            out.append(f"{plain(t.artifact.name)}: {t.missing} answer(s) carried no REPORT line in their log tail")
        out += [f"[red]{plain(t.artifact.name)}:[/] {plain(e)}" for e in t.errors]
    out.append("kept the functions and their roles (--keep)" if report.kept else "deleted the temporary functions and their roles")
    return out
