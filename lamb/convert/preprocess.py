"""The pixel preprocessing modes and class labels as the user gives them: names checked, files read.

What a model itself shows of its preprocessing is its source's evidence (``lamb.source``).
"""

from __future__ import annotations

import collections
import re
from pathlib import Path

from lamb.errors import InputError
from lamb.manifest import PREPROCESS_MODES
from lamb.records import read_at_most
from lamb.units import MiB, human_bytes

# Keras's own names for the modes (``preprocess_input(mode=...)``): "tf" is what lamb calls xception.
PREPROCESS_ALIASES = {"tf": "xception"}


def check_preprocess(mode: str) -> str:
    """The mode's name as lamb and the handler spell it: ``Xception`` and Keras's ``tf`` are xception."""
    name = str(mode).strip().lower()
    name = PREPROCESS_ALIASES.get(name, name)
    if name not in PREPROCESS_MODES:
        raise InputError(
            f"unknown preprocessing mode {mode!r}",
            f"use one of: {', '.join(PREPROCESS_MODES)} (tf, Keras's name, is xception)",
        )
    return name


# ImageNet-21k, the largest label set in common use, has 21,843 classes: a bound well past it,
# checked before a labels file is read whole or its labels compared.
MAX_LABELS = 100_000
MAX_LABELS_BYTES = 4 * MiB


def read_labels(labels: list[str] | None = None, labels_file: Path | None = None) -> list[str] | None:
    """Labels from a list (``--labels a,b,c``) or a file with one label per line."""
    if labels is not None and labels_file is not None:
        raise InputError("both --labels and --labels-file were given", "pass the class labels one way only")
    if labels_file is not None:
        path = Path(labels_file)
        if not path.is_file():
            raise InputError(f"no labels file at {path}", "pass a text file with one class label per line")
        try:
            data = read_at_most(path, MAX_LABELS_BYTES)
            if len(data) > MAX_LABELS_BYTES:
                raise InputError(f"the labels file {path} is larger than {human_bytes(MAX_LABELS_BYTES)}",
                                 f"one label per class and line; lamb takes at most {MAX_LABELS:,} labels")
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not a readable UTF-8 text file ({exc.__class__.__name__})", "save it as UTF-8 text, one label per line") from None
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if labels is None:
        return None
    if len(labels) > MAX_LABELS:
        raise InputError(f"{len(labels):,} labels given; lamb takes at most {MAX_LABELS:,}", "give one label per class of the model's output")
    labels = [str(label).strip() for label in labels]
    if not labels or any(not label for label in labels):
        raise InputError("the labels list has empty entries", "give one non-empty label per class, e.g. --labels cat,dog,bird")
    duplicates = sorted(label for label, n in collections.Counter(labels).items() if n > 1)
    if duplicates:
        shown = ", ".join(duplicates[:10]) + (f" and {len(duplicates) - 10:,} more" if len(duplicates) > 10 else "")
        raise InputError(f"duplicate class labels: {shown}", "give each class a distinct label")
    return labels


def parse_labels_option(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",")]


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``"224,224,3"`` (or ``224x224x3``) -> ``(224, 224, 3)``."""
    if text is None:
        return None
    parts = [p for p in re.split(r"[,x\s]+", text.strip().strip("()[]")) if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"--input-shape {text!r} is not a list of positive sizes", "write it in the model's layout: 224,224,3 (channels last), 3,224,224 (channels first) or 224,224")
    return shape
