"""lamb compare --labeled-images: a mode judged by its accuracy against Keras's on the same images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lamb.compare import compare_models
from lamb.compare.accuracy import judge_by_accuracy
from lamb.verify.accuracy import measure
from lamb.verify.compare import Check
from lamb.verify.evidence import FAIL, PASS, PASS_WITH_WARNING, Judgement


def _accuracy(right: int, n: int = 100, model: str = "converted"):
    truth = [i % 4 for i in range(n)]
    scores = np.zeros((n, 4), np.float32)
    for i, t in enumerate(truth):
        scores[i, t if i < right else (t + 1) % 4] = 1.0
    return measure(scores, truth, list("abcd"), preprocess="xception", model=model)


def _agreement_failed() -> tuple[list[Check], Judgement]:
    failure = "output 'logits': top-1 agreement 98.0% < 99.0%"
    checks = [Check("logits", "finite", 0, 0, True, "=="), Check("logits", "top1", 0.98, 0.99, False, ">=")]
    return checks, Judgement(FAIL, False, {"logits": 0.95}, failures=[failure])


def test_a_lossy_mode_that_keeps_keras_accuracy_passes_despite_its_agreement():
    checks, judged = _agreement_failed()
    kept = judge_by_accuracy("int8", _accuracy(94), _accuracy(95, model="keras"), checks, judged)
    assert kept.passed and kept.verdict == PASS_WITH_WARNING and kept.failures == []
    assert "within 1 point" in kept.warnings[-1] and "top-1 agreement 98.0%" in kept.warnings[-1]


def test_a_mode_clearly_below_keras_fails_whatever_its_agreement():
    passed = Judgement(PASS, True, {"logits": 0.99})
    lost = judge_by_accuracy("int8", _accuracy(70), _accuracy(95, model="keras"), [], passed)
    assert not lost.passed and lost.verdict == FAIL and "clearly more than 1 point below" in lost.failures[-1]


def test_broken_outputs_fail_whatever_the_accuracy():
    checks, judged = _agreement_failed()
    checks[0] = Check("logits", "finite", 3, 0, False, "==")
    assert not judge_by_accuracy("int8", _accuracy(95), _accuracy(95, model="keras"), checks, judged).passed


def test_a_pass_stays_a_pass():
    passed = Judgement(PASS, True, {"logits": 0.99})
    assert judge_by_accuracy("float32", _accuracy(95), _accuracy(95, model="keras"), [], passed) is passed


@pytest.mark.network  # the target's wheels, resolved once and cached
@pytest.mark.e2e
def test_int8_calibrated_on_the_labelled_images_keeps_the_demos_accuracy(drawn_demo_images):
    demo = Path(__file__).resolve().parent.parent / "models" / "demo"
    report = compare_models(
        demo / "clothing.h5", labeled_images=drawn_demo_images, preprocess="xception",
        labels_file=demo / "labels.txt", modes="float32,int8", memory=[1024], runtime_lib="ai-edge-litert",
    )
    assert report.source_accuracy is not None and report.source_accuracy.top1 >= 0.9
    int8 = report.row("int8")
    assert int8 is not None and int8.status == "verified", int8.reason  # calibrated without --calibration
    assert int8.passed and int8.accuracy is not None and int8.accuracy_high >= report.source_accuracy.top1 - 0.01
    assert report.summary()["rows"][1]["accuracy"] == int8.accuracy
