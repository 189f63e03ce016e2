"""Quantization modes: one row per mode on its format's record (LiteRT's here), and the help text
generated from the rows."""

from __future__ import annotations

import pytest

from lamb import quantization, runtime_lib

FORMAT = runtime_lib.get("ai-edge-litert").format
MODES = FORMAT.modes


def test_the_modes_and_their_converter_settings():
    assert FORMAT.mode_names == ("float32", "float16", "dynamic", "int8")
    assert quantization.DEFAULT == "float32" and not FORMAT.mode("float32").quantized
    assert FORMAT.mode("float16").supported_types == ("float16",)
    assert [m.name for m in MODES if m.calibrated] == ["int8"]
    with pytest.raises(KeyError):
        FORMAT.mode("bfloat16")


def test_every_row_is_consistent():
    for mode in MODES:
        t = mode.tolerances
        assert t.atol >= 0 and t.rtol >= 0 and 0 <= t.min_cosine <= 1 and 0 <= t.min_top1 <= 1
        assert not mode.integer_only or mode.optimize  # integer-only conversion is an optimisation
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


def test_the_readme_lists_the_modes_of_the_table():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"[--modes {','.join(FORMAT.mode_names)}]" in readme
