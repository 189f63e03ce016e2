"""lamb.verify.runner: the shipped TFLite library, where it is importable, and running a .tflite on it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lamb.errors import InputError
from lamb.handler.lambkit import preprocess
from lamb.verify.runner import (
    ModelRunner,
    RunnerFailure,
    RuntimeEnv,
    explain_failure,
    lib_version,
    pick_runtime_lib,
    resolve_runtime_env,
)


def pick(**kw):
    choice = pick_runtime_lib(**kw)
    return choice.name, choice.requirements, choice.reason


def test_default_is_what_lamb_package_ships_for_the_default_runtime():
    from lamb import targets

    lib, requirements, why = pick()
    assert lib == "ai-edge-litert" and requirements[0].startswith("ai-edge-litert==2.")
    assert f"ships for {targets.get_target().name}" in why


def test_a_lambda_runtime_picks_its_own_library():
    # python3.11 runs on Amazon Linux 2 (glibc 2.26): ai-edge-litert 2.x has no wheel for it.
    lib, requirements, why = pick(runtime="python3.11")
    assert (lib, requirements[0]) == ("ai-edge-litert", "ai-edge-litert==1.4.0") and "python3.11" in why


def test_tflite_runtime_always_brings_numpy_1():
    lib, requirements, _ = pick(lib="tflite-runtime")
    assert lib == "tflite-runtime" and "numpy<2" in requirements


def test_ai_edge_litert_comes_from_lambs_own_environment():
    env = resolve_runtime_env("ai-edge-litert")
    assert env.origin == "lamb's environment" and env.python == sys.executable
    assert lib_version(env) == __import__("importlib").metadata.version("ai-edge-litert")


def test_an_unknown_library_is_refused():
    with pytest.raises(InputError, match="unknown runtime library 'tensorflow'"):
        resolve_runtime_env("tensorflow")


def test_runner_loads_and_runs_the_model_without_tensorflow(converted_tiny, tmp_path):
    env = resolve_runtime_env("ai-edge-litert")
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3))
    with ModelRunner(env, converted_tiny.model_path) as runner:
        info = runner.wait_ready()
        assert info["lib"] == "ai-edge-litert" and len(info["inputs"]) == 1 and len(info["outputs"]) == 1
        outputs, _answer = runner.run({info["inputs"][0]["key"]: preprocess(pixels, "xception")}, tmp_path)
    (logits,) = outputs.values()
    assert logits.shape == (2, 4) and np.isfinite(logits).all()


def test_a_model_the_runtime_cannot_load_is_a_runtime_failure(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 8)
    with ModelRunner(resolve_runtime_env("ai-edge-litert"), junk) as runner, pytest.raises(RunnerFailure) as info:
        runner.wait_ready()
    assert info.value.stage == "load"
    sentence, _hint = explain_failure("ai-edge-litert", "2.3.0", junk, info.value)
    assert sentence.startswith("ai-edge-litert 2.3.0 cannot load junk.tflite: ")


def test_a_runtime_that_is_not_importable_is_a_runtime_failure(converted_tiny, tmp_path):
    # No runtime library on the path: the runner reports the import, it does not crash lamb.
    env = RuntimeEnv("tflite-runtime", sys.executable, [str(tmp_path)], "empty folder")
    with ModelRunner(env, converted_tiny.model_path) as runner, pytest.raises(RunnerFailure) as info:
        runner.wait_ready()
    assert info.value.stage == "import"
    assert explain_failure("tflite-runtime", "", Path("m.tflite"), info.value)[0].startswith("tflite-runtime cannot be imported")


@pytest.mark.parametrize(
    ("message", "stderr", "expected"),
    [
        ("RuntimeError: Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older version of this "
         "builtin might be supported.", "", "uses FULLY_CONNECTED version 12, an op version newer than this runtime knows"),
        ("ValueError: Regular TensorFlow ops are not supported by this interpreter.", "", "TF Select (Flex) ops"),
        ("ImportError: numpy.core.multiarray failed to import",
         "A module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.4.6 as it may crash.",
         "cannot run with NumPy 2.4.6: it was built against NumPy 1.x"),
    ],
)
def test_failures_are_explained_in_one_sentence(message, stderr, expected):
    sentence, hint = explain_failure("tflite-runtime", "2.14.0", Path("model.tflite"), RunnerFailure("load", message, stderr))
    assert expected in sentence and "\n" not in sentence and hint


def test_an_onnx_failure_is_explained_by_its_own_record():
    """LiteRT's error texts are LiteRT's record's; an ONNX model is never told to ship LiteRT."""
    failure = RunnerFailure("load", "Fail: [ONNXRuntimeError] : 1 : FAIL : Load model failed: Flex op", "")
    sentence, hint = explain_failure("onnxruntime", "1.32.0", Path("model.onnx"), failure)
    assert sentence.startswith("onnxruntime 1.32.0 cannot load model.onnx: ") and "TF Select" not in sentence
    assert "litert" not in hint.lower()


def test_what_verify_says_package_ships_is_the_audit_driven_choice(converted_tiny):
    from lamb import manifest as mf
    from lamb.verify.runner import pick_runtime_lib

    manifest = mf.read(converted_tiny.manifest_path)
    # ai-edge-litert 2.3.0 is the newest aarch64 wheel for python3.13, but it needs GLIBCXX_3.4.30
    choice = pick_runtime_lib(None, "python3.13-arm64", manifest)
    assert choice.requirement == "ai-edge-litert==2.1.0"
    assert "what `lamb package` ships for python3.13-arm64" in choice.reason and "ELF audit" in choice.reason
    refused = pick_runtime_lib("tflite-runtime", "python3.10", manifest)
    assert "`lamb package` refuses python3.10-x86_64" in refused.reason and "GLIBC_2.29" in refused.reason


@pytest.mark.network  # onnxruntime 1.16.3's wheel, in an isolated environment (cached)
def test_a_library_that_cannot_load_in_time_is_stopped_and_the_limit_named(tmp_path, monkeypatch):
    """onnxruntime 1.16.3 (what python3.11 ships) loads If nodes nested 30 deep for hours."""
    import time

    from conftest import build_nested_if_onnx

    from lamb.verify import runner

    model = build_nested_if_onnx(tmp_path / "nested.onnx", depth=30)
    choice = pick_runtime_lib("onnxruntime", "python3.11", None, "onnx")
    assert choice.version == "1.16.3"
    env = resolve_runtime_env(choice.name, choice.requirements)
    monkeypatch.setitem(runner.LIMITS_S, "load", 5.0)
    started = time.perf_counter()
    with ModelRunner(env, model) as slow, pytest.raises(RunnerFailure) as failure:
        slow.wait_ready()
    assert time.perf_counter() - started < 60 and failure.value.stage == "load"
    assert explain_failure(choice.name, choice.version, model, failure.value)[0] == (
        "onnxruntime 1.16.3 cannot load nested.onnx: it did not finish within 5 s, lamb's time limit for loading "
        "a model (lamb.verify.runner.LIMITS_S), and was stopped"
    )
