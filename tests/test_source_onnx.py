"""lamb.source.onnx: an .onnx source is verified against an implementation independent of ONNX Runtime."""

from __future__ import annotations

import numpy as np

from lamb.convert import convert_model
from lamb.source import open_source
from lamb.source.onnx import reference_outputs
from lamb.verify import VerifyInputs, verify_model
from lamb.verify.runner import ModelRunner, resolve_runtime_env


def test_a_given_onnx_is_verified_against_onnx_reference_and_recorded(nchw_onnx, sample_images):
    result = convert_model(nchw_onnx, nchw_onnx.parent)
    report = verify_model(manifest_path=result.manifest_path, inputs=VerifyInputs(samples=8, images=sample_images))
    assert report.passed and report.reference == "onnx.reference"
    assert "independent of ONNX Runtime" in report.reference_label
    assert report.images == 12 and report.samples == 8
    assert report.outputs[0].max_abs < 1e-4
    assert report.recorded


def test_a_quantized_copy_is_judged_against_its_float_source(nchw_onnx, sample_images):
    result = convert_model(nchw_onnx, nchw_onnx.parent, quantize="int8", calibration=sample_images)
    report = verify_model(manifest_path=result.manifest_path, inputs=VerifyInputs(samples=0, images=sample_images))
    assert report.quantization == "int8" and report.reference == "onnx.reference"
    assert report.outputs[0].max_abs > 0  # int8 is not the float model, and the metrics show it
    assert report.verdict in ("pass", "pass with warning"), report.failures


def test_past_the_budget_the_weaker_reference_answers_and_says_so(nchw_onnx):
    feeds = {"pixel_values": np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32)}
    env = resolve_runtime_env("onnxruntime")

    def start(model, module):
        return ModelRunner.reference(env, model, module)

    weak = reference_outputs(start, nchw_onnx, feeds, ["logits"], budget_s=0.0)
    assert weak.which == "onnxruntime-unoptimized" and "weaker reference" in weak.label and "budget" in weak.label
    strong = open_source(nchw_onnx).load().reference_outputs(list(feeds.values()), start)
    assert strong.which == "onnx.reference"
    np.testing.assert_allclose(weak.outputs[0], strong.outputs[0], atol=1e-5)


def test_an_open_image_size_is_verified_at_the_size_convert_fixed(tmp_path):
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])], "g", [x], [y])
    path = tmp_path / "open.onnx"
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    result = convert_model(path, tmp_path, input_shape=(16, 16))
    report = verify_model(manifest_path=result.manifest_path, inputs=VerifyInputs(samples=4))
    assert report.passed and report.samples == 4


def test_without_a_manifest_the_source_says_the_layout(nchw_onnx, tmp_path):
    """`lamb verify model.onnx elsewhere/model.onnx`: no manifest to read the layout from; the source has it."""
    import shutil

    plain = tmp_path / "plain"
    plain.mkdir()
    for name in ("model.onnx", "model.onnx.data"):
        shutil.copy2(nchw_onnx.parent / name, plain / name)
    report = verify_model(nchw_onnx, plain / "model.onnx", inputs=VerifyInputs(samples=4))
    assert report.passed and report.samples == 4 and report.reference == "onnx.reference"
