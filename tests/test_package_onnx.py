"""lamb package for ONNX Runtime (issue 15 item 6): the zip holds the .onnx and onnxruntime, no LiteRT,
slimmed by onnxruntime's own rules, and every ELF file in it passes the audit against the target's
system (Amazon Linux 2023 for python3.12); the same audit-driven choice picks the release per target."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
from conftest import TINY_LABELS

from lamb import targets
from lamb.invoke import invoke_artifact
from lamb.local import RunSettings
from lamb.package import build_package
from lamb.release import lib_choice

pytestmark = pytest.mark.network  # onnxruntime's wheels for the target (cached after the first run)


@pytest.fixture(scope="module")
def onnx_zip(converted_tiny_onnx, tmp_path_factory):
    """The tiny classifier converted for onnxruntime, verified on it, packaged for python3.12-x86_64."""
    from lamb.verify import verify_model

    folder = tmp_path_factory.mktemp("onnx_pkg")
    shutil.copy2(converted_tiny_onnx.model_path, folder / "tiny.onnx")
    shutil.copy2(converted_tiny_onnx.manifest_path, folder / "tiny.lamb.json")
    assert verify_model(manifest_path=folder / "tiny.lamb.json").passed
    return build_package(folder / "tiny.lamb.json", runtime="python3.12", output=folder / "fn.zip")


def test_the_zip_holds_the_onnx_model_and_onnxruntime_and_no_litert(onnx_zip):
    r = onnx_zip
    assert r.runtime_lib.name == "onnxruntime" and r.runtime_lib.requirement == "onnxruntime==1.32.0"
    with zipfile.ZipFile(r.artifact) as zf:
        names = set(zf.namelist())
        shipped = json.loads(zf.read("lamb.json"))
    assert {"lambda_function.py", "model.onnx", "lamb.json", "onnxruntime/__init__.py"} <= names
    assert any(n.startswith("onnxruntime/capi/onnxruntime_pybind11_state.cpython-312") for n in names)
    assert not any(n.startswith(("ai_edge_litert", "tflite_runtime")) or n.endswith(".tflite") for n in names)
    assert shipped["model"]["format"] == "onnx" and shipped["model"]["file"] == "model.onnx"
    assert shipped["package"]["runtime_lib"] == "onnxruntime" and shipped["package"]["runtime_lib_version"] == "1.32.0"


def test_onnxruntimes_own_slim_rules_applied_and_proven_by_the_smoke_run(onnx_zip):
    r = onnx_zip
    saved = {s.rule: s.bytes_saved for s in r.slimming}
    assert saved["onnxruntime C API library"] > 30 * 2**20  # libonnxruntime.so.1.32.0, 35 MB
    assert saved["onnxruntime tools"] > 0 and saved["onnxruntime tool dependencies"] > 0
    assert not any(rule.startswith("litert") for rule in saved)  # LiteRT's rules are LiteRT's
    with zipfile.ZipFile(r.artifact) as zf:
        names = zf.namelist()
    assert not any(n.startswith(("onnxruntime/capi/libonnxruntime.so", "onnxruntime/transformers/", "google/protobuf/"))
                   for n in names)
    assert r.smoke.ran and r.smoke.passed, r.smoke.error
    # Run as lamb invoke runs it: AWS's runtime interface client where it has a wheel for the
    # interpreter (python3.12 here, when this machine has it), else the stand-in, saying why.
    assert ("run by AWS's runtime interface client (awslambdaric-4.2.2" in r.smoke.label
            or "awslambdaric has no wheel for Python" in r.smoke.label), r.smoke.label
    assert r.smoke.top is not None and r.smoke.top.split()[0] in TINY_LABELS


def test_the_model_ships_preoptimized_for_this_cpu_beside_the_plain_one(onnx_zip):
    """Issue 25: session creation is most of ONNX Runtime's cold start; the artifact carries the
    graph optimized by the release that ships, keyed by the CPU's instruction sets."""
    from lamb.handler.lambkit.backends.ort import OPTIMIZED_FILE
    from lamb.handler.lambkit.cpu import this_cpu

    with zipfile.ZipFile(onnx_zip.artifact) as zf:
        names = set(zf.namelist())
        shipped = json.loads(zf.read("lamb.json"))
    assert {"model.onnx", OPTIMIZED_FILE, OPTIMIZED_FILE + ".data"} <= names
    assert not any(n.startswith(("onnxruntime/", "numpy/")) and n.endswith(".pyc") and ".cpython-312." not in n for n in names)
    entry = shipped["package"]["optimized"]
    assert entry["file"] == OPTIMIZED_FILE and entry["data"] == OPTIMIZED_FILE + ".data" and entry["isa"] == this_cpu().isa and entry["runtime_lib_version"] == "1.32.0"
    assert entry["max_rel"] <= 1e-4 and onnx_zip.record.optimized == entry
    assert "pre-optimized by onnxruntime 1.32.0" in onnx_zip.optimized


def test_every_elf_file_passes_the_audit_against_al2023(onnx_zip):
    audit = onnx_zip.audit
    assert audit is not None and audit.passed and not audit.problems
    assert audit.files > 0  # the binding, NumPy's and Pillow's extensions and their vendored libraries
    assert onnx_zip.record is not None and onnx_zip.record.audit is not None and onnx_zip.record.audit["passed"]
    assert "Amazon Linux 2023" in onnx_zip.target_description


def test_the_artifact_answers_through_invoke(onnx_zip, tmp_path, png_bytes):
    image = tmp_path / "cat.png"
    image.write_bytes(png_bytes)
    report = invoke_artifact(onnx_zip.artifact, image=image, settings=RunSettings(memory_mb=1024))
    assert report.error is None and sorted(report.response) == sorted(TINY_LABELS)


@pytest.mark.parametrize(("runtime", "arch", "version"), [
    ("python3.12", "arm64", "1.32.0"),  # where LiteRT 2.x needs GLIBCXX_3.4.30, past AL2023's GCC 11
    ("python3.11", "x86_64", "1.16.3"),  # Amazon Linux 2 (glibc 2.26): the newest manylinux_2_17 release
])
def test_the_release_is_the_newest_whose_wheel_passes_the_audit(converted_tiny_onnx, runtime, arch, version):
    chosen = lib_choice.resolve(targets.get_target(runtime, arch), converted_tiny_onnx.manifest)
    assert (chosen.choice.name, chosen.choice.version) == ("onnxruntime", version)
    assert chosen.wheel_audit.passed
    if version == "1.16.3":
        assert chosen.choice.extra_requirements == ["numpy<2"]  # built against NumPy 1.x


def test_a_model_python311s_library_cannot_load_in_time_is_refused_in_one_line(tmp_path, monkeypatch):
    """The repro of issue 24: If nodes nested 30 deep load in 0.02 s on onnxruntime 1.32 (verify
    passes), but `lamb package --runtime python3.11` verifies again on 1.16.3, which ran past 600 s."""
    from conftest import build_nested_if_onnx
    from typer.testing import CliRunner

    from lamb.cli import app
    from lamb.convert import convert_model
    from lamb.verify import runner, verify_model

    model = build_nested_if_onnx(tmp_path / "nested.onnx", depth=30)
    manifest = convert_model(model, preprocess="scale").manifest_path
    assert verify_model(manifest_path=manifest).passed
    monkeypatch.setitem(runner.LIMITS_S, "load", 10.0)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["package", str(manifest), "--runtime", "python3.11", "--no-smoke", "-o", "out.zip"])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "error: verified again on onnxruntime 1.16.3, which python3.11-x86_64 ships" in said
    assert ("onnxruntime 1.16.3 cannot load nested.onnx: it did not finish within 10 s, lamb's time limit for "
            "loading a model (lamb.verify.runner.LIMITS_S), and was stopped") in said
    assert not (tmp_path / "out.zip").exists()


def test_a_one_file_model_ships_its_weights_apart_and_answers_the_same(onnx_zip, tmp_path, monkeypatch, png_bytes):
    """ONNX Runtime creates a session faster from weights outside the protobuf: a one-file model
    of lamb.convert.onnx.WEIGHTS_APART bytes or more ships them in model.onnx.data (the tiny model
    is far below it, so the bar is lowered here), recorded in lamb.json, the same tensors."""
    from lamb.convert import onnx as onnx_converter
    from lamb.files import sha256_file

    monkeypatch.setattr(onnx_converter, "WEIGHTS_APART", 0)
    folder = onnx_zip.artifact.parent
    report = build_package(folder / "tiny.lamb.json", runtime="python3.12", output=tmp_path / "apart.zip")
    assert report.smoke.ran and report.smoke.passed, report.smoke.error
    with zipfile.ZipFile(report.artifact) as zf:
        names = set(zf.namelist())
        shipped = json.loads(zf.read("lamb.json"))
        zf.extract("model.onnx.data", tmp_path)
        model_bytes = sum(zf.getinfo(n).file_size for n in ("model.onnx", "model.onnx.data"))
    assert {"model.onnx", "model.onnx.data"} <= names
    model = shipped["model"]
    assert model["external_data"] == ["model.onnx.data"]
    assert model["external_sha256"] == {"model.onnx.data": sha256_file(tmp_path / "model.onnx.data")}
    assert model["sha256"] != shipped["verification"]["model_sha256"]  # other bytes; verify's record keeps what it saw
    assert {c.name: c for c in report.budget.components}["model"].unzipped >= model_bytes  # the budget counts it as the model
    image = tmp_path / "cat.png"
    image.write_bytes(png_bytes)
    settings = RunSettings(memory_mb=1024)
    apart, whole = (invoke_artifact(z, image=image, settings=settings) for z in (report.artifact, onnx_zip.artifact))
    assert apart.error is None and apart.response == whole.response


def test_ship_writes_the_weights_apart_only_for_a_one_file_model_past_the_bar(converted_tiny_onnx, tmp_path, monkeypatch):
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from lamb.convert import onnx as onnx_converter

    model = converted_tiny_onnx.model_path
    small = tmp_path / "small"
    small.mkdir()
    assert onnx_converter.ship(model, [], small / "model.onnx") == [] and sorted(p.name for p in small.iterdir()) == ["model.onnx"]
    assert (small / "model.onnx").read_bytes() == model.read_bytes()
    monkeypatch.setattr(onnx_converter, "WEIGHTS_APART", 0)
    apart = tmp_path / "apart"
    apart.mkdir()
    assert onnx_converter.ship(model, [], apart / "model.onnx") == [apart / "model.onnx.data"]
    before = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(model)).graph.initializer}
    after = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(apart / "model.onnx")).graph.initializer}
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    inside = onnx.load(str(apart / "model.onnx"), load_external_data=False).graph.initializer
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in inside)
    # A model with its external data already (torch.onnx.export's) keeps its own files.
    kept = tmp_path / "kept"
    kept.mkdir()
    assert onnx_converter.ship(apart / "model.onnx", [apart / "model.onnx.data"], kept / "model.onnx") == [kept / "model.onnx.data"]
    assert (kept / "model.onnx").read_bytes() == (apart / "model.onnx").read_bytes()


def test_an_image_context_carries_the_preoptimized_model_and_its_dockerfile_copies_it(onnx_zip, tmp_path):
    """The image's context is lamb's root files and a Dockerfile that copies them: the model
    pre-optimized for this CPU is one of them, and the size budget counts it as the model."""
    from lamb.handler.lambkit.backends.ort import OPTIMIZED_FILE

    folder = onnx_zip.artifact.parent
    report = build_package(folder / "tiny.lamb.json", runtime="python3.12", fmt="image", output=tmp_path / "ctx", smoke=False)
    context = tmp_path / "ctx"
    shipped = json.loads((context / "lamb.json").read_text())
    made = [shipped["package"]["optimized"]["file"], shipped["package"]["optimized"].get("data")]
    made = [name for name in made if name]
    assert made[0] == OPTIMIZED_FILE and all((context / name).is_file() for name in made)
    dockerfile = (context / "Dockerfile").read_text()
    assert all(name in dockerfile for name in made), dockerfile
    assert all(f"!{name}" in (context / ".dockerignore").read_text() for name in made)
    model = {c.name: c for c in report.budget.components}["model"]
    assert model.unzipped >= sum((context / name).stat().st_size for name in ["model.onnx", *made])


def test_a_full_disk_while_preoptimizing_is_one_line_not_a_report_it(small_disk, tmp_path):
    """ONNX Runtime says only "Failed to write external initializers" when the disk fills under
    the optimized copy: the step names the folder and the free space, as every other full disk."""
    from pathlib import Path

    import onnxruntime
    from test_convert_onnx import _gemm_onnx

    from lamb.errors import InputError
    from lamb.package import optimize

    (small_disk / "model.onnx").write_bytes(_gemm_onnx())  # 360 KB of the 512 KB: no room for a copy
    deps = tmp_path / "deps"  # this Python's onnxruntime and NumPy, and the handler's lambkit, as a target's tree
    deps.mkdir()
    site = Path(onnxruntime.__file__).parent.parent
    for name in ("onnxruntime", "numpy", "numpy.libs", "flatbuffers", "packaging", "sympy", "mpmath", "coloredlogs", "humanfriendly"):
        if (site / name).exists():
            (deps / name).symlink_to(site / name)
    (deps / "lambkit").symlink_to(Path(__file__).resolve().parent.parent / "lamb" / "handler" / "lambkit")
    host = targets.get_target(f"python{targets.host_python()}", targets.host_arch())
    with pytest.raises(InputError) as caught:
        optimize.preoptimize(host, "onnxruntime", deps, small_disk, "model.onnx", limit=None)
    assert caught.value.message.startswith(f"cannot write {small_disk}: No space left on device ("), caught.value.message
    assert "free some space" in caught.value.hint


def test_the_preoptimized_copy_is_left_out_when_it_alone_costs_the_direct_upload(onnx_zip, tmp_path, monkeypatch):
    """Past Lambda's 50 MB direct upload the code goes through S3, and the copy shortens a cold
    start only on a CPU like the packaging one: a zip that fits without it ships without it; one
    over the limit either way keeps it. (The tiny zip stands in, the limit set between its sizes.)"""
    from lamb.handler.lambkit.backends.ort import OPTIMIZED_FILE

    folder = onnx_zip.artifact.parent
    monkeypatch.setattr(targets, "ZIP_DIRECT_UPLOAD", onnx_zip.record.zipped_bytes - 1)
    report = build_package(folder / "tiny.lamb.json", runtime="python3.12", output=tmp_path / "fits.zip", smoke=False)
    with zipfile.ZipFile(report.artifact) as zf:
        names = set(zf.namelist())
        shipped = json.loads(zf.read("lamb.json"))
    assert OPTIMIZED_FILE not in names and shipped["package"]["optimized"] is None and report.record.optimized is None
    assert report.optimized.startswith("not pre-optimized: with the optimized copy the zip was"), report.optimized
    assert report.bytes <= targets.ZIP_DIRECT_UPLOAD
    monkeypatch.setattr(targets, "ZIP_DIRECT_UPLOAD", 1000)  # over with or without it: kept
    report = build_package(folder / "tiny.lamb.json", runtime="python3.12", output=tmp_path / "over.zip", smoke=False)
    with zipfile.ZipFile(report.artifact) as zf:
        assert OPTIMIZED_FILE in zf.namelist()
