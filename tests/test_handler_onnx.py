"""The shipped handler's ONNX Runtime backend, on tiny ONNX models built here with onnx.helper:
channel-first (NCHW, PyTorch's layout) and channel-last (NHWC), each answered as onnxruntime
itself computes it on the same preprocessed pixels."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import TINY_LABELS
from test_handler import load_handler

from lamb.handler.lambkit import decode_image, image_to_pixels, preprocess

SIZE = 16
HANDLER = Path(__file__).resolve().parent.parent / "lamb" / "handler"


def tiny_onnx(path: Path, layout: str) -> Path:
    """Per-channel mean -> a 3x4 dense layer -> softmax. The weights treat the channels
    differently, so feeding the wrong layout (or BGR for RGB) changes the answer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    shape = ["N", 3, SIZE, SIZE] if layout == "NCHW" else ["N", SIZE, SIZE, 3]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    weights = np.array([[1.0, -2.0, 0.5, 3.0], [-1.0, 0.0, 2.0, -0.5], [2.5, 1.0, -1.5, 0.0]], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=axes, keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", 4])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime 1.x reads everywhere
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def onnx_task_root(root: Path, layout: str, *, external_data: bool = False, record_layout: bool = True) -> Path:
    """A task root as `lamb package` lays it out for an ONNX model: a version-2 record."""
    root.mkdir(parents=True)
    shutil.copy2(HANDLER / "lambda_function.py", root)
    shutil.copytree(HANDLER / "lambkit", root / "lambkit", ignore=shutil.ignore_patterns("__pycache__"))
    tiny_onnx(root / "model.onnx", layout)
    if external_data:  # the weights in model.onnx.data beside it, as PyTorch exports large models
        import onnx

        model = onnx.load(root / "model.onnx")
        onnx.save(model, root / "model.onnx", save_as_external_data=True, location="model.onnx.data", size_threshold=0)
    shape = [-1, 3, SIZE, SIZE] if layout == "NCHW" else [-1, SIZE, SIZE, 3]
    spec = {"name": "image", "shape": shape, "dtype": "float32", **({"layout": layout} if record_layout else {})}
    record = {
        "schema_version": 2, "runtime_lib": "onnxruntime", "preprocess": "torch", "labels": TINY_LABELS,
        "model": {"file": "model.onnx", "format": "onnx", **({"external_data": ["model.onnx.data"]} if external_data else {})},
        "inputs": [spec],
        "outputs": [{"name": "probs", "shape": [-1, 4], "dtype": "float32"}],
    }
    (root / "lamb.json").write_text(json.dumps(record))
    return root


def onnxruntime_answer(model: Path, png: bytes, layout: str) -> np.ndarray:
    import onnxruntime as ort

    x = preprocess(image_to_pixels(decode_image(png), (SIZE, SIZE)), "torch")[None]
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(["probs"], {"image": np.ascontiguousarray(x)})[0].reshape(-1)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_onnx_backend_answers_what_onnxruntime_computes(tmp_path, png_bytes, layout):
    root = onnx_task_root(tmp_path / "task", layout)
    result = load_handler(root).lambda_handler({"image": base64.b64encode(png_bytes).decode()}, None)
    assert list(result) == TINY_LABELS
    want = onnxruntime_answer(root / "model.onnx", png_bytes, layout)
    np.testing.assert_allclose([result[k] for k in TINY_LABELS], want, rtol=1e-5, atol=1e-6)


def test_onnx_external_data_and_a_record_without_layout(tmp_path, png_bytes):
    root = onnx_task_root(tmp_path / "task", "NCHW", external_data=True, record_layout=False)
    assert (root / "model.onnx.data").stat().st_size > 0
    result = load_handler(root).lambda_handler({"image": base64.b64encode(png_bytes).decode()}, None)
    want = onnxruntime_answer(root / "model.onnx", png_bytes, "NCHW")  # (N, 3, 16, 16): channels-first is the only reading
    np.testing.assert_allclose([result[k] for k in TINY_LABELS], want, rtol=1e-5, atol=1e-6)


def test_onnx_layouts_are_not_interchangeable(tmp_path, png_bytes):
    # Channels-last pixels merely reshaped to (1, 3, H, W) give another answer than the real
    # transpose: the test above would catch a backend that ignored the record's layout.
    import onnxruntime as ort

    model = tiny_onnx(tmp_path / "a.onnx", "NCHW")
    x = preprocess(image_to_pixels(decode_image(png_bytes), (SIZE, SIZE)), "torch")[None]
    wrong = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(["probs"], {"image": x.reshape(1, 3, SIZE, SIZE)})[0]
    assert not np.allclose(wrong.reshape(-1), onnxruntime_answer(model, png_bytes, "NCHW"), atol=1e-3)


def test_onnx_session_threads_follow_the_vcpus(tmp_path, monkeypatch):
    root = onnx_task_root(tmp_path / "task", "NCHW")
    monkeypatch.delenv("LAMB_NUM_THREADS", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")  # 0.58 vCPU: one thread
    model = load_handler(root).model
    assert model.format == "onnx" and model.num_threads == 1
    assert model.backend.session.get_session_options().intra_op_num_threads == 1
    monkeypatch.setenv("LAMB_NUM_THREADS", "3")
    assert load_handler(root).model.backend.session.get_session_options().intra_op_num_threads == 3


def test_onnx_proxy_event_and_bad_input_answer_as_litert_does(tmp_path, png_bytes):
    from test_handler import proxy_result, rest_event

    handler = load_handler(onnx_task_root(tmp_path / "task", "NCHW"))
    status, body = proxy_result(handler.lambda_handler(rest_event(json.dumps({"image": base64.b64encode(png_bytes).decode()})), None))
    assert status == 200 and list(body) == TINY_LABELS
    assert handler.lambda_handler({"image": "!!"}, None)["statusCode"] == 400
    assert handler.lambda_handler({"url": "http://169.254.169.254/"}, None)["statusCode"] == 400


def _conv_onnx(path: Path) -> Path:
    """A 3x3 convolution, batch norm and relu on 16x16 NCHW: a graph ORT_ENABLE_ALL rewrites
    (Conv+BatchNormalization+Relu fused; on x86 the NCHWc layout), so its optimized file differs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")]
    inits += [numpy_helper.from_array(v.astype(np.float32), n) for n, v in
              (("scale", rng.uniform(0.5, 1.5, 8)), ("bias", rng.standard_normal(8)), ("mean", rng.standard_normal(8)),
               ("var", rng.uniform(0.5, 1.5, 8)))]
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["b"]),
         helper.make_node("Relu", ["b"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["g"]),
         helper.make_node("Flatten", ["g"], ["probs"])],
        "conv", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 8])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_model_preoptimized_for_this_cpu_loads_here_and_the_plain_model_elsewhere(tmp_path):
    import onnxruntime as ort

    from lamb.handler.lambkit.backends.ort import OPTIMIZED_FILE, OnnxRuntimeBackend, preoptimize
    from lamb.handler.lambkit.cpu import this_cpu

    model = _conv_onnx(tmp_path / "model.onnx")
    entry = preoptimize(str(model), str(tmp_path / OPTIMIZED_FILE))
    data = OPTIMIZED_FILE + ".data"
    assert entry == {"file": OPTIMIZED_FILE, "data": data, "isa": this_cpu().isa, "runtime_lib_version": ort.__version__}
    assert (tmp_path / OPTIMIZED_FILE).read_bytes() != model.read_bytes()
    # The weights in a file of their own, which ONNX Runtime maps into memory instead of parsing.
    assert (tmp_path / data).stat().st_size > (tmp_path / OPTIMIZED_FILE).stat().st_size
    weights = [t for t in onnx.load(str(tmp_path / OPTIMIZED_FILE), load_external_data=False).graph.initializer
               if t.data_location == onnx.TensorProto.EXTERNAL]
    assert weights and all({kv.key: kv.value for kv in t.external_data}["location"] == data for t in weights)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    plain = OnnxRuntimeBackend(str(model), {}, 1)
    here = OnnxRuntimeBackend(str(model), {"package": {"optimized": entry}}, 1)
    assert plain.path == str(model) and here.path == str(tmp_path / OPTIMIZED_FILE)
    assert np.allclose(plain.run(x)[0][1], here.run(x)[0][1], rtol=1e-5, atol=1e-6)
    # Another CPU's instruction sets, or another release's file: the plain model, optimized as it loads.
    for other in ({**entry, "isa": "x86_64+avx2"}, {**entry, "runtime_lib_version": "1.16.3"}):
        assert OnnxRuntimeBackend(str(model), {"package": {"optimized": other}}, 1).path == str(model)
    (tmp_path / data).unlink()  # its weights recorded but missing: the plain model
    assert OnnxRuntimeBackend(str(model), {"package": {"optimized": entry}}, 1).path == str(model)
    (tmp_path / OPTIMIZED_FILE).unlink()  # recorded but missing: the plain model
    assert OnnxRuntimeBackend(str(model), {"package": {"optimized": entry}}, 1).path == str(model)
