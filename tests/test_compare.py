"""lamb compare: a small real model in every mode, real runtime libraries, the real handler timed.

Network-marked tests resolve the target's wheels once (cached under the lamb cache afterwards).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lamb.cli import app
from lamb.compare import compare_models, recommend
from lamb.compare.report import CANNOT_RUN, SKIPPED, VERIFIED, ModeResult, ModeSize, ModeSpeed
from lamb.compare.timing import IsaCheck, credited_warm_ms
from lamb.cost import MemoryAdvice
from lamb.errors import InputError
from lamb.handler.lambkit.cpu import Cpu, this_cpu

runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def build_small_classifier():
    """32x32 RGB -> 10 logits, with Dense layers big enough (>1024 weights) for dynamic-range
    quantization to quantize them (so tflite-runtime 2.14 meets hybrid kernels it lacks)."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(16, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_classifier")


@pytest.fixture(scope="module")
def small_h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("compare_model") / "small.h5"
    build_small_classifier().save(path)
    return path


@pytest.fixture(scope="module")
def cli_run(small_h5, sample_images, quick_timing, tmp_path_factory):
    """One real comparison through the CLI with --json and --plot (int8 without calibration)."""
    out = tmp_path_factory.mktemp("compare_cli")
    plot = out / "compare.png"
    result = runner.invoke(app, [
        "compare", str(small_h5), "--images", str(sample_images), "--samples", "16", "--preprocess", "xception",
        "--runtime", "python3.12", "--memory", "256,1024,1769", "--runtime-lib", "ai-edge-litert", "--json", "--plot", str(plot),
    ])
    return result, plot


# -- recommendation (pure) ------------------------------------------------------------------------


def _row(mode, cost, zip_mb, passed=True, max_rel=None, lib="", warm_ms=None, init_ms=None):
    row = ModeResult(mode, VERIFIED, passed=passed, verdict="pass" if passed else "fail", max_rel=max_rel, runtime_lib=lib)
    row.size = ModeSize(1, int(zip_mb * 2**20), 1, zip_mb <= 50)
    row.memory = MemoryAdvice(1769, "", cost_per_million=cost)
    if warm_ms is not None:
        row.speed = ModeSpeed(init_ms=init_ms, warm_ms=warm_ms, inference_ms=None, runs=10, peak_rss_mb=100.0, where="here")
    return row


def test_recommendation_prefers_what_fits_the_direct_upload():
    rows = [_row("float32", 3.0, 97), _row("float16", 3.0, 60), _row("dynamic", 1.6, 44)]
    assert recommend(rows)[0].mode == "dynamic"
    rows = [_row("float32", 1.0, 97), _row("dynamic", 1.6, 44)]
    best, why = recommend(rows)
    assert best.mode == "dynamic" and "float32 would cost less but only deploys through S3" in why
    best, why = recommend([_row("float32", 3.0, 97), _row("float16", 2.0, 60)])
    assert best.mode == "float16" and "through S3" in why  # none fits: the cheapest that passes
    assert recommend([_row("float32", 1.0, 10, passed=False)])[0] is None
    assert recommend([ModeResult("int8", SKIPPED, "no calibration")])[0] is None


def test_rows_that_cost_the_same_are_told_apart_by_their_figures_not_by_an_error_below_tolerance():
    # The demo model's float32 rows (issue 25): equal cost within 2 %, equal warm time within 2 %;
    # LiteRT starts faster. ONNX Runtime's smaller error (both pass) decides nothing.
    rows = [_row("float32", 0.220, 29.1, max_rel=1e-9, lib="onnxruntime", warm_ms=100.0, init_ms=1010.0),
            _row("float32", 0.219, 22.0, max_rel=1e-7, lib="ai-edge-litert", warm_ms=99.5, init_ms=852.0)]
    best, why = recommend(rows)
    assert best.key == ("ai-edge-litert", "float32")
    assert "onnxruntime float32 costs the same within 2%, and its cold start is the smallest: 852 vs 1,010 ms" in why
    # A warm time more than 2 % faster decides before the cold start does.
    rows[0].speed.warm_ms = 96.0
    best, why = recommend(rows)
    assert best.key == ("onnxruntime", "float32") and "its warm time is the smallest: 96 vs 100 ms" in why
    # Equal in time: the smaller zip.
    rows = [_row("float32", 0.220, 22, max_rel=1e-7, warm_ms=100.0, init_ms=800.0),
            _row("int8", 0.219, 21, max_rel=1e-2, warm_ms=99.0, init_ms=810.0)]
    best, why = recommend(rows)
    assert best.mode == "int8" and "its zip is the smallest: 21.0 vs 22.0 MB" in why
    # A plain pass beats a pass with a warning, whatever the figures.
    rows[0].verdict = "pass with warning"
    best, why = recommend(rows)
    assert best.mode == "int8" and "it passes without a warning" in why


def test_the_recommendation_chooses_the_runtime_library_and_names_it():
    """Rows are (runtime library, mode): the same mode on two libraries are two rows."""
    rows = [_row("float32", 0.9, 22, lib="ai-edge-litert"), _row("dynamic", 0.5, 8, lib="ai-edge-litert"),
            _row("float32", 1.2, 23, lib="onnxruntime"), _row("dynamic", 0.3, 8, lib="onnxruntime")]
    best, why = recommend(rows)
    assert best.key == ("onnxruntime", "dynamic") and why.startswith("onnxruntime dynamic is the cheapest")
    rows[3].passed = False
    best, why = recommend(rows)
    assert best.key == ("ai-edge-litert", "dynamic") and why.startswith("ai-edge-litert dynamic")


def test_bad_options_are_refused_before_any_work(small_h5, tmp_path):
    with pytest.raises(InputError, match="unknown quantization mode"):
        compare_models(small_h5, modes="float32,bfloat")
    with pytest.raises(InputError, match="outside Lambda's range"):
        compare_models(small_h5, memory=[64])
    with pytest.raises(InputError, match="unknown runtime library"):
        compare_models(small_h5, runtime_lib="tensorflow")
    with pytest.raises(InputError, match="no model"):
        compare_models(tmp_path / "missing.h5")
    result = runner.invoke(app, ["compare", str(small_h5), "--plot", str(tmp_path / "x.jpg")])
    assert result.exit_code == 3 and "does not end in .png" in result.output


# -- a real comparison ----------------------------------------------------------------------------


@pytest.mark.network  # the target's wheels, resolved once and cached
def test_every_mode_measured_and_the_recommendation_follows_the_rows(cli_run):
    result, _plot = cli_run
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {r["mode"]: r for r in data["rows"]}
    assert list(rows) == ["float32", "float16", "dynamic", "int8"]
    assert any("measured here at 2 threads" in note for note in data["notes"])
    for mode in ("float32", "float16", "dynamic"):
        row = rows[mode]
        assert row["status"] == VERIFIED and row["verdict"] in ("pass", "pass with warning"), row
        assert row["runtime_lib"].startswith("ai-edge-litert")
        assert row["size"]["model"] > 0 and row["size"]["zip"] > row["size"]["model"]
        assert row["size"]["unzipped"] > row["size"]["zip"] and row["size"]["fits_direct_upload"]
        assert row["speed"]["warm_ms"] > 0 and row["speed"]["init_ms"] > 0 and row["speed"]["runs"] >= 5
        assert row["speed"]["warm_2threads_ms"] > 0  # this machine has 2 CPUs: the speedup above 1,769 MB
        assert [p["memory_mb"] for p in row["costs"]] == [256, 1024, 1769]
        assert row["memory"]["recommended_mb"] >= max(row["memory"]["floors"].values())
        assert set(row["memory"]["floors"]) == {"peak RSS", "the pixel budget"}
        assert row["top1_lower"] is not None and row["top1_lower"] <= row["top1"]
    # int8 without calibration images: a skipped row with the reason, not a stop.
    assert rows["int8"]["status"] == SKIPPED and "--calibration" in rows["int8"]["reason"]
    # Every timing names the CPU that measured it.
    assert {r["speed"]["cpu"]["model"] for r in rows.values() if r["speed"]} == {this_cpu().model}
    assert rows["float32"]["speed"]["cpu"]["features"] == list(this_cpu().features)
    # The recommendation is among the cheapest passing rows that fit 50 MB (ties: break_tie's figures).
    passing = [r for r in rows.values() if r["status"] == VERIFIED and r["verdict"] in ("pass", "pass with warning")]
    cheapest = min(r["memory"]["cost_per_million"] for r in passing)
    tied = [r["mode"] for r in passing if r["memory"]["cost_per_million"] <= cheapest * 1.02]
    assert data["recommended"] in tied and data["why"].startswith(f"ai-edge-litert {data['recommended']}")
    assert ("the same within 2%" in data["why"]) == (len(tied) > 1)
    assert data["recommended_runtime_lib"] == "ai-edge-litert"
    assert data["target"] == "python3.12-x86_64" and data["samples"] == 16 and data["images"] == 12
    assert "estimate from local timing" in data["estimate_note"]



@pytest.mark.network
def test_by_default_every_runtime_library_the_target_has_is_compared(small_h5, quick_timing, tmp_path):
    """No --runtime-lib: a row per (runtime library, mode) for ai-edge-litert and onnxruntime, each
    library's models in a folder of its own, and the recommendation names the library."""
    result = runner.invoke(app, [
        "compare", str(small_h5), "--samples", "4", "--modes", "float32", "--memory", "1024", "--runtime", "python3.12",
        "--output-dir", str(tmp_path), "--json",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {(r["runtime_lib"], r["mode"]): r for r in data["rows"]}
    assert list(rows) == [("ai-edge-litert", "float32"), ("onnxruntime", "float32")]
    assert all(r["status"] == VERIFIED and r["speed"]["warm_ms"] > 0 for r in rows.values())
    # Timed as lamb package ships it: ONNX Runtime's model pre-optimized for this CPU (issue 25).
    assert any(n.startswith("onnxruntime float32 timed and sized with the model pre-optimized") for n in data["notes"])
    assert data["recommended_runtime_lib"] in ("ai-edge-litert", "onnxruntime") and data["recommended"] == "float32"
    assert data["why"].startswith(f"{data['recommended_runtime_lib']} float32 is the cheapest")
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.lamb.json")} == {
        "ai-edge-litert/small-float32.lamb.json", "onnxruntime/small-float32.lamb.json"}

@pytest.mark.network
def test_plot_is_a_real_png(cli_run):
    _result, plot = cli_run
    assert plot.read_bytes()[:8] == PNG_SIGNATURE and plot.stat().st_size > 5000


@pytest.mark.network
def test_int8_with_calibration_and_a_library_that_cannot_run_a_mode(small_h5, sample_images, quick_timing, tmp_path):
    """python3.11 with tflite-runtime 2.14: on this machine it runs float32, but lacks the hybrid
    kernels a dynamic-range model from this TensorFlow needs; and its wheel needs GLIBC_2.29, which
    Amazon Linux 2 lacks, so no mode can ship on it (the ELF audit, as `lamb package` decides).
    Each is a marked row with its reason, and the rest goes on."""
    report = compare_models(
        small_h5, images=sample_images, calibration=sample_images, samples=8, preprocess="xception",
        runtime="python3.11", runtime_lib="tflite-runtime", modes="float32,dynamic,int8", output_dir=tmp_path,
    )
    rows = {r.mode: r for r in report.rows}
    assert rows["float32"].runtime_lib == "tflite-runtime" and rows["float32"].runtime_lib_version.startswith("2.14")
    assert rows["float32"].verdict is not None
    assert rows["float32"].status == CANNOT_RUN and "GLIBC_2.29" in rows["float32"].reason
    assert rows["dynamic"].status == CANNOT_RUN and rows["dynamic"].speed is None
    assert "tflite-runtime 2.14" in rows["dynamic"].reason and "FULLY_CONNECTED" in rows["dynamic"].reason
    # int8 with calibration is compared, and judged on the real images only.
    assert rows["int8"].verdict is not None and rows["int8"].status == CANNOT_RUN
    from lamb import manifest as mf

    int8 = mf.read(rows["int8"].manifest_path).verification
    assert int8.images == 12 and int8.samples == 0
    assert report.recommended is None and "target's runtime library" in report.why
    # Kept models carry the verdict.
    kept = mf.read(rows["float32"].manifest_path)
    assert kept.verification is not None and kept.verification.runtime_lib == "tflite-runtime"


@pytest.mark.network
def test_convert_quantize_auto_keeps_the_recommended_model(small_h5, sample_images, quick_timing, tmp_path):
    from lamb import manifest as mf

    out = tmp_path / "auto.tflite"
    result = runner.invoke(app, [
        "convert", str(small_h5), "-q", "auto", "--images", str(sample_images), "--preprocess", "xception", "-o", str(out),
    ])
    assert result.exit_code == 0, result.output
    manifest = mf.read(mf.manifest_path_for(out))
    assert manifest.comparison is not None and manifest.quantization == manifest.comparison["recommended"]
    assert manifest.verification is not None and manifest.verification.passed
    assert manifest.model_path(mf.manifest_path_for(out)) == out and out.is_file()
    assert manifest.source_path(mf.manifest_path_for(out)).resolve() == small_h5.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auto.lamb.json", "auto.tflite"]  # nothing else left


def test_the_tables_fit_80_columns_without_cutting_names_or_numbers():
    import io
    from pathlib import Path

    from rich.console import Console

    from lamb.compare.render import render
    from lamb.compare.report import CompareReport, ModeSpeed
    from lamb.cost import MemoryPoint
    from lamb.verify.accuracy import measure

    rows = [_row(mode, 1.0 + i, 97.3 - 20 * i, max_rel=4.6e-05, lib=lib) for lib in ("ai-edge-litert", "onnxruntime")
            for i, mode in enumerate(("float32", "float16", "dynamic"))]
    for row in rows:
        row.runtime_lib_version = "1.32.0"
        row.top1, row.top1_lower = 1.0, 0.9637
        row.speed = ModeSpeed(init_ms=1234.5, warm_ms=123.45, inference_ms=100.0, runs=10, peak_rss_mb=80.0, where="here")
        row.costs = [MemoryPoint(m, 123.4, 1.2345) for m in (512, 1024, 1769, 3008)]
    report = CompareReport(Path("model.h5"), "python3.14-x86_64", "x86_64", 32, 0, 10, "xception", [512, 1024, 1769, 3008],
                           rows, "dynamic", "the cheapest that passes", recommended_runtime_lib="onnxruntime")
    rows[0].verdict = "pass with warning"

    def rendered() -> str:
        out = io.StringIO()
        console = Console(file=out, width=80)
        for renderable in render(report):
            console.print(renderable)
        return out.getvalue()

    text = rendered()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert all(name in text for name in ("float32", "float16", "dynamic", "4.6e-05", "1,234", "123.5", "WARNING"))
    # a table per runtime library, titled by it; the star on the recommended library's row only
    assert "ai-edge-litert 1.32.0" in text and "onnxruntime 1.32.0: Lambda $" in text and text.count("★") == 3  # and "★ recommended"
    # with --labeled-images, an accuracy column and Keras's figure beside the table
    truth = [0, 1] * 50
    report.source_accuracy = measure(np.eye(2)[truth], truth, ["a", "b"], preprocess="xception", model="keras")
    for row in rows:
        row.accuracy, row.accuracy_low, row.accuracy_high = 0.98, 0.93, 0.994
    text = rendered()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "98.0%" in text and "(93-99%)" in text and "the source model scores 100.0%" in text and "WARNING" in text


# -- the CPU that timed, against the target's -------------------------------------------------------

VNNI = Cpu("AMD EPYC 9R14", "x86_64", ("AVX2", "AVX-512F", "AVX-512 VNNI"))
AVX2 = Cpu("AMD EPYC 7R32", "x86_64", ("AVX2",))


def _timed(lib, mode, warm_ms):
    row = ModeResult(mode, VERIFIED, passed=True, verdict="pass", runtime_lib=lib)
    row.speed = ModeSpeed(init_ms=200.0, warm_ms=warm_ms, inference_ms=None, runs=10, peak_rss_mb=100.0, where="here")
    return row


def test_an_int8_speedup_timed_on_vnni_is_not_credited_to_a_target_not_known_to_have_it():
    rows = [_timed("onnxruntime", "float32", 74.0), _timed("onnxruntime", "int8", 26.0), _timed("onnxruntime", "float16", 79.0)]
    unknown = IsaCheck(VNNI, "x86_64", [])
    assert [credited_warm_ms(r, rows, unknown) for r in rows] == [74.0, 74.0, 79.0]
    notes = unknown.notes(rows)
    assert "not documented and not measured here (`lamb probe --arch x86_64` reads it)" in notes[0]
    assert notes[1].startswith("onnxruntime int8 priced at float32's warm time") and "AVX-512 VNNI" in notes[1]
    # Lambda measured without VNNI: still not credited, and the difference is named.
    lacking = IsaCheck(VNNI, "x86_64", [(AVX2, "lamb probe on python3.13-x86_64, eu-west-1, 2026-12-07")])
    assert credited_warm_ms(rows[1], rows, lacking) == 74.0
    assert lacking.notes(rows)[0] == (f"timed on {VNNI.describe()}; lamb probe on python3.13-x86_64, eu-west-1, 2026-12-07 read "
                                      f"{AVX2.describe()}: it lacks AVX-512F, AVX-512 VNNI")
    # Lambda measured with VNNI, or timed here without any int8 instruction: the speed-up stands.
    assert credited_warm_ms(rows[1], rows, IsaCheck(VNNI, "x86_64", [(VNNI, "probe")])) == 26.0
    assert IsaCheck(VNNI, "x86_64", [(VNNI, "probe")]).notes(rows) == []
    assert credited_warm_ms(rows[1], rows, IsaCheck(AVX2, "x86_64", [])) == 26.0


def test_the_tie_break_reads_the_warm_time_as_priced():
    f32, int8 = _row("float32", 1.0, 30, warm_ms=74.0, init_ms=300.0), _row("int8", 1.0, 20, warm_ms=26.0, init_ms=300.0)
    f32.memory.local_ms, int8.memory.local_ms = 74.0, 74.0  # int8's speed-up not credited
    best, why = recommend([f32, int8])
    assert best.mode == "int8" and "its zip is the smallest" in why  # not "its warm time"
