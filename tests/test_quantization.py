"""Quantization modes: one row per mode on its format's record (LiteRT's here), and the help text
generated from the rows."""

from __future__ import annotations

import pytest

from lamb import quantization, runtime_lib
from lamb.runtime_lib.litert import ConverterSettings

FORMAT = runtime_lib.get("ai-edge-litert").format
MODES = FORMAT.modes


def test_the_modes_and_their_converter_settings():
    assert FORMAT.mode_names == ("float32", "float16", "dynamic", "int8")
    assert quantization.DEFAULT == "float32" and not FORMAT.mode("float32").quantized
    assert FORMAT.mode("float16").settings == ConverterSettings(optimize=True, supported_types=("float16",))
    assert [m.name for m in MODES if m.calibrated] == ["int8"]
    with pytest.raises(KeyError):
        FORMAT.mode("bfloat16")


def test_every_row_is_consistent():
    for mode in MODES:
        t = mode.tolerances
        assert t.atol >= 0 and t.rtol >= 0 and 0 <= t.min_cosine <= 1 and 0 <= t.min_top1 <= 1
        assert mode.activations == "float32" or mode.quantized  # integer activations are rounded
        # Integer activations need measured ranges, and only such a model can take integer input.
        assert mode.calibrated == (mode.activations != "float32")
        assert mode.integer_io is None or mode.calibrated
        assert mode.weights == "float32" or mode.quantized
    # The more a mode rounds, the looser its bounds: never tighter than the mode before it.
    rtols = [m.tolerances.rtol for m in MODES]
    assert rtols == sorted(rtols)
    for lib in runtime_lib.LIBRARIES.values():  # a library lacks only modes its format offers
        assert set(lib.lacks) <= set(lib.format.mode_names), lib.name


def test_help_is_generated_from_the_table():
    assert quantization.choices_help(MODES) == "float32 | float16 | dynamic | int8 (full-integer, needs --calibration)"
    # Numbers as a person writes them, whatever the rows hold.
    assert [quantization._number(x) for x in (1e-6, 1e-4, 2e-3, 0.01, 0.04, 0.5, 0.9999, 1.0)] == [
        "1e-6", "1e-4", "2e-3", "0.01", "0.04", "0.5", "0.9999", "1",
    ]
    listed = quantization.tolerances_help(MODES).split("; ")
    assert [entry.split(" ", 1)[0] for entry in listed] == list(FORMAT.mode_names)
    for entry, mode in zip(listed, MODES):
        t = mode.tolerances
        assert entry == f"{mode.name} " + " / ".join(quantization._number(v) for v in (t.atol, t.rtol, t.min_cosine, t.min_top1))


def test_the_cli_help_shows_the_table():
    from typer.testing import CliRunner

    from lamb.cli import app

    result = CliRunner().invoke(app, ["verify", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert quantization.tolerances_help(MODES) in " ".join(result.output.split())


def test_libraries_lacking_a_modes_kernels_are_never_chosen_for_it():
    row = next(r for r in runtime_lib.WHEELS if r.name == "tflite-runtime")
    assert row.lacks("dynamic") and row.lacks("int8") and not row.lacks("float16")
    assert not row.lacks("unknown-mode")



def test_each_row_names_what_the_converter_and_the_inference_need():
    import numpy as np
    import tensorflow as tf

    for mode in MODES:
        assert hasattr(tf.lite.OpsSet, mode.settings.ops_set), mode.name  # the converter resolves it by name
        assert mode.settings.optimize == mode.quantized, mode.name
        for dtype in (mode.weights, mode.activations, *mode.settings.supported_types, *([mode.integer_io] if mode.integer_io else [])):
            np.dtype(dtype)  # a real dtype name, as the converter and the runners read it
    assert [(m.name, m.integer_io) for m in MODES if m.integer_io] == [("int8", "int8")]
    assert not [m for m in runtime_lib.get("onnxruntime").format.modes if m.integer_io]  # ONNX keeps float I/O


def test_a_models_mode_is_inferred_from_the_rows():
    # A model of each mode of each format: its weights (10 tensors) and activations (20) in the row's types.
    for fmt in runtime_lib.formats().values():
        for mode in fmt.modes:
            counts: dict[str, int] = {}
            counts[mode.weights] = counts.get(mode.weights, 0) + 10
            counts[mode.activations] = counts.get(mode.activations, 0) + 20
            assert quantization.infer(fmt.modes, counts) == mode.name, (fmt.name, mode.name)
    # A full-integer model with float32 input and output is still int8; float16 weights win.
    assert quantization.infer(MODES, {"int8": 40, "float32": 2}) == "int8"
    assert quantization.infer(MODES, {"float16": 5, "int8": 40}) == "float16"
    assert quantization.infer(MODES, {}) == "float32"

