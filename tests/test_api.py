"""lamb's Python API (lamb.api): the steps as functions with the command's defaults and rules.

The docs' notebook session (docs/python-api.md) runs here as it is written, and the API and the
CLI build the same artifact from the same manifest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lamb
from lamb import api
from lamb.errors import InputError

ROOT = Path(__file__).resolve().parent.parent


def test_import_lamb_is_light_and_each_step_is_callable():
    code = (
        "import sys, lamb; heavy = [m for m in ('tensorflow', 'keras', 'onnx', 'boto3', 'lamb.api', 'typer') if m in sys.modules];"
        "print(heavy); import lamb.package.build; print(callable(lamb.package), callable(lamb.convert))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.split("\n")[:2] == ["[]", "True True"]


def test_the_cli_loads_no_heavy_library_before_a_command_runs():
    # `lamb --help` imports lamb.cli: no engine, no TensorFlow, no NumPy or Pillow, no boto3.
    heavy = ("tensorflow", "keras", "onnx", "onnxruntime", "boto3", "numpy", "PIL", "lamb.api")
    code = f"import sys, lamb.cli; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_the_step_packages_are_the_api_and_still_their_modules():
    import inspect

    import lamb.invoke as invoke_module
    from lamb.convert import convert_model

    assert set(api.STEPS) == set(lamb._STEPS)
    for name in api.STEPS:
        step = getattr(lamb, name)
        assert step.__name__ == f"lamb.{name}" and inspect.signature(step) == inspect.signature(getattr(api, name))
        assert step.__doc__.startswith(inspect.cleandoc(getattr(api, name).__doc__))  # what help(lamb.convert) shows first
    assert invoke_module is lamb.invoke and lamb.convert.convert_model is convert_model


def test_an_option_the_command_lacks_is_refused_by_name(tmp_path):
    with pytest.raises(InputError, match="lamb package has no option 'runtim'"):
        lamb.package(tmp_path / "m.lamb.json", runtim="python3.12")
    with pytest.raises(InputError, match="lamb invoke has no option 'images'"):
        lamb.invoke(tmp_path / "f.zip", images="x/")


def test_quantize_auto_refusals_live_in_the_library(tiny_classifier_h5, tmp_path):
    # The rules `lamb convert -q auto` enforced in the CLI alone, now the API's for every caller.
    with pytest.raises(InputError, match="--quantize auto compares the modes lamb ships as they are"):
        lamb.convert(tiny_classifier_h5, tmp_path / "m.tflite", quantize="auto", integer_io=True)
    with pytest.raises(InputError, match="--images only applies to --quantize auto"):
        lamb.convert(tiny_classifier_h5, tmp_path / "m.tflite", images=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_keras_model_in_memory_is_saved_beside_the_conversion(tmp_path):
    from conftest import TINY_LABELS, build_tiny_classifier

    result = lamb.convert(build_tiny_classifier(), tmp_path / "out", preprocess="xception", labels=",".join(TINY_LABELS))
    source = tmp_path / "out" / "tiny_classifier.keras"
    assert source.is_file() and result.model_path.parent == tmp_path / "out"
    assert result.manifest.labels == TINY_LABELS and str(source) in result.notes[0]
    assert result.manifest.source_path(result.manifest_path) == source


def test_an_onnx_model_in_memory_is_saved_and_taken_as_it_is(nchw_onnx, tmp_path):
    import onnx

    result = lamb.convert(onnx.load(nchw_onnx), tmp_path, labels=["a", "b", "c", "d"])
    assert result.manifest.model.format == "onnx" and (tmp_path / f"{onnx.load(nchw_onnx).graph.name or 'model'}.onnx").is_file()


@pytest.mark.network
def test_compare_takes_a_model_in_memory_and_the_commands_option_forms(tmp_path, quick_timing):
    from conftest import TINY_LABELS, build_tiny_classifier

    report = lamb.compare(
        build_tiny_classifier(), runtime_lib="ai-edge-litert", modes="float32", samples=8, preprocess="xception",
        labels=TINY_LABELS, runtime="python3.12", memory=[512, 1769], output_dir=tmp_path,
    )
    assert (tmp_path / "tiny_classifier.keras").is_file() and "tiny_classifier.keras" in report.notes[0]
    assert [r.mode for r in report.rows] == ["float32"] and report.recommended == "float32"
    report.raise_for_failure()


def test_something_that_is_no_model_is_refused():
    with pytest.raises(InputError, match="cannot convert a dict"):
        lamb.convert({"weights": []})


def test_run_settings_take_the_commands_forms():
    settings = api.run_settings(memory=2048, env=["A=1"])
    assert (settings.memory_mb, settings.timeout_s, settings.env, settings.stand_in) == (2048, 30.0, {"A": "1"}, True)
    assert api.run_settings(env={"B": "2"}, stand_in=False).env == {"B": "2"}


@pytest.mark.network
def test_the_api_and_the_cli_build_the_same_artifact(tmp_path, verified_copy, monkeypatch):
    from typer.testing import CliRunner

    from lamb.cli import app

    by_api = lamb.package(verified_copy, runtime="python3.12", output=tmp_path / "api" / "f.zip", smoke=False)
    monkeypatch.chdir(verified_copy.parent)
    done = CliRunner().invoke(
        app, ["package", str(verified_copy), "--runtime", "python3.12", "-o", str(tmp_path / "cli" / "f.zip"), "--no-smoke", "--json"]
    )
    assert done.exit_code == 0, done.output
    by_cli = json.loads(done.output)
    assert by_cli["runtime_lib"]["requirement"] == by_api.runtime_lib.requirement and by_cli["installed"] == by_api.installed
    assert (tmp_path / "api" / "f.zip").read_bytes() == (tmp_path / "cli" / "f.zip").read_bytes()


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S)


@pytest.mark.e2e
@pytest.mark.network
def test_the_notebook_session_in_the_docs_runs(tmp_path, monkeypatch):
    blocks = _python_blocks(ROOT / "docs" / "python-api.md")
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__notebook__"}
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), namespace)  # the page's own code
    built = namespace["built"]
    assert built.artifact.is_file() and namespace["report"].passed
    assert os.path.commonpath([built.artifact, tmp_path]) == str(tmp_path)
