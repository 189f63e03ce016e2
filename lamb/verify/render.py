"""Rendering a ``VerifyReport`` for the terminal (the CLI prints these)."""

from __future__ import annotations

from typing import Any

from lamb.verify.report import VerifyReport

_METRIC_TITLES = {
    "finite": "NaN/inf values",
    "max_abs": "max abs error",
    "max_rel": "max error / range",
    "mean_abs": "mean abs error",
    "cosine": "cosine similarity",
    "top1": "top-1 agreement",
    "top1_lower": "top-1, 95 % lower bound",
}
_VERDICTS = {
    "pass": "[bold green]PASS[/]",
    "pass with warning": "[bold yellow]PASS with warning[/]",
    "not enough evidence": "[bold yellow]NOT ENOUGH EVIDENCE[/]",
    "fail": "[bold red]FAIL[/]",
}


def render_report(report: VerifyReport) -> list[Any]:
    """Rich renderables: a one-line summary and a PASS/FAIL table, one row per metric per output."""
    from rich.table import Table
    from rich.text import Text

    inputs = []
    if report.samples:
        inputs.append(f"{report.samples} random sample{'s' if report.samples != 1 else ''} (seed {report.seed})")
    if report.images or report.skipped_images:
        skipped = f", {report.skipped_images} skipped" if report.skipped_images else ""
        inputs.append(f"{report.images} image{'s' if report.images != 1 else ''}{skipped}")
    verdict = _VERDICTS.get(report.verdict) or ("[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]")
    head = (
        f"{verdict} {report.tflite_path.name} vs {report.keras_path.name} on "
        f"{report.runtime_lib} {report.runtime_version}: {' + '.join(inputs) or 'no inputs'}, "
        f"preprocess {report.preprocess}, {report.quantization} tolerances ({report.quantization_source})"
    )
    out: list[Any] = [Text.from_markup(head)]
    if report.error:
        out.append(Text.from_markup(f"[red]{report.error}[/]"))
        return out
    table = Table(title_justify="left", padding=(0, 1))
    for col, justify in (("output", "left"), ("metric", "left"), ("value", "right"), ("limit", "right"), ("result", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    last = None
    for c in report.checks:
        title = _METRIC_TITLES.get(c.metric) or (f"top-{c.metric[3:]} overlap" if c.metric.startswith("top") else c.metric)
        if c.metric in ("top1",) or c.metric.startswith("top"):
            value = f"{c.value:.1%}"
            limit = f"≥ {c.limit:.1%}" if c.limit is not None else ""
        elif c.metric == "cosine":
            value = f"{c.value:.6f}"
            limit = f"≥ {c.limit:g}" if c.limit is not None else ""
        elif c.metric == "finite":
            value = f"{int(c.value)}"
            limit = "0"
        else:
            value = f"{c.value:.3g}"
            limit = f"≤ {c.limit:.3g}" if c.limit is not None else ""
        result = "[green]PASS[/]" if c.passed else ("[red]FAIL[/]" if c.passed is False else "[dim]info[/]")
        if c.metric == "top1_lower" and c.limit is not None:
            result = "[green]ok[/]" if c.value >= c.limit else "[yellow]warn[/]"
        table.add_row(c.output if c.output != last else "", title, value, limit, result)
        last = c.output
    out.append(table)
    for warning in report.warnings:
        out.append(Text(f"warning: {warning}", style="yellow"))
    if report.verdict == "not enough evidence":
        for failure in report.failures:
            out.append(Text(failure, style="yellow"))
    for line in report.skipped[:5]:
        out.append(Text(f"skipped {line}", style="yellow"))
    if len(report.skipped) > 5:
        out.append(Text(f"... and {len(report.skipped) - 5} more skipped files", style="yellow"))
    return out
