"""The course's 2025 flow, end to end (issue 15 item 10, issue 22 item 10), on the core install too
(tests/test_core_install.py runs this module where TensorFlow is not installed).

- an exported ONNX model, channel-first with its weights in model.onnx.data -> lamb convert
  --preprocess torch -> lamb verify -> lamb package --runtime python3.13 -> the course's
  {"url": ...} request answered through lamb serve;
- the 2025 homework: a PyTorch-shaped binary classifier (Conv2d -> ReLU -> MaxPool2d -> Flatten ->
  Linear -> ReLU -> Linear to one logit, 200x200, ImageNet mean/std) with external data and two
  labels -> convert, verify --labeled-images, compare, package, invoke, serve with test.py's request.
"""

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


def _served(artifact, folder, image_url: str) -> dict:
    """What ``lamb serve ARTIFACT`` answers the course's test.py: ``{"url": ...}`` posted to the
    emulator's invocation path."""
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
                answer = requests.post(url, json={"url": image_url}, timeout=60)
                break
            except requests.ConnectionError:
                assert server.poll() is None, server.stdout.read() if server.stdout else "lamb serve exited"
                assert time.monotonic() < deadline, "lamb serve did not start within 120 s"
                time.sleep(0.5)
        assert answer.status_code == 200, answer.text
        return answer.json()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


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

    scores = _served(artifact, folder, image_server + "/cat.png")
    assert list(scores) == ["cat", "dog", "bird", "fish"]
    assert all(isinstance(v, float) for v in scores.values())

    # The numbers the model computes on the handler's own pixels, laid out channel-first by hand.
    import numpy as np
    import onnxruntime as ort

    from lamb.handler.lambkit import decode_image, image_to_pixels, preprocess

    image = decode_image(requests.get(image_server + "/cat.png", timeout=10).content)
    x = preprocess(image_to_pixels(image, (32, 32)), "torch")[None].transpose(0, 3, 1, 2).astype(np.float32)
    want = ort.InferenceSession(str(nchw_onnx), providers=["CPUExecutionProvider"]).run(None, {"pixel_values": x})[0][0]
    np.testing.assert_allclose(list(scores.values()), want, rtol=1e-4, atol=1e-5)


# -- the 2025 homework: a binary classifier ------------------------------------------------------

SIZE = 200  # the homework's input: (N, 3, 200, 200)


def build_homework_onnx(folder):
    """The homework's network, narrow: Conv2d(3, 2, 3) -> ReLU -> MaxPool2d(2) -> Flatten ->
    Linear(2*99*99, 8) -> ReLU -> Linear(8, 1), one logit, as ``torch.onnx.export(model, x,
    "hair.onnx", input_names=["input"], output_names=["output"], external_data=True)`` writes it
    (weights in hair.onnx.data). Its weights make it answer a red image "curly" (the positive class)
    and a blue one "straight": channel 0 sees red less blue, channel 1 the opposite, and the logit
    is their difference."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save_model

    conv = np.zeros((2, 3, 3, 3), np.float32)
    conv[0, 0, 1, 1], conv[0, 2, 1, 1] = 1.0, -1.0
    conv[1] = -conv[0]
    area = (SIZE - 2) // 2
    fc1 = np.random.default_rng(0).normal(0, 1e-3, (8, 2 * area * area)).astype(np.float32)
    fc1[0] = np.concatenate([np.full(area * area, 1 / area**2), np.full(area * area, -1 / area**2)])
    fc1[1] = -fc1[0]
    fc2 = np.zeros((1, 8), np.float32)
    fc2[0, :2] = 1.0, -1.0
    weights = {"conv1.weight": conv, "conv1.bias": np.zeros(2), "fc1.weight": fc1, "fc1.bias": np.zeros(8),
               "fc2.weight": fc2, "fc2.bias": np.zeros(1)}
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["/conv1/Conv_output_0"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["/conv1/Conv_output_0"], ["/relu/Relu_output_0"]),
        helper.make_node("MaxPool", ["/relu/Relu_output_0"], ["/pool/MaxPool_output_0"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["/pool/MaxPool_output_0"], ["/Flatten_output_0"], axis=1),
        helper.make_node("Gemm", ["/Flatten_output_0", "fc1.weight", "fc1.bias"], ["/fc1/Gemm_output_0"], transB=1),
        helper.make_node("Relu", ["/fc1/Gemm_output_0"], ["/relu_1/Relu_output_0"]),
        helper.make_node("Gemm", ["/relu_1/Relu_output_0", "fc2.weight", "fc2.bias"], ["output"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", 1])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="pytorch", producer_version="2.13.0")
    model.ir_version = 10
    path = folder / "hair.onnx"
    save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="hair.onnx.data", size_threshold=0)
    return path


def _photo(color, seed):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(np.clip(np.array(color) + rng.normal(0, 25, (240, 240, 3)), 0, 255).astype(np.uint8))


@pytest.fixture
def hair_photos(tmp_path):
    """Labelled photos, a folder per class as the homework's dataset has them (reddish: curly)."""
    root = tmp_path / "data" / "test"
    for label, color in (("straight", (40, 70, 190)), ("curly", (190, 70, 40))):
        (root / label).mkdir(parents=True)
        for n in range(4):
            _photo(color, n + (10 if label == "curly" else 0)).save(root / label / f"{n}.jpg", quality=95)
    return root


@pytest.fixture
def photo_server(hair_photos):
    """``http.server`` serving the photos folder on 127.0.0.1 (the function needs LAMB_ALLOW_PRIVATE_URLS=1)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(hair_photos)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_2025_homework_binary_classifier_end_to_end(tmp_path, hair_photos, photo_server, monkeypatch):
    import numpy as np
    import onnxruntime as ort

    from lamb.handler.lambkit import decode_image, image_to_pixels, preprocess

    exported = tmp_path / "exported"
    exported.mkdir()
    source = build_homework_onnx(exported)
    work = tmp_path / "out"
    work.mkdir()
    monkeypatch.chdir(work)  # the README's pattern: the files go here, the data folder stays as it is

    converted = json.loads(_lamb("convert", str(source), "--labels", "straight,curly", "--json").stdout)["manifest"]
    assert converted["head"] == "binary-logit" and converted["preprocess"] == "torch"  # channel-first: ImageNet mean/std
    assert converted["model"]["external_data"] == ["hair.onnx.data"]
    assert sorted(p.name for p in exported.iterdir()) == ["hair.onnx", "hair.onnx.data"]

    verified = json.loads(_lamb("verify", "--labeled-images", str(hair_photos), "--json").stdout)
    assert verified["passed"] and verified["reference"] == "onnx.reference"
    accuracy = verified["accuracy"]
    assert accuracy["classes"] == ["straight", "curly"] and accuracy["preprocess"] == "torch"
    assert (accuracy["converted"]["images"], accuracy["converted"]["correct"]) == (8, 8)

    compared = json.loads(_lamb(
        "compare", str(source), "--labeled-images", str(hair_photos), "--labels", "straight,curly", "--modes", "float32,float16",
        "--samples", "4", "--memory", "1024", "--runtime", "python3.13", "--json",
    ).stdout)
    rows = {r["mode"]: r for r in compared["rows"]}
    assert set(rows) == {"float32", "float16"} and compared["recommended"] in rows
    assert rows["float32"]["accuracy"] == 1.0  # every labelled photo on the right side of 0.5

    _lamb("package", "--runtime", "python3.13")
    (artifact,) = work.glob("hair-python3.13-*.zip")
    with zipfile.ZipFile(artifact) as z:
        assert {"model.onnx", "hair.onnx.data", "lambda_function.py"} <= set(z.namelist())  # the weights keep their name
        assert json.loads(z.read("lamb.json"))["head"] == "binary-logit"

    photo = hair_photos / "curly" / "0.jpg"
    x = preprocess(image_to_pixels(decode_image(photo.read_bytes()), (SIZE, SIZE)), "torch")[None].transpose(0, 3, 1, 2)
    logit = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(None, {"input": x.astype(np.float32)})[0][0, 0]
    p = 1 / (1 + np.exp(-logit))
    assert p > 0.5

    invoked = json.loads(_lamb("invoke", str(artifact), "--image", str(photo), "--json").stdout)["response"]
    served = _served(artifact, work, photo_server + "/curly/0.jpg")
    for answer in (invoked, served):
        assert list(answer) == ["straight", "curly"]
        np.testing.assert_allclose([answer["straight"], answer["curly"]], [1 - p, p], rtol=1e-4, atol=1e-5)
