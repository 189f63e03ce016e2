"""lamb verify --labeled-images: accuracy in every preprocessing mode, on the demo model and drawn images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lamb.errors import InputError
from lamb.verify import VerifyInputs, verify_model
from lamb.verify.accuracy import AccuracyReport, find_labeled, judge_accuracy, load_labeled, measure
from lamb.verify.evidence import wilson_interval

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "models" / "demo"
DEMO_LABELS = (DEMO / "labels.txt").read_text().split()


def _png(path: Path, colour: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), colour, np.uint8)).save(path)


# -- reading labelled folders ------------------------------------------------------------------------


def test_a_folder_per_class(tmp_path):
    for label in ("cat", "dog"):
        _png(tmp_path / label / "a.png")
        _png(tmp_path / label / "deeper" / "b.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    found = find_labeled(tmp_path, None)
    assert [label for _, label in found] == ["cat", "cat", "dog", "dog"]


def test_label_prefixed_names_match_the_longest_known_label(tmp_path):
    for name in ("t-shirt-1.png", "t-shirt_2.png", "shirt-1.png", "hat_03.jpg"):
        _png(tmp_path / name)
    found = {p.name: label for p, label in find_labeled(tmp_path, ["shirt", "t-shirt", "hat"])}
    assert found == {"t-shirt-1.png": "t-shirt", "t-shirt_2.png": "t-shirt", "shirt-1.png": "shirt", "hat_03.jpg": "hat"}
    # without the model's labels, the text before the last separator
    assert {label for _, label in find_labeled(tmp_path, None)} == {"t-shirt", "shirt", "hat"}


def test_classes_the_model_does_not_have_are_refused(tmp_path):
    _png(tmp_path / "zebra-1.png")
    with pytest.raises(InputError, match="classes the model does not have: zebra"):
        load_labeled(tmp_path, (8, 8, 3), ["cat", "dog"], 2)


def test_named_classes_without_model_labels_are_refused_numbers_accepted(tmp_path):
    _png(tmp_path / "cat-1.png")
    with pytest.raises(InputError, match="no labels to match"):
        load_labeled(tmp_path, (8, 8, 3), None, 2)
    numbered = tmp_path / "numbered"
    _png(numbered / "1" / "a.png", 200)
    _png(numbered / "0" / "b.png")
    labeled = load_labeled(numbered, (4, 4, 3), None, 2)
    assert labeled.truth == [0, 1] and labeled.pixels.shape == (2, 4, 4, 3)


def test_undecodable_files_are_skipped_and_none_left_is_refused(tmp_path):
    (tmp_path / "cat-1.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="none of the 1 labelled files"):
        load_labeled(tmp_path, (8, 8, 3), ["cat"], 1)
    _png(tmp_path / "cat-2.png")
    labeled = load_labeled(tmp_path, (8, 8, 3), ["cat"], 1)
    assert labeled.names == ["cat-2.png"] and labeled.skipped[0].startswith("cat-1.png: ")


def test_an_empty_or_missing_folder_is_refused(tmp_path):
    with pytest.raises(InputError, match="no labelled images"):
        find_labeled(tmp_path, None)
    with pytest.raises(InputError, match="no folder of labelled images"):
        find_labeled(tmp_path / "missing", None)


# -- measuring and judging -----------------------------------------------------------------------------


def _scores(truth, right, classes=3):
    """The true class first for the first ``right`` images; for the rest the next class, the truth second."""
    out = np.zeros((len(truth), classes), np.float32)
    for i, t in enumerate(truth):
        out[i, t] = 0.5
        out[i, t if i < right else (t + 1) % classes] = 1.0
    return out


def test_measure_counts_top1_topk_per_class_and_confusion():
    truth = [0] * 5 + [1] * 5
    acc = measure(_scores(truth, 7), truth, ["a", "b", "c"], preprocess="xception", model="converted", top_k=2)
    assert (acc.correct, acc.images, acc.top1) == (7, 10, 0.7)
    assert (acc.top1_low, acc.top1_high) == pytest.approx(wilson_interval(7, 10))
    assert acc.topk == 1.0  # the wrong answers put the truth second
    assert [(c.label, c.correct, c.images) for c in acc.per_class] == [("a", 5, 5), ("b", 2, 5)]
    assert acc.confusion == {"a": {"a": 5}, "b": {"b": 2, "c": 3}}


def _report(recorded: int, others: dict[str, int], keras: int | None = None, n: int = 100) -> AccuracyReport:
    truth = [i % 5 for i in range(n)]
    names = list("abcde")

    def acc(mode: str, right: int, model: str = "converted"):
        return measure(_scores(truth, right, 5), truth, names, preprocess=mode, model=model)

    return AccuracyReport(
        folder="x", images=n, classes=names, preprocess="caffe", converted=acc("caffe", recorded),
        source=acc("caffe", keras, "keras") if keras is not None else None,
        modes=[acc(mode, right) for mode, right in others.items()],
    )


def test_a_clearly_better_mode_fails_naming_it_and_the_fix():
    # The demo's figures from the issue: xception 95 %, torch 94 %, caffe 42 %, none 26 %.
    judged = judge_accuracy(_report(42, {"xception": 95, "torch": 94, "none": 26}), Path("model.h5"))
    assert not judged.passed and judged.better == "xception"
    assert "'xception' scores 95.0%" in judged.failures[0]
    assert "`lamb convert model.h5 --preprocess xception`" in judged.failures[0]


def test_a_mode_the_images_cannot_tell_apart_passes():
    judged = judge_accuracy(_report(94, {"xception": 95, "caffe": 42}), Path("model.h5"))  # torch recorded
    assert judged.passed and judged.better is None and judged.failures == []


def test_a_conversion_clearly_below_keras_fails_within_a_point_passes():
    assert not judge_accuracy(_report(80, {}, keras=95), Path("m.h5")).passed
    assert judge_accuracy(_report(94, {}, keras=95), Path("m.h5")).passed


# -- the demo model, end to end ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_converted(tmp_path_factory):
    from lamb.convert import convert_model

    out = tmp_path_factory.mktemp("demo") / "clothing.tflite"
    return convert_model(DEMO / "clothing.h5", out, preprocess="xception", labels=DEMO_LABELS)


@pytest.mark.e2e
@pytest.mark.parametrize("wrong", ["caffe", "none"])
def test_a_wrong_preprocessing_fails_naming_xception(demo_converted, drawn_demo_images, wrong):
    report = verify_model(
        manifest_path=demo_converted.manifest_path, inputs=VerifyInputs(labeled_images=drawn_demo_images, preprocess=wrong)
    )
    assert not report.passed and report.verdict == "fail"
    assert report.accuracy is not None and report.accuracy.better == "xception"
    assert report.accuracy.converted.top1_high < report.accuracy.converted.top1 + 0.15
    assert "--preprocess xception" in report.failures[-1]
    assert report.outputs[0].top1 == 1.0  # the two models still agree: only the labels could tell


@pytest.mark.e2e
def test_the_right_preprocessing_passes_with_its_accuracy_recorded(demo_converted, drawn_demo_images):
    report = verify_model(manifest_path=demo_converted.manifest_path, inputs=VerifyInputs(labeled_images=drawn_demo_images))
    acc = report.accuracy
    assert report.passed and acc is not None and acc.passed
    assert acc.converted.preprocess == "xception" and acc.converted.top1 >= 0.9 and acc.converted.top1_low > 0.85
    assert acc.source is not None and acc.source.correct == acc.converted.correct  # float32 loses nothing
    assert report.images == 100 and len(acc.converted.per_class) == 5
    torch = next(m for m in acc.modes if m.preprocess == "torch")
    assert torch.top1 > 0.85  # close to xception's on this model: not clearly better, not a failure
    recorded = json.loads(demo_converted.manifest_path.read_text())["verification"]["accuracy"]
    assert recorded["converted"]["top1"] == acc.converted.top1 and recorded["converted"]["per_class"]
    # the artifact's own record (lamb.json) carries it too, without the host's path
    from lamb import manifest as mf
    from lamb.package.build import shipped_manifest

    shipped = shipped_manifest(mf.read(demo_converted.manifest_path)).verification
    assert shipped is not None and shipped.accuracy is not None
    assert shipped.accuracy["converted"]["top1"] == acc.converted.top1 and shipped.accuracy["folder"] == drawn_demo_images.name


@pytest.mark.e2e
def test_torch_is_not_clearly_worse_on_the_demo(demo_converted, drawn_demo_images):
    report = verify_model(
        manifest_path=demo_converted.manifest_path, inputs=VerifyInputs(labeled_images=drawn_demo_images, preprocess="torch")
    )
    assert report.accuracy is not None and report.accuracy.better is None and report.passed


@pytest.mark.e2e
def test_the_cli_fails_a_wrong_preprocessing_in_one_line_and_serialises_the_accuracy(tmp_path, monkeypatch):
    """The README's pipeline: convert the demo with the wrong preprocessing, verify on its bundled samples."""
    from typer.testing import CliRunner

    from lamb.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    # Ten bundled samples tell none (30 %) from xception (100 %); caffe (50 %) takes the 100 drawn ones.
    converted = runner.invoke(app, ["convert", str(DEMO / "clothing.h5"), "--preprocess", "none", "--labels-file", str(DEMO / "labels.txt")])
    assert converted.exit_code == 0, converted.output
    assert "warning: --preprocess none given" in converted.output  # the BatchNormalization saw it already
    failed = runner.invoke(app, ["verify", "--labeled-images", str(DEMO / "samples")], terminal_width=80)
    assert failed.exit_code == 1
    error = [line for line in failed.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "'xception' scores 100.0%" in error[0] and "--preprocess xception" in failed.output
    as_json = runner.invoke(app, ["verify", "--labeled-images", str(DEMO / "samples"), "--preprocess", "xception", "--json"])
    data = json.loads(as_json.stdout)
    assert as_json.exit_code == 0 and data["accuracy"]["converted"]["top1"] == 1.0 and data["accuracy"]["source"]["top1"] == 1.0
    assert {m["preprocess"] for m in data["accuracy"]["modes"]} == {"caffe", "torch", "scale", "none"}


def test_an_image_the_handler_would_refuse_is_skipped_with_its_reason(tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # a PNG whose header declares 100,000 x 100,000 pixels: refused from the header, nothing decoded
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    (tmp_path / "cat-bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    _png(tmp_path / "cat-1.png")
    labeled = load_labeled(tmp_path, (8, 8, 3), ["cat"], 1)
    assert labeled.names == ["cat-1.png"] and labeled.skipped[0].startswith("cat-bomb.png: ")
    assert "pixel" in labeled.skipped[0]


def test_an_exported_channel_first_onnx_is_measured_on_labelled_images_too(nchw_onnx, tmp_path):
    from lamb.convert import convert_model

    result = convert_model(nchw_onnx, nchw_onnx.parent, labels=["a", "b", "c", "d"])
    folder = tmp_path / "labelled"
    rng = np.random.default_rng(1)
    for label in "abcd":
        for n in range(3):
            path = folder / label / f"{n}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)).save(path)
    report = verify_model(manifest_path=result.manifest_path, inputs=VerifyInputs(labeled_images=folder))
    acc = report.accuracy
    assert acc is not None and acc.images == 12 and report.images == 12 and acc.preprocess == "torch"
    assert [m.preprocess for m in acc.modes] == ["xception", "caffe", "scale", "none"]
    assert acc.source is not None and acc.source.model == report.reference  # the source .onnx on the reference
    assert acc.source.correct == acc.converted.correct  # the same model: the same answers
