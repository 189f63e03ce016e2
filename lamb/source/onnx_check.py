"""Whether a given ONNX model is one lamb can ship, judged from its graph before anything is written.

``lamb convert model.onnx`` takes the model as it is (``lamb.source.onnx``), so what ONNX's
checker lets through but no Lambda function could run is refused here, in one sentence each:

- an operator outside ONNX's own domains ("" and ``ai.onnx.ml``, which the checker knows) that
  ONNX Runtime does not have either (its contrib ops, ``com.microsoft``, it has): the function
  would fail at cold start;
- no outputs, or a scalar output: the handler answers with one score per class;
- an input with a dimension of 0 (nothing fits it), or one larger than the handler could ever
  feed: its tensor may take at most the handler's image share (``IMAGE_MEMORY_SHARE``) of Lambda's
  largest memory setting, 2.5 GiB, and an image input at most the pixels that share holds at the
  handler's ``IMAGE_BYTES_PER_PIXEL``, 335.5 megapixels (20000x20000 is 400);
- external data whose recorded offset and length lie past the end of its file (a 1 TB length):
  reading it would fail, or exhaust the memory, before any weights loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lamb.cost import LAMBDA_MAX_MEMORY_MB
from lamb.errors import ConversionError, ModelLoadError
from lamb.handler.lambkit.decode import IMAGE_BYTES_PER_PIXEL, IMAGE_MEMORY_SHARE

STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
# The most bytes an input tensor may take: the handler's image share of Lambda's largest memory;
# and the most pixels an image input may have: what that share holds at the handler's bytes a pixel.
MAX_INPUT_BYTES = int(LAMBDA_MAX_MEMORY_MB * 2**20 * IMAGE_MEMORY_SHARE)
MAX_INPUT_PIXELS = MAX_INPUT_BYTES // IMAGE_BYTES_PER_PIXEL
_EXPORT_AGAIN = "export the model again (torch.onnx.export with standard operators, its real input size and its outputs)"


def check_shippable(model: Any, name: str, lib: str) -> None:
    """ConversionError naming the first thing in ``model`` (an ``onnx.ModelProto`` read from the
    file ``name``) that the runtime library ``lib`` could not run in a Lambda function."""
    _check_operators(model, name, lib)
    _check_outputs(model, name)
    _check_inputs(model, name)


def _nodes(graph: Any) -> Iterator[Any]:
    """Every node of ``graph``, with those of its subgraphs (If, Loop, Scan bodies)."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _nodes(attribute.g)
            for subgraph in attribute.graphs:
                yield from _nodes(subgraph)


def _check_operators(model: Any, name: str, lib: str) -> None:
    from onnxruntime.capi.onnxruntime_pybind11_state import get_all_operator_schema

    known = {(s.domain, s.name) for s in get_all_operator_schema()}
    known |= {(f.domain, f.name) for f in model.functions}  # the model's own functions, made of operators
    nodes = [*_nodes(model.graph), *(n for f in model.functions for n in f.node)]
    unknown = sorted({f"{n.domain}:{n.op_type}" for n in nodes
                      if n.domain not in STANDARD_DOMAINS and (n.domain, n.op_type) not in known})
    if unknown:
        more = f" (and {len(unknown) - 3} more)" if len(unknown) > 3 else ""
        raise ConversionError(
            f"{name} uses {', '.join(unknown[:3])}{more}: an operator outside ONNX's own domains that {lib} does not "
            "have, so the function would fail at cold start", _EXPORT_AGAIN,
        )


def _check_outputs(model: Any, name: str) -> None:
    if not model.graph.output:
        raise ConversionError(f"{name} has no outputs: the function would have nothing to answer", _EXPORT_AGAIN)
    for value in model.graph.output:
        tensor = value.type.tensor_type
        if value.type.HasField("tensor_type") and tensor.HasField("shape") and not tensor.shape.dim:
            raise ConversionError(
                f"{name}'s output {value.name} is a scalar: the handler answers one score per class, from an "
                "output of shape (batch, classes)", _EXPORT_AGAIN,
            )


def _check_inputs(model: Any, name: str) -> None:
    from onnx.helper import tensor_dtype_to_np_dtype

    constants = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in constants or not value.type.HasField("tensor_type"):
            continue
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        shown = "(" + ", ".join("None" if d is None else str(d) for d in dims) + ")"
        if any(d is not None and d <= 0 for d in dims):
            raise ConversionError(f"{name}'s input {value.name} {shown} has a dimension of 0 or less: no image fits it",
                                  _EXPORT_AGAIN)
        if len(dims) == 4:  # an image: (N, H, W, C), or (N, C, H, W) with 1 or 3 channels first
            h, w = (dims[2], dims[3]) if dims[1] in (1, 3) and dims[3] not in (1, 3) else (dims[1], dims[2])
            if h and w and h * w > MAX_INPUT_PIXELS:
                raise ConversionError(
                    f"{name}'s input {value.name} {shown} takes {h}x{w} images ({h * w / 1e6:,.1f} megapixels), more than "
                    f"the {MAX_INPUT_PIXELS / 1e6:.1f} megapixels the handler may hold at Lambda's largest memory "
                    f"({LAMBDA_MAX_MEMORY_MB} MB): no function could feed it", _EXPORT_AGAIN,
                )
        try:
            itemsize = tensor_dtype_to_np_dtype(tensor.elem_type).itemsize
        except (KeyError, ValueError, TypeError):
            itemsize = 4
        size = itemsize
        for d in dims:
            size *= d or 1  # an open dimension: at least one
        if size > MAX_INPUT_BYTES:
            raise ConversionError(
                f"{name}'s input {value.name} {shown} takes {size / 2**30:,.1f} GiB, more than the "
                f"{MAX_INPUT_BYTES / 2**30:.1f} GiB the handler may give an input at Lambda's largest memory "
                f"({LAMBDA_MAX_MEMORY_MB} MB): no function could feed it", _EXPORT_AGAIN,
            )


def check_external(tensor: Any, location: str, folder: Path, name: str) -> None:
    """ModelLoadError unless the bytes ``tensor`` records (``offset``, ``length``) lie inside its
    external data file ``location`` (when that file is there: a missing one is refused by name)."""
    entries = {e.key: e.value for e in tensor.external_data}
    path = folder / location
    if not path.is_file():
        return
    try:
        offset, length = int(entries.get("offset") or 0), int(entries.get("length") or 0)
    except ValueError:
        raise ModelLoadError(f"{name} records its weight {tensor.name} at a position that is not a number", _EXPORT_AGAIN) from None
    size = path.stat().st_size
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelLoadError(
            f"{name} records its weight {tensor.name} as {length:,} bytes at offset {offset:,} of {location}, "
            f"which holds {size:,} bytes", "export the model again: the .onnx and its external data do not belong together",
        )
