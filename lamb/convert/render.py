"""The Rich summary ``lamb convert`` prints: what went in, what came out, and what lamb decided."""

from __future__ import annotations

from typing import Any

from lamb import runtime_lib
from lamb.convert.report import ConversionResult
from lamb.manifest import TensorSpec
from lamb.markup import plain
from lamb.units import human_bytes


def _tensor(spec: TensorSpec) -> str:
    shape = "(" + ", ".join("None" if d < 0 else str(d) for d in spec.shape) + ")"
    quant = f" scale={spec.scale:.4g} zero_point={spec.zero_point}" if spec.scale is not None else ""
    return f"{plain(spec.name)} {shape} {spec.dtype}{quant}"


def summary_table(result: ConversionResult):
    from rich.table import Table

    m = result.manifest
    table = Table(title="lamb convert", show_header=False, title_justify="left", box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("source", f"{plain(m.source)} ({m.source_format}, {human_bytes(result.source_bytes)})")
    table.add_row("loader", plain(m.loader))
    table.add_row("parameters", f"{m.parameters:,}" if m.parameters is not None else "unknown")
    for spec in m.inputs:
        table.add_row("input", _tensor(spec))
    for spec in m.outputs:
        table.add_row("output", _tensor(spec))
    if m.head:
        table.add_row("head", f"{plain(m.head)} [dim]({plain(m.head_note)})[/]")
    quant = m.quantization
    if m.calibration:
        skipped = m.calibration.get("skipped", 0)
        quant += f" (calibrated on {m.calibration['images']} images"
        quant += f", {skipped} undecodable skipped" if skipped else ""
        quant += f", {m.calibration['io_dtype']} input/output)"
    table.add_row("quantization", plain(quant))
    size = f"{human_bytes(result.source_bytes)} -> {human_bytes(result.model_bytes)} ({result.size_ratio:.0%} of the source"
    mode = _mode(m)
    if mode is not None and mode.quantized and m.parameters:
        # The float32 weights are what quantization shrinks; the source file also holds the graph.
        size += f"; float32 weights alone are {human_bytes(4 * m.parameters)}"
    table.add_row("size", size + ")")
    table.add_row("preprocess", f"{plain(m.preprocess)} [dim]({plain(m.preprocess_note)})[/]")
    if m.labels:
        table.add_row("labels", plain(", ".join(m.labels)))
    if m.requires_flex:
        table.add_row("flex ops", f"[yellow]{plain(', '.join(m.flex_ops))}[/] (needs the Flex delegate)")
    table.add_row("model", plain(result.model_path))
    table.add_row("manifest", plain(result.manifest_path))
    table.add_row("time", f"{result.seconds:.1f} s")
    return table


def _mode(m: Any) -> Any:
    """The manifest's quantization mode row, or None for a mode its format does not know."""
    return runtime_lib.find_mode(m.quantization, m.model.format)
