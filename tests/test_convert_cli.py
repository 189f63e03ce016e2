"""``lamb convert`` through the CLI: exit codes, one-line errors, no tracebacks, JSON, TF noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lamb import manifest as mf
from lamb.cli import app

runner = CliRunner()


def convert(*args: str):
    return runner.invoke(app, ["convert", *map(str, args)])


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_convert_writes_tflite_and_manifest(tiny_classifier_h5, tmp_path):
    out = tmp_path / "model.tflite"
    result = convert(tiny_classifier_h5, "-o", out, "--labels", "cat,dog,bird,fish", "--preprocess", "scale")
    assert result.exit_code == 0, result.output
    manifest = mf.read(tmp_path / "model.lamb.json")
    assert manifest.labels == ["cat", "dog", "bird", "fish"]
    assert (manifest.preprocess, manifest.preprocess_note) == ("scale", "given")
    assert manifest.model.sha256 == mf.sha256_file(out)


def test_convert_json_output(tiny_classifier_h5, tmp_path):
    result = convert(tiny_classifier_h5, "-o", tmp_path / "m.tflite", "--json", "-q", "dynamic")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["manifest"]["quantization"] == "dynamic"
    assert data["model_path"] == str(tmp_path / "m.tflite")


def test_convert_labels_file_and_input_shape_options(tiny_classifier_h5, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\n")
    result = convert(tiny_classifier_h5, "-o", tmp_path / "m.tflite", "--labels-file", labels, "--input-shape", "32,32,3")
    assert result.exit_code == 0, result.output
    assert mf.read(tmp_path / "m.lamb.json").labels == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["missing.h5"], 3, "no model at"),
        (["{model}", "--labels", "a,b"], 3, "2 labels given"),
        (["{model}", "-q", "int8"], 3, "calibration"),
        (["{model}", "--input-shape", "big"], 3, "--input-shape"),
        (["{model}", "--integer-io"], 3, "--integer-io only applies to --quantize int8"),
        (["{model}", "--int8-io"], 3, "--integer-io only applies to --quantize int8"),  # the old name, kept
        (["{empty}"], 4, "empty"),
    ],
)
def test_errors_are_one_line_with_exit_code(tiny_classifier_h5, tmp_path, args, code, words):
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    args = [a.format(model=tiny_classifier_h5, empty=empty) for a in args]
    result = convert(*args, "-o", out / "m.tflite")
    assert result.exit_code == code, result.output
    (line,) = error_lines(result)
    assert words in line
    assert "hint:" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert not out.exists()


def test_flex_error_then_allow_flex(tf_keras_preprocess_h5, tmp_path):
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input((4, 4), name="matrix")
    x = tf_keras.layers.Flatten()(tf.linalg.inv(inputs))
    path = tmp_path / "inverse.h5"
    tf_keras.Model(inputs, tf_keras.layers.Dense(2)(x)).save(path)

    result = convert(path, "-o", tmp_path / "out" / "m.tflite")
    assert result.exit_code == 5
    (line,) = error_lines(result)
    assert "MatrixInverse" in line
    assert "tensor<" not in result.stderr and "Traceback" not in result.stderr

    result = convert(path, "-o", tmp_path / "out" / "m.tflite", "--allow-flex", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["manifest"]["flex_ops"] == ["MatrixInverse"]


def test_verbose_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["convert", str(tmp_path / "missing.h5"), "--verbose"])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr


def test_help_reads_like_a_manual():
    result = runner.invoke(app, ["convert", "--help"])
    assert result.exit_code == 0
    for option in ("--quantize", "--calibration", "--integer-io", "--int8-io", "--input-shape", "--allow-flex", "--preprocess",
                   "--labels-file", "--allow-unsafe-lambda"):
        assert option in result.stdout


@pytest.mark.e2e
def test_tensorflow_log_noise_hidden_unless_verbose(tf_keras_preprocess_h5, tmp_path):
    """A real subprocess: TF's C++ logs go to file descriptor 2, which CliRunner cannot see."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    cmd = [sys.executable, "-c", "from lamb.cli import app; app()", "convert", str(tf_keras_preprocess_h5), "-o", str(tmp_path / "m.tflite")]
    quiet = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.strip() == ""
    assert "loader" in quiet.stdout and "tf_keras" in quiet.stdout

    loud = subprocess.run([*cmd, "--verbose"], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0, loud.stderr
    assert loud.stderr.strip() != ""  # TensorFlow's own logs come through


def test_text_lamb_did_not_write_prints_as_it_is(tiny_classifier_h5, tmp_path):
    """Labels and paths holding Rich markup ([/] crashed convert with MarkupError, on success too)."""
    folder = tmp_path / "a[/]b[bold]"  # a folder "a[" holding "]b[bold]"
    folder.mkdir(parents=True)
    labels = folder / "labels[red].txt"
    labels.write_text("[/]\n[bold]cat\n[red]d[/red]\nc:\\[/]x\n")
    result = convert(tiny_classifier_h5, "-o", folder / "m[i].tflite", "--labels-file", labels)
    assert result.exit_code == 0, result.output
    shown = "".join(result.stdout.split())  # the table folds long cells
    assert "[/],[bold]cat,[red]d[/red],c:\\[/]x" in shown and "a[/]b[bold]/m[i].tflite" in shown
    assert mf.read(folder / "m[i].lamb.json").labels == ["[/]", "[bold]cat", "[red]d[/red]", "c:\\[/]x"]
    missing = convert(folder / "missing[i].h5")
    assert missing.exit_code == 3 and "a[/]b[bold]/missing[i].h5" in error_lines(missing)[0], missing.output


def test_a_full_temporary_disk_while_exporting_is_one_line_and_leaves_nothing(tmp_path, small_disk, monkeypatch):
    """The SavedModel TensorFlow's converters start from is written in the temporary folder; TensorFlow
    says the disk is full in a ResourceExhaustedError, not an OSError: still one line naming the folder."""
    import tempfile

    import keras

    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(), keras.layers.Dense(256)])  # 786 KB of weights
    model.save(tmp_path / "big.keras")
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    result = CliRunner().invoke(app, ["convert", str(tmp_path / "big.keras"), "-o", str(tmp_path / "out" / "m.tflite")])
    assert result.exit_code == 3, result.output
    assert f"error: cannot write {small_disk}/lamb-export-" in result.output and "No space left on device" in result.output
    assert "Traceback" not in result.output and "free some space" in result.output
    # lamb's export folder is gone (TensorFlow's autograph leaves its own __autograph_generated_file*.py there, as it always does)
    assert not list(small_disk.glob("lamb-*")) and not (tmp_path / "out" / "m.tflite").exists()


def test_sigterm_while_converting_leaves_nothing_half_written(tiny_classifier_h5, tmp_path):
    """SIGTERM (a CI runner's timeout, kill) while TensorFlow exports the model: exit 143, one
    line, no model or manifest written, lamb's temporary export folder removed."""
    from conftest import terminate_while

    scratch, out = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir()
    out.mkdir()
    code, said = terminate_while(["convert", tiny_classifier_h5, "-o", out / "m.tflite"], scratch,
                                 lambda: bool(list(scratch.glob("lamb-export-*"))))
    assert code == 143, said
    assert "terminated; nothing was left half-written" in said and "Traceback" not in said
    assert list(out.iterdir()) == [] and not list(scratch.glob("lamb-*"))
