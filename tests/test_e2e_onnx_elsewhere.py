"""Issue 22 item 5, end to end: the README's pattern with an .onnx kept in the user's data folder,
`cd out && lamb convert ../m.onnx && lamb verify && lamb package`: everything lands in out/, the
external weights beside the model, and the size budget counts them as the model."""

from __future__ import annotations

import json
import zipfile

import pytest
from typer.testing import CliRunner

from lamb.cli import app

pytestmark = pytest.mark.e2e


def _lamb(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_convert_verify_package_from_another_folder(nchw_onnx, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)

    converted = json.loads(_lamb("convert", "../exported/model.onnx", "--json").stdout)
    assert sorted(p.name for p in out.iterdir()) == ["model.lamb.json", "model.onnx", "model.onnx.data"]
    assert sorted(p.name for p in nchw_onnx.parent.iterdir()) == ["model.onnx", "model.onnx.data"]  # the data folder untouched
    data = (out / "model.onnx.data").stat().st_size
    assert converted["model_bytes"] == (out / "model.onnx").stat().st_size + data

    assert json.loads(_lamb("verify", "--json").stdout)["passed"]

    packaged = json.loads(_lamb("package", "--runtime", "python3.13", "--json").stdout)
    (artifact,) = out.glob("*python3.13*.zip")
    with zipfile.ZipFile(artifact) as z:
        assert {"model.onnx", "model.onnx.data"} <= set(z.namelist())
        # The model pre-optimized for this CPU (where this machine runs python3.13) is the model's too.
        optimized = [i.file_size for i in z.infolist() if i.filename.startswith("model.optimized.onnx")]
    model = next(c for c in packaged["budget"]["components"] if c["name"] == "model")
    assert model["files"] == 2 + len(optimized)
    assert model["unzipped"] == (out / "model.onnx").stat().st_size + data + sum(optimized)
