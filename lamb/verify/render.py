"""Rendering a ``VerifyReport`` for the terminal (the CLI prints these)."""

from __future__ import annotations

from typing import Any

from lamb.markup import plain
from lamb.verify.accuracy import AccuracyReport
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
        f"{verdict} {plain(report.model_path.name)} vs {plain(report.source_path.name)} on "
        f"{report.runtime_lib} {report.runtime_lib_version}: {' + '.join(inputs) or 'no inputs'}, "
        f"preprocess {plain(report.preprocess)}, {plain(report.quantization)} tolerances ({plain(report.quantization_source)})"
    )
    out: list[Any] = [Text.from_markup(head)]
    if report.reference_label:
        out.append(Text(f"reference: {report.reference_label}"))
    if report.error:
        out.append(Text(report.error, style="red"))
        return out
    table = Table(title_justify="left", padding=(0, 1))
    for col, justify in (("output", "left"), ("metric", "left"), ("value", "right"), ("limit", "right"), ("result", "left")):
        table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
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
        table.add_row(plain(c.output) if c.output != last else "", plain(title), value, limit, result)
        last = c.output
    out.append(table)
    if report.accuracy is not None:
        out.extend(render_accuracy(report.accuracy))
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


def render_accuracy(acc: AccuracyReport) -> list[Any]:
    """The labelled images' accuracy: per mode (recorded first, the source model beside it), per class, confusion."""
    from rich.table import Table
    from rich.text import Text

    skipped = f", {len(acc.skipped)} undecodable skipped" if acc.skipped else ""
    out: list[Any] = [Text(f"accuracy on {acc.images} labelled images in {acc.folder}{skipped}")]
    modes = Table(padding=(0, 1))
    for col, justify in (("model", "left"), ("preprocess", "left"), ("top-1", "right"), ("95 % bound", "right"),
                         (f"top-{acc.converted.k}" if acc.converted.k > 1 else "top-k", "right"), ("", "left")):
        modes.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    rows = [acc.converted, *([acc.source] if acc.source else []), *acc.modes]
    for m in rows:
        note = "recorded" if m is acc.converted else ("[green]clearly better[/]" if m.preprocess == acc.better else "")
        topk = f"{m.topk:.1%}" if m.topk is not None else "-"
        modes.add_row(plain(m.model), plain(m.preprocess), f"{m.top1:.1%}", f"{m.top1_low:.1%}-{m.top1_high:.1%}", topk, note)
    out.append(modes)
    per_class = Table(padding=(0, 1))
    names = [c.label for c in acc.converted.per_class]
    for col in ("class", "images", "top-1", "95 % bound", *names):
        per_class.add_column(plain(col), justify="left" if col == "class" else "right", overflow="fold")
    for c in acc.converted.per_class:
        row = acc.converted.confusion.get(c.label, {})
        counts = [str(row.get(name, 0) or "") for name in names]
        per_class.add_row(plain(c.label), str(c.images), f"{c.top1:.0%}", f"{c.top1_low:.0%}-{c.top1_high:.0%}", *counts)
    out.append(Text(f"per class, preprocess {acc.preprocess} (columns after the bound: predicted class counts)", style="dim"))
    out.append(per_class)
    return out
