"""Which head a converted model has (``lamb.handler.lambkit.heads``): given, read off the graph, or assumed.

The graph shows it when the output comes out of a final activation: a Sigmoid on one value is a
binary probability, a Softmax a class distribution. Without one, one value is taken as the positive
class's logit (what a PyTorch model trained with ``BCEWithLogitsLoss`` exports) and several as
logits, and the note says it was assumed and which ``--head`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from lamb import manifest as mf
from lamb.errors import InputError
from lamb.manifest import HEADS

SOFTMAX, LOGITS, BINARY_LOGIT, BINARY_PROBABILITY = HEADS
BINARY = (BINARY_LOGIT, BINARY_PROBABILITY)


def check_head(head: str) -> str:
    if head not in HEADS:
        raise InputError(f"unknown --head {head!r}", f"use one of: {', '.join(HEADS)}")
    return head


def decide_head(outputs: Sequence[mf.TensorSpec], given: str | None, activation: str | None) -> tuple[str | None, str | None]:
    """(head, how it was decided) for a model with these outputs; (None, None) for several outputs."""
    if len(outputs) != 1:
        if given is not None:
            raise InputError(f"--head describes a model's one output; this one has {len(outputs)}", "drop --head")
        return None, None
    shape = outputs[0].shape
    width = shape[-1] if len(shape) > 1 else 1
    binary = width == 1
    if given is not None:
        if (given in BINARY) != binary:
            wants = "one value per image" if given in BINARY else "one score per class"
            raise InputError(f"--head {given} needs {wants}; the output {outputs[0].name!r} is {mf.format_shape(shape)}",
                             f"use --head {' or '.join(BINARY if binary else (SOFTMAX, LOGITS))}")
        return given, "given"
    if binary:
        if activation == "sigmoid":
            return BINARY_PROBABILITY, "inferred from the final sigmoid"
        return BINARY_LOGIT, "assumed: no final sigmoid, so the one value is the positive class's logit; pass --head binary-probability if it is a probability"
    if activation == "softmax":
        return SOFTMAX, "inferred from the final softmax"
    return LOGITS, "assumed: no final softmax, so the scores are logits (they rank the classes the same); pass --head softmax if they are probabilities"
