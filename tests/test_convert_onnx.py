"""lamb.convert.onnx: Keras -> SavedModel -> tf2onnx, and ONNX Runtime's quantization modes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from lamb import manifest as mf
from lamb import runtime_lib
from lamb.convert import convert_model
from lamb.convert.onnx import OPSET, describe, quantize
from lamb.errors import InputError

ONNX = runtime_lib.get("onnxruntime").format


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_a_keras_model_becomes_an_onnx_model_with_its_own_names_and_opset(converted_tiny_onnx, tiny_classifier_h5):
    result = converted_tiny_onnx
    m = result.manifest
    assert result.model_path.suffix == ".onnx" and m.model.format == "onnx"
    assert m.model.sha256 == mf.sha256_file(result.model_path)
    assert [s.name for s in m.inputs] == ["image"] and m.inputs[0].shape[1:] == [32, 32, 3]
    assert m.inputs[0].layout is None  # tf2onnx keeps Keras's NHWC
    assert [s.name for s in m.outputs] == ["logits"]
    assert m.converter["converter"] == "tf2onnx" and m.converter["opset"] == OPSET
    model = onnx.load(str(result.model_path))
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == OPSET
    # Same numbers as Keras, through ONNX Runtime.
    import keras

    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    want = keras.models.load_model(tiny_classifier_h5, compile=False).predict(x, verbose=0)
    got = _session(result.model_path).run(["logits"], {"image": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert mf.read(result.manifest_path).converter == m.converter


@pytest.fixture(scope="module")
def float_model(converted_tiny_onnx):
    return converted_tiny_onnx.model_path.read_bytes()


def _calibration(n=4):
    rng = np.random.default_rng(1)
    samples = [rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32) for _ in range(n)]
    return lambda: iter([[s] for s in samples])


@pytest.mark.parametrize(
    ("mode", "ops", "setting"),
    [
        ("float16", {"Cast"}, ("keep_io_types", True)),
        ("dynamic", {"DynamicQuantizeLinear"}, ("weight_type", "QUInt8")),
        ("int8", {"QuantizeLinear", "DequantizeLinear"}, ("format", "QDQ")),
    ],
)
def test_each_mode_writes_a_model_onnxruntime_runs_with_float_io(float_model, mode, ops, setting):
    data, settings = quantize(float_model, ONNX.mode(mode), _calibration() if mode == "int8" else None)
    model = onnx.load_from_string(data)
    assert ops <= {n.op_type for n in model.graph.node}
    assert settings[setting[0]] == setting[1]
    inputs, outputs = describe(data, "NHWC")
    assert inputs[0].dtype == "float32" and outputs[0].dtype == "float32"
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    reference = ort.InferenceSession(float_model, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    got = session.run(None, {"image": x})[0]
    assert np.abs(got - reference).max() <= ONNX.mode(mode).tolerances.rtol * (np.ptp(reference) + 1e-6) * 2


def test_float32_is_the_model_as_tf2onnx_wrote_it(float_model):
    assert quantize(float_model, ONNX.mode("float32")) == (float_model, {})


def test_integer_io_is_refused_for_onnx(tiny_classifier_h5, sample_images, tmp_path):
    with pytest.raises(InputError, match="--integer-io is not offered for an ONNX model"):
        convert_model(tiny_classifier_h5, tmp_path / "m.onnx", runtime_lib_name="onnxruntime", quantize="int8",
                      calibration=sample_images, integer_io=True, preprocess="xception")
    assert not list(tmp_path.iterdir())


def test_the_output_must_end_in_onnx(tiny_classifier_h5, tmp_path):
    with pytest.raises(InputError, match=r"does not end in \.onnx"):
        convert_model(tiny_classifier_h5, tmp_path / "m.tflite", runtime_lib_name="onnxruntime")


def test_describe_records_a_channel_first_layout_and_open_dimensions():
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, 224, 224])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 224, 224])
    graph = helper.make_graph([helper.make_node("Identity", ["pixel_values"], ["y"])], "g", [x], [y])
    inputs, outputs = describe(helper.make_model(graph), "NCHW")
    assert inputs[0].shape == [-1, 3, 224, 224] and inputs[0].layout == "NCHW"
    assert outputs[0].layout is None


def test_the_onnx_converter_leaves_a_trail_for_verbose(tiny_classifier_h5, tmp_path, caplog):
    with caplog.at_level("DEBUG", logger="lamb.convert.onnx"):
        result = convert_model(tiny_classifier_h5, tmp_path / "m.onnx", runtime_lib_name="onnxruntime", quantize="dynamic")
    lines = [r.getMessage() for r in caplog.records if r.name == "lamb.convert.onnx"]
    assert len(lines) == 1 and lines[0].startswith(f"ONNX dynamic: {result.model_bytes} bytes in "), lines


def test_an_onnx_files_mode_is_read_off_its_ops(converted_tiny_onnx, tmp_path):
    """What verify judges an .onnx named without a manifest by: its tensor types cannot tell QDQ from dynamic."""
    from lamb.convert.onnx import quantization_of

    assert quantization_of(converted_tiny_onnx.model_path) == "float32"
    float32 = converted_tiny_onnx.model_path.read_bytes()
    for mode in ("dynamic", "float16"):
        data, _settings = quantize(float32, runtime_lib.get("onnxruntime").format.mode(mode))
        (tmp_path / f"{mode}.onnx").write_bytes(data)
        assert quantization_of(tmp_path / f"{mode}.onnx") == mode


def _gemm_onnx(n: int = 300) -> bytes:
    """A float32 (1, n) -> (1, n) Gemm: n*n weights (360 KB at 300), more than half of small_disk."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"])], "gemm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_full_temporary_disk_while_quantizing_is_one_line_and_leaves_nothing(small_disk, monkeypatch):
    """The quantizer writes its own copies of the model (pre-processed, quantized) in the
    temporary folder: the disk filling there is one line naming the folder, not a traceback."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    dynamic = runtime_lib.model_format("onnx").mode("dynamic")
    with pytest.raises(InputError) as caught:
        quantize(_gemm_onnx(), dynamic)
    assert caught.value.message.startswith(f"cannot write {small_disk}/lamb-onnx-") and "No space left on device" in caught.value.message
    assert "free some space" in caught.value.hint
    assert list(small_disk.iterdir()) == []
