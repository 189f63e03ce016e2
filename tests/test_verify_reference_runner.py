"""The runners for an ONNX model: the shipped backend (``_runner.py``) for the converted model, ONNX's
reference evaluator and unoptimized ONNX Runtime (``_reference_runner.py``) for a source .onnx."""

from __future__ import annotations

import numpy as np
import pytest

from lamb.verify.runner import ModelRunner, RunnerFailure, resolve_runtime_env


@pytest.mark.parametrize("module", [None, "onnx.reference", "onnxruntime-unoptimized"])
def test_every_engine_of_the_runner_computes_the_same_logits(converted_tiny_onnx, tmp_path, module):
    env = resolve_runtime_env("onnxruntime")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    path = converted_tiny_onnx.model_path
    with ModelRunner(env, path) if module is None else ModelRunner.reference(env, path, module) as runner:
        info = runner.wait_ready()
        assert [i["key"] for i in info["inputs"]] == ["image"] and [o["key"] for o in info["outputs"]] == ["logits"]
        if module is None:  # the shipped backend: what it loaded the model with, and how it feeds it
            assert (info["backend"], info["layout"]) == ("ort", "NHWC")
        assert info["version"] != "unknown"
        outputs, answer = runner.run({"image": x}, tmp_path)
    assert answer["samples"] == 3
    import onnxruntime as ort

    session = ort.InferenceSession(str(converted_tiny_onnx.model_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(outputs["logits"], session.run(None, {"image": x})[0], atol=1e-5)


def test_a_file_that_is_not_onnx_is_a_load_failure(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all" * 4)
    with ModelRunner(resolve_runtime_env("onnxruntime"), junk) as runner, pytest.raises(RunnerFailure) as failure:
        runner.wait_ready()
    assert failure.value.stage == "load"


def test_missing_external_data_is_a_load_failure(tmp_path):
    from onnx import TensorProto, helper, numpy_helper, save_model

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w]))
    path = tmp_path / "m.onnx"
    save_model(model, str(path), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    (tmp_path / "m.onnx.data").unlink()
    with ModelRunner(resolve_runtime_env("onnxruntime"), path) as runner, pytest.raises(RunnerFailure) as failure:
        runner.wait_ready()
    assert failure.value.stage == "load" and "m.onnx.data" in failure.value.message
