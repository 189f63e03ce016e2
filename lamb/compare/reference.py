"""``lamb compare``'s verdicts: each (runtime library, mode) row's model run on its library and
judged against one reference, the source model run once on the comparison's inputs (``lamb.source``),
by verify's own judging step (``lamb.verify.evidence.judge_against``).

The library runs happen on a lane of their own (a thread driving a runner process: the other core)
while the next row converts; the source runs once, on the inputs the first library run built.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lamb import manifest as mf
from lamb import runtime_lib
from lamb.compare import deps as deps_mod
from lamb.compare.accuracy import LabeledReference, accuracy_report, judge_by_accuracy
from lamb.compare.report import CANNOT_RUN, ModeResult


class Reference:
    """The source model's outputs on the comparison's inputs, computed on first use, once."""

    def __init__(self, loaded: Any, source: Path, samples: int, images: Path | None, seed: int, preprocess: str,
                 labels: list[str] | None, labeled: LabeledReference | None = None):
        self.loaded = loaded
        self.labeled = labeled
        self.source = source
        self.samples = samples
        self.images_dir = images
        self.seed = seed
        self.preprocess = preprocess
        self.labels = labels
        self.inputs: list[np.ndarray] | None = None
        self.outputs: list[np.ndarray] | None = None
        self.which, self.label = "keras", ""  # what computed the outputs (lamb.source.ReferenceOutputs)
        self.images = 0
        self.skipped: list[str] = []
        self.predict_s = 0.0
        self._lock = threading.Lock()  # the library lane's thread builds the inputs
        self.ready = threading.Event()  # set once the inputs are built, or could not be

    def prepare(self, paired: Any, channel_first: list[bool], head: str | None = None) -> None:
        """The inputs, built once (the first mode's library run asks; later ones reuse them), laid
        out as the model takes them; the labelled images, when there are any, last (scored by the
        model's ``head``)."""
        with self._lock:
            if self.inputs is not None:
                return
            from lamb.verify.inputs import VerifyInputs, build_inputs

            wanted = VerifyInputs(samples=self.samples, images=self.images_dir, seed=self.seed, preprocess=self.preprocess)
            try:
                labeled = self.labeled.batch(paired, self.labels, self.preprocess, head) if self.labeled is not None else None
                arrays, used, self.skipped = build_inputs(paired.input_shapes, wanted, self.samples, self.preprocess, labeled)
                self.inputs = [np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if first else a for a, first in zip(arrays, channel_first)]
                self.images = len(used) + (len(self.labeled) if self.labeled is not None else 0)
            finally:
                self.ready.set()

    def predict(self) -> None:
        from lamb.verify.runner import ModelRunner, resolve_runtime_env

        def start_runner(model: Path, module: str) -> ModelRunner:
            # A reference runner runs in lamb's own environment, with the library of the source's own
            # format (only a source lamb can run as it is has a reference runner).
            own = runtime_lib.for_format(self.loaded.source_format)[0].name
            return ModelRunner.reference(resolve_runtime_env(own), model, module)

        assert self.inputs is not None
        t0 = time.perf_counter()
        reference = self.loaded.reference_outputs(self.inputs, start_runner)
        self.outputs, self.which, self.label = reference.outputs, reference.which, reference.label
        self.predict_s = time.perf_counter() - t0

    def judged_part(self, row: ModeResult, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """What a row is judged on: everything, but a calibrated mode's real images only, when
        there are any (random pixels reach activations outside the ranges it was calibrated on:
        0.36 of the range on the demo model, 0.097 on images)."""
        if runtime_lib.get(row.runtime_lib).format.mode(row.mode).calibrated and self.images:
            return [x[-self.images:] for x in arrays]
        return arrays


@dataclass
class LibraryRun:
    """One row's model run on its runtime library, as the target ships it (or why it could not)."""

    lib: str
    version: str
    python: str
    outputs: dict[str, np.ndarray] | None = None
    paired: Any = None
    failure: str | None = None
    zipped_model: int = 0  # the model deflated as the artifact's zip writer does
    seconds: float = 0.0


def run_on_library(row: ModeResult, ref: Reference, target: Any) -> LibraryRun:
    """The library lane: start the runner, pair signatures, run the inputs (not the source: that runs once)."""
    from lamb.verify.runner import (
        ModelRunner,
        RunnerFailure,
        explain_failure,
        lib_version,
        pick_runtime_lib,
        resolve_runtime_env,
    )
    from lamb.verify.signature import pair_signatures
    from lamb.verify.step import image_layout

    t0 = time.perf_counter()
    assert row.model_path is not None and row.manifest_path is not None
    manifest = mf.read(row.manifest_path)
    choice = pick_runtime_lib(row.runtime_lib, target.name, manifest)  # runtime and arch
    env = resolve_runtime_env(choice.name, choice.requirements)
    run = LibraryRun(choice.name, lib_version(env), f"{env.python} ({env.origin})")
    with ModelRunner(env, row.model_path, manifest.to_dict()) as runner, tempfile.TemporaryDirectory(prefix="lamb-compare-") as workdir:
        try:
            info = runner.wait_ready()
            run.paired, channel_first = image_layout(manifest, pair_signatures(ref.loaded, info, ref.source, row.model_path))
            ref.prepare(run.paired, channel_first, manifest.head)
            assert ref.inputs is not None
            inputs = ref.judged_part(row, ref.inputs)
            run.outputs, _answer = runner.run(dict(zip(run.paired.input_keys, inputs)), Path(workdir))
        except RunnerFailure as failure:
            run.failure = explain_failure(run.lib, run.version, row.model_path, failure)[0]
    # zlib lets go of the GIL: the model deflates here while the next mode converts.
    run.zipped_model = deps_mod.deflated_size(row.model_path, runtime_lib.get(choice.name).format.file)
    run.seconds = time.perf_counter() - t0
    return run


def judge(row: ModeResult, ref: Reference, run: LibraryRun) -> None:
    """Compare the mode's outputs with the reference, judge the evidence, record the verdict."""
    from lamb.verify import VerifyReport, default_tolerances
    from lamb.verify.evidence import judge_against

    t0 = time.perf_counter()
    assert row.model_path is not None and row.manifest_path is not None
    row.runtime_lib_version = run.version
    row.seconds["library"] = run.seconds
    if run.failure is not None or run.outputs is None:
        row.status, row.reason = CANNOT_RUN, run.failure
        return
    assert ref.outputs is not None
    manifest = mf.read(row.manifest_path)
    tol = default_tolerances(row.mode, fmt=runtime_lib.get(row.runtime_lib).format)
    paired = run.paired
    expected = ref.judged_part(row, ref.outputs)
    metrics, checks, judged = judge_against(paired, expected, run.outputs, tol, quantization=row.mode, images=ref.images, labels=ref.labels,
                                            head=manifest.head)
    candidate = [run.outputs[key] for key in paired.output_keys]
    n = len(candidate[0])
    accuracy = accuracy_report(ref.labeled, candidate, expected, ref.which) if ref.labeled is not None else None
    if accuracy is not None:
        row.accuracy, row.accuracy_low, row.accuracy_high = accuracy.converted.top1, accuracy.converted.top1_low, accuracy.converted.top1_high
        judged = judge_by_accuracy(row.mode, accuracy.converted, accuracy.source, checks, judged)
        accuracy.passed, accuracy.failures = judged.passed, list(judged.failures)
    failures = judged.failures
    report = VerifyReport(
        passed=judged.passed, source_path=ref.source, model_path=row.model_path,
        model_sha256=manifest.model.sha256, manifest_path=row.manifest_path, quantization=row.mode,
        quantization_source="given", preprocess=ref.preprocess, runtime_lib=run.lib, runtime_lib_version=run.version,
        runtime_python=run.python, samples=n - ref.images, seed=ref.seed, images=ref.images,
        skipped_images=len(ref.skipped), tolerances=tol, outputs=metrics, checks=checks, failures=failures,
        skipped=list(ref.skipped), verdict=judged.verdict, warnings=list(judged.warnings), accuracy=accuracy,
        reference=ref.which, reference_label=ref.label,
    )
    manifest.verification = report.to_verification()
    mf.write(manifest, row.manifest_path)
    row.passed = report.passed
    row.verdict = judged.verdict
    row.failures = list(failures)
    row.warnings = list(judged.warnings)
    bounds = [m.top1_lower for m in metrics if m.top1_lower is not None]
    row.top1_lower = min(bounds) if bounds else None
    rels = [m.max_rel for m in metrics if m.max_rel is not None]
    row.max_rel = max(rels) if rels else None
    cosines = [m.cosine for m in metrics if m.cosine is not None]
    row.cosine = min(cosines) if cosines else None
    row.seconds["judge"] = time.perf_counter() - t0
    tops = [m.top1 for m in metrics if m.top1 is not None]
    row.top1 = min(tops) if tops else None


