"""Choosing the TFLite library per target, from the measured wheel table."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from lamb import targets, tflite_lib
from lamb.errors import DependencyError, InputError, TFLiteLibError
from lamb.manifest import Verification
from lamb.package import wheels


def _manifest(converted_tiny, **changes):
    return dataclasses.replace(converted_tiny.manifest, **changes)


def _verified(lib, version):
    return Verification(True, "x", lib, version, 8, 0, 0, {}, [])


def test_python312_gets_litert_2(converted_tiny):
    choice = tflite_lib.choose(targets.get_target("python3.12"), converted_tiny.manifest)
    assert (choice.name, choice.requirement, choice.module) == ("ai-edge-litert", "ai-edge-litert==2.3.0", "ai_edge_litert")
    assert choice.extra_requirements == []
    assert "python3.12" in choice.reason


def test_python311_gets_litert_1_4_because_2x_needs_glibc_227(converted_tiny):
    for arch in ("x86_64", "arm64"):
        choice = tflite_lib.choose(targets.get_target("python3.11", arch), converted_tiny.manifest)
        assert choice.requirement == "ai-edge-litert==1.4.0"


def test_verified_library_is_kept_when_the_target_has_it(converted_tiny):
    m = _manifest(converted_tiny, verification=_verified("tflite-runtime", "2.14.0"))
    choice = tflite_lib.choose(targets.get_target("python3.11"), m)
    assert choice.requirement == "tflite-runtime==2.14.0"
    assert choice.extra_requirements == ["numpy<2"]  # its extension is built against NumPy 1.x
    assert "verify" in choice.reason


def test_verified_library_without_wheels_falls_back_and_says_so(converted_tiny):
    m = _manifest(converted_tiny, verification=_verified("tflite-runtime", "2.14.0"))
    choice = tflite_lib.choose(targets.get_target("python3.12"), m)
    assert choice.name == "ai-edge-litert"
    assert "tflite-runtime 2.14.0" in choice.reason and "has none" in choice.reason


def test_dynamic_range_model_never_gets_tflite_runtime(converted_tiny):
    m = _manifest(converted_tiny, quantization="dynamic", verification=_verified("tflite-runtime", "2.14.0"))
    choice = tflite_lib.choose(targets.get_target("python3.11"), m)
    assert choice.name == "ai-edge-litert"


def test_override_wins_and_is_checked_against_the_target(converted_tiny):
    choice = tflite_lib.choose(targets.get_target("python3.11"), converted_tiny.manifest, "tflite_runtime")
    assert choice.requirement == "tflite-runtime==2.14.0" and "--runtime-lib" in choice.reason
    with pytest.raises(DependencyError) as err:
        tflite_lib.choose(targets.get_target("python3.12"), converted_tiny.manifest, "tflite-runtime")
    assert "tflite-runtime" in err.value.message and "python3.12" in err.value.message
    assert "ai-edge-litert 2.3.0" in err.value.hint
    with pytest.raises(InputError):
        tflite_lib.choose(targets.get_target("python3.12"), converted_tiny.manifest, "onnxruntime")


def test_flex_model_is_refused(converted_tiny):
    m = _manifest(converted_tiny, requires_flex=True, flex_ops=["FlexErf"])
    with pytest.raises(TFLiteLibError) as err:
        tflite_lib.choose(targets.get_target("python3.12"), m)
    assert "FlexErf" in err.value.message


@pytest.mark.network
@pytest.mark.parametrize(
    ("runtime", "arch", "row"),
    [("python3.12", "arm64", ("ai-edge-litert", "2.3.0")), ("python3.11", "x86_64", ("ai-edge-litert", "1.4.0")),
     ("python3.11", "x86_64", ("tflite-runtime", "2.14.0"))],
)
def test_wheel_table_matches_the_index(runtime, arch, row):
    """Re-measure: the index really lists the table's versions for the target's tags, and not 2.x for AL2."""
    target = targets.get_target(runtime, arch)
    name, version = row
    assert any((r.name, r.version) == row for r in tflite_lib.available(target))
    versions = _index_versions(name, target)
    assert version in versions
    if target.runtime.glibc < (2, 27):
        assert not [v for v in versions if v.startswith("2.") and name == "ai-edge-litert"]


def _index_versions(name, target):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", name, *wheels.target_args(target)],
        capture_output=True, text=True, check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if "Available versions:" in ln), "")
    return [v.strip() for v in line.split(":", 1)[-1].split(",") if v.strip()]
