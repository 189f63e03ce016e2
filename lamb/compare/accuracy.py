"""``lamb compare --labeled-images``: each mode judged by its accuracy against the source model's on the same images.

Top-1 agreement asks whether a mode answers what the source model answers; labelled images ask whether it
answers right. A lossy mode that keeps the source model's accuracy (its Wilson interval reaches its rate
less ``ACCURACY_SLACK``) passes even where its agreement misses the 99 % rule: int8 Xception
agrees on 98 % of random inputs and runs in 0.44x of float32's time. A mode clearly below the source model
fails whatever its agreement. NaN or infinite outputs fail either way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lamb.verify.accuracy import ACCURACY_SLACK, AccuracyReport, LabeledRun, ModeAccuracy, measure, prepare
from lamb.verify.evidence import FAIL, PASS_WITH_WARNING, Judgement


class LabeledReference:
    """The labelled images in the comparison's preprocessing, and the source model's accuracy on them (once)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.run: LabeledRun | None = None
        self.source: ModeAccuracy | None = None

    def batch(self, paired: Any, labels: list[str] | None, preprocess: str, head: str | None = None) -> np.ndarray:
        """The images preprocessed as the artifact will, to append after the comparison's inputs."""
        self.run = prepare(self.folder, paired.input_shapes, paired.output_shapes, labels, preprocess, every_mode=False, head=head)
        return self.run.recorded

    def __len__(self) -> int:
        return len(self.run.labeled) if self.run is not None else 0

    def measure(self, outputs: list[np.ndarray], model: str) -> ModeAccuracy:
        """Accuracy of one model's outputs, whose last ``len(self)`` rows are the labelled images."""
        assert self.run is not None
        n = len(self)
        scores = outputs[self.run.output][-n:]
        return measure(scores, self.run.labeled.truth, self.run.classes, preprocess=self.run.preprocess, model=model, head=self.run.head)

    def source_accuracy(self, outputs: list[np.ndarray], model: str) -> ModeAccuracy:
        """The source model's accuracy (``model``: what computed its outputs), measured once."""
        if self.source is None:
            self.source = self.measure(outputs, model)
        return self.source


def judge_by_accuracy(mode: str, accuracy: ModeAccuracy, source: ModeAccuracy | None, checks: list[Any], judged: Judgement) -> Judgement:
    """The verdict with accuracy weighed: agreement and error failures give way to a kept accuracy."""
    if source is None:
        return judged
    keeps = accuracy.top1_high >= source.top1 - ACCURACY_SLACK
    said = f"{mode} scores {accuracy.interval()} top-1 on {accuracy.images} labelled images, the source model {source.top1:.1%}"
    if not keeps:
        failures = [*judged.failures, f"{said}: clearly more than {ACCURACY_SLACK * 100:.0f} point below it"]
        return replace(judged, verdict=FAIL, passed=False, failures=failures)
    broken = [c for c in checks if c.passed is False and c.metric == "finite"]
    if judged.passed or broken:
        return judged
    kept = f"{said}: within {ACCURACY_SLACK * 100:.0f} point, so it passes although " + "; ".join(judged.failures)
    return replace(judged, verdict=PASS_WITH_WARNING, passed=True, failures=[], warnings=[*judged.warnings, kept])


def accuracy_report(
    labeled: LabeledReference, candidate: list[np.ndarray], expected: list[np.ndarray], model: str,
) -> AccuracyReport | None:
    """The mode's and the source model's accuracy on the labelled images (the last rows of both
    runs; ``model``: what computed the source's outputs)."""
    run = labeled.run
    if run is None:
        return None
    return AccuracyReport(
        folder=str(labeled.folder), images=len(labeled), classes=[run.classes[i] for i in sorted(set(run.labeled.truth))],
        preprocess=run.preprocess, converted=labeled.measure(candidate, "converted"), source=labeled.source_accuracy(expected, model),
        skipped=list(run.labeled.skipped),
    )
