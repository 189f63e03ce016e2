"""Which preprocessing a model expects: rescaling in the graph wins over the base model, Keras's
names are accepted, --preprocess against the model's evidence is said, and "none" recorded without
evidence is said at convert and refused at package."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lamb import manifest as mf
from lamb.convert import convert_model
from lamb.convert.preprocess import check_preprocess
from lamb.errors import InputError
from lamb.package.build import build_package, check_evidence
from lamb.source.keras import load_keras_model
from lamb.source.keras_preprocess import batchnorm_fit, infer_preprocess, preprocess_evidence


def _on_base(first, base_name="xception", framework="keras"):
    """``first`` (a layer, or None) in front of a small nested model named like a keras.applications base."""
    import importlib

    k = importlib.import_module(framework)
    base_in = k.Input((8, 8, 3))
    base = k.Model(base_in, k.layers.Conv2D(2, 3)(base_in), name=base_name)
    inputs = k.Input((8, 8, 3))
    x = first(inputs) if first is not None else inputs
    return k.Model(inputs, k.layers.Dense(2)(k.layers.GlobalAveragePooling2D()(base(x))))


@pytest.mark.parametrize("framework", ["keras", "tf_keras"])
def test_a_rescaling_lambda_in_front_of_a_known_base_is_none(framework):
    import importlib

    k = importlib.import_module(framework)
    mode, note = infer_preprocess(_on_base(k.layers.Lambda(lambda x: x / 127.5 - 1), framework=framework))
    assert mode == "none" and "Lambda" in note and "[-1, 1]" in note


def test_a_rescaling_layer_in_front_of_a_known_base_is_none():
    import keras

    mode, note = infer_preprocess(_on_base(keras.layers.Rescaling(1 / 127.5, offset=-1)))
    assert mode == "none" and "Rescaling" in note


def test_a_lambda_that_does_not_rescale_leaves_the_base_models_mode():
    import keras

    mode, _ = infer_preprocess(_on_base(keras.layers.Lambda(lambda x: x[..., ::-1])))  # RGB -> BGR only
    assert mode == "xception"


@pytest.mark.parametrize("given, mode", [("tf", "xception"), ("Xception", "xception"), (" TORCH ", "torch"), ("none", "none")])
def test_keras_names_for_the_modes_are_accepted(given, mode):
    assert check_preprocess(given) == mode


def test_an_unknown_mode_is_refused_naming_the_modes():
    with pytest.raises(InputError, match="unknown preprocessing mode 'inception'") as info:
        check_preprocess("inception")
    assert "xception" in info.value.hint and "tf" in info.value.hint


def test_preprocess_given_against_the_base_model_is_said():
    model = _on_base(None)
    warning = preprocess_evidence(model, "torch")
    assert warning is not None and "--preprocess torch" in warning and "says xception" in warning and "'xception'" in warning
    assert preprocess_evidence(model, "xception") is None
    assert preprocess_evidence(_on_base(None, "my_cnn"), "torch") is None  # nothing to contradict


def test_convert_records_what_was_given_and_reports_the_mismatch(tmp_path):
    _on_base(None).save(tmp_path / "m.keras")
    result = convert_model(tmp_path / "m.keras", tmp_path / "out" / "m.tflite", preprocess="tf", labels=["a", "b"])
    assert result.manifest.preprocess == "xception" and result.preprocess_mismatch is None and result.warnings == []
    result = convert_model(tmp_path / "m.keras", tmp_path / "out" / "m.tflite", preprocess="caffe", labels=["a", "b"])
    assert result.manifest.preprocess == "caffe" and "says xception" in (result.preprocess_mismatch or "")


def test_convert_says_none_and_missing_labels_on_lines_of_their_own(tmp_path):
    _on_base(None, "my_cnn").save(tmp_path / "plain.keras")
    result = convert_model(tmp_path / "plain.keras", tmp_path / "out" / "plain.tflite")
    assert result.manifest.preprocess == "none" and len(result.warnings) == 2
    assert result.warnings[0].startswith('recorded preprocessing "none"') and "`lamb package` refuses" in result.warnings[0]
    assert result.warnings[1].startswith("no class labels")
    confirmed = convert_model(tmp_path / "plain.keras", tmp_path / "out" / "plain.tflite", preprocess="none", labels=["a", "b"])
    assert confirmed.warnings == []


def test_convert_cli_prints_each_warning_on_its_own_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from lamb.cli import app

    _on_base(None).save(tmp_path / "m.keras")
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["convert", "m.keras", "--preprocess", "torch"], terminal_width=200).output
    lines = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(lines) == 2 and "--preprocess torch given" in lines[0] and lines[1].startswith("warning: no class labels")
    quiet = CliRunner().invoke(app, ["convert", "m.keras", "--preprocess", "torch", "--allow-preprocess-mismatch"], terminal_width=200)
    assert "--preprocess torch given" not in quiet.output


def _manifest(verified_copy, **changes):
    manifest = mf.read(verified_copy)
    return dataclasses.replace(manifest, **changes)


def test_package_refuses_a_none_nothing_showed(verified_copy):
    unconfirmed = _manifest(verified_copy, preprocess="none", preprocess_note="not inferred: nothing in the model shows it")
    mf.write(unconfirmed, verified_copy)
    with pytest.raises(InputError, match='records preprocessing "none"') as info:
        build_package(verified_copy, smoke=False)
    assert "--preprocess" in info.value.hint and "--labeled-images" in info.value.hint
    assert check_evidence(dataclasses.replace(unconfirmed, preprocess_note="given")) == []


def test_labelled_evidence_lets_package_take_a_none(verified_copy):
    manifest = _manifest(verified_copy, preprocess="none", preprocess_note="not inferred: nothing in the model shows it")
    assert verified_copy.is_file() and manifest.verification is not None
    shown = dataclasses.replace(manifest.verification, accuracy={"passed": True, "preprocess": "none"})
    assert check_evidence(dataclasses.replace(manifest, verification=shown)) == []
    wrong = dataclasses.replace(manifest.verification, accuracy={"passed": False, "preprocess": "none", "better": "xception"})
    with pytest.raises(InputError):
        check_evidence(dataclasses.replace(manifest, verification=wrong))


def test_package_warns_in_one_line_without_labels(verified_copy):
    warnings = check_evidence(_manifest(verified_copy, labels=None))
    assert len(warnings) == 1 and warnings[0].startswith("no class labels")


# -- the first BatchNormalization's statistics ------------------------------------------------------

DEMO = Path(__file__).resolve().parent.parent / "models" / "demo"


@pytest.fixture(scope="module")
def demo_model():
    """The bundled demo: Conv2D -> BatchNormalization first, trained on x / 127.5 - 1 (xception)."""

    return load_keras_model(DEMO / "clothing.h5").model


def test_the_demos_batchnorm_fits_xception_not_raw_pixels(demo_model):
    fit = batchnorm_fit(demo_model)
    assert fit is not None and fit.best() == "xception"
    assert "caffe" not in fit.consistent() and "none" not in fit.consistent() and "torch" in fit.consistent()
    assert fit.misfit["none"] > fit.misfit["xception"] + 5  # raw pixels: thousands of times the trained variance


def test_a_mode_the_batchnorm_contradicts_is_said_a_close_one_is_not(demo_model):
    warning = preprocess_evidence(demo_model, "caffe")
    assert warning is not None and "BatchNormalization" in warning and "xception, torch or scale fit it" in warning
    assert preprocess_evidence(demo_model, "torch") is None and preprocess_evidence(demo_model, "xception") is None


def test_nothing_named_but_the_batchnorm_says_so_in_the_warning(demo_model, tmp_path):
    mode, note = infer_preprocess(demo_model)
    assert mode == "none" and note.startswith("not inferred") and "xception, torch or scale fit it" in note
    result = convert_model(DEMO / "clothing.h5", tmp_path / "demo.tflite", labels=(DEMO / "labels.txt").read_text().split())
    assert len(result.warnings) == 1 and "without evidence: " in result.warnings[0] and "BatchNormalization" in result.warnings[0]


def test_no_batchnorm_after_the_input_no_statistics():
    assert batchnorm_fit(_on_base(None, "my_cnn")) is None


def test_labelled_images_at_convert_only_with_quantize_auto(tmp_path):
    from typer.testing import CliRunner

    from lamb.cli import app

    result = CliRunner().invoke(app, ["convert", str(DEMO / "clothing.h5"), "--labeled-images", str(DEMO / "samples")])
    assert result.exit_code == 3 and "--labeled-images only applies to --quantize auto" in result.output


def test_a_model_that_is_no_classifier_is_not_asked_for_labels(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs))).save(tmp_path / "regress.keras")
    result = convert_model(tmp_path / "regress.keras", tmp_path / "out" / "r.tflite", preprocess="scale")
    assert result.warnings == []


def test_a_course_model_with_a_rescaling_lambda_on_a_base_is_recorded_none(tmp_path):
    """Issue 18's case: Lambda(x / 127.5 - 1) in front of a keras.applications-named base, saved by
    tf_keras as .h5. The base alone says xception; the handler scaling too would scale twice."""
    import tf_keras

    _on_base(tf_keras.layers.Lambda(lambda t: t / 127.5 - 1), framework="tf_keras").save(tmp_path / "course.h5")
    result = convert_model(tmp_path / "course.h5", tmp_path / "out" / "course.tflite", labels=["a", "b"], allow_unsafe_lambda=True)
    assert result.manifest.preprocess == "none" and "Lambda" in (result.manifest.preprocess_note or "")
    assert result.warnings == [] and result.manifest.allow_unsafe_lambda
    assert "says none" in (preprocess_evidence(load_keras_model(tmp_path / "course.h5", allow_unsafe_lambda=True).model, "xception") or "")


def test_a_savedmodel_records_none_and_says_so(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 3))
    keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs))).export(tmp_path / "exported", verbose=False)
    result = convert_model(tmp_path / "exported", tmp_path / "out" / "e.tflite", labels=["a", "b"])
    assert result.manifest.preprocess == "none" and len(result.warnings) == 1
    assert "without evidence: a bare SavedModel has no layers to inspect" in result.warnings[0]
