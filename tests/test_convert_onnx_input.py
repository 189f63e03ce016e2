"""lamb.convert.onnx_input: an exported ONNX model (channel-first, external weights) taken as it is."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from lamb import manifest as mf
from lamb.cli import app
from lamb.convert import convert_model
from lamb.errors import InputError, ModelLoadError


def test_a_channel_first_model_with_external_data_is_described_as_it_is(nchw_onnx):
    before = nchw_onnx.read_bytes()
    result = convert_model(nchw_onnx, labels=["a", "b", "c", "d"])
    m = result.manifest
    assert result.model_path == nchw_onnx and nchw_onnx.read_bytes() == before  # not rewritten
    assert result.manifest_path == nchw_onnx.with_name("model.lamb.json")
    assert m.model.format == "onnx" and m.model.external_data == ["model.onnx.data"]
    assert m.model.sha256 == mf.sha256_file(nchw_onnx)
    assert m.inputs[0].name == "pixel_values" and m.inputs[0].shape == [-1, 3, 32, 32] and m.inputs[0].layout == "NCHW"
    assert m.outputs[0].name == "logits" and m.outputs[0].layout is None
    assert m.preprocess == "torch" and m.preprocess_note.startswith("inferred: the input is channel-first")
    assert m.source_format == "onnx" and m.parameters == 8 * 27 + 8 + 32 + 4
    assert m.converter == {"converter": "as given", "producer": "pytorch 2.9", "opset": 18, "ir_version": 9}
    assert m.source_bytes == nchw_onnx.stat().st_size + (nchw_onnx.parent / "model.onnx.data").stat().st_size
    assert mf.read(result.manifest_path).inputs[0].layout == "NCHW"


def test_a_preprocess_alias_is_recorded_as_the_handler_spells_it(nchw_onnx, tmp_path):
    # The handler knows "xception", not Keras's "tf": the manifest must carry the normalised name.
    result = convert_model(nchw_onnx, tmp_path / "out" / "course.onnx", preprocess="tf")
    assert result.manifest.preprocess == "xception" and result.manifest.preprocess_note == "given"


def test_copied_elsewhere_the_external_data_goes_along(nchw_onnx, tmp_path):
    result = convert_model(nchw_onnx, tmp_path / "out" / "course.onnx", preprocess="scale")
    assert (tmp_path / "out" / "model.onnx.data").is_file()
    assert result.manifest.preprocess == "scale" and result.manifest.preprocess_note == "given"
    session = ort.InferenceSession(str(result.model_path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"pixel_values": np.zeros((1, 3, 32, 32), np.float32)})[0].shape == (1, 4)


def test_missing_external_data_is_one_sentence(nchw_onnx):
    (nchw_onnx.parent / "model.onnx.data").unlink()
    with pytest.raises(InputError, match=r"keeps its weights in model\.onnx\.data, which is not beside it"):
        convert_model(nchw_onnx)
    assert not nchw_onnx.with_name("model.lamb.json").exists()


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="is not an ONNX model"):
        convert_model(junk)


def test_labels_must_match_the_output(nchw_onnx):
    with pytest.raises(InputError, match="labels"):
        convert_model(nchw_onnx, labels=["a", "b"])


def test_a_tflite_runtime_library_is_refused_for_an_onnx_model(nchw_onnx):
    with pytest.raises(InputError, match="runs tflite models"):
        convert_model(nchw_onnx, runtime_lib_name="ai-edge-litert")


@pytest.mark.parametrize("mode", ["dynamic", "int8"])
def test_quantized_copies_go_beside_the_source_in_one_file(nchw_onnx, sample_images, mode):
    result = convert_model(nchw_onnx, quantize=mode, calibration=sample_images if mode == "int8" else None)
    assert result.model_path == nchw_onnx.with_name(f"model.{mode}.onnx")
    assert result.manifest.model.external_data == [] and result.manifest.inputs[0].layout == "NCHW"
    assert result.manifest.converter["producer"] == "pytorch 2.9"
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    want = ort.InferenceSession(str(nchw_onnx), providers=["CPUExecutionProvider"]).run(None, {"pixel_values": x})[0]
    got = ort.InferenceSession(str(result.model_path), providers=["CPUExecutionProvider"]).run(None, {"pixel_values": x})[0]
    assert np.abs(got - want).max() < 0.2 * np.ptp(want) + 1e-3
    if mode == "int8":
        assert result.manifest.calibration["images"] == 12
        assert "QuantizeLinear" in {n.op_type for n in onnx.load(str(result.model_path)).graph.node}


def test_input_shape_fills_open_image_dimensions(tmp_path):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, "h", "w"])
    path = tmp_path / "open.onnx"
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])), str(path))
    assert convert_model(path, input_shape=(64, 48, 3)).manifest.inputs[0].shape == [-1, 3, 64, 48]
    with pytest.raises(InputError, match="does not fit"):
        convert_model(path, input_shape=(64, 48, 4))


def test_the_cli_says_what_it_inferred(nchw_onnx, monkeypatch):
    monkeypatch.chdir(nchw_onnx.parent)
    result = CliRunner().invoke(app, ["convert", "model.onnx"])
    assert result.exit_code == 0, result.output
    assert "torch" in result.output and "channel-first" in result.output


def test_external_data_outside_the_models_folder_is_refused(tmp_path):
    """A model whose weights point at ../ (or an absolute path) would ship, or read, files not its own."""
    from onnx import TensorProto, helper, numpy_helper, save_model

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [w]))
    (tmp_path / "inner").mkdir()
    path = tmp_path / "inner" / "m.onnx"
    save_model(model, str(path), save_as_external_data=True, location="m.onnx.data", size_threshold=0)
    bare = onnx.load(str(path), load_external_data=False)
    for entry in bare.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../secret.data"
    (tmp_path / "secret.data").write_bytes((tmp_path / "inner" / "m.onnx.data").read_bytes())
    onnx.save(bare, str(path))
    with pytest.raises(InputError, match="outside its own folder"):
        convert_model(path)
    assert not path.with_name("m.lamb.json").exists()
