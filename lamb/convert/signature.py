"""What goes into and comes out of the converted model: its inputs (fixed by ``--input-shape``), the
signature the converter reads back (``lamb.convert.engine``), and the labels checked against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lamb import manifest as mf
from lamb.convert.load import LoadedModel
from lamb.errors import ConversionError, InputError


@dataclass
class InputSpec:
    """A model input as the converter's input signature will declare it."""

    name: str
    shape: list[int | None]
    dtype: Any  # tf.DType


def signature_key(name: str) -> str:
    """``name`` with anything but [A-Za-z0-9_] replaced: ``serving_default_<name>:0`` must stay a
    valid tensor name. lamb verify pairs the converted model's keys with the Keras names through it."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(name).split(":")[0]).strip("_")


def clean_name(name: str, fallback: str) -> str:
    """The signature key for ``name``, or ``fallback`` where none is left that starts with a letter."""
    name = signature_key(name)
    if not name or not (name[0].isalpha()):
        name = fallback
    return name


def input_specs(loaded: LoadedModel) -> list[InputSpec]:
    import tensorflow as tf

    specs: list[InputSpec] = []
    if loaded.is_keras:
        for i, tensor in enumerate(loaded.model.inputs):
            shape = tensor.shape
            dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
            specs.append(InputSpec(clean_name(tensor.name, f"input_{i}"), dims, tf.as_dtype(tensor.dtype)))
    else:
        _, kwargs = loaded.signature.structured_input_signature
        for name in sorted(kwargs):
            spec = kwargs[name]
            specs.append(InputSpec(clean_name(name, name), spec.shape.as_list(), spec.dtype))
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        if spec.name in seen:
            spec.name = f"{spec.name}_{i}"
        seen.add(spec.name)
    return specs


def apply_input_shape(specs: list[InputSpec], input_shape: tuple[int, ...] | None) -> list[InputSpec]:
    """Fill open dimensions from ``--input-shape``; the batch dimension may stay open."""
    if input_shape is not None:
        if len(specs) != 1:
            raise InputError(
                f"--input-shape applies to single-input models; this one has {len(specs)} inputs",
                "convert a single-input model, or give the model fixed input shapes before saving",
            )
        spec = specs[0]
        sizes = [int(d) for d in input_shape]
        if any(d <= 0 for d in sizes):
            raise InputError(f"--input-shape {mf.format_shape(sizes)} has a non-positive dimension", "give positive sizes, e.g. 224,224,3")
        given: list[int | None] = list(sizes)
        if len(given) == len(spec.shape) - 1:
            given = [spec.shape[0], *given]  # without the batch dimension, as Keras' input_shape
        if len(given) != len(spec.shape):
            raise InputError(
                f"--input-shape {mf.format_shape(input_shape)} has {len(input_shape)} dimensions; the model's input "
                f"{spec.name!r} is {mf.format_shape(spec.shape)}",
                f"give {len(spec.shape) - 1} sizes (without the batch dimension)",
            )
        for i, (have, want) in enumerate(zip(spec.shape, given)):
            if have is not None and want is not None and have != want:
                raise InputError(
                    f"--input-shape {mf.format_shape(input_shape)} contradicts the model's input {spec.name!r} {mf.format_shape(spec.shape)} "
                    f"at dimension {i}",
                    "only open (None) dimensions can be set",
                )
        spec.shape = given
    for spec in specs:
        if any(d is None for d in spec.shape[1:]):
            raise ConversionError(
                f"the model's input {spec.name!r} has open dimensions {mf.format_shape(spec.shape)}; the converter needs them fixed",
                "pass --input-shape with the size the model should take, e.g. --input-shape 224,224,3",
            )
    return specs


def check_labels(labels: list[str], outputs: list[mf.TensorSpec]) -> None:
    classes = outputs[0].shape[-1] if outputs and outputs[0].shape else None
    if len(outputs) != 1 or classes is None or classes < 1:
        raise InputError(
            f"labels need one output of shape (batch, classes); the model has {len(outputs)} output(s)",
            "drop --labels for this model",
        )
    if classes == 1 or len(outputs[0].shape) == 1:  # one value: a binary head (lambkit.heads), answered as two classes
        if len(labels) != 2:
            raise InputError(
                f"{len(labels)} label(s) given for the model's one binary output {outputs[0].name!r}",
                "give two labels, the negative class first: --labels no-hair,hair",
            )
        return
    if len(labels) != classes:
        raise InputError(
            f"{len(labels)} labels given but the model's output {outputs[0].name!r} has {classes} classes",
            f"give exactly {classes} labels, in the order of the model's output units",
        )


def check_labels_against_keras(labels: list[str], model: Any) -> None:
    """The same check as ``_check_labels``, before the (slow) conversion rather than after."""
    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) != 1:
        return  # _check_labels on the converted signature gives the precise message
    shape = outputs[0].shape
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    if dims and dims[-1] is not None:
        names = list(getattr(model, "output_names", None) or ["output_0"])  # Keras 3 Sequential: none
        shape = [-1 if d is None else int(d) for d in dims]
        check_labels(labels, [mf.TensorSpec(name=clean_name(names[0], "output_0"), shape=shape, dtype="float32")])
