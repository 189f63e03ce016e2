"""The size budget: components, Lambda's limits, --max-size."""

from __future__ import annotations

import zipfile

import pytest

from lamb.errors import BudgetExceeded, InputError
from lamb.package import budget
from lamb.package.budget import ComponentSize, MiB


@pytest.mark.parametrize(
    ("name", "component"),
    [("model.tflite", "model"), ("lambda_function.py", "handler"), ("lamb.json", "handler"),
     ("ai_edge_litert/interpreter.py", "runtime lib"), ("ai_edge_litert-2.3.0.dist-info/RECORD", "runtime lib"),
     ("tflite_runtime/interpreter.py", "runtime lib"), ("numpy.libs/libscipy_openblas.so", "numpy"),
     ("numpy/_core/x.so", "numpy"), ("PIL/Image.py", "pillow"), ("pillow.libs/libjpeg.so", "pillow"),
     ("pillow-13.0.0.dist-info/METADATA", "pillow"), ("typing_extensions.py", "other"), ("numpyro/x.py", "other")],
)
def test_component_of(name, component):
    assert budget.component_of(name) == component


@pytest.mark.parametrize(("text", "size"), [("50MB", 50 * MiB), ("1.5 GB", int(1.5 * 1024 * MiB)), ("800k", 800 * 1024), ("123", 123), ("2MiB", 2 * MiB)])
def test_parse_size(text, size):
    assert budget.parse_size(text) == size


def test_parse_size_rejects_nonsense():
    with pytest.raises(InputError):
        budget.parse_size("fifty megs")


def _components(model_mb, deps_mb, zipped_ratio=0.9):
    return [ComponentSize("model", 1, int(model_mb * MiB), int(model_mb * MiB * zipped_ratio)),
            ComponentSize("numpy", 300, int(deps_mb * MiB), int(deps_mb * MiB * 0.3))]


def test_over_50mb_zipped_warns_with_advice():
    comps = _components(60, 40)
    report = budget.check(comps, fmt="zip", zip_bytes=sum(c.zipped for c in comps))
    assert not report.failed
    assert len(report.warnings) == 1 and "S3" in report.warnings[0] and "image" in report.warnings[0]
    budget.enforce(report)  # a warning is not a failure


def test_over_250mb_unzipped_fails_naming_the_largest():
    comps = _components(200, 80)
    report = budget.check(comps, fmt="zip", zip_bytes=sum(c.zipped for c in comps))
    assert [c.name for c in report.failed] == ["unzipped (incl. layers)"]
    with pytest.raises(BudgetExceeded) as err:
        budget.enforce(report)
    assert "model 200.0 MB" in err.value.message and "numpy" in err.value.message
    assert err.value.exit_code == 8


def test_image_limit_and_max_size():
    comps = _components(9500, 10)
    report = budget.check(comps, fmt="image")
    assert report.total_zipped is None and report.failed[0].name.startswith("container image")
    small = _components(1, 1)
    report = budget.check(small, fmt="zip", zip_bytes=2 * MiB, max_size=MiB)
    assert report.failed[0].name == "--max-size (zip)"


def test_measure_zip_counts_compressed_and_uncompressed(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model.tflite", b"\0" * 100_000)
        zf.writestr("numpy/x.py", b"x = 1\n" * 1000)
    comps = {c.name: c for c in budget.measure_zip(path)}
    assert comps["model"].unzipped == 100_000 and comps["model"].zipped < 2_000
    assert comps["numpy"].files == 1 and comps["pillow"].files == 0
