"""lamb.runtime_lib: the records, and choosing the runtime library per target from the measured wheel table."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from lamb import runtime_lib, targets
from lamb.errors import DependencyError, InputError, RuntimeLibError
from lamb.manifest import Verification
from lamb.release import lib_choice, wheels


def _manifest(converted_tiny, **changes):
    return dataclasses.replace(converted_tiny.manifest, **changes)


def _verified(lib, version):
    return Verification(True, "x", lib, version, 8, 0, 0, {}, [])


def test_python312_gets_litert_2(converted_tiny):
    choice = lib_choice.resolve(targets.get_target("python3.12"), converted_tiny.manifest, purpose=lib_choice.TAGGED).choice
    assert (choice.name, choice.requirement, choice.module) == ("ai-edge-litert", "ai-edge-litert==2.3.0", "ai_edge_litert")
    assert choice.extra_requirements == []
    assert "python3.12" in choice.reason


def test_python311_gets_litert_1_4_because_2x_needs_glibc_227(converted_tiny):
    for arch in ("x86_64", "arm64"):
        choice = lib_choice.resolve(targets.get_target("python3.11", arch), converted_tiny.manifest, purpose=lib_choice.TAGGED).choice
        assert choice.requirement == "ai-edge-litert==1.4.0"


def test_verified_library_is_kept_when_the_target_has_it(converted_tiny):
    m = _manifest(converted_tiny, verification=_verified("tflite-runtime", "2.14.0"))
    choice = lib_choice.resolve(targets.get_target("python3.11"), m, purpose=lib_choice.TAGGED).choice
    assert choice.requirement == "tflite-runtime==2.14.0"
    assert choice.extra_requirements == ["numpy<2"]  # its extension is built against NumPy 1.x
    assert "verify" in choice.reason


def test_verified_library_without_wheels_falls_back_and_says_so(converted_tiny):
    m = _manifest(converted_tiny, verification=_verified("tflite-runtime", "2.14.0"))
    choice = lib_choice.resolve(targets.get_target("python3.12"), m, purpose=lib_choice.TAGGED).choice
    assert choice.name == "ai-edge-litert"
    assert "tflite-runtime 2.14.0" in choice.reason and "has none" in choice.reason


def test_dynamic_range_model_never_gets_tflite_runtime(converted_tiny):
    m = _manifest(converted_tiny, quantization="dynamic", verification=_verified("tflite-runtime", "2.14.0"))
    choice = lib_choice.resolve(targets.get_target("python3.11"), m, purpose=lib_choice.TAGGED).choice
    assert choice.name == "ai-edge-litert"


def test_override_wins_and_is_checked_against_the_target(converted_tiny):
    choice = lib_choice.resolve(targets.get_target("python3.11"), converted_tiny.manifest, "tflite_runtime", purpose=lib_choice.TAGGED).choice
    assert choice.requirement == "tflite-runtime==2.14.0" and "--runtime-lib" in choice.reason
    with pytest.raises(DependencyError) as err:
        lib_choice.resolve(targets.get_target("python3.12"), converted_tiny.manifest, "tflite-runtime", purpose=lib_choice.TAGGED)
    assert "tflite-runtime" in err.value.message and "python3.12" in err.value.message
    assert "ai-edge-litert 2.3.0" in err.value.hint
    with pytest.raises(InputError):
        lib_choice.resolve(targets.get_target("python3.12"), converted_tiny.manifest, "onnxruntime", purpose=lib_choice.TAGGED)


def test_flex_model_is_refused(converted_tiny):
    m = _manifest(converted_tiny, requires_flex=True, flex_ops=["FlexErf"])
    with pytest.raises(RuntimeLibError) as err:
        lib_choice.resolve(targets.get_target("python3.12"), m, purpose=lib_choice.TAGGED)
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
    assert any((r.name, r.version) == row for r in runtime_lib.available(target))
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


def test_one_record_per_library_found_by_name_alias_or_format():
    litert = runtime_lib.get("ai-edge-litert")
    assert runtime_lib.get("litert") is litert and runtime_lib.get("AI_EDGE_LITERT") is litert
    assert runtime_lib.get("tflite_runtime").name == "tflite-runtime"
    assert runtime_lib.default() is litert  # the maintained library first
    assert [lib.name for lib in runtime_lib.for_format("tflite")] == ["ai-edge-litert", "tflite-runtime"]
    fmt = runtime_lib.model_format("tflite")
    assert fmt is litert.format and (fmt.file, fmt.suffix) == ("model.tflite", ".tflite")
    assert runtime_lib.format_for_suffix(".TFLITE") is fmt and runtime_lib.format_for_suffix(".h5") is None
    assert litert.handler_backend == "litert"
    assert {r.name for r in litert.slim_rules} >= {"litert accelerators", "litert tools"}
    with pytest.raises(InputError, match="unknown runtime library 'tensorrt'"):
        runtime_lib.get("tensorrt")
    with pytest.raises(InputError, match="no runtime library here runs 'safetensors' models"):
        runtime_lib.model_format("safetensors")


def test_every_record_points_at_files_that_exist():
    import importlib
    from pathlib import Path

    from lamb.handler.lambkit import backends

    for lib in runtime_lib.LIBRARIES.values():
        assert (Path(backends.__file__).parent / f"{lib.handler_backend}.py").is_file(), lib.name
        converter = importlib.import_module(lib.format.converter)
        assert callable(converter.convert) and callable(converter.export), lib.name
        assert any(row.name == lib.name for row in runtime_lib.WHEELS), lib.name


def test_a_release_can_need_more_than_its_library():
    """A release built against NumPy 1.x (onnxruntime 1.16.3's extension: "_ARRAY_API not found"
    with NumPy 2) needs numpy<2 where its library's later releases do not."""
    row = runtime_lib.WheelRow("ai-edge-litert", "0.1", ("3.11",), ("x86_64",), (2, 17), extra_needs=("numpy<2",))
    assert row.needs == ("numpy<2",) and runtime_lib.choice_of(row).requirements == ["ai-edge-litert==0.1", "numpy<2"]
    frozen = runtime_lib.WheelRow("tflite-runtime", "0.1", ("3.11",), ("x86_64",), (2, 17), extra_needs=("numpy<2",))
    assert frozen.needs == ("numpy<2",)  # said once, whoever says it


# -- ONNX Runtime (lamb/runtime_lib/onnxruntime.py) ---------------------------------------------


@pytest.mark.parametrize(
    ("runtime", "arch", "version"),
    [("python3.13", "x86_64", "1.32.0"), ("python3.12", "arm64", "1.32.0"), ("python3.11", "x86_64", "1.16.3"), ("python3.10", "arm64", "1.16.3")],
)
def test_an_onnx_model_gets_onnxruntime_for_every_target(converted_tiny_onnx, runtime, arch, version):
    choice = lib_choice.resolve(targets.get_target(runtime, arch), converted_tiny_onnx.manifest, purpose=lib_choice.TAGGED).choice
    assert (choice.name, choice.requirement, choice.module) == ("onnxruntime", f"onnxruntime=={version}", "onnxruntime")


def test_the_onnx_record_names_its_format_and_backend():
    lib = runtime_lib.get("ort")
    assert lib.name == "onnxruntime" and runtime_lib.get("onnx") is lib
    assert (lib.format.name, lib.format.suffix, lib.format.file) == ("onnx", ".onnx", "model.onnx")
    assert lib.format.mode_names == ("float32", "float16", "dynamic", "int8") and lib.format.mode("int8").calibrated
    assert lib.handler_backend == "ort"
    assert runtime_lib.format_for_suffix(".onnx") is lib.format
    assert runtime_lib.default().name == "ai-edge-litert"  # ONNX Runtime registers after LiteRT


def test_a_tflite_library_is_refused_for_an_onnx_model(converted_tiny_onnx):
    with pytest.raises(InputError, match="runs tflite models, and this model is onnx"):
        lib_choice.resolve(targets.get_target("python3.12"), converted_tiny_onnx.manifest, override="ai-edge-litert", purpose=lib_choice.TAGGED)


def test_onnxruntime_1_16_brings_numpy_1(converted_tiny_onnx):
    """Built against NumPy 1.x: with NumPy 2 it fails to import, and its wheel does not say so."""
    choice = lib_choice.resolve(targets.get_target("python3.11"), converted_tiny_onnx.manifest, purpose=lib_choice.TAGGED).choice
    assert choice.requirements == ["onnxruntime==1.16.3", "numpy<2"]
    assert lib_choice.resolve(targets.get_target("python3.12"), converted_tiny_onnx.manifest, purpose=lib_choice.TAGGED).choice.requirements == ["onnxruntime==1.32.0"]


def test_every_runtime_has_a_wheel_row_or_an_explicit_none_yet():
    # A new row in targets.RUNTIMES must say, for each maintained library, which release ships
    # for it, or that none does yet; a frozen library (no new releases) is not asked.
    missing = [
        (lib.name, runtime.name, arch)
        for lib in runtime_lib.LIBRARIES.values() if not lib.frozen
        for runtime in targets.RUNTIMES if runtime.name not in lib.no_wheels_yet
        for arch in targets.ARCHES
        if not any(w.name == lib.name and runtime.python in w.pythons and arch in w.arches for w in runtime_lib.WHEELS)
    ]
    assert missing == []
    for lib in runtime_lib.LIBRARIES.values():  # what it says has no wheel is a runtime lamb knows
        assert set(lib.no_wheels_yet) <= set(targets.runtime_names()), lib.name


def test_a_new_runtime_without_a_row_fails_the_check(monkeypatch):
    newer = dataclasses.replace(targets.RUNTIMES[-1], name="python3.99", python="3.99")
    monkeypatch.setattr(targets, "RUNTIMES", (*targets.RUNTIMES, newer))
    with pytest.raises(AssertionError):
        test_every_runtime_has_a_wheel_row_or_an_explicit_none_yet()
