"""lamb compare and lamb convert -q auto on an .onnx source (issue 22 item 3): ONNX Runtime's modes,
int8 calibrated, the same table and recommendation as for Keras; the reference is the source run on
ONNX's own evaluator."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lamb import manifest as mf
from lamb.cli import app
from lamb.compare.report import VERIFIED

runner = CliRunner()
pytestmark = pytest.mark.network  # the target's wheels, resolved once and cached


def test_an_onnx_model_is_compared_in_onnx_runtimes_modes(nchw_onnx, sample_images, quick_timing, tmp_path):
    result = runner.invoke(app, [
        "compare", str(nchw_onnx), "--images", str(sample_images), "--calibration", str(sample_images), "--samples", "4",
        "--memory", "1024", "--runtime", "python3.13", "--output-dir", str(tmp_path / "kept"), "--json",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {(r["runtime_lib"], r["mode"]): r for r in data["rows"]}
    assert list(rows) == [("onnxruntime", m) for m in ("float32", "float16", "dynamic", "int8")]
    assert all(r["status"] == VERIFIED and r["speed"]["warm_ms"] > 0 for r in rows.values()), data["rows"]
    assert data["recommended_runtime_lib"] == "onnxruntime" and data["recommended"] in {m for _, m in rows}
    float32 = rows[("onnxruntime", "float32")]
    data_file = nchw_onnx.parent / "model.onnx.data"
    assert float32["size"]["model"] == nchw_onnx.stat().st_size + data_file.stat().st_size  # its external data counted
    kept = mf.read(tmp_path / "kept" / "onnxruntime" / "model-float32.lamb.json")
    assert kept.verification is not None and kept.verification.passed and kept.model.external_data == ["model.onnx.data"]
    assert mf.read(tmp_path / "kept" / "onnxruntime" / "model-int8.lamb.json").calibration["images"] == 12


def test_convert_quantize_auto_keeps_the_recommended_onnx_model_here(nchw_onnx, sample_images, quick_timing, tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    result = runner.invoke(app, ["convert", str(nchw_onnx), "-q", "auto", "--images", str(sample_images)])
    assert result.exit_code == 0, result.output
    manifest = mf.read(out / "model.lamb.json")
    assert manifest.comparison is not None and manifest.quantization == manifest.comparison["recommended"]
    assert manifest.verification is not None and manifest.verification.passed
    expected = {"model.lamb.json", "model.onnx", *manifest.model.external_data}
    assert {p.name for p in out.iterdir()} == expected  # nothing else left
    assert sorted(p.name for p in nchw_onnx.parent.iterdir()) == ["model.onnx", "model.onnx.data"]
