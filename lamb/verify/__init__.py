"""Prove that a converted model computes what its source model computes, on the runtime library Lambda will use.

``verify_model`` runs both models on the same inputs (seeded random pixels pushed through the
model's preprocessing, and/or real images decoded by the very functions the deployed handler uses)
and compares them output by output (``compare_outputs``, a pure function). The source side is
its reference outputs (``lamb.source``: a Keras model runs in this process, batched; an .onnx on
ONNX's own evaluator); the converted model runs in a subprocess (the runner script its runtime
library's record names, ``lamb.runtime_lib``) on the library the artifact ships, never on
TensorFlow's own interpreter: that is always new enough for the converter that produced the model,
the shipped library may not be.

The verdict is a ``VerifyReport`` and is written into the manifest, so ``lamb package`` can refuse
a model that failed or was never verified. ``VerifyReport.raise_for_failure()`` raises
``OutputMismatch`` (a ``VerificationFailed`` carrying the report and the numbers).

Modules: ``tolerances`` (what counts as the same), ``compare`` (the pure comparison), ``inputs``
(samples and images), ``signature`` (pairing the two models' inputs and outputs), ``runner`` (the
runtime library's environment and its runner process), ``step`` (``verify_model``), ``again``
(``verify_again``: the same inputs on the release ``lamb package`` ships), ``report`` and ``render``.
"""

from lamb.verify.again import verify_again
from lamb.verify.compare import Check, OutputMetrics, compare_outputs
from lamb.verify.inputs import DEFAULT_SAMPLES, DEFAULT_SEED, VerifyInputs, image_inputs, random_inputs
from lamb.verify.render import render_report
from lamb.verify.report import OutputMismatch, VerifyReport
from lamb.verify.step import verify_model
from lamb.verify.tolerances import ToleranceOverrides, Tolerances, default_tolerances

__all__ = [
    "DEFAULT_SAMPLES",
    "DEFAULT_SEED",
    "Check",
    "OutputMetrics",
    "OutputMismatch",
    "ToleranceOverrides",
    "Tolerances",
    "VerifyInputs",
    "VerifyReport",
    "compare_outputs",
    "default_tolerances",
    "image_inputs",
    "random_inputs",
    "render_report",
    "verify_again",
    "verify_model",
]
