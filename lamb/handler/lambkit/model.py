"""The model: its record (``lamb.json``), its backend, and turning a decoded image into scores."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

import numpy as np

from . import backends, heads, settings, timing
from .errors import one_line
from .preprocess import PREPROCESSORS, image_to_pixels, preprocess

RECORD_FILE = "lamb.json"  # lamb.layout.MANIFEST_FILE (tests/test_layout.py checks they agree)
# Where a version-1 record without a "tflite" entry keeps the model (lamb.layout's first MODEL_FILE).
V1_MODEL_FILE = "model.tflite"


def default_task_root() -> str:
    """Lambda's task root (``LAMBDA_TASK_ROOT``), else the folder this package sits in."""
    return os.environ.get("LAMBDA_TASK_ROOT") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def model_entry(record: dict) -> tuple:
    """(format, file name) of the record's model: version 2's ``model``, else version 1's ``tflite``."""
    model = record.get("model")
    if isinstance(model, dict):
        return model.get("format") or "tflite", model.get("file") or V1_MODEL_FILE
    return "tflite", record.get("tflite") or V1_MODEL_FILE


class Model:
    """The runtime library's backend plus what the record says about feeding it and naming its outputs."""

    def __init__(self, task_root: str | None = None):
        task_root = task_root or default_task_root()
        with open(os.path.join(task_root, RECORD_FILE), encoding="utf-8") as f:
            record = json.load(f)
        self.preprocess_mode = record.get("preprocess") or "none"
        if self.preprocess_mode not in PREPROCESSORS:
            raise ValueError(f"{RECORD_FILE} names an unknown preprocessing mode {self.preprocess_mode!r}")
        self.labels = record.get("labels")
        self.head = record.get("head") or heads.LOGITS
        if self.head not in heads.HEADS:
            raise ValueError(f"{RECORD_FILE} names an unknown output head {self.head!r}")
        self.format, file = model_entry(record)
        path = os.path.join(task_root, os.path.basename(str(file)))  # the artifact keeps it at the root
        self.num_threads = settings.default_num_threads()
        self.backend = backends.load(backends.backend_name(record), path, record, self.num_threads)

    @property
    def size(self):
        """(height, width) the model takes, or None when it takes the image's own size."""
        return self.backend.input.size

    def prepare(self, image):
        """A PIL image -> the input tensor (batch of one), laid out and typed as the model takes it."""
        spec = self.backend.input
        size = spec.size or (image.size[1], image.size[0])
        x = preprocess(image_to_pixels(image, size), self.preprocess_mode)[None]
        if spec.layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return backends.typed(spec, x)

    def run(self, x):
        """The input tensor -> [(output name, float32 scores)], in the record's output order."""
        return [(name, y.reshape(-1)) for name, y in self.backend.run(x)]

    def label(self, scores):
        scores = heads.class_scores(np.asarray(scores).reshape(1, -1), self.head)[0]  # binary: (1 - p, p)
        labels = self.labels if isinstance(self.labels, list) and len(self.labels) == len(scores) else None
        return {(str(labels[i]) if labels else str(i)): float(s) for i, s in enumerate(scores)}

    def predict(self, image):
        """A decoded PIL image -> ``{label: score}``, or ``{output name: {label: score}}`` for a
        model with several outputs."""
        t0 = time.perf_counter()
        x = self.prepare(image)
        t1, cpu = time.perf_counter(), time.process_time()
        results = self.run(x)
        timing.record("preprocess_ms", (t1 - t0) * 1000.0)
        timing.record("inference_ms", (time.perf_counter() - t1) * 1000.0)
        # CPU time well below wall time means the function is CPU-starved: on Lambda, too little
        # memory (the CPU share follows it).
        timing.record("inference_cpu_ms", (time.process_time() - cpu) * 1000.0)
        if len(results) == 1:
            return self.label(results[0][1])
        return {name: self.label(scores) for name, scores in results}


class UnloadedModel:
    """What ``load_model`` returns when the model failed to load: every request answers 500 with
    the reason, rather than the init failing with Lambda's opaque Runtime.ImportModuleError, and
    the load is not re-paid per request (a broken artifact stays broken)."""

    def __init__(self, error: str):
        self.error = error

    def __getattr__(self, name):  # predict, prepare, run, labels...: each answers with the reason
        raise RuntimeError(self.error)


def load_model(task_root: str | None = None):
    """The model in ``task_root`` (Lambda's task root by default), loaded now: call it at module
    level, so Lambda's init phase pays the load ("Init Duration") and the first request does not.
    Reads the ``LAMB_*`` settings too, so a bad one is logged at init."""
    settings.current()
    try:
        return Model(task_root)
    except Exception as exc:  # noqa: BLE001 - remembered and answered as a 500 on every request, logged once
        traceback.print_exc()
        print("lamb: the model failed to load; every request will answer 500", file=sys.stderr)
        return UnloadedModel(f"the model could not be loaded: {one_line(exc)}")
