"""Output heads (issue 22 item 4): what a model's output is, recorded by ``lamb convert``, answered by
the shipped handler, and scored by ``lamb verify --labeled-images``.

Three small channel-first ONNX models built with onnx.helper, PyTorch-shaped: one binary logit (no
final activation, as ``BCEWithLogitsLoss`` models export), one binary probability (a final Sigmoid)
and a two-class Softmax. Each scores "red" against "blue": the logit is the red channel's mean less
the blue one's, after torch's ImageNet standardisation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from lamb import manifest as mf
from lamb.cli import app
from lamb.convert import convert_model
from lamb.errors import InputError
from lamb.handler.lambkit import Model, decode_image, image_to_pixels, preprocess
from lamb.handler.lambkit.heads import class_scores, positive_probability

SIZE = 8
HANDLER = Path(__file__).resolve().parent.parent / "lamb" / "handler"


def head_onnx(folder: Path, kind: str) -> Path:
    """A (N, 3, SIZE, SIZE) model ending in ``kind``: "logit" (N, 1), "sigmoid" (N, 1) or "softmax" (N, 2)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    red_minus_blue = np.array([[1.0], [0.0], [-1.0]], dtype=np.float32)  # (3, 1)
    weights = red_minus_blue if kind != "softmax" else np.concatenate([-red_minus_blue, red_minus_blue], axis=1)
    nodes = [
        helper.make_node("GlobalAveragePool", ["pixel_values"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
        helper.make_node("MatMul", ["features", "fc.weight"], ["raw"]),
    ]
    last = "raw"
    if kind in ("sigmoid", "softmax"):
        nodes.append(helper.make_node("Sigmoid" if kind == "sigmoid" else "Softmax", ["raw"], ["activated"]))
        last = "activated"
    nodes.append(helper.make_node("Identity", [last], ["output"]))  # exporters often end in one
    graph = helper.make_graph(
        nodes, f"head_{kind}",
        [helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", weights.shape[1]])],
        [numpy_helper.from_array(weights, "fc.weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch")
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}.onnx"
    onnx.save_model(model, str(path))
    return path


def _image(color: tuple[int, int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(color) + rng.normal(0, 20, (SIZE * 2, SIZE * 2, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def labeled(tmp_path_factory) -> Path:
    """Six labelled images, ``<label>-<n>.png``: reddish ones are "red", bluish ones "blue"."""
    folder = tmp_path_factory.mktemp("red_blue")
    for n in range(3):
        _image((200, 60, 40), n).save(folder / f"red-{n}.png")
        _image((40, 60, 200), 10 + n).save(folder / f"blue-{n}.png")
    return folder


def _expected(path: Path, image: Image.Image) -> np.ndarray:
    """The raw output onnxruntime computes on the handler's own torch-preprocessed pixels."""
    import onnxruntime as ort

    x = preprocess(image_to_pixels(image, (SIZE, SIZE)), "torch")[None].transpose(0, 3, 1, 2).astype(np.float32)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"pixel_values": x})[0][0]


def _task_root(result, folder: Path) -> Path:
    """The converted model beside the shipped handler and its record, as an artifact lays them out."""
    from lamb.package.build import shipped_manifest

    root = folder / "task"
    shutil.copytree(HANDLER / "lambkit", root / "lambkit")
    shutil.copy(result.model_path, root / "model.onnx")
    mf.write(shipped_manifest(result.manifest), root / "lamb.json")
    return root


@pytest.mark.parametrize(
    ("kind", "head", "note"),
    [("logit", "binary-logit", "assumed"), ("sigmoid", "binary-probability", "inferred"), ("softmax", "softmax", "inferred")],
)
def test_the_head_is_read_off_the_graph_or_assumed_and_the_answer_follows_it(tmp_path, kind, head, note):
    source = head_onnx(tmp_path / "src", kind)
    result = convert_model(source, tmp_path / "out", preprocess="torch", labels=["blue", "red"])
    manifest = mf.read(result.manifest_path)
    assert manifest.head == head and manifest.head_note.startswith(note)

    model = Model(str(_task_root(result, tmp_path)))
    for color, seed in (((200, 60, 40), 1), ((40, 60, 200), 2)):
        image = _image(color, seed)
        answer = model.predict(decode_image(_png(image)))
        raw = _expected(source, decode_image(_png(image)))
        assert list(answer) == ["blue", "red"]
        if kind == "softmax":  # a class distribution is answered as it is, as before heads were recorded
            np.testing.assert_allclose([answer["blue"], answer["red"]], raw, rtol=1e-5, atol=1e-6)
            continue
        p = 1 / (1 + np.exp(-raw[0])) if kind == "logit" else raw[0]
        np.testing.assert_allclose([answer["blue"], answer["red"]], [1 - p, p], rtol=1e-5, atol=1e-6)
        assert (answer["red"] > 0.5) == (color[0] > color[2])


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_binary_model_takes_two_labels_negative_first(tmp_path):
    source = head_onnx(tmp_path, "logit")
    with pytest.raises(InputError, match=r"1 label.* one binary output") as one:
        convert_model(source, tmp_path / "one", labels=["hair"])
    assert "two labels, the negative class first" in (one.value.hint or "")
    with pytest.raises(InputError, match=r"3 label.* one binary output"):
        convert_model(source, tmp_path / "three", labels=["a", "b", "c"])
    assert not list(tmp_path.glob("*.lamb.json")) and not (tmp_path / "one").exists()


def test_head_given_overrides_the_graph_and_must_fit_the_output(tmp_path):
    logit = head_onnx(tmp_path, "logit")
    given = convert_model(logit, tmp_path / "given", head="binary-probability")
    assert (given.manifest.head, given.manifest.head_note) == ("binary-probability", "given")
    with pytest.raises(InputError, match="--head softmax needs one score per class"):
        convert_model(logit, tmp_path / "wrong", head="softmax")
    with pytest.raises(InputError, match="unknown --head"):
        convert_model(logit, tmp_path / "unknown", head="sigmoid")
    softmax = head_onnx(tmp_path, "softmax")
    with pytest.raises(InputError, match="--head binary-logit needs one value per image"):
        convert_model(softmax, tmp_path / "wrong2", head="binary-logit")


def test_the_summary_says_the_head_and_how_it_was_decided(tmp_path, monkeypatch):
    head_onnx(tmp_path, "logit")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["convert", "logit.onnx", "--labels", "blue,red", "--preprocess", "torch", "--json"])
    assert result.exit_code == 0, result.output
    recorded = json.loads(result.stdout)["manifest"]
    assert recorded["head"] == "binary-logit" and "--head binary-probability" in recorded["head_note"]


@pytest.mark.parametrize("kind", ["logit", "sigmoid"])
def test_verify_scores_a_binary_model_on_labelled_images_at_the_half_threshold(tmp_path, labeled, kind, monkeypatch):
    source = head_onnx(tmp_path, kind)
    monkeypatch.chdir(tmp_path)
    converted = CliRunner().invoke(app, ["convert", source.name, "--labels", "blue,red", "--preprocess", "torch"])
    assert converted.exit_code == 0, converted.output
    result = CliRunner().invoke(app, ["verify", "--labeled-images", str(labeled), "--json"])
    assert result.exit_code == 0, result.output
    accuracy = json.loads(result.stdout)["accuracy"]
    assert accuracy["classes"] == ["blue", "red"]
    assert accuracy["converted"]["images"] == 6 and accuracy["converted"]["correct"] == 6
    assert accuracy["converted"]["confusion"] == {"blue": {"blue": 3}, "red": {"red": 3}}
    assert mf.read(tmp_path / f"{kind}.lamb.json").verification.accuracy["converted"]["top1"] == 1.0


def test_class_scores_of_a_binary_head_are_one_minus_p_and_p():
    logits = np.array([[-800.0], [0.0], [2.0], [800.0]], dtype=np.float32)
    scores = class_scores(logits, "binary-logit")
    p = positive_probability(logits[:, 0], "binary-logit")
    assert np.isfinite(scores).all() and scores.shape == (4, 2)
    np.testing.assert_allclose(p, [0.0, 0.5, 1 / (1 + np.exp(-2.0)), 1.0], atol=1e-7)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(class_scores(np.array([[0.25]]), "binary-probability"), [[0.75, 0.25]])
    multi = np.array([[0.1, 0.9]])
    assert class_scores(multi, "logits") is not None and np.array_equal(class_scores(multi, "softmax"), multi)


def test_a_keras_models_last_activation_is_read_off_its_layers(tmp_path):
    keras = pytest.importorskip("keras")  # the keras extra; the core install has none
    from lamb.source.tf_load import LoadedModel

    inputs = keras.Input((4,))
    models = {
        "sigmoid": keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs)),
        None: keras.Model(inputs, keras.layers.Dense(3)(inputs)),
        "softmax": keras.Model(inputs, keras.layers.Softmax()(keras.layers.Dense(3)(inputs))),
    }
    for want, model in models.items():
        assert LoadedModel(model, "keras", "keras", tmp_path / "m.keras").final_activation() == want


def test_the_heads_are_the_shipped_handlers():
    from lamb.handler.lambkit.heads import HEADS

    assert mf.HEADS == HEADS


@pytest.mark.parametrize(("head", "ref", "out"), [
    ("binary-logit", [2.0, -1.0, 0.1, -3.0], [1.9, -1.2, -0.1, -2.5]),  # sample 2 crosses 0: the decision flips
    ("binary-probability", [0.9, 0.2, 0.52, 0.01], [0.88, 0.25, 0.47, 0.02]),  # sample 2 crosses 0.5
])
def test_a_binary_heads_agreement_is_the_same_decision(head, ref, out):
    """A binary head's one value: its cosine is only the sign's agreement (always 1 for a
    probability), so verify and compare judge the decision the function answers, at p = 0.5."""
    from lamb.quantization import Tolerances
    from lamb.verify.compare import compare_outputs

    tolerances = Tolerances(atol=1.0, rtol=1.0, min_cosine=0.0, min_top1=0.99)
    metrics, checks, failures = compare_outputs([np.array(ref)[:, None]], [np.array(out)[:, None]], ["output"], tolerances,
                                                labels=["blue", "red"], head=head)
    assert metrics[0].top1 == 0.75 and metrics[0].disagreements == [2]
    assert any(c.metric == "top1" and c.passed is False for c in checks)
    assert failures == ["output 'output': top-1 agreement 75.0% is below 99.0% (1 of 4 differ; sample 2: "
                        "the source model says 'red' (class 1), the converted model says 'blue' (class 0))"]
    # Without a head (a model verified without its manifest) one value is no classifier: no top-1.
    metrics, _, failures = compare_outputs([np.array(ref)[:, None]], [np.array(out)[:, None]], ["output"], tolerances)
    assert metrics[0].top1 is None and failures == []


def test_verify_records_a_binary_models_decision_agreement(tmp_path, monkeypatch):
    source = head_onnx(tmp_path, "logit")
    monkeypatch.chdir(tmp_path)
    converted = CliRunner().invoke(app, ["convert", source.name, "--labels", "blue,red", "--preprocess", "torch"])
    assert converted.exit_code == 0, converted.output
    result = CliRunner().invoke(app, ["verify", "--samples", "16"])
    assert result.exit_code == 0, result.output
    [metrics] = mf.read(tmp_path / "logit.lamb.json").verification.metrics
    assert metrics["top1"] == 1.0 and metrics["top1_lower"] > 0.5
