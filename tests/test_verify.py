"""lamb verify: real Keras models, real .tflite files, the real runtime libraries in a subprocess.

The .tflite fixtures here are converted with TensorFlow's converter directly, so these tests judge
verify on its own; the end-to-end tests at the bottom chain `lamb convert` and `lamb verify`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lamb import manifest as mf
from lamb import runtime_lib
from lamb.errors import InputError, ManifestError, ModelLoadError, VerificationFailed
from lamb.verify import (
    OutputMismatch,
    ToleranceOverrides,
    VerifyInputs,
    compare_outputs,
    default_tolerances,
    image_inputs,
    random_inputs,
)
from lamb.verify import verify_model as _verify_model

LABELS = [f"class_{i}" for i in range(10)]


# -- fixtures: small real models and their conversions ------------------------------------------


def build_classifier(seed: int):
    """32x32 RGB -> 10 logits; the 64->10 and 32->64 Dense layers are big enough (>1024 weights)
    for dynamic-range quantization to actually quantize them."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(64, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"classifier_{seed}")


def build_two_outputs():
    """Two heads whose TFLite tensors come back in the opposite order (the converter sorts)."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    zeta = keras.layers.Dense(5, name="zeta")(x)
    alpha = keras.layers.Dense(3, name="alpha")(x)
    return keras.Model(inputs, [zeta, alpha], name="two_heads")


def to_tflite(model, path: Path, mode: str = "float32") -> Path:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        rng = np.random.default_rng(0)

        def representative():
            for _ in range(32):
                yield [rng.uniform(-1, 1, size=(1, 32, 32, 3)).astype(np.float32)]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Keras .h5 files and .tflite conversions shared by this module's tests (read-only)."""
    d = tmp_path_factory.mktemp("verify_zoo")
    model = build_classifier(0)
    model.save(d / "cls.h5")
    files = {"h5": d / "cls.h5"}
    for mode in ("float32", "float16", "dynamic", "int8"):
        files[mode] = to_tflite(model, d / f"cls_{mode}.tflite", mode)

    other = build_classifier(1)  # same architecture, another seed
    files["other_seed"] = to_tflite(other, d / "cls_seed1.tflite")

    # Same architecture, one layer's weights nudged by 5 %: what a stale or hand-edited file looks like.
    nudged = build_classifier(0)
    kernel, bias = nudged.get_layer("hidden").get_weights()
    nudged.get_layer("hidden").set_weights([kernel * 1.05, bias])
    files["nudged"] = to_tflite(nudged, d / "cls_nudged.tflite")

    # Weights changed in the file itself: the logits layer's kernel bytes, found and negated.
    data = bytearray(files["float32"].read_bytes())
    w = model.get_layer("logits").get_weights()[0]
    needle = np.ascontiguousarray(w.T, dtype=np.float32).tobytes()  # TFLite stores FC kernels (out, in)
    at = data.find(needle)
    assert at >= 0, "the logits kernel was not found in the flatbuffer"
    data[at : at + len(needle)] = np.ascontiguousarray(-w.T, dtype=np.float32).tobytes()
    files["tampered"] = d / "cls_tampered.tflite"
    files["tampered"].write_bytes(bytes(data))

    two = build_two_outputs()
    two.save(d / "two.h5")
    files["two_h5"] = d / "two.h5"
    files["two"] = to_tflite(two, d / "two.tflite")

    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 48, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    files["bigger_input"] = to_tflite(keras.Model(inputs, keras.layers.Dense(10)(x)), d / "bigger_input.tflite")
    return files


def write_manifest(folder: Path, h5: Path, tflite: Path, quantization: str, *, preprocess="xception", labels=None) -> Path:
    """A manifest like `lamb convert` writes, beside a private copy of the .tflite."""
    folder.mkdir(parents=True, exist_ok=True)
    local = folder / "model.tflite"
    shutil.copy2(tflite, local)
    path = mf.manifest_path_for(local)
    manifest = mf.Manifest(
        model=mf.ModelEntry("model.tflite", "tflite", mf.sha256_file(local), local.stat().st_size),
        source=str(h5.resolve()),
        source_sha256=mf.sha256_file(h5),
        source_format="h5",
        source_bytes=h5.stat().st_size,
        loader="keras",
        inputs=[mf.TensorSpec("image", [-1, 32, 32, 3], "float32")],
        outputs=[mf.TensorSpec("logits", [-1, 10], "float32")],
        quantization=quantization,
        preprocess=preprocess,
        labels=labels,
    )
    mf.write(manifest, path)
    return path


def verify_model(*paths, samples=None, images=None, preprocess=None, runtime_lib=None, **kw):
    """verify_model with its inputs spelled as the CLI options (--samples, --images, ...)."""
    inputs = VerifyInputs(samples=samples, images=images, preprocess=preprocess)
    return _verify_model(*paths, inputs=inputs, runtime_lib_name=runtime_lib, **kw)


def verify(zoo, key, **kw):
    kw.setdefault("samples", 24)
    kw.setdefault("preprocess", "xception")
    return verify_model(zoo.get(kw.pop("h5", "h5")), zoo[key], **kw)


# -- comparing outputs (pure) --------------------------------------------------------------------


def test_identical_outputs_pass_every_check():
    ref = np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)
    metrics, checks, failures = compare_outputs([ref], [ref.copy()], ["logits"], default_tolerances("float32"))
    assert failures == []
    (m,) = metrics
    assert (m.max_abs, m.mean_abs, m.top1) == (0.0, 0.0, 1.0)
    assert m.cosine == pytest.approx(1.0)
    assert {c.metric: c.passed for c in checks} == {
        "max_abs": True, "max_rel": None, "mean_abs": None, "cosine": True, "top1": True
    }


def test_error_beyond_tolerance_names_output_number_and_limit():
    ref = np.linspace(-5, 5, 40, dtype=np.float32).reshape(8, 5)  # range 10
    out = ref.copy()
    out[3, 2] += 0.5
    tol = default_tolerances("float16")  # 1e-5 + 0.002 x 10 = 0.02001
    metrics, checks, failures = compare_outputs([ref], [out], ["scores"], tol)
    assert metrics[0].max_abs == pytest.approx(0.5)
    assert metrics[0].max_rel == pytest.approx(0.05)
    (row,) = [c for c in checks if c.metric == "max_abs"]
    assert row.passed is False and row.limit == pytest.approx(0.02001)
    assert "'scores'" in failures[0] and "0.5" in failures[0] and "0.02" in failures[0]


def test_top1_disagreement_names_classes_by_label():
    ref = np.eye(4, dtype=np.float32)[[0, 1, 2, 3]] * 3.0
    out = ref.copy()
    out[1] = [0.0, 1.0, 5.0, 0.0]  # sample 1 flips from class 1 to class 2
    tol = default_tolerances("int8", ToleranceOverrides(rtol=10.0, min_cosine=0.0, min_top1=0.8))  # judge only the classes
    metrics, _, failures = compare_outputs([ref], [out], ["logits"], tol, labels=["cat", "dog", "bird", "fish"])
    assert metrics[0].top1 == 0.75 and metrics[0].disagreements == [1]
    assert failures == [
        "output 'logits': top-1 agreement 75.0% is below 80.0% (1 of 4 differ; sample 1: the source model says 'dog' (class 1), "
        "the converted model says 'bird' (class 2))"
    ]


def test_top_k_overlap_and_non_classifier_outputs():
    ref = np.array([[5, 4, 3, 0, 0], [1, 2, 3, 4, 5]], dtype=np.float32)
    out = np.array([[5, 4, 0, 3, 0], [1, 2, 3, 4, 5]], dtype=np.float32)  # sample 0: 3rd class differs
    tol = default_tolerances("float32", ToleranceOverrides(top_k=3, rtol=1.0, min_cosine=0.0))
    metrics, checks, failures = compare_outputs([ref], [out], ["logits"], tol)
    assert metrics[0].topk == pytest.approx((2 / 3 + 1) / 2) and metrics[0].k == 3
    assert any(c.metric == "top3" and c.passed is False for c in checks)
    assert any("top-3 overlap" in f for f in failures)
    # A regression output (N, 1) and an image-shaped output have no class checks.
    metrics, checks, _ = compare_outputs(
        [np.ones((3, 1)), np.ones((3, 4, 4, 2))], [np.ones((3, 1)), np.ones((3, 4, 4, 2))], ["y", "map"], tol
    )
    assert all(m.top1 is None for m in metrics)
    assert not any(c.metric.startswith("top") for c in checks)
    assert metrics[0].max_rel is None  # a constant reference has no range to be relative to


def test_nan_from_the_tflite_fails_with_a_count():
    ref = np.zeros((2, 3), dtype=np.float32)
    out = ref.copy()
    out[0, 1] = np.nan
    metrics, checks, failures = compare_outputs([ref], [out], ["logits"], default_tolerances("float32"))
    assert checks[0].metric == "finite" and checks[0].passed is False
    assert failures == ["output 'logits': the converted model produced 1 NaN/inf values"]
    assert metrics[0].max_abs is None


def test_tolerance_overrides_and_bad_values():
    tol = default_tolerances("dynamic", ToleranceOverrides(atol=0.5, min_top1=1.0, top_k=5))
    assert (tol.atol, tol.rtol, tol.min_top1, tol.top_k, tol.min_topk) == (0.5, 0.04, 1.0, 5, 1.0)
    assert default_tolerances("dynamic").atol == 1e-4  # the defaults are not mutated
    with pytest.raises(InputError):
        default_tolerances("float32", ToleranceOverrides(min_top1=1.5))
    with pytest.raises(InputError):
        default_tolerances("float32", ToleranceOverrides(atol=-1))
    with pytest.raises(InputError):
        default_tolerances("bfloat16")
    with pytest.raises(InputError):
        default_tolerances("float32", ToleranceOverrides(top_k=1))


# -- inputs ---------------------------------------------------------------------------------------


def test_random_inputs_are_seeded_and_in_the_preprocessed_range():
    a = random_inputs([(8, 8, 3)], 5, seed=7, preprocess="xception")[0]
    b = random_inputs([(8, 8, 3)], 5, seed=7, preprocess="xception")[0]
    c = random_inputs([(8, 8, 3)], 5, seed=8, preprocess="xception")[0]
    assert a.shape == (5, 8, 8, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.min() >= -1.0 and a.max() <= 1.0
    raw = random_inputs([(8, 8, 3)], 5, seed=7, preprocess="none")[0]
    assert raw.min() >= 0.0 and raw.max() <= 255.0 and raw.max() > 200
    with pytest.raises(InputError, match="needs RGB inputs"):
        random_inputs([(8, 8, 1)], 2, seed=0, preprocess="caffe")


def test_image_inputs_skip_and_count_undecodable_files(sample_images, tmp_path):
    folder = tmp_path / "imgs"
    shutil.copytree(sample_images, folder / "cats")  # class sub-folders are searched too
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    x, used, skipped = image_inputs(folder, (32, 32, 3), "scale")
    assert x.shape == (12, 32, 32, 3) and len(used) == 12 and used[0].startswith("cats/")
    assert [s.split(":")[0] for s in skipped] == ["broken.jpg", "notes.txt"]
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_image_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="is empty"):
        image_inputs(empty, (32, 32, 3), "none")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"nope")
    with pytest.raises(InputError, match="none of the 1 files"):
        image_inputs(junk, (32, 32, 3), "none")
    with pytest.raises(InputError, match="no image folder"):
        image_inputs(tmp_path / "missing", (32, 32, 3), "none")
    with pytest.raises(InputError, match="one RGB image"):
        image_inputs(junk, (10,), "none")


# -- verify_model on real models ------------------------------------------------------------------


def test_float32_passes_and_is_recorded_in_the_manifest(zoo, tmp_path):
    path = write_manifest(tmp_path / "m", zoo["h5"], zoo["float32"], "float32", labels=LABELS)
    report = verify_model(manifest_path=path, samples=40)
    assert report.passed, report.failures
    assert (report.runtime_lib, report.quantization, report.quantization_source) == ("ai-edge-litert", "float32", "manifest")
    assert report.samples == 40 and report.images == 0 and report.error is None and report.recorded
    (m,) = report.outputs
    assert m.name == "logits" and m.top1 == 1.0 and m.max_rel < 1e-4
    report.raise_for_failure()  # no exception

    v = mf.read(path).verification
    assert v is not None and v.passed
    assert v.model_sha256 == mf.sha256_file(tmp_path / "m" / "model.tflite")
    assert v.runtime_lib == "ai-edge-litert" and v.runtime_lib_version == report.runtime_lib_version != "unknown"
    assert v.samples == 40 and v.tolerances["rtol"] == default_tolerances("float32").rtol
    assert v.metrics[0]["name"] == "logits" and v.metrics[0]["top1"] == 1.0 and v.failures == []


def test_a_dynamic_onnx_named_without_a_manifest_is_judged_as_dynamic(converted_tiny_onnx, tiny_classifier_h5, tmp_path):
    """Its tensor types cannot tell (the backend sees float32 inputs and outputs): its ops can."""
    from lamb.convert.onnx import quantize

    data, _settings = quantize(converted_tiny_onnx.model_path.read_bytes(), runtime_lib.get("onnxruntime").format.mode("dynamic"))
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "m.onnx").write_bytes(data)
    report = _verify_model(tiny_classifier_h5, tmp_path / "alone" / "m.onnx", inputs=VerifyInputs(samples=8))
    assert (report.quantization, report.quantization_source) == ("dynamic", "inferred from the converted model")


@pytest.mark.parametrize("mode", ["float16", "dynamic", "int8"])
def test_quantized_models_pass_with_their_defaults(zoo, mode):
    report = verify(zoo, mode, samples=32)
    assert report.quantization == mode and report.quantization_source == "inferred from the converted model"
    if mode == "int8":  # random pixels alone cannot prove an int8 model: not a pass, whatever the numbers
        assert report.verdict == "not enough evidence" and not report.passed and "--images" in report.failures[0]
    else:
        assert report.passed, report.failures
        # 32 agreeing samples cannot show 99 %: the lower bound says so, and the pass carries a warning.
        assert report.verdict == "pass with warning" and "inputs agreeing at this rate would settle it" in report.warnings[0]
    (m,) = report.outputs
    assert m.max_rel > 0  # quantization really changed the numbers
    if mode == "int8":
        # int8 in and out: the runner quantized inputs and dequantized outputs with scale/zero point.
        assert m.cosine > 0.95


def test_quantized_model_fails_float32_tolerances(zoo):
    report = verify(zoo, "dynamic", quantization="float32")
    assert not report.passed
    assert any("max abs error" in f for f in report.failures)


def test_tampered_tflite_fails(zoo):
    report = verify(zoo, "tampered")
    assert not report.passed
    assert report.outputs[0].top1 < 0.5
    with pytest.raises(OutputMismatch) as info:
        report.raise_for_failure()
    assert isinstance(info.value, VerificationFailed) and info.value.exit_code == 1
    assert info.value.report is report and "cls_tampered.tflite does not match cls.h5" in info.value.message


def test_slightly_changed_weights_fail(zoo):
    report = verify(zoo, "nudged")
    assert not report.passed
    assert report.outputs[0].max_rel > 1e-3
    assert any("'logits': max abs error" in f for f in report.failures)


def test_model_from_another_seed_fails(zoo):
    report = verify(zoo, "other_seed")
    assert not report.passed and report.outputs[0].cosine < 0.99


def test_multi_output_outputs_are_paired_by_name(zoo):
    report = verify(zoo, "two", h5="two_h5", samples=16)
    assert report.passed, report.failures
    assert [(m.name, m.shape) for m in report.outputs] == [("zeta", [5]), ("alpha", [3])]
    assert [m.model_name for m in report.outputs] == ["output_0", "output_1"]


def test_tf_keras_outputs_are_paired_by_layer_name(tmp_path):
    """tf.keras conversions key the signature by layer name, sorted: 'alpha' before 'zeta'."""
    import tensorflow as tf
    import tf_keras

    tf.random.set_seed(5)
    inputs = tf_keras.Input((16, 16, 3))
    x = tf_keras.layers.GlobalAveragePooling2D()(tf_keras.layers.Conv2D(4, 3)(inputs))
    model = tf_keras.Model(inputs, [tf_keras.layers.Dense(5, name="zeta")(x), tf_keras.layers.Dense(3, name="alpha")(x)])
    model.save(tmp_path / "two_tfk.h5")
    (tmp_path / "two_tfk.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    report = verify_model(tmp_path / "two_tfk.h5", tmp_path / "two_tfk.tflite", samples=8, preprocess="scale")
    assert report.passed, report.failures
    assert [(m.name, m.model_name) for m in report.outputs] == [("zeta", "zeta"), ("alpha", "alpha")]


def test_images_and_samples_combine(zoo, sample_images, tmp_path):
    folder = tmp_path / "imgs"
    shutil.copytree(sample_images, folder)
    (folder / "readme.txt").write_text("skip me")
    report = verify(zoo, "float32", samples=5, images=folder)
    assert report.passed, report.failures
    assert (report.samples, report.images, report.skipped_images) == (5, 12, 1)
    assert len(report.skipped) == 1 and report.skipped[0].startswith("readme.txt: not a decodable image")
    only_images = verify(zoo, "float32", samples=None, images=folder)
    assert (only_images.samples, only_images.images) == (0, 12)


def test_signature_mismatch_is_a_clear_error(zoo):
    with pytest.raises(InputError, match=r"inputs differ: cls.h5 input 'image' is \(32, 32, 3\), bigger_input.tflite"):
        verify(zoo, "bigger_input")
    with pytest.raises(InputError, match=r"cls.h5 has 1 outputs, two.tflite has 2"):
        verify(zoo, "two")


def test_missing_and_wrong_files(zoo, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="no source model at"):
        verify_model(tmp_path / "gone.h5", zoo["float32"])
    with pytest.raises(InputError, match=r"no .tflite at"):
        verify_model(zoo["h5"], tmp_path / "gone.tflite")
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(b"0123456789abcdef")
    with pytest.raises(InputError, match="not a TensorFlow Lite model"):
        verify_model(zoo["h5"], fake)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError, match="no lamb manifest"):
        verify_model()
    with pytest.raises(InputError, match="nothing to verify with"):
        verify_model(zoo["h5"], zoo["float32"], samples=0)
    with pytest.raises(InputError, match="2 labels given but the model has 10 classes"):
        verify_model(zoo["h5"], zoo["float32"], labels=["a", "b"])


def test_tflite_changed_since_convert_is_noted_and_verified_as_it_is(zoo, tmp_path):
    path = write_manifest(tmp_path / "m", zoo["h5"], zoo["float32"], "float32")
    shutil.copy2(zoo["tampered"], tmp_path / "m" / "model.tflite")
    report = verify_model(manifest_path=path, samples=8)
    assert not report.passed
    assert any("changed since `lamb convert`" in n for n in report.notes)
    v = mf.read(path).verification
    assert v is not None and not v.passed and v.model_sha256 == mf.sha256_file(zoo["tampered"])


# -- tflite-runtime: the other library, in its own NumPy-1 environment ------------------------------


@pytest.fixture(scope="module")
def tflite_runtime_env():
    """tflite-runtime installed for this machine's Lambda target (cached); skipped where no wheel
    exists (it stopped at 2.14: CPython 3.10/3.11 on x86_64, 3.10 on arm64)."""
    from lamb import runtime_lib
    from lamb.targets import host_target
    from lamb.verify.runner import resolve_runtime_env

    host = host_target()
    if host is None or not runtime_lib.available(host, "tflite-runtime"):
        pytest.skip("tflite-runtime has no wheel for this machine's Python/arch")
    return resolve_runtime_env("tflite-runtime", ["tflite-runtime==2.14.0", "numpy<2"])


@pytest.mark.network
def test_tflite_runtime_runs_a_float32_model(zoo, tflite_runtime_env):
    report = verify(zoo, "float32", runtime_lib="tflite-runtime", samples=16)
    assert report.passed, report.failures or report.error
    assert (report.runtime_lib, report.runtime_lib_version) == ("tflite-runtime", "2.14.0")
    assert "isolated environment" in report.runtime_python


@pytest.mark.network
def test_tflite_runtime_cannot_load_a_new_dynamic_range_model(zoo, tmp_path, tflite_runtime_env):
    path = write_manifest(tmp_path / "m", zoo["h5"], zoo["dynamic"], "dynamic")
    report = verify_model(manifest_path=path, samples=8, runtime_lib="tflite-runtime")
    assert not report.passed and report.outputs == []
    assert report.error is not None and "FULLY_CONNECTED version 12" in report.error
    assert report.error.startswith("tflite-runtime 2.14.0 cannot load model.tflite")
    v = mf.read(path).verification
    assert v is not None and not v.passed and v.error == report.error and v.runtime_lib == "tflite-runtime"


# -- the command ------------------------------------------------------------------------------------


def cli(*args):
    from typer.testing import CliRunner

    from lamb.cli import app

    return CliRunner().invoke(app, ["verify", *args])


@pytest.mark.e2e
def test_cli_finds_the_manifest_and_exits_by_verdict(zoo, tmp_path, monkeypatch):
    good = write_manifest(tmp_path / "good", zoo["h5"], zoo["float32"], "float32")
    monkeypatch.chdir(good.parent)
    result = cli("--samples", "8", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] is True and data["outputs"][0]["name"] == "logits" and data["samples"] == 8

    bad = write_manifest(tmp_path / "bad", zoo["h5"], zoo["tampered"], "float32")
    monkeypatch.chdir(bad.parent)
    result = cli("--samples", "8")
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "does not match" in result.stderr
    assert mf.read(bad).verification.passed is False


@pytest.mark.e2e
def test_cli_bad_input_exit_codes(zoo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli().exit_code == 3  # no manifest here
    assert cli(str(zoo["h5"]), str(tmp_path / "nope.tflite")).exit_code == 3
    assert cli(str(zoo["h5"]), str(zoo["float32"]), "--images", str(tmp_path)).exit_code == 3  # empty folder


@pytest.mark.e2e
def test_course_model_with_preprocessing_inside(tf_keras_preprocess_h5, sample_images, tmp_path):
    """A tf.keras .h5 with preprocess_input in its graph: Keras 3 cannot load it, both steps fall
    back to tf_keras, and verify feeds it raw pixels (the manifest's preprocessing is none)."""
    from lamb.convert import convert_model

    result = convert_model(tf_keras_preprocess_h5, tmp_path / "course.tflite", quantize="dynamic")
    report = verify_model(manifest_path=result.manifest_path, samples=16, images=sample_images)
    assert report.passed, report.failures
    assert report.preprocess == result.manifest.preprocess
    assert (report.samples, report.images, report.quantization) == (16, 12, "dynamic")


@pytest.mark.e2e
def test_convert_then_verify(converted_tiny, tmp_path, monkeypatch):
    """The pipeline as a user runs it: `lamb convert` wrote the manifest, `lamb verify` reads it."""
    folder = tmp_path / "pipeline"
    folder.mkdir()
    shutil.copy2(converted_tiny.model_path, folder / converted_tiny.model_path.name)
    shutil.copy2(converted_tiny.manifest_path, folder / converted_tiny.manifest_path.name)
    monkeypatch.chdir(folder)
    result = cli("--samples", "16", "--top-k", "2")
    assert result.exit_code == 0, result.output
    v = mf.read(folder / converted_tiny.manifest_path.name).verification
    assert v is not None and v.passed and v.samples == 16 and v.tolerances["top_k"] == 2


@pytest.mark.network
def test_tflite_runtime_on_numpy_2_is_explained(zoo, tflite_runtime_env):
    """The NumPy-2 ABI crash the issue measured: tflite-runtime 2.14 beside lamb's own NumPy 2."""
    import sys

    from lamb.verify.runner import ModelRunner, RunnerFailure, RuntimeEnv, explain_failure

    isolated = tflite_runtime_env
    numpy2_site = str(Path(np.__file__).parent.parent)
    env = RuntimeEnv("tflite-runtime", sys.executable, [numpy2_site, *isolated.paths], "NumPy 2 first")
    with ModelRunner(env, zoo["float32"]) as runner, pytest.raises(RunnerFailure) as info:
        runner.wait_ready()
    sentence, _hint = explain_failure("tflite-runtime", "2.14.0", zoo["float32"], info.value)
    assert sentence.startswith(f"tflite-runtime 2.14.0 cannot run with NumPy {np.__version__}: it was built against NumPy 1.x")


def test_flex_model_fails_with_the_reason(tmp_path):
    """A model converted with --allow-flex: no shipped runtime library can load it."""
    import tensorflow as tf
    import tf_keras

    from lamb.convert import convert_model

    inputs = tf_keras.Input((4, 4), name="matrix")
    x = tf_keras.layers.Flatten()(tf.linalg.inv(inputs))  # MatrixInverse: TF Select only
    tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="logits")(x)).save(tmp_path / "inverse.h5")
    result = convert_model(tmp_path / "inverse.h5", tmp_path / "inverse.tflite", allow_flex=True, preprocess="none")
    report = verify_model(manifest_path=result.manifest_path, samples=4)
    assert not report.passed and report.runtime_lib == "ai-edge-litert"
    assert "TF Select (Flex) ops" in report.error
    assert mf.read(result.manifest_path).verification.error == report.error


def test_savedmodel_source(tmp_path):
    """A SavedModel with no Keras metadata is compared through its serving signature."""
    from lamb.convert import convert_model

    build_two_outputs().export(tmp_path / "saved")
    result = convert_model(tmp_path / "saved", tmp_path / "out" / "saved.tflite")
    report = verify_model(manifest_path=result.manifest_path, samples=8)
    assert report.passed, report.failures
    assert sorted((m.name, m.shape[0]) for m in report.outputs) == [("output_0", 5), ("output_1", 3)]


@pytest.mark.network
def test_runtime_option_verifies_on_that_runtimes_library(zoo):
    """--runtime python3.11 ships ai-edge-litert 1.4.0 (2.x wheels need glibc 2.27; AL2 has 2.26):
    verify installs that release for this machine and runs the model on it."""
    from lamb import runtime_lib
    from lamb.targets import get_target, host_target

    host = host_target()
    (row, *_) = runtime_lib.available(get_target("python3.11"), "ai-edge-litert")
    if host is None or host.runtime.python not in row.pythons:
        pytest.skip(f"ai-edge-litert {row.version} has no wheel for this machine's Python")
    report = verify(zoo, "float32", runtime="python3.11", samples=8)
    assert report.passed, report.failures or report.error
    assert (report.runtime_lib, report.runtime_lib_version) == ("ai-edge-litert", row.version)
    assert any(f"ai-edge-litert=={row.version}, what `lamb package` ships for python3.11-x86_64" in n for n in report.notes)


def test_other_preprocessing_than_the_manifest_is_not_recorded(zoo, tmp_path):
    path = write_manifest(tmp_path / "m", zoo["h5"], zoo["float32"], "float32", preprocess="xception")
    report = verify_model(manifest_path=path, samples=4, preprocess="scale")
    assert report.passed and report.preprocess == "scale"
    assert any("the verdict is not recorded" in n for n in report.notes)
    assert mf.read(path).verification is None and not report.recorded


def test_convert_records_the_lambda_permission_so_verify_needs_it_no_more(tmp_path):
    import keras

    from lamb.convert import convert_model

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x))).save(tmp_path / "lam.keras")
    result = convert_model(tmp_path / "lam.keras", tmp_path / "out" / "lam.tflite", preprocess="scale", allow_unsafe_lambda=True)
    assert result.manifest.allow_unsafe_lambda and any("without asking again" in n for n in result.notes)
    assert _verify_model(manifest_path=result.manifest_path, inputs=VerifyInputs(samples=4)).passed
    # the permission was for that file: another one with the same name is asked about again
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x))).save(tmp_path / "lam.keras")
    with pytest.raises(ModelLoadError, match="holding Python code"):
        _verify_model(manifest_path=result.manifest_path, inputs=VerifyInputs(samples=4))


def test_verify_again_feeds_the_recorded_inputs(verified_copy, tmp_path):
    import dataclasses

    from lamb import manifest as mf
    from lamb.verify.again import recorded_inputs

    v = mf.read(verified_copy).verification
    images = verified_copy.parent / "imgs"
    images.mkdir()
    recorded = dataclasses.replace(v, samples=8, images=3, seed=7, images_dir="imgs")
    inputs, note = recorded_inputs(recorded, verified_copy)
    assert (inputs.samples, inputs.images, inputs.seed, note) == (8, images, 7, "")
    images.rmdir()  # gone: as many seeded random inputs, said plainly
    inputs, note = recorded_inputs(recorded, verified_copy)
    assert inputs.images is None and inputs.samples == 32 and inputs.seed == 7
    assert "are not at imgs any more" in note


# -- what the manifest names, and where the verdict is written (issue 24 items 1 and 8) --------------


def test_a_model_named_outside_the_manifests_folder_is_refused_before_anything_loads(zoo, tmp_path):
    path = write_manifest(tmp_path / "m", zoo["h5"], zoo["float32"], "float32")
    m = mf.read(path)
    mf.write(dataclasses.replace(m, model=dataclasses.replace(m.model, file=str(zoo["float32"]))), path)
    with pytest.raises(ManifestError, match=r"the model .* lies outside the manifest's folder"):
        verify_model(manifest_path=path, samples=8)


def test_a_read_only_manifest_folder_is_one_line_naming_the_manifest(zoo, small_disk):
    from conftest import remount_read_only

    path = write_manifest(small_disk, zoo["h5"], zoo["float32"], "float32")
    remount_read_only(small_disk)
    with pytest.raises(InputError, match=rf"^cannot write {path}: Read-only file system$"):
        verify_model(manifest_path=path, samples=8)


def test_a_full_temporary_folder_is_one_line_naming_the_file(zoo, tmp_path, small_disk, monkeypatch):
    import tempfile

    path = write_manifest(tmp_path / "m", zoo["h5"], zoo["float32"], "float32")
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))  # 512 KB; 64 inputs of 32x32x3 floats take 768 KB
    # the audit of the library's wheel unpacks it there first (lamb-audit-*), then the inputs (lamb-verify-*)
    with pytest.raises(InputError, match=rf"^cannot write {small_disk}/lamb-(audit|verify)-\w+(/model_input_0.npy)?: "
                                         "No space left on device$"):
        verify_model(manifest_path=path, samples=64)
    assert list(small_disk.iterdir()) == []
