"""Accuracy on labelled images: right answers, not only the same answers.

``lamb verify`` proves the converted model computes what the source model computes; both get the
same pixels, so a wrong preprocessing passes it. Labelled images can see that. Each image is
decoded and resized by the shipped handler's own functions (``lambkit``), then preprocessed in
every mode the handler offers and run through the converted model on the runtime library. The
recorded mode's top-1 and top-k accuracy come with their Wilson 95 % interval, per class and
overall, beside a confusion table, and the source model's accuracy on the very same inputs when it ran.

Two judgements (``judge_accuracy``):

- **a wrong preprocessing**: another mode whose accuracy is clearly better (its Wilson interval
  lies wholly above the recorded mode's) fails, naming that mode and the command that fixes it.
  Two modes close enough that the images cannot tell them apart (Xception's ``x / 127.5 - 1``
  and torch's standardisation are often both fine) do not fail.
- **a lossy conversion**: the converted model may not be clearly more than ``ACCURACY_SLACK``
  below the source model on the same inputs: its interval's upper end must reach its rate less a point.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lamb.errors import InputError
from lamb.verify.evidence import wilson_interval

# A lossy mode keeps its accuracy when it is not clearly more than one point below the source model's.
ACCURACY_SLACK = 0.01
# ImageNet's top-5 for many classes; with ten or fewer, top-5 is most of them, so top-2.
MANY_CLASSES = 10

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass
class LabeledImages:
    """Labelled images, decoded and resized by the shipped handler: pixels in [0, 255]."""

    folder: Path
    names: list[str]  # relative to ``folder``
    truth: list[int]  # the class index of each image, in the model's output order
    pixels: np.ndarray  # (N, H, W, 3) float32, before any preprocessing
    skipped: list[str] = field(default_factory=list)  # "<name>: <why>"

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class ClassAccuracy:
    label: str
    images: int
    correct: int
    top1: float
    top1_low: float  # Wilson 95 % interval
    top1_high: float


@dataclass
class ModeAccuracy:
    """One preprocessing mode's accuracy on the labelled images (converted model or source model)."""

    preprocess: str
    model: str  # "converted", or what computed the source's outputs: "keras" | "onnx.reference" | ...
    images: int
    correct: int
    top1: float
    top1_low: float
    top1_high: float
    k: int  # top-k's k (0: the model has too few classes for it)
    topk: float | None = None
    topk_low: float | None = None
    per_class: list[ClassAccuracy] = field(default_factory=list)
    # truth label -> predicted label -> count (only the cells that happened)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    def interval(self) -> str:
        return f"{self.top1:.1%} (95 % {self.top1_low:.1%}-{self.top1_high:.1%})"


@dataclass
class AccuracyReport:
    """What the labelled images showed; kept in the manifest's verification and the artifact's record."""

    folder: str
    images: int
    classes: list[str]  # the labels the images carry, in the model's output order
    preprocess: str  # the recorded mode, the one the artifact's handler applies
    converted: ModeAccuracy  # the converted model, in the recorded mode
    source: ModeAccuracy | None = None  # the source model on the same inputs
    modes: list[ModeAccuracy] = field(default_factory=list)  # every other mode, converted model
    better: str | None = None  # a mode clearly better than the recorded one
    passed: bool = True
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """What the manifest keeps: the figures, not the per-image lists."""
        import dataclasses

        data = dataclasses.asdict(self)
        data.pop("skipped")
        data["skipped_images"] = len(self.skipped)
        data["folder"] = Path(self.folder).name  # host paths stay on the host (the record ships)
        for mode in data["modes"]:
            mode.pop("per_class")
            mode.pop("confusion")
        return data


# -- reading the images ---------------------------------------------------------------------------


def find_labeled(folder: Path, labels: Sequence[str] | None) -> list[tuple[Path, str]]:
    """(file, label) for a folder per class, or files named ``<label>-*.ext`` / ``<label>_*.ext``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"no folder of labelled images at {folder}", "pass --labeled-images with a folder per class, or files named <label>-1.jpg")
    found: list[tuple[Path, str]] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in parts):
            continue
        label = parts[0] if len(parts) > 1 else _label_from_name(path.stem, labels)
        if label:
            found.append((path, label))
    if not found:
        raise InputError(
            f"{folder} holds no labelled images",
            "put each class's images in a folder named after the class (cat/1.jpg), or name them <label>-<n>.jpg",
        )
    return found


def _label_from_name(stem: str, labels: Sequence[str] | None) -> str | None:
    """``t-shirt-1`` -> ``t-shirt``: the longest known label the name starts with, else the text
    before the last ``-`` or ``_``."""
    if labels:
        known = [label for label in labels if re.match(re.escape(label) + r"[-_]", stem)]
        if known:
            return max(known, key=len)
    head, sep, _ = max(stem.rpartition("-"), stem.rpartition("_"), key=lambda parts: len(parts[0]))
    return head if sep and head else None


def load_labeled(folder: Path, shape: Sequence[int], labels: Sequence[str] | None, classes: int) -> LabeledImages:
    """Every labelled image under ``folder``, decoded and resized as the handler does."""
    from lamb.handler.lambkit import decode_image, image_to_pixels

    if len(shape) != 3 or shape[-1] != 3:
        raise InputError(
            f"--labeled-images needs a model whose input is one RGB image (height, width, 3); this one takes {list(shape)}",
            "verify with --samples instead",
        )
    found = find_labeled(folder, labels)
    index = _class_index(sorted({label for _, label in found}), labels, classes)
    names, truth, batch, skipped = [], [], [], []
    for path, label in found:
        name = path.relative_to(folder).as_posix()
        try:  # the handler's own limits: what it would refuse to decode is skipped, with its reason
            batch.append(image_to_pixels(decode_image(path.read_bytes()), (int(shape[0]), int(shape[1]))))
        except ValueError as exc:
            skipped.append(f"{name}: {exc}")
            continue
        names.append(name)
        truth.append(index[label])
    if not batch:
        raise InputError(f"none of the {len(found)} labelled files in {folder} is a decodable image", "put .jpg/.png images in it")
    return LabeledImages(Path(folder), names, truth, np.stack(batch), skipped)


def _class_index(found: list[str], labels: Sequence[str] | None, classes: int) -> dict[str, int]:
    """Each label the images carry -> its output index: by the model's labels, else numbers."""
    if labels:
        unknown = [label for label in found if label not in labels]
        if unknown:
            raise InputError(
                f"labelled images name classes the model does not have: {', '.join(unknown[:5])}",
                f"name them after the model's labels ({', '.join(list(labels)[:5])}{', ...' if len(labels) > 5 else ''})",
            )
        return {label: list(labels).index(label) for label in found}
    if all(label.isdigit() and int(label) < classes for label in found):
        return {label: int(label) for label in found}
    raise InputError(
        "the labelled images are named by class, but the model has no labels to match them with",
        "convert with --labels-file (or pass --labels), or name the images by output index (0-1.jpg)",
    )


# -- measuring ------------------------------------------------------------------------------------


def measure(
    outputs: np.ndarray, truth: Sequence[int], names: Sequence[str], *, preprocess: str, model: str, top_k: int | None = None,
    head: str | None = None,
) -> ModeAccuracy:
    """Top-1 (and top-k) accuracy of one classifier output against ``truth``, with Wilson intervals.

    The scores are the ones the function answers (``lambkit.heads``): a binary head's one value is
    the two classes ``(1 - p, p)``, so its top-1 is the 0.5 threshold."""
    from lamb.handler.lambkit.heads import class_scores

    scores = class_scores(np.asarray(outputs).reshape(len(truth), -1), head)
    truth_arr = np.asarray(truth)
    predicted = scores.argmax(axis=1)
    hits = predicted == truth_arr
    n, correct = len(truth_arr), int(hits.sum())
    low, high = wilson_interval(correct, n)
    k = min(top_k or (5 if scores.shape[1] > MANY_CLASSES else 2), scores.shape[1] - 1)
    result = ModeAccuracy(preprocess, model, n, correct, correct / n, low, high, max(k, 0))
    if k > 1:
        top = np.argsort(-scores, axis=1)[:, :k]
        in_top = int((top == truth_arr[:, None]).any(axis=1).sum())
        result.topk, result.topk_low = in_top / n, wilson_interval(in_top, n)[0]
    for cls in sorted(set(truth_arr.tolist())):
        mask = truth_arr == cls
        c, m = int(hits[mask].sum()), int(mask.sum())
        lo, hi = wilson_interval(c, m)
        result.per_class.append(ClassAccuracy(names[cls], m, c, c / m, lo, hi))
    for t, p in zip(truth_arr.tolist(), predicted.tolist()):
        row = result.confusion.setdefault(_name(names, t), {})
        row[_name(names, p)] = row.get(_name(names, p), 0) + 1
    return result


def _name(names: Sequence[str], index: int) -> str:
    return names[index] if index < len(names) else str(index)


def judge_accuracy(report: AccuracyReport, model_path: Path) -> AccuracyReport:
    """Fail a recorded preprocessing another mode clearly beats, and a conversion that clearly loses accuracy."""
    import os

    shown = os.path.relpath(model_path) if not os.path.relpath(model_path).startswith("../..") else str(model_path)
    chosen = report.converted
    best = max(report.modes, key=lambda m: m.top1_low, default=None)
    if best is not None and best.top1_low > chosen.top1_high:
        report.better = best.preprocess
        report.failures.append(
            f"preprocessing {chosen.preprocess!r} scores {chosen.interval()} top-1 on {chosen.images} labelled images, "
            f"{best.preprocess!r} scores {best.interval()}: the model was trained with {best.preprocess}; "
            f"fix it with `lamb convert {shown} --preprocess {best.preprocess}` (and your other options)"
        )
    source = report.source
    if source is not None and chosen.top1_high < source.top1 - ACCURACY_SLACK:
        report.failures.append(
            f"the converted model scores {chosen.interval()} top-1 on {chosen.images} labelled images, the source model "
            f"{source.top1:.1%}: clearly more than {ACCURACY_SLACK * 100:.0f} point below it; try a less lossy --quantize mode"
        )
    report.passed = not report.failures
    return report


@dataclass
class LabeledRun:
    """The labelled images, preprocessed in each mode on demand (one mode's batch in memory at a
    time: 100 images at 299x299 are 107 MB a mode), and their scores read back.

    The recorded mode's batch joins the comparison's inputs (real images: evidence for the
    agreement checks too) and is what the source model scores; the other modes run on the converted model only.
    """

    labeled: LabeledImages
    modes: list[str]  # the recorded mode first
    output: int  # which output scores the classes
    classes: list[str]
    head: str | None = None  # the manifest's (lambkit.heads): a binary head's one value answers two classes

    @property
    def preprocess(self) -> str:
        return self.modes[0]

    @property
    def recorded(self) -> np.ndarray:
        return self.batch(self.modes[0])

    def batch(self, mode: str) -> np.ndarray:
        from lamb.handler.lambkit import preprocess

        return preprocess(self.labeled.pixels, mode)

    def report(
        self, converted: list[np.ndarray], others: dict[str, np.ndarray], source: list[np.ndarray] | None, top_k: int | None
    ) -> AccuracyReport:
        """``converted`` and ``source``: each model's outputs on the comparison's inputs, the recorded
        batch last among them; ``others``: the converted model's class scores in each other mode."""
        n = len(self.labeled)
        truth, names = self.labeled.truth, self.classes
        scores = {self.modes[0]: converted[self.output][-n:], **others}
        measured = [measure(scores[m], truth, names, preprocess=m, model="converted", top_k=top_k, head=self.head) for m in self.modes]
        source_acc = None
        if source is not None:
            source_acc = measure(source[self.output][-n:], truth, names, preprocess=self.modes[0], model="source", top_k=top_k, head=self.head)
        return AccuracyReport(
            folder=str(self.labeled.folder), images=n, classes=[names[i] for i in sorted(set(truth))], preprocess=self.modes[0],
            converted=measured[0], source=source_acc, modes=measured[1:], skipped=list(self.labeled.skipped),
        )


def prepare(folder: Path, shapes: Sequence[Sequence[int]], outputs: Sequence[Sequence[int | None]],
            labels: Sequence[str] | None, recorded: str, *, every_mode: bool = True, head: str | None = None) -> LabeledRun:
    """Read the labelled images for a model with these input and output shapes (per sample), to
    run in the ``recorded`` mode and, with ``every_mode``, in every other one too. ``head``: the
    manifest's (``lambkit.heads``); a binary one scores two classes with its one value."""
    from lamb.handler.lambkit import PREPROCESSORS
    from lamb.handler.lambkit.heads import BINARY

    if len(shapes) != 1:
        raise InputError(
            f"--labeled-images needs a model with one image input; this one has {len(shapes)} inputs",
            "verify with --samples instead",
        )
    output = _classifier_output(outputs, labels, head in BINARY)
    classes = 2 if head in BINARY else int(outputs[output][0] or 0)
    names = list(labels) if labels else [str(i) for i in range(classes)]
    labeled = load_labeled(folder, shapes[0], labels, classes)
    order = [recorded, *(mode for mode in PREPROCESSORS if mode != recorded and every_mode)]
    return LabeledRun(labeled, order, output, names, head)


def _classifier_output(outputs: Sequence[Sequence[int | None]], labels: Sequence[str] | None, binary: bool = False) -> int:
    """The first output shaped (classes,), with as many classes as labels when there are labels;
    for a binary head, its one value (two classes)."""
    for i, shape in enumerate(outputs):
        if binary and list(shape) in ([], [1]) and (not labels or len(labels) == 2):
            return i
        if len(shape) == 1 and (shape[0] or 0) > 1 and (not labels or shape[0] == len(labels)):
            return i
    raise InputError(
        "--labeled-images needs a classifier output (one score per class); this model has none",
        "verify it with --images instead",
    )
