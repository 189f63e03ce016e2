"""lamb.quantization: one row per mode, and the help text generated from the rows."""

from __future__ import annotations

import pytest

from lamb import quantization, tflite_lib


def test_the_modes_and_their_converter_settings():
    assert quantization.NAMES == ("float32", "float16", "dynamic", "int8")
    assert quantization.DEFAULT == "float32" and not quantization.get("float32").quantized
    assert quantization.get("float16").supported_types == ("float16",)
    assert [m.name for m in quantization.MODES if m.calibrated] == ["int8"]
    with pytest.raises(KeyError):
        quantization.get("bfloat16")


def test_every_row_is_consistent():
    for mode in quantization.MODES:
        t = mode.tolerances
        assert t.atol >= 0 and t.rtol >= 0 and 0 <= t.min_cosine <= 1 and 0 <= t.min_top1 <= 1
        assert set(mode.lacked_by) <= set(tflite_lib.NAMES), mode.name
        assert not mode.integer_only or mode.optimize  # integer-only conversion is an optimisation
    # The more a mode rounds, the looser its bounds: never tighter than the mode before it.
    rtols = [m.tolerances.rtol for m in quantization.MODES]
    assert rtols == sorted(rtols)


def test_help_is_generated_from_the_table():
    assert quantization.choices_help() == "float32 | float16 | dynamic | int8 (full-integer, needs --calibration)"
    # Numbers as a person writes them, whatever the rows hold.
    assert [quantization._number(x) for x in (1e-6, 1e-4, 2e-3, 0.01, 0.04, 0.5, 0.9999, 1.0)] == [
        "1e-6", "1e-4", "2e-3", "0.01", "0.04", "0.5", "0.9999", "1",
    ]
    listed = quantization.tolerances_help().split("; ")
    assert [entry.split(" ", 1)[0] for entry in listed] == list(quantization.NAMES)
    for entry, mode in zip(listed, quantization.MODES):
        t = mode.tolerances
        assert entry == f"{mode.name} " + " / ".join(quantization._number(v) for v in (t.atol, t.rtol, t.min_cosine, t.min_top1))


def test_the_cli_help_shows_the_table():
    from typer.testing import CliRunner

    from lamb.cli import app

    result = CliRunner().invoke(app, ["verify", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert quantization.tolerances_help() in " ".join(result.output.split())


def test_libraries_lacking_a_modes_kernels_are_never_chosen_for_it():
    row = next(r for r in tflite_lib.WHEELS if r.name == "tflite-runtime")
    assert row.lacks("dynamic") and row.lacks("int8") and not row.lacks("float16")
    assert not row.lacks("unknown-mode")


def test_the_readme_lists_the_modes_of_the_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"[--modes {','.join(quantization.NAMES)}]" in readme
