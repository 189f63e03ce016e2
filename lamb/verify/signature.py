"""Lining up the two models' signatures before anything runs, and telling the converted model's quantization.

The source side is read from the loaded source (``lamb.source``); the converted side from what the runner reports
(the shipped backend, in the verify runner: its keys, shapes and dtypes). Inputs and outputs are
paired by the backend's rule; counts and shapes must agree, or the two files are not one model converted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamb import quantization
from lamb.errors import InputError
from lamb.manifest import format_shape
from lamb.quantization import Mode
from lamb.verify._runner_protocol import Ready, TensorInfo


@dataclass
class PairedSignature:
    """Each source input and output beside its converted counterpart, in the source model's order."""

    input_keys: list[str]  # the converted model's signature key of each source input
    input_shapes: list[list[int]]  # per sample, from the converted model: concrete where the source may leave dimensions open
    output_names: list[str]  # the source outputs' names
    output_keys: list[str]  # the converted model's signature key of each source output
    output_shapes: list[list[int | None]]  # per sample, as the source declares them


def pair_signatures(loaded: Any, info: Ready, source_path: Path, model_path: Path) -> PairedSignature:
    """Pair the models' inputs and outputs; InputError when their counts or shapes differ."""
    k_in_names, k_in_shapes, k_out_names, k_out_shapes = source_signature(loaded)
    models = (source_path.name, model_path.name)
    _check_count("input", k_in_names, info["inputs"], models)
    _check_count("output", k_out_names, info["outputs"], models)
    ins = _match("input", k_in_names, k_in_shapes, info["inputs"], models)
    outs = _match("output", k_out_names, k_out_shapes, info["outputs"], models)
    return PairedSignature(
        input_keys=[t["key"] for t in ins],
        input_shapes=[t["shape"][1:] for t in ins],
        output_names=k_out_names,
        output_keys=[t["key"] for t in outs],
        output_shapes=k_out_shapes,
    )


def _check_count(what: str, names: list[str], specs: list[TensorInfo], models: tuple[str, str]) -> None:
    if len(names) != len(specs):
        raise InputError(
            f"the models' signatures differ: {models[0]} has {len(names)} {what}s, {models[1]} has {len(specs)}",
            "verify a converted model against the source model it was converted from",
        )


def _match(
    what: str, names: list[str], shapes: list[list[int | None]], specs: list[TensorInfo], models: tuple[str, str]
) -> list[TensorInfo]:
    """The converted model's spec of each source input (``what="input"``) or output, checked for shape."""
    source_name, model_name = models
    paired = [specs[j] for j in _pair(names, [t["key"] for t in specs], what)]
    for name, shape, spec in zip(names, shapes, paired):
        tshape = spec["shape"][1:]
        if not _shapes_agree(shape, tshape):
            raise InputError(
                f"the models' {what}s differ: {source_name} {what} {name!r} is {format_shape(shape)}, "
                f"{model_name} {what} {spec['key']!r} is {format_shape(tshape)}",
                "verify a converted model against the source model it was converted from",
            )
    return paired


def check_labels(labels: Sequence[str] | None, paired: PairedSignature) -> None:
    """One label per class of a single classifier output, when labels are given."""
    if not labels:
        return
    shapes = paired.output_shapes
    classifier = [s for s in shapes if len(s) == 1]
    # One value is a binary head (lambkit.heads): two classes, negative and positive.
    classes = [2 if s[0] == 1 else s[0] for s in classifier]
    if len(shapes) == 1 and classes and classes[0] not in (None, len(labels)):
        raise InputError(
            f"{len(labels)} labels given but the model has {classes[0]} classes",
            "pass one label per class, in class-index order",
        )


def _shapes_agree(source_shape: Sequence[int | None], model_shape: Sequence[int]) -> bool:
    return len(source_shape) == len(model_shape) and all(k is None or k == t for k, t in zip(source_shape, model_shape))


def source_signature(loaded: Any) -> tuple[list[str], list[list[int | None]], list[str], list[list[int | None]]]:
    """Names and per-sample shapes (None for open dimensions) of the source model's inputs/outputs."""
    inputs, outputs = loaded.inputs(), loaded.outputs()
    return (
        [s.name for s in inputs], [list(s.shape[1:]) for s in inputs],
        [s.name for s in outputs], [[None if d < 0 else d for d in s.shape[1:]] for s in outputs],
    )


def _pair(keras_names: list[str], model_keys: list[str], what: str) -> list[int]:
    """For each source input/output, the index of its converted counterpart: the shipped backend's
    rule (``lambkit.backends.pair``), the one the deployed handler pairs its outputs by."""
    from lamb.handler.lambkit.backends import pair

    order = pair(keras_names, model_keys, "output_" if what == "output" else "args_")
    assert order is not None  # the counts were checked first
    return order


def infer_quantization(info: Ready, modes: tuple[Mode, ...]) -> str:
    """The quantization mode of a converted model from what its tensors' types say (the backend's
    description), matched against the format's rows."""
    return quantization.infer(modes, info.get("tensor_dtypes", {}))
