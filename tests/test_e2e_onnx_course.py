"""The course's 2025 flow, end to end (issue 15 item 10): an exported ONNX model, channel-first with
its weights in model.onnx.data -> lamb convert --preprocess torch -> lamb verify -> lamb package
--runtime python3.13 -> the course's {"url": ...} request answered through lamb serve."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile

import pytest
import requests
from typer.testing import CliRunner

from lamb import manifest as mf
from lamb.cli import app

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lamb(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_the_course_flow_on_an_exported_onnx_model(nchw_onnx, image_server, monkeypatch):
    folder = nchw_onnx.parent
    (folder / "labels.txt").write_text("cat\ndog\nbird\nfish\n")
    monkeypatch.chdir(folder)

    _lamb("convert", "model.onnx", "--preprocess", "torch", "--labels-file", "labels.txt")
    manifest = mf.read(folder / "model.lamb.json")
    assert manifest.inputs[0].layout == "NCHW" and manifest.model.external_data == ["model.onnx.data"]

    verified = json.loads(_lamb("verify", "--json").stdout)
    assert verified["passed"] and verified["reference"] == "onnx.reference"

    _lamb("package", "--runtime", "python3.13")
    (artifact,) = folder.glob("*python3.13*.zip")
    with zipfile.ZipFile(artifact) as z:
        names = set(z.namelist())
        shipped = json.loads(z.read("lamb.json"))
    assert {"model.onnx", "model.onnx.data", "lambda_function.py"} <= names
    assert not any(n.startswith(("ai_edge_litert/", "tflite_runtime/")) for n in names)
    assert shipped["model"]["format"] == "onnx" and shipped["inputs"][0]["layout"] == "NCHW"

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen(
        [sys.executable, "-c", "from lamb.cli import app; app()", "serve", str(artifact), "--port", str(port),
         "--env", "LAMB_ALLOW_PRIVATE_URLS=1"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://localhost:{port}/2015-03-31/functions/function/invocations"
        deadline = time.monotonic() + 120
        while True:
            try:
                # What the course's test.py sends to `docker run -p 8080:8080 ...`.
                answer = requests.post(url, json={"url": image_server + "/cat.png"}, timeout=60)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stdout.read() if server.stdout else "lamb serve exited"
                assert time.monotonic() < deadline, "lamb serve did not start within 120 s"
                time.sleep(0.5)
        assert answer.status_code == 200, answer.text
        scores = answer.json()
        assert list(scores) == ["cat", "dog", "bird", "fish"]
        assert all(isinstance(v, float) for v in scores.values())
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    # The numbers the model computes on the handler's own pixels, laid out channel-first by hand.
    import numpy as np
    import onnxruntime as ort

    from lamb.handler.lambkit import decode_image, image_to_pixels, preprocess

    image = decode_image(requests.get(image_server + "/cat.png", timeout=10).content)
    x = preprocess(image_to_pixels(image, (32, 32)), "torch")[None].transpose(0, 3, 1, 2).astype(np.float32)
    want = ort.InferenceSession(str(nchw_onnx), providers=["CPUExecutionProvider"]).run(None, {"pixel_values": x})[0][0]
    np.testing.assert_allclose(list(scores.values()), want, rtol=1e-4, atol=1e-5)
