"""``lamb verify`` for a model given as ``.onnx``: the reference is an independent implementation, not Keras.

There is no Keras model to compare with, so the shipped model's outputs on ONNX Runtime are judged
against the source ``.onnx`` evaluated by ``onnx.reference.ReferenceEvaluator`` (ONNX's own
definition of each op, in NumPy, sharing no kernel with ONNX Runtime). The evaluator is slow on big
convolutions: when one sample says the whole set would not finish within ``REFERENCE_BUDGET_S``, or
it cannot run an op, the reference is ONNX Runtime with every graph optimization disabled, labelled
the weaker reference (it shares ONNX Runtime's kernels, so it proves less).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from lamb.verify.inputs import build_inputs
from lamb.verify.runner import ModelRunner, RunnerFailure, RuntimeEnv
from lamb.verify.signature import PairedSignature

# Wall time the reference evaluator may take for all inputs of one verification. Past it, the
# weaker reference answers: verify stays a command one waits for.
REFERENCE_BUDGET_S = 120.0

INDEPENDENT = "onnx.reference"
WEAKER = "onnxruntime-unoptimized"


def channel_first(run: Any, info: dict[str, Any]) -> list[bool]:
    """Per input of the shipped model: fed channel-first (the manifest's ``layout``)?"""
    layouts = {s.name: s.layout for s in run.manifest.inputs} if run.manifest is not None else {}
    return [layouts.get(spec["key"]) == "NCHW" for spec in info["inputs"]]


def image_shapes(run: Any, info: dict[str, Any]) -> list[list[int]]:
    """Each input's per-sample shape channels last, as the handler's preprocessing makes it."""
    from lamb.errors import InputError

    declared = {s.name: s.shape for s in run.manifest.inputs} if run.manifest is not None else {}
    shapes = []
    for spec, first in zip(info["inputs"], channel_first(run, info)):
        shape = list(declared.get(spec["key"]) or spec["shape"])[1:]
        if any(d < 0 for d in shape):
            raise InputError(f"the model's input {spec['key']} has open dimensions {spec['shape']}",
                             "re-run `lamb convert MODEL.onnx --input-shape HEIGHT,WIDTH,3`")
        shapes.append([shape[1], shape[2], shape[0]] if first else shape)  # NHWC for the preprocessing
    return shapes


def model_inputs(
    run: Any, info: dict[str, Any], labeled: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """The inputs both models get: random pixels and images (and ``labeled``, preprocessed
    already), preprocessed as the handler does, laid out as the model takes them; and the images
    used and skipped."""
    nchw = channel_first(run, info)
    arrays, used, skipped = build_inputs(image_shapes(run, info), run.inputs, run.samples, run.preprocess, labeled)
    feeds = {spec["key"]: np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if first else a
             for spec, a, first in zip(info["inputs"], arrays, nchw)}
    return feeds, used, skipped


def paired(info: dict[str, Any]) -> PairedSignature:
    """The shipped model paired with its own source: the same names on both sides."""
    return PairedSignature(
        input_keys=[s["key"] for s in info["inputs"]], input_shapes=[s["shape"][1:] for s in info["inputs"]],
        output_names=[s["key"] for s in info["outputs"]], output_keys=[s["key"] for s in info["outputs"]],
        output_shapes=[s["shape"][1:] for s in info["outputs"]],
    )


def reference_outputs(
    env: RuntimeEnv, source: Path, feeds: dict[str, np.ndarray], output_keys: list[str], budget_s: float = REFERENCE_BUDGET_S,
) -> tuple[list[np.ndarray], str, str]:
    """(the source model's outputs in ``output_keys`` order, which reference computed them, the report's sentence)."""
    n = len(next(iter(feeds.values())))
    why = ""
    with tempfile.TemporaryDirectory(prefix="lamb-reference-") as workdir, ModelRunner(env, source, module=INDEPENDENT) as ref:
        timer = threading.Timer(budget_s, ref.kill)
        timer.start()
        started = time.perf_counter()
        try:
            info = ref.wait_ready()
            first = time.perf_counter()  # the runner's start and imports are not a per-input cost
            ref.run({k: v[:1] for k, v in feeds.items()}, Path(workdir))
            per_sample = time.perf_counter() - first
            if time.perf_counter() - started + per_sample * (n - 1) <= budget_s:
                out, _ = ref.run(feeds, Path(workdir))
                label = (f"onnx.reference {info.get('version', '')} (ONNX's own evaluator, independent of ONNX Runtime) "
                         f"on the source {source.name}")
                return [out[k] for k in output_keys], INDEPENDENT, label
            why = f"onnx.reference took {per_sample:.1f} s for one input, past the {budget_s:.0f} s budget for {n}"
        except RunnerFailure as failure:
            overran = time.perf_counter() - started >= budget_s
            why = f"onnx.reference ran past its {budget_s:.0f} s budget" if overran else f"onnx.reference could not run it ({failure.message[:160]})"
        finally:
            timer.cancel()
    with tempfile.TemporaryDirectory(prefix="lamb-reference-") as workdir, ModelRunner(env, source, module=WEAKER) as ref:
        info = ref.wait_ready()
        out, _ = ref.run(feeds, Path(workdir))
    label = (f"onnxruntime {info.get('version', '')} with every graph optimization disabled on the source {source.name}: "
             f"the weaker reference, sharing ONNX Runtime's kernels ({why})")
    return [out[k] for k in output_keys], WEAKER, label
