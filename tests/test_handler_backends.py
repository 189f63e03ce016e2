"""lambkit.backends: the engine adapters, the one code that loads and runs a converted model, and
the one rule that pairs its outputs with the source model's (verify, invoke and the function alike)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import make_task_root

from lamb.handler.lambkit import backends


@pytest.mark.parametrize(
    ("names", "keys", "order"),
    [
        (["zeta", "alpha"], ["alpha", "zeta"], [1, 0]),  # by name: the flatbuffer lists them sorted
        (["head/zeta:0", "alpha"], ["alpha", "head_zeta"], [1, 0]),  # by the converter's cleaned name
        (["zeta", "alpha"], ["output_1", "output_0"], [1, 0]),  # Keras 3 numbers them in its own order
        (["zeta", "alpha"], ["b", "a"], [0, 1]),  # nothing to go by: by position
        (["zeta", "alpha"], ["a"], None),  # counts differ: no pairing
    ],
)
def test_outputs_are_paired_by_name_cleaned_name_number_then_position(names, keys, order):
    assert backends.pair(names, keys) == order


def test_the_record_names_the_backend_and_older_records_their_formats_one():
    assert backends.backend_name({"package": {"handler_backend": "ort"}, "model": {"format": "tflite"}}) == "ort"
    assert backends.backend_name({"model": {"format": "onnx"}}) == "ort"
    assert backends.backend_name({}) == "litert"  # a version-1 record: .tflite was all there was
    with pytest.raises(ValueError, match="names no backend"):
        backends.load(backends.backend_name({"model": {"format": "safetensors"}}), "m", {}, 1)


def _two_heads():
    """Two heads that a .tflite lists in the opposite order (its signature sorts them by name)."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, [keras.layers.Dense(5, name="zeta")(x), keras.layers.Dense(3, name="alpha")(x)])


@pytest.mark.network  # the task root's runtime wheels for this machine (cached after the first run)
def test_a_two_output_model_is_paired_alike_by_verify_invoke_and_the_function(tmp_path, host_runtime_deps, png_bytes):
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    from lamb.convert import convert_model
    from lamb.handler.lambkit.model import Model
    from lamb.invoke import invoke_artifact
    from lamb.verify import VerifyInputs, verify_model

    model = _two_heads()
    model.save(tmp_path / "two.keras")
    result = convert_model(tmp_path / "two.keras", tmp_path / "two.tflite", preprocess="none")
    signature = Interpreter(model_path=str(result.model_path)).get_signature_runner("serving_default")
    # The file lists its outputs sorted (alpha, zeta), unlike Keras (zeta, alpha): this test means something.
    assert list(signature.get_output_details()) == ["alpha", "zeta"]

    report = verify_model(manifest_path=result.manifest_path, inputs=VerifyInputs(samples=8))
    assert report.passed, report.failures
    assert [(m.name, m.shape) for m in report.outputs] == [("zeta", [5]), ("alpha", [3])]

    root = make_task_root(tmp_path / "task", result, host_runtime_deps)
    image = Image.open(io.BytesIO(png_bytes)).convert("RGB")
    function = Model(str(root))
    expected = [np.asarray(y).reshape(-1) for y in model.predict(function.prepare(image), verbose=0)]
    answered = function.predict(image)
    assert list(answered) == ["zeta", "alpha"]
    for name, want in zip(answered, expected):
        np.testing.assert_allclose(list(answered[name].values()), want, atol=1e-4)

    (tmp_path / "cat.png").write_bytes(png_bytes)
    invoked = invoke_artifact(root, image=tmp_path / "cat.png")
    assert invoked.error is None and list(invoked.response) == ["zeta", "alpha"]
    for name, want in zip(invoked.response, expected):
        np.testing.assert_allclose(list(invoked.response[name].values()), want, atol=1e-4)
