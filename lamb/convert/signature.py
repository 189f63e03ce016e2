"""The labels checked against the model's output: before the conversion (the source's declared
output) and after it (the signature the converter reads back, ``lamb.convert.engine``)."""

from __future__ import annotations

from lamb import manifest as mf
from lamb.errors import InputError


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


def check_labels_early(labels: list[str], outputs: list[mf.TensorSpec]) -> None:
    """``check_labels`` on what the source declares, before the (slow) conversion, where it says
    enough: one output with its classes fixed. The converted signature is checked after either way."""
    if len(outputs) == 1 and outputs[0].shape and outputs[0].shape[-1] > 0:
        check_labels(labels, outputs)
