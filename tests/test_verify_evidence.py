"""The Wilson lower bound and the verdicts it qualifies (lamb.verify.evidence): pure arithmetic."""

import pytest

from lamb.verify.evidence import (
    FAIL,
    NOT_ENOUGH_EVIDENCE,
    PASS,
    PASS_WITH_WARNING,
    inputs_to_settle,
    judge,
    wilson_lower_bound,
)


def test_wilson_lower_bound_matches_published_values():
    # Brown, Cai & DasGupta's Wilson interval; by hand for 10/10: 10 / (10 + 1.96^2) = 0.7225
    assert wilson_lower_bound(10, 10) == pytest.approx(0.7225, abs=1e-4)
    assert wilson_lower_bound(95, 100) == pytest.approx(0.8882, abs=1e-4)
    assert wilson_lower_bound(0, 10) == 0.0
    assert wilson_lower_bound(5, 0) == 0.0


def test_inputs_to_settle():
    assert inputs_to_settle(1.0, 0.99) == 381  # 1.96^2 x 0.99 / 0.01 = 380.3
    need = inputs_to_settle(0.995, 0.99)
    assert wilson_lower_bound(round(0.995 * need), need) >= 0.99 > wilson_lower_bound(round(0.995 * (need - 50)), need - 50)
    assert inputs_to_settle(0.99, 0.99) is None


def test_ten_perfect_images_pass_with_a_warning_naming_the_inputs_needed():
    j = judge({"logits": 1.0}, 10, 0.99, [], quantization="dynamic", images=10)
    assert j.verdict == PASS_WITH_WARNING and j.passed
    assert "72.2%" in j.warnings[0] and "381 inputs" in j.warnings[0]
    assert judge({"logits": 1.0}, 400, 0.99, [], quantization="dynamic", images=0).verdict == PASS


def test_int8_on_random_samples_alone_is_not_enough_evidence():
    j = judge({"logits": 1.0}, 400, 0.99, [], quantization="int8", images=0)
    assert j.verdict == NOT_ENOUGH_EVIDENCE and not j.passed and "--images" in j.failures[0]
    assert judge({"logits": 1.0}, 400, 0.99, [], quantization="int8", images=400).verdict == PASS


def test_failures_fail():
    j = judge({"logits": 0.5}, 100, 0.99, ["top-1 agreement 50.0% is below 99.0%"], quantization="float32", images=0)
    assert j.verdict == FAIL and not j.passed and j.lower_bounds["logits"] < 0.5
