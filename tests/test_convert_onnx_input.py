"""lamb convert with an ONNX source (lamb.source.onnx): an exported model (channel-first, external weights) taken as it is."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from lamb import manifest as mf
from lamb.cli import app
from lamb.convert import convert_model
from lamb.errors import ConversionError, InputError, ModelLoadError


def test_a_channel_first_model_with_external_data_is_described_as_it_is(nchw_onnx):
    before = nchw_onnx.read_bytes()
    result = convert_model(nchw_onnx, nchw_onnx.parent, labels=["a", "b", "c", "d"])
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
        convert_model(nchw_onnx, nchw_onnx.parent)
    assert not nchw_onnx.with_name("model.lamb.json").exists()


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="is not an ONNX model"):
        convert_model(junk)


def test_labels_must_match_the_output(nchw_onnx):
    with pytest.raises(InputError, match="labels"):
        convert_model(nchw_onnx, nchw_onnx.parent, labels=["a", "b"])


def test_a_tflite_runtime_library_is_refused_for_an_onnx_model(nchw_onnx):
    with pytest.raises(InputError, match="is ONNX model, and ai-edge-litert runs tflite models"):
        convert_model(nchw_onnx, nchw_onnx.parent, runtime_lib_name="ai-edge-litert")


@pytest.mark.parametrize("mode", ["dynamic", "int8"])
def test_quantized_copies_go_beside_the_source_in_one_file(nchw_onnx, sample_images, mode, monkeypatch):
    monkeypatch.chdir(nchw_onnx.parent)  # where the default model.onnx is the source itself: the copy names its mode
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
    for given in ((3, 64, 48), (64, 48), (64, 48, 3)):  # the model's own layout, just H,W, or channels last
        assert convert_model(path, tmp_path, input_shape=given).manifest.inputs[0].shape == [-1, 3, 64, 48]
    with pytest.raises(InputError, match="contradicts") as refused:
        convert_model(path, tmp_path, input_shape=(4, 64, 48))  # 4 channels: not this model's 3
    assert "3,224,224" in refused.value.hint
    with pytest.raises(InputError, match="open dimensions") as refused:
        convert_model(path, tmp_path / "refused")  # an open height and width is refused at convert, not later
    assert "--input-shape" in refused.value.hint and not (tmp_path / "refused").exists()


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


# -- full and read-only disks (issue 24 item 8) ------------------------------------------------------


def _with_a_megabyte_of_weights(nchw_onnx):
    """``nchw_onnx`` saved again with 1 MB more weights in its external data (the disk holds 512 KB)."""
    from onnx import numpy_helper

    model = onnx.load(str(nchw_onnx))
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(1 << 18, np.float32), "spare"))
    onnx.save(model, str(nchw_onnx), save_as_external_data=True, location="model.onnx.data", size_threshold=0)
    return nchw_onnx


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_temporary_file(nchw_onnx, small_disk):
    source = _with_a_megabyte_of_weights(nchw_onnx)
    result = CliRunner().invoke(app, ["convert", str(source), "-o", str(small_disk / "m.onnx")])
    said = " ".join(result.output.split())
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    assert f"error: cannot write {small_disk / 'model.onnx.data'}: No space left on device" in said
    assert list(small_disk.iterdir()) == []  # no .model.onnx.data.*.tmp, no half-written manifest


def test_a_read_only_output_folder_is_one_line_naming_the_file(nchw_onnx, small_disk):
    from conftest import remount_read_only

    remount_read_only(small_disk)
    result = CliRunner().invoke(app, ["convert", str(nchw_onnx), "-o", str(small_disk / "m.onnx")])
    said = " ".join(result.output.split())
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    assert f"error: cannot write {small_disk / 'model.onnx.data'}: Read-only file system" in said


# -- ONNX models lamb cannot ship, refused in one line (issue 24 item 2) -----------------------------


def _hostile(path, kind):
    """A small NHWC model (8x8x3 in, 3 means out), spoilt one way: ``kind`` says how."""
    from onnx import TensorProto, helper

    shapes = {"zero": [1, 0, 0, 3], "huge": [1, 2**31 - 1, 2**31 - 1, 3], "20000px": [1, 3, 20000, 20000],
              "wide": [1, 2**31 - 1]}
    dtype = TensorProto.UINT8 if kind == "20000px" else TensorProto.FLOAT  # 1.2 GB: the pixels refuse it
    x = helper.make_tensor_value_info("x", dtype, shapes.get(kind, [1, 8, 8, 3]))
    nodes, source = [], "x"
    if dtype == TensorProto.UINT8:
        nodes.append(helper.make_node("Cast", ["x"], ["floats"], to=TensorProto.FLOAT))
        source = "floats"
    if kind == "evil":
        nodes.append(helper.make_node("Exfiltrate", ["x"], ["taken"], domain="com.evil"))
        source = "taken"
    axes = {"scalar": {}, "wide": {"axes": [1]}}.get(kind, {"axes": [1, 2]})
    nodes.append(helper.make_node("ReduceMean", [source], ["means"], keepdims=0, **axes))
    out = helper.make_tensor_value_info("means", TensorProto.FLOAT, {"scalar": [], "wide": [1]}.get(kind, [1, 3]))
    graph = helper.make_graph(nodes, kind, [x], [] if kind == "no outputs" else [out])
    opsets = [helper.make_opsetid("", 13), *([helper.make_opsetid("com.evil", 1)] if kind == "evil" else [])]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("kind", "said"), [
    ("evil", "m.onnx uses com.evil:Exfiltrate: an operator outside ONNX's own domains that onnxruntime does not have, "
             "so the function would fail at cold start"),
    ("no outputs", "m.onnx has no outputs: the function would have nothing to answer"),
    ("zero", "m.onnx's input x (1, 0, 0, 3) has a dimension of 0 or less: no image fits it"),
    ("huge", "m.onnx's input x (1, 2147483647, 2147483647, 3) takes 2147483647x2147483647 images"),
    ("20000px", "m.onnx's input x (1, 3, 20000, 20000) takes 20000x20000 images (400.0 megapixels), more than the "
                "335.5 megapixels the handler may hold at Lambda's largest memory (10240 MB): no function could feed it"),
    ("wide", "m.onnx's input x (1, 2147483647) takes 8.0 GiB, more than the 2.5 GiB the handler may give an "
             "input at Lambda's largest memory (10240 MB): no function could feed it"),
    ("scalar", "m.onnx's output means is a scalar: the handler answers one score per class"),
])
def test_a_model_no_function_could_run_is_refused_in_one_line(tmp_path, kind, said):
    source = _hostile(tmp_path / "m.onnx", kind)
    result = CliRunner().invoke(app, ["convert", str(source), "--preprocess", "scale"])
    printed = " ".join(result.output.split())
    assert result.exit_code == 5 and "Traceback" not in result.output, result.output
    assert f"error: {said}" in printed
    assert not (tmp_path / "m.lamb.json").exists()


def test_an_external_data_length_past_its_file_is_refused_in_one_line(nchw_onnx):
    bare = onnx.load(str(nchw_onnx), load_external_data=False)
    for entry in bare.graph.initializer[0].external_data:
        if entry.key == "length":
            entry.value = str(10**12)  # 1 TB
    onnx.save(bare, str(nchw_onnx))
    size = (nchw_onnx.parent / "model.onnx.data").stat().st_size
    result = CliRunner().invoke(app, ["convert", str(nchw_onnx)])
    printed = " ".join(result.output.split())
    assert result.exit_code == 4 and "MemoryError" not in result.output and "Traceback" not in result.output, result.output
    assert (f"error: model.onnx records its weight conv.weight as 1,000,000,000,000 bytes at offset 0 of "
            f"model.onnx.data, which holds {size:,} bytes") in printed


def test_the_model_and_its_external_data_go_where_the_keras_path_puts_them(nchw_onnx, tmp_path, monkeypatch):
    """Issue 22: `cd out && lamb convert ../m.onnx` writes into out/, not into the user's data folder."""
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    result = convert_model(nchw_onnx)
    assert result.model_path == out / "model.onnx" and result.manifest_path == out / "model.lamb.json"
    assert (out / "model.onnx.data").read_bytes() == (nchw_onnx.parent / "model.onnx.data").read_bytes()
    assert not nchw_onnx.with_name("model.lamb.json").exists()
    data = (out / "model.onnx.data").stat().st_size
    assert result.model_bytes == (out / "model.onnx").stat().st_size + data  # the sizes count the external data


def test_a_pytorch_checkpoint_points_to_torch_onnx_export(tmp_path):
    checkpoint = tmp_path / "hair.pt"
    checkpoint.write_bytes(b"PK\x03\x04 torch zip")
    with pytest.raises(InputError, match="PyTorch") as refused:
        convert_model(checkpoint, tmp_path)
    assert "torch.onnx.export" in refused.value.hint and "external_data=True" in refused.value.hint


def test_an_unknown_operator_inside_a_subgraph_is_refused_too(tmp_path):
    from onnx import TensorProto, helper

    def value(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3])

    hidden = helper.make_graph([helper.make_node("Exfiltrate", ["means"], ["a"], domain="com.evil")], "then", [], [value("a")])
    plain = helper.make_graph([helper.make_node("Identity", ["means"], ["b"])], "else", [], [value("b")])
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["means"], axes=[1, 2], keepdims=0),
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["scores"], then_branch=hidden, else_branch=plain),
    ]
    graph = helper.make_graph(nodes, "hidden", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 3])],
                              [value("scores")], [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.evil", 1)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    with pytest.raises(ConversionError, match=r"^m\.onnx uses com\.evil:Exfiltrate: an operator outside ONNX's own domains"):
        convert_model(tmp_path / "m.onnx", preprocess="scale")
    assert not (tmp_path / "m.lamb.json").exists()
