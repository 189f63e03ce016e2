"""lamb.source: one seam for the model a user brings. open_source tells a Keras file, a SavedModel
folder and an .onnx apart; each answers the same questions; --input-shape is read in the model's own layout."""

from __future__ import annotations

import pytest

from lamb.errors import InputError, ModelLoadError
from lamb.source import InputSpec, apply_input_shape, open_source, source_bytes
from lamb.source.base import NCHW, NHWC


def test_each_kind_is_opened_by_its_own_implementation(tiny_classifier_h5, nchw_onnx, tmp_path):
    keras = open_source(tiny_classifier_h5)
    assert (keras.kind, keras.title, keras.stem) == ("h5", "Keras model", tiny_classifier_h5.stem)
    assert keras.converts_to("tflite") and keras.converts_to("onnx")
    onnx = open_source(nchw_onnx)
    assert (onnx.kind, onnx.title, onnx.stem) == ("onnx", "ONNX model", "model")
    assert onnx.converts_to("onnx") and not onnx.converts_to("tflite")
    assert [p.name for p in onnx.files()] == ["model.onnx", "model.onnx.data"]
    assert source_bytes(onnx) == sum(p.stat().st_size for p in nchw_onnx.parent.iterdir())  # the external data counts
    renamed = tmp_path / "weights.bin.model"
    renamed.write_bytes(tiny_classifier_h5.read_bytes())
    assert open_source(renamed).kind == "h5"  # its first bytes, not its name


def test_what_lamb_cannot_read_is_one_sentence_naming_what_it_reads(tmp_path):
    with pytest.raises(InputError, match="no model at") as missing:
        open_source(tmp_path / "nothing.h5")
    assert ".onnx" in missing.value.hint
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(InputError, match="not a SavedModel"):
        open_source(tmp_path / "empty_folder")
    other = tmp_path / "notes.txt"
    other.write_text("not a model")
    with pytest.raises(ModelLoadError, match="not a model lamb reads") as refused:
        open_source(other)
    assert "torch.onnx.export" in refused.value.hint
    for name in ("hair.pt", "hair.pth"):
        (tmp_path / name).write_bytes(b"PK\x03\x04")
        with pytest.raises(InputError, match="PyTorch") as pytorch:
            open_source(tmp_path / name)
        assert "torch.onnx.export" in pytorch.value.hint and "external_data=True" in pytorch.value.hint


def test_a_loaded_onnx_answers_the_seams_questions(nchw_onnx):
    loaded = open_source(nchw_onnx).load()
    (image,) = loaded.inputs()
    assert (image.name, image.shape, image.layout) == ("pixel_values", [None, 3, 32, 32], NCHW)
    assert [(o.name, o.shape) for o in loaded.outputs()] == [("logits", [-1, 4])]
    mode, note, mismatch = loaded.preprocessing(None)
    assert mode == "torch" and note.startswith("inferred") and mismatch is None
    assert loaded.preprocessing("scale") == ("scale", "given", None)
    given = loaded.as_format("onnx")
    assert given is not None and given.data == nchw_onnx.read_bytes() and [p.name for p in given.external] == ["model.onnx.data"]
    with pytest.raises(InputError, match="ONNX model"):
        loaded.as_format("tflite")


def test_a_loaded_keras_model_answers_the_same_questions(tiny_classifier_h5):
    import numpy as np

    loaded = open_source(tiny_classifier_h5).load()
    (image,) = loaded.inputs()
    assert image.shape == [None, 32, 32, 3] and image.layout == NHWC
    assert [o.shape for o in loaded.outputs()] == [[-1, 4]]
    assert loaded.as_format("tflite") is None  # converted, never taken as it is
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    reference = loaded.reference_outputs([x], start_runner=None)  # type: ignore[arg-type]  # Keras runs here
    assert reference.which == "keras" and reference.outputs[0].shape == (3, 4)
    np.testing.assert_allclose(reference.outputs[0], loaded.predict(x)[0], atol=1e-5)


@pytest.mark.parametrize(("layout", "given", "fixed"), [
    (NHWC, (224, 224, 3), [None, 224, 224, 3]),
    (NHWC, (224, 192), [None, 224, 192, 3]),
    (NHWC, (3, 224, 192), [None, 224, 192, 3]),  # PyTorch's order, told apart by where the 3 is
    (NCHW, (3, 224, 192), [None, 3, 224, 192]),
    (NCHW, (224, 192), [None, 3, 224, 192]),
    (NCHW, (224, 192, 3), [None, 3, 224, 192]),  # Keras's order
])
def test_input_shape_is_read_in_the_models_own_layout(layout, given, fixed):
    shape = [None, 3, None, None] if layout == NCHW else [None, None, None, 3]
    (spec,) = apply_input_shape([InputSpec("x", shape, "float32", layout)], given)
    assert spec.shape == fixed and spec.layout == layout


def test_an_input_shape_in_the_other_layout_says_the_form_expected():
    nchw = InputSpec("x", [None, 3, None, None], "float32", NCHW)
    with pytest.raises(InputError, match=r"contradicts.*\(NCHW\)") as refused:
        apply_input_shape([nchw], (4, 224, 224))
    assert "CHANNELS,HEIGHT,WIDTH (e.g. 3,224,224) or HEIGHT,WIDTH" in refused.value.hint
    nhwc = InputSpec("x", [None, None, None, 3], "float32", NHWC)
    with pytest.raises(InputError, match="does not fit") as refused:
        apply_input_shape([nhwc], (1, 224, 224, 3))
    assert "HEIGHT,WIDTH,CHANNELS (e.g. 224,224,3)" in refused.value.hint
    with pytest.raises(InputError, match="open dimensions") as refused:
        apply_input_shape([nhwc], None)
    assert "--input-shape HEIGHT,WIDTH,CHANNELS" in refused.value.hint
