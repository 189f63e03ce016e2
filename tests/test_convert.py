"""lamb.convert: loading every supported format, every refusal, every quantization, the manifest."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from conftest import TINY_LABELS, at_most, build_tiny_classifier

from lamb import manifest as mf
from lamb.convert import ConversionResult, convert_model
from lamb.convert.preprocess import parse_input_shape, read_labels
from lamb.errors import ConversionError, InputError, LambError, ModelLoadError
from lamb.source.keras import load_keras_model
from lamb.source.keras_preprocess import infer_preprocess

RNG_SEED = 0


def run_tflite(path, x):
    """The .tflite's outputs for ``x`` through its serving signature (LiteRT, as verify does)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    (name,) = runner.get_input_details()
    return runner(**{name: x})


def images(n=2, size=32):
    return np.random.default_rng(RNG_SEED).uniform(0, 255, size=(n, size, size, 3)).astype(np.float32)


def assert_nothing_written(folder):
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert leftovers == [], f"files were written despite the error: {leftovers}"


def assert_one_line(err: LambError):
    assert "\n" not in err.message and err.message
    assert err.hint and "\n" not in err.hint


# -- models built for these tests ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_keras_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keras_format") / "tiny.keras"
    build_tiny_classifier().save(path)
    return path


@pytest.fixture(scope="module")
def open_shape_keras(tmp_path_factory):
    import keras

    inputs = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path_factory.mktemp("open_shape") / "open.keras"
    keras.Model(inputs, keras.layers.Dense(3, name="logits")(x)).save(path)
    return path


@pytest.fixture(scope="module")
def flex_h5(tmp_path_factory):
    """tf.linalg.inv (MatrixInverse) has no TFLite builtin in TF 2.21; only TF Select runs it."""
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((4, 4), name="matrix")
    x = tf.linalg.inv(inputs)
    x = tf_keras.layers.Flatten()(x)
    path = tmp_path_factory.mktemp("flex") / "inverse.h5"
    tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="logits")(x)).save(path)
    return path


@pytest.fixture(scope="module")
def lambda_models(tmp_path_factory):
    """Lambda layers holding Python lambdas, saved by Keras 3 (.h5, .keras) and tf_keras (.h5)."""
    import keras
    import tf_keras

    folder = tmp_path_factory.mktemp("lambda")
    inputs = keras.Input((8,), name="x")
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs))
    model.save(folder / "k3.h5")
    model.save(folder / "k3.keras")
    inputs = tf_keras.Input((8,), name="x")
    tf_keras.Model(inputs, tf_keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)).save(folder / "k2.h5")
    return folder


@pytest.fixture(scope="module")
def custom_layer_models(tmp_path_factory):
    """A registered custom layer, saved, then unregistered: what a user's file looks like to lamb."""
    import keras

    @keras.saving.register_keras_serializable(package="course")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    folder = tmp_path_factory.mktemp("custom")
    inputs = keras.Input((8,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2)(Twice(name="twice")(inputs)))
    model.save(folder / "custom.h5")
    model.save(folder / "custom.keras")
    keras.saving.get_custom_objects().pop("course>Twice")
    return folder


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory, tiny_classifier_h5):
    import keras
    import tf_keras

    folder = tmp_path_factory.mktemp("broken")
    (folder / "empty.h5").write_bytes(b"")
    (folder / "notes.h5").write_text("this is not a model\n")
    data = tiny_classifier_h5.read_bytes()
    (folder / "truncated.h5").write_bytes(data[: len(data) // 2])
    (folder / "truncated.keras").write_bytes(b"PK\x03\x04" + b"\0" * 64)
    keras.models.load_model(tiny_classifier_h5, compile=False).save_weights(folder / "k3.weights.h5")
    inputs = tf_keras.Input((4,))
    tf_keras.Model(inputs, tf_keras.layers.Dense(2)(inputs)).save_weights(folder / "k2_weights.h5")
    (folder / "not_a_savedmodel").mkdir()
    return folder


# -- float32 and the manifest -------------------------------------------------------------------


def test_float32_manifest_records_everything(converted_tiny: ConversionResult, tiny_classifier_h5):
    result = converted_tiny
    m = result.manifest
    assert result.model_path.is_file() and result.manifest_path == result.model_path.with_name("tiny.lamb.json")
    assert mf.read(result.manifest_path) == m  # what is on disk is what was returned
    assert m.schema_version == mf.SCHEMA_VERSION
    assert m.model.file == "tiny.tflite" and m.model.format == "tflite"  # relative: the pair can move together
    assert m.model.sha256 == mf.sha256_file(result.model_path)
    assert m.model.bytes == result.model_path.stat().st_size == result.model_bytes
    assert m.source_path(result.manifest_path) == tiny_classifier_h5.resolve()
    assert m.source_sha256 == mf.sha256_file(tiny_classifier_h5)
    assert m.source_bytes == tiny_classifier_h5.stat().st_size == result.source_bytes
    assert (m.source_format, m.loader, m.quantization) == ("h5", "keras", "float32")
    assert [(t.name, t.shape, t.dtype, t.scale) for t in m.inputs] == [("image", [-1, 32, 32, 3], "float32", None)]
    assert [(t.name, t.shape, t.dtype) for t in m.outputs] == [("logits", [-1, 4], "float32")]
    assert (m.preprocess, m.preprocess_note) == ("xception", "given")
    assert m.labels == TINY_LABELS
    assert m.parameters == build_tiny_classifier().count_params()
    assert not m.requires_flex and m.flex_ops == [] and m.calibration is None
    assert set(m.versions) == {"lamb", "tensorflow", "keras", "tf_keras"}
    assert m.versions["keras"].startswith("3.")
    assert result.seconds > 0 and result.model_bytes < result.source_bytes


def test_float32_computes_what_keras_computes(converted_tiny, tiny_classifier_h5):
    import keras

    x = images()
    expected = keras.models.load_model(tiny_classifier_h5, compile=False).predict(x, verbose=0)
    got = run_tflite(converted_tiny.model_path, x)["logits"]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_default_output_is_the_current_directory(tiny_classifier_h5, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = convert_model(tiny_classifier_h5)
    assert result.model_path == tmp_path / "tiny.tflite"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.lamb.json", "tiny.tflite"]
    assert mf.find(tmp_path) == result.manifest_path  # what verify/package do with no arguments


def test_the_converter_leaves_a_trail_for_verbose(tiny_classifier_h5, tmp_path, caplog):
    with caplog.at_level("DEBUG", logger="lamb.convert.tflite"):
        result = convert_model(tiny_classifier_h5, tmp_path / "m.tflite", quantize="float16")
    lines = [r.getMessage() for r in caplog.records if r.name == "lamb.convert.tflite"]
    assert lines[0].startswith("TFLite converter for float16: ops ['TFLITE_BUILTINS'], optimizations True, supported types ['float16']")
    assert lines[-1].startswith(f"converted: {result.model_bytes} bytes in ")


def test_source_below_the_manifest_is_stored_relative(tiny_classifier_h5, tmp_path):
    shutil.copy(tiny_classifier_h5, tmp_path / "model.h5")
    result = convert_model(tmp_path / "model.h5", tmp_path / "model.tflite")
    assert (result.manifest.source, result.manifest.model.file) == ("model.h5", "model.tflite")


def test_output_folder_gets_the_stem(tiny_classifier_h5, tmp_path):
    result = convert_model(tiny_classifier_h5, tmp_path)
    assert result.model_path == tmp_path / "tiny.tflite"
    json.loads(result.manifest_path.read_text())  # plain JSON for other tools


def test_keras_format(tiny_keras_file, tmp_path):
    result = convert_model(tiny_keras_file, tmp_path / "m.tflite")
    assert (result.manifest.source_format, result.manifest.loader) == ("keras", "keras")
    assert result.manifest.preprocess == "none" and result.manifest.preprocess_note.startswith("not inferred")


# -- Keras 2 files: the tf_keras fallback ------------------------------------------------------


def test_keras2_h5_with_tf_ops_falls_back_to_tf_keras(tf_keras_preprocess_h5, tmp_path):
    import tf_keras

    loaded = load_keras_model(tf_keras_preprocess_h5)
    assert loaded.loader == "tf_keras" and "TFOpLambda" in loaded.fallback_reason

    result = convert_model(tf_keras_preprocess_h5, tmp_path / "course.tflite")
    m = result.manifest
    assert m.loader == "tf_keras"
    assert any("tf_keras" in note and "Keras 3" in note for note in result.notes)
    # preprocess_input is inside the graph: the model takes raw pixels.
    assert m.preprocess == "none" and m.preprocess_note.startswith("inferred")
    x = images()
    expected = tf_keras.models.load_model(tf_keras_preprocess_h5, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(run_tflite(result.model_path, x)["logits"], expected, atol=1e-4, rtol=1e-4)


def test_loaded_model_predict_matches_for_every_loader(tf_keras_preprocess_h5, tiny_classifier_h5, tmp_path):
    import keras

    x = images(1)
    k3 = load_keras_model(tiny_classifier_h5)
    export_dir = tmp_path / "exported"
    k3.model.export(export_dir, verbose=False)
    sm = load_keras_model(export_dir)
    assert (sm.loader, sm.source_format, sm.parameter_count()) == ("tf.saved_model", "savedmodel", k3.parameter_count())
    np.testing.assert_allclose(sm.predict(x)[0], k3.predict(x)[0], atol=1e-5)
    assert isinstance(k3.model, keras.Model)


# -- SavedModel directories ---------------------------------------------------------------------


def test_savedmodel_exported_by_keras3(tiny_classifier_h5, tmp_path):
    import keras

    export_dir = tmp_path / "exported_model"
    keras.models.load_model(tiny_classifier_h5, compile=False).export(export_dir, verbose=False)
    result = convert_model(export_dir, tmp_path / "out" / "sm.tflite")
    m = result.manifest
    assert (m.source_format, m.loader) == ("savedmodel", "tf.saved_model")
    assert m.source_sha256 == mf.sha256_file(export_dir / "saved_model.pb")
    assert m.inputs[0].shape == [-1, 32, 32, 3] and m.outputs[0].shape == [-1, 4]
    assert "not inferred" in m.preprocess_note


def test_savedmodel_saved_by_tf_keras_keeps_its_layers(tf_keras_preprocess_h5, tmp_path):
    import tf_keras

    sm_dir = tmp_path / "course_sm"
    tf_keras.models.load_model(tf_keras_preprocess_h5, compile=False).save(sm_dir, save_format="tf")
    result = convert_model(sm_dir, tmp_path / "course.tflite")
    assert (result.manifest.source_format, result.manifest.loader) == ("savedmodel", "tf_keras")
    assert result.manifest.parameters is not None and result.manifest.parameters > 0


# -- refusals: one sentence, a hint, nothing written ------------------------------------------


@pytest.mark.parametrize(
    "name, error, words",
    [
        ("missing.h5", InputError, "no model at"),
        ("empty.h5", ModelLoadError, "empty"),
        ("notes.h5", ModelLoadError, "not an HDF5 file"),
        ("truncated.h5", ModelLoadError, "damaged HDF5"),
        ("truncated.keras", ModelLoadError, "damaged .keras"),
        ("k3.weights.h5", ModelLoadError, "weights only"),
        ("k2_weights.h5", ModelLoadError, "weights only"),
        ("not_a_savedmodel", InputError, "not a SavedModel"),
    ],
)
def test_unusable_files_are_refused(broken_files, tmp_path, name, error, words):
    out = tmp_path / "out"
    with pytest.raises(error) as info:
        convert_model(broken_files / name, out / "x.tflite")
    assert words in info.value.message
    assert_one_line(info.value)
    assert_nothing_written(out)


def test_weights_only_hint_says_how_to_save_the_model(broken_files, tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_keras_model(broken_files / "k3.weights.h5")
    assert "model.save(" in info.value.hint


@pytest.mark.parametrize("name", ["custom.h5", "custom.keras"])
def test_unknown_custom_layers_are_named(custom_layer_models, tmp_path, name):
    with pytest.raises(ModelLoadError) as info:
        convert_model(custom_layer_models / name, tmp_path / "x.tflite")
    assert "Twice" in info.value.message and "custom" in info.value.message
    assert_one_line(info.value)
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize("name", ["k3.h5", "k3.keras", "k2.h5"])
def test_lambda_layers_need_explicit_opt_in(lambda_models, tmp_path, name):
    with pytest.raises(ModelLoadError) as info:
        convert_model(lambda_models / name, tmp_path / "x.tflite")
    assert "Lambda" in info.value.message and "double" in info.value.message
    assert "--allow-unsafe-lambda" in info.value.hint
    assert_nothing_written(tmp_path)

    result = convert_model(lambda_models / name, tmp_path / "x.tflite", allow_unsafe_lambda=True)
    x = np.arange(8, dtype=np.float32)[None]
    np.testing.assert_allclose(run_tflite(result.model_path, x)[result.manifest.outputs[0].name], x * 2.0)


# -- input shapes -------------------------------------------------------------------------------


def test_open_input_dimensions_need_input_shape(open_shape_keras, tmp_path):
    with pytest.raises(InputError) as info:
        convert_model(open_shape_keras, tmp_path / "x.tflite")
    assert "open dimensions" in info.value.message and "--input-shape HEIGHT,WIDTH,CHANNELS" in info.value.hint
    assert_nothing_written(tmp_path)

    for given in ((24, 24, 3), (24, 24)):  # H,W,3 as the model is laid out, or just H,W
        result = convert_model(open_shape_keras, tmp_path / "x.tflite", input_shape=given)
        assert result.manifest.inputs[0].shape == [-1, 24, 24, 3]


@pytest.mark.parametrize("shape", [(24, 24, 3, 3), (24, 24, 4), (4, 24, 24)])
def test_input_shape_must_fit_the_model(open_shape_keras, tmp_path, shape):
    with pytest.raises(InputError):
        convert_model(open_shape_keras, tmp_path / "x.tflite", input_shape=shape)
    assert_nothing_written(tmp_path)


def test_parse_input_shape():
    assert parse_input_shape("224,224,3") == (224, 224, 3)
    assert parse_input_shape("(1, 64, 64, 3)") == (1, 64, 64, 3)
    assert parse_input_shape(None) is None
    for bad in ("abc", "", "224,-1,3"):
        with pytest.raises(InputError):
            parse_input_shape(bad)


# -- ops without a TFLite builtin -------------------------------------------------------------


def test_ops_without_builtin_are_named_not_dumped(flex_h5, tmp_path):
    with pytest.raises(ConversionError) as info:
        convert_model(flex_h5, tmp_path / "x.tflite")
    err = info.value
    assert "MatrixInverse" in err.message and "--allow-flex" in err.hint
    assert_one_line(err)
    assert "func.func" not in err.message and "tensor<" not in err.message  # no MLIR dump
    assert_nothing_written(tmp_path)


def test_allow_flex_converts_and_records_it(flex_h5, tmp_path):
    result = convert_model(flex_h5, tmp_path / "x.tflite", allow_flex=True)
    assert result.manifest.requires_flex and result.manifest.flex_ops == ["MatrixInverse"]
    assert mf.read(result.manifest_path).flex_ops == ["MatrixInverse"]


# -- quantization -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["float16", "dynamic"])
def test_weight_quantization(converted_tiny, tiny_classifier_h5, tmp_path, mode):
    result = convert_model(tiny_classifier_h5, tmp_path / f"{mode}.tflite", quantize=mode)
    assert result.manifest.quantization == mode
    assert result.manifest.inputs[0].dtype == "float32"
    x = images()
    reference = run_tflite(converted_tiny.model_path, x)["logits"]
    np.testing.assert_allclose(run_tflite(result.model_path, x)["logits"], reference, atol=0.05)


def test_int8_calibrates_on_images_keeps_float_io(tiny_classifier_h5, sample_images, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    calibration = tmp_path / "calibration"
    shutil.copytree(sample_images, calibration)
    (calibration / "broken.jpg").write_bytes(b"not an image")
    result = convert_model(
        tiny_classifier_h5, tmp_path / "int8.tflite", quantize="int8", calibration=calibration, preprocess="xception"
    )
    m = result.manifest
    assert m.quantization == "int8"
    assert m.calibration == {
        "images": 12, "skipped": 1, "mode": "xception", "dir": str(calibration.resolve()), "io_dtype": "float32",
    }
    assert m.inputs[0].dtype == "float32" and m.outputs[0].dtype == "float32"
    interpreter = Interpreter(model_path=str(result.model_path))
    inner = {np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()}
    assert "int8" in inner  # the computation itself is integer
    assert run_tflite(result.model_path, images(1))["logits"].shape == (1, 4)


def test_integer_io(tiny_classifier_h5, sample_images, tmp_path):
    result = convert_model(
        tiny_classifier_h5, tmp_path / "int8io.tflite", quantize="int8", calibration=sample_images, integer_io=True
    )
    (spec,) = result.manifest.inputs
    assert spec.dtype == "int8" and spec.scale > 0 and spec.zero_point is not None
    assert result.manifest.outputs[0].dtype == "int8"
    assert result.manifest.calibration["io_dtype"] == "int8"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"quantize": "int8"}, "calibration images"),
        ({"quantize": "int4"}, "unknown quantization"),
        ({"integer_io": True}, "--integer-io"),
        ({"quantize": "dynamic", "calibration": "."}, "--calibration"),
        ({"quantize": "int8", "calibration": "does-not-exist"}, "no calibration folder"),
        ({"preprocess": "imagenet"}, "unknown preprocessing"),
    ],
)
def test_bad_options_are_refused_before_loading(tiny_classifier_h5, tmp_path, kwargs, words):
    with pytest.raises(InputError) as info:
        convert_model(tiny_classifier_h5, tmp_path / "x.tflite", **kwargs)
    assert words in info.value.message
    assert_nothing_written(tmp_path)


def test_int8_calibration_folder_without_images(tiny_classifier_h5, tmp_path):
    empty = tmp_path / "cal"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match="no images"):
        convert_model(tiny_classifier_h5, tmp_path / "out" / "x.tflite", quantize="int8", calibration=empty)


# -- labels and preprocessing -------------------------------------------------------------------


def test_labels_must_match_the_output_size(tiny_classifier_h5, tmp_path):
    with pytest.raises(InputError, match=r"3 labels given but .* 4 classes"):
        convert_model(tiny_classifier_h5, tmp_path / "x.tflite", labels=["a", "b", "c"])
    assert_nothing_written(tmp_path)


def test_labels_file(tiny_classifier_h5, tmp_path):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("cat\ndog\n\nbird\nfish\n")
    result = convert_model(tiny_classifier_h5, tmp_path / "out" / "x.tflite", labels=read_labels(labels_file=labels_file))
    assert result.manifest.labels == ["cat", "dog", "bird", "fish"]


def test_read_labels_refusals(tmp_path):
    with pytest.raises(InputError, match="duplicate"):
        read_labels(["a", "a"])
    with pytest.raises(InputError, match="empty"):
        read_labels(["a", ""])
    with pytest.raises(InputError, match="both"):
        read_labels(["a"], tmp_path / "labels.txt")
    with pytest.raises(InputError, match="no labels file"):
        read_labels(None, tmp_path / "labels.txt")


def test_labels_are_bounded_before_they_are_read_or_compared(tmp_path):
    # 100,000 labels: the duplicate check compared each with all (over 8 minutes); now one pass
    labels = [f"class {i}" for i in range(100_000)]
    with at_most(60):
        assert read_labels(labels) == labels
        with pytest.raises(InputError, match=r"duplicate class labels: class 7$"):
            read_labels([*labels[:-1], "class 7"])
    with pytest.raises(InputError, match="100,001 labels given; lamb takes at most 100,000"):
        read_labels([*labels, "one more"])
    big = tmp_path / "labels.txt"
    with open(big, "wb") as f:
        f.truncate(1536 * 2**20)  # sparse: 1.5 GB (it peaked at 2.9 GB before it was refused)
    with pytest.raises(InputError, match=r"the labels file .*labels.txt is larger than 4.0 MB"):
        read_labels(labels_file=big)


def _nested(base_name: str, first_layer=None):
    import keras

    inputs = keras.Input((8, 8, 3))
    x = inputs
    if first_layer is not None:
        x = first_layer(x)
    base_in = keras.Input((8, 8, 3))
    base = keras.Model(base_in, keras.layers.Conv2D(2, 3)(base_in), name=base_name)
    x = keras.layers.GlobalAveragePooling2D()(base(x))
    return keras.Model(inputs, keras.layers.Dense(2)(x))


@pytest.mark.parametrize(
    "base_name, mode",
    [
        ("xception", "xception"),
        ("mobilenetv2_1.00_224", "xception"),
        ("inception_v3", "xception"),
        ("resnet50v2", "xception"),
        ("resnet50", "caffe"),
        ("vgg16", "caffe"),
        ("densenet121", "torch"),
        ("efficientnetb0", "none"),
        ("convnext_tiny", "none"),
    ],
)
def test_preprocess_inferred_from_base_model_name(base_name, mode):
    inferred, note = infer_preprocess(_nested(base_name))
    assert inferred == mode and note.startswith("inferred") and base_name in note


def test_preprocess_inferred_from_a_leading_rescaling_layer():
    import keras

    mode, note = infer_preprocess(_nested("my_cnn", keras.layers.Rescaling(1 / 255.0)))
    assert mode == "none" and "Rescaling" in note


def test_preprocess_not_inferred_says_so():
    mode, note = infer_preprocess(_nested("my_cnn"))
    assert mode == "none" and note.startswith("not inferred") and "--preprocess" in note


def test_preprocess_inferred_from_a_real_keras_application(tmp_path):
    import keras

    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    assert infer_preprocess(model)[0] == "xception"


def test_preprocess_input_inside_a_keras3_graph(tmp_path):
    """Keras 3 records preprocess_input as operations (TrueDivide, Subtract), not layers. Its .h5
    writer stores them but its .h5 reader cannot rebuild them: lamb says so and what to do."""
    import keras

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.applications.xception.preprocess_input(inputs)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(x))
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    model.save(tmp_path / "pp.h5")
    model.save(tmp_path / "pp.keras")

    with pytest.raises(ModelLoadError) as info:
        convert_model(tmp_path / "pp.h5", tmp_path / "out" / "x.tflite")
    assert "TrueDivide" in info.value.message and "model.keras" in info.value.hint

    result = convert_model(tmp_path / "pp.keras", tmp_path / "out" / "x.tflite")
    assert result.manifest.preprocess == "none" and "preprocess_input inside" in result.manifest.preprocess_note


def test_preprocess_inside_the_graph_wins_over_the_base_model_name():
    import tf_keras

    base_in = tf_keras.Input((8, 8, 3))
    base = tf_keras.Model(base_in, tf_keras.layers.Conv2D(2, 3)(base_in), name="xception")
    inputs = tf_keras.Input((8, 8, 3))
    x = base(tf_keras.applications.xception.preprocess_input(inputs))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(tf_keras.layers.Flatten()(x)))
    mode, note = infer_preprocess(model)
    assert mode == "none" and "inside the model" in note


def test_int8_on_a_keras2_course_model(tf_keras_preprocess_h5, sample_images, tmp_path):
    import tf_keras

    result = convert_model(tf_keras_preprocess_h5, tmp_path / "course_int8.tflite", quantize="int8", calibration=sample_images)
    assert (result.manifest.loader, result.manifest.quantization) == ("tf_keras", "int8")
    assert result.manifest.calibration["mode"] == "none"  # preprocess_input is in the graph
    x = images(4)
    expected = tf_keras.models.load_model(tf_keras_preprocess_h5, compile=False).predict(x, verbose=0)
    got = np.concatenate([run_tflite(result.model_path, x[i : i + 1])["logits"] for i in range(4)])
    scale = float(np.abs(expected).max())
    assert float(np.abs(got - expected).max()) <= 0.1 * scale  # int8: close, not equal


def test_output_must_be_a_tflite_file(tiny_classifier_h5, tmp_path):
    with pytest.raises(InputError, match=r"does not end in .tflite"):
        convert_model(tiny_classifier_h5, tmp_path / "model.onnx")
    assert_nothing_written(tmp_path)


def test_output_without_suffix_is_a_folder(tiny_classifier_h5, tmp_path):
    result = convert_model(tiny_classifier_h5, tmp_path / "new" / "folder")
    assert result.model_path == tmp_path / "new" / "folder" / "tiny.tflite"


def test_keras3_safe_mode_refusal_is_never_retried_with_tf_keras(lambda_models, tmp_path, monkeypatch):
    """Defence in depth: if lamb's own scan misses a Lambda, Keras 3's safe mode refuses it, and
    lamb must not then hand the file to tf_keras, which would run the bytecode without asking."""
    from lamb.source import keras as load

    monkeypatch.setattr(load, "find_python_lambdas", lambda config: [])
    with pytest.raises(ModelLoadError, match="Lambda") as info:
        load_keras_model(lambda_models / "k2.h5")
    assert "safe mode" in info.value.message


def test_multiple_inputs_and_outputs_keep_their_names(tmp_path):
    import keras

    a, b = keras.Input((8,), name="a"), keras.Input((4,), name="b")
    x = keras.layers.Concatenate()([a, b])
    model = keras.Model([a, b], [keras.layers.Dense(2, name="p")(x), keras.layers.Dense(3, name="q")(x)])
    model.save(tmp_path / "multi.keras")
    result = convert_model(tmp_path / "multi.keras", tmp_path / "multi.tflite")
    assert [(t.name, t.shape) for t in result.manifest.inputs] == [("a", [-1, 8]), ("b", [-1, 4])]
    assert [(t.name, t.shape) for t in result.manifest.outputs] == [("p", [-1, 2]), ("q", [-1, 3])]

    from ai_edge_litert.interpreter import Interpreter

    xa, xb = np.ones((1, 8), np.float32), np.full((1, 4), 2.0, np.float32)
    got = Interpreter(model_path=str(result.model_path)).get_signature_runner()(a=xa, b=xb)
    expected = load_keras_model(tmp_path / "multi.keras").predict(xa, xb)
    for spec, want in zip(result.manifest.outputs, expected):
        np.testing.assert_allclose(got[spec.name], want, atol=1e-5)


def test_keras3_sequential_with_labels(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    model.save(tmp_path / "seq.keras")
    with pytest.raises(InputError, match="2 labels given"):
        convert_model(tmp_path / "seq.keras", tmp_path / "out" / "seq.tflite", labels=["a", "b"])
    result = convert_model(tmp_path / "seq.keras", tmp_path / "out" / "seq.tflite", labels=["a", "b", "c"])
    assert result.manifest.outputs[0].shape == [-1, 3] and result.manifest.labels == ["a", "b", "c"]


def test_an_h5_declaring_a_huge_dataset_is_refused_before_allocating(tmp_path, tiny_classifier_h5):
    import shutil
    import time

    import h5py

    path = tmp_path / "huge.h5"
    shutil.copy2(tiny_classifier_h5, path)
    with h5py.File(path, "a") as f:
        # 4 TB declared, nothing stored: chunked and never written, so the file stays small
        f.create_dataset("model_weights/bomb/kernel", shape=(2**40,), dtype="float32", chunks=(1024,))
    assert path.stat().st_size < 1_000_000
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match=r"declares 4096\.0 GB of data in a .* file \('model_weights/bomb/kernel'") as info:
        convert_model(path, tmp_path / "out" / "huge.tflite")
    assert time.perf_counter() - started < 5 and "\n" not in info.value.message
    assert not (tmp_path / "out").exists()


def test_the_keras2_fallback_says_why_in_one_calm_line(tf_keras_preprocess_h5, tmp_path):
    import tf_keras


    note = load_keras_model(tf_keras_preprocess_h5).notes[0]
    assert note.startswith("loaded with tf_keras") and "TFOpLambda" in note and "Error" not in note
    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.SeparableConv2D(4, 3)(inputs)
    tf_keras.Model(inputs, tf_keras.layers.Dense(2)(tf_keras.layers.Flatten()(x))).save(tmp_path / "sep.h5")
    note = load_keras_model(tmp_path / "sep.h5").notes[0]
    assert note == (
        "loaded with tf_keras, which reads Keras-2 files whole: Keras 3 does not accept the Keras-2 configuration "
        "of its SeparableConv2D layers"
    )


def _keras_zip(path, config: bytes, tweak=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", config)
        zf.writestr("metadata.json", b"{}")
        if tweak is not None:
            tweak(zf.getinfo("config.json"))
    return path


@pytest.mark.parametrize("case, words", [
    ("deep", "nests deeper than 200 levels"),  # a RecursionError traceback before
    ("large", "model config is larger than 64 MB"),
    ("encrypted", "is encrypted"),  # RuntimeError
    ("unknown method", "compression method is not supported"),  # NotImplementedError
])
def test_a_keras_zips_config_is_read_within_bounds(tmp_path, case, words):
    path = tmp_path / "m.keras"
    if case == "deep":
        _keras_zip(path, b"[" * 200_000 + b"]" * 200_000)
    elif case == "large":
        _keras_zip(path, b" " * (65 * 2**20))
    elif case == "encrypted":
        _keras_zip(path, b"{}", lambda info: setattr(info, "flag_bits", info.flag_bits | 0x1))
    else:
        _keras_zip(path, b"{}", lambda info: setattr(info, "compress_type", 99))
    out = tmp_path / "out"
    with pytest.raises(ModelLoadError) as info:
        convert_model(path, out / "x.tflite")
    assert words in info.value.message
    assert_one_line(info.value)
    assert_nothing_written(out)
