"""lambkit.backends: the engine adapters, the one code that loads and runs a converted model, and
the one rule that pairs its outputs with the source model's (verify, invoke and the function alike)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from conftest import make_task_root
from test_invoke import zip_tree

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
    invoked = invoke_artifact(zip_tree(root, tmp_path / "two.zip"), image=tmp_path / "cat.png")
    assert invoked.error is None and list(invoked.response) == ["zeta", "alpha"]
    for name, want in zip(invoked.response, expected):
        np.testing.assert_allclose(list(invoked.response[name].values()), want, atol=1e-4)


# -- a third engine, added from outside ---------------------------------------------------------

ENGINE = "lamb-test-engine"  # not on any index: pip finds it in the test's own folder (PIP_FIND_LINKS)
ENGINE_BACKEND = '''"""A third engine's backend, shipped in its own distribution: LiteRT's interpreter under another record."""

from lambkit.backends.litert import LiteRTBackend, library  # noqa: F401 - the backend module's contract

BACKEND = LiteRTBackend
'''


def _engine_wheel(folder):
    """``lamb_test_engine-0.1-py3-none-any.whl``: its backend, needing ai-edge-litert to run."""
    import base64
    import hashlib

    files = {
        "lamb_test_engine/__init__.py": "",
        "lamb_test_engine/backend.py": ENGINE_BACKEND,
        "lamb_test_engine-0.1.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {ENGINE}\nVersion: 0.1\nRequires-Dist: ai-edge-litert\n",
        "lamb_test_engine-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: lamb-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},{len(text.encode())}"
              for name, text in files.items()]
    files["lamb_test_engine-0.1.dist-info/RECORD"] = "\n".join([*record, "lamb_test_engine-0.1.dist-info/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "lamb_test_engine-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, text in files.items():
            zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), text)
    return wheel


@pytest.mark.network  # the engine's dependencies for the target (cached after the first run)
def test_a_third_engine_goes_through_the_pipeline_with_only_its_own_files(tmp_path, monkeypatch, png_bytes):
    """convert -> verify -> package -> invoke on an engine lamb has never heard of, for the tflite
    format. What it needed, all of it here and none of it in a generic module:

    - its record: a ``RuntimeLib`` (and a ``WheelRow`` for the release it has), registered;
    - its backend, in its own distribution (``lamb_test_engine/backend.py``, named by the record's
      ``handler_backend``): verify's runner and the function both load the model with it;
    - no converter of its own: a library of an existing format uses that format's converter.
    """
    from lamb import runtime_lib
    from lamb.convert import convert_model
    from lamb.invoke import invoke_artifact
    from lamb.package import build_package
    from lamb.verify import VerifyInputs, verify_model

    _engine_wheel(tmp_path / "index")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "index"))
    tflite = runtime_lib.get("ai-edge-litert").format
    engine = runtime_lib.RuntimeLib(ENGINE, "lamb_test_engine", (), tflite, "lamb_test_engine.backend")
    monkeypatch.setitem(runtime_lib.LIBRARIES, ENGINE, engine)
    monkeypatch.setattr(runtime_lib, "WHEELS", [*runtime_lib.WHEELS, runtime_lib.WheelRow(ENGINE, "0.1", ("3.11",), ("x86_64",), (2, 17))])

    model = _two_heads()
    model.save(tmp_path / "two.keras")
    converted = convert_model(tmp_path / "two.keras", tmp_path / "two.tflite", preprocess="none", runtime_lib_name=ENGINE)
    report = verify_model(manifest_path=converted.manifest_path, inputs=VerifyInputs(samples=4),
                          runtime_lib_name=ENGINE, runtime="python3.11")
    assert report.passed, report.failures or report.error
    assert (report.runtime_lib, report.runtime_lib_version) == (ENGINE, "0.1")
    built = build_package(converted.manifest_path, runtime="python3.11", output=tmp_path / "fn.zip", smoke=False)
    assert (built.runtime_lib.name, built.runtime_lib.version) == (ENGINE, "0.1")
    with zipfile.ZipFile(tmp_path / "fn.zip") as zf:
        assert "lamb_test_engine/backend.py" in zf.namelist()
        assert json.loads(zf.read("lamb.json"))["package"]["handler_backend"] == "lamb_test_engine.backend"
    (tmp_path / "cat.png").write_bytes(png_bytes)
    invoked = invoke_artifact(tmp_path / "fn.zip", image=tmp_path / "cat.png")
    assert invoked.error is None and list(invoked.response) == ["zeta", "alpha"], invoked.logs


def _same_signature(implementation, protocol_method) -> bool:
    import inspect

    def params(f):
        return [(p.name, p.kind) for p in inspect.signature(f).parameters.values() if p.name != "self"]

    return params(implementation) == params(protocol_method)


def test_every_engine_is_typed_by_its_seams():
    """Each library's backend is a ``Backend`` and its format's converter a ``Converter``
    (typing.Protocol: the seams are types, not names found by convention)."""
    from lamb import runtime_lib
    from lamb.convert import engine

    for lib in runtime_lib.LIBRARIES.values():
        backend = backends.module(lib.handler_backend)
        assert callable(backend.library) and {"describe", "run"} <= set(dir(backend.BACKEND)), lib.name
        assert _same_signature(backend.BACKEND.run, backends.Backend.run), lib.name
        assert _same_signature(backend.BACKEND.describe, backends.Backend.describe), lib.name
        converter = engine.for_format(lib.format)
        for method in ("export", "convert", "quantization_of", "ship"):
            assert _same_signature(getattr(converter, method), getattr(engine.Converter, method)), (lib.format.name, method)
