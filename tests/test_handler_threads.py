"""The shipped handler called from many threads in one process (a threaded server embedding it):
every answer is that image's own, for both backends; and a 500 never spans lines."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import make_task_root
from PIL import Image
from test_handler import load_handler
from test_handler_onnx import onnx_task_root

THREADS = 100


def distinct_images(n: int) -> list[dict]:
    """``n`` events, each a different image (and a different size, so a resizing model resizes)."""
    rng = np.random.default_rng(7)
    events = []
    for i in range(n):
        pixels = rng.integers(0, 256, size=(20 + i % 13, 24 + i % 7, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        events.append({"image": base64.b64encode(buffer.getvalue()).decode("ascii")})
    return events


def answers_alone_and_together(handler, events) -> tuple[list, list]:
    alone = [handler.lambda_handler(e, None) for e in events]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        together = list(pool.map(lambda e: handler.lambda_handler(e, None), events * 3))
    return alone * 3, together


@pytest.mark.parametrize("backend", ["litert", "onnxruntime"])
def test_a_hundred_threads_each_get_their_own_images_answer(tmp_path, converted_tiny, backend, monkeypatch):
    monkeypatch.setenv("LAMB_LOG_TIMING", "1")  # the timings are per request too
    root = make_task_root(tmp_path / "task", converted_tiny) if backend == "litert" else onnx_task_root(tmp_path / "task", "NCHW")
    handler = load_handler(root)
    alone, together = answers_alone_and_together(handler, distinct_images(THREADS))
    assert all("error" not in a for a in together), [a for a in together if "error" in a][:3]
    assert len({json.dumps(a, sort_keys=True) for a in alone}) > THREADS // 2  # the images do differ
    wrong = [i for i, (a, b) in enumerate(zip(alone, together)) if a.keys() != b.keys()
             or not np.allclose(list(a.values()), list(b.values()), rtol=1e-5, atol=1e-6)]
    assert wrong == []


def test_a_500_never_spans_lines(tmp_path, converted_tiny, png_bytes):
    handler = load_handler(make_task_root(tmp_path / "task", converted_tiny))

    def broken(x):  # what TFLite said when two threads shared an interpreter
        raise RuntimeError("There is at least 1 reference to internal data\n      in the interpreter in the form of a numpy array or slice.\r\n Be sure to only hold...")

    handler.model.backend.run = broken
    result = handler.lambda_handler({"image": base64.b64encode(png_bytes).decode()}, None)
    assert result["statusCode"] == 500 and "\n" not in result["error"] and "\r" not in result["error"]
    assert result["error"].startswith("internal error: RuntimeError: There is at least 1 reference to internal data in the interpreter")
