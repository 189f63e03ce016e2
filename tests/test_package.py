"""build_package end to end: real wheels, real zips, real smoke runs; and the CLI."""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lamb import manifest as mf
from lamb import targets
from lamb.cli import app
from lamb.errors import ArtifactError, BudgetExceeded, DependencyError, InputError, ManifestError, VerificationFailed
from lamb.package import build_package, bytecode, smoke_images

pytestmark = pytest.mark.network


#: A python3.12 interpreter on this machine (pyenv's, say) runs the python3.12 artifact itself and
#: compiles its bytecode; without one the smoke run is a labelled host stand-in and no .pyc ships.
PY312 = bytecode.target_python(targets.get_target("python3.12"))


@pytest.fixture(scope="module")
def built312(tmp_path_factory, verified_tiny, target_installs):
    """The tiny model packaged for python3.12-x86_64."""
    out = tmp_path_factory.mktemp("built312") / "fn.zip"
    return build_package(verified_tiny, runtime="python3.12", output=out)


def test_python312_zip_layout_choice_and_smoke(built312):
    r = built312
    assert r.artifact.is_file() and r.format == "zip" and r.target == "python3.12-x86_64"
    assert r.runtime_lib.requirement == "ai-edge-litert==2.3.0"
    with zipfile.ZipFile(r.artifact) as zf:
        names = set(zf.namelist())
        shipped = json.loads(zf.read("lamb.json"))
    assert {"lambda_function.py", "model.tflite", "lamb.json", "ai_edge_litert/interpreter.py"} <= names
    assert {"lambkit/__init__.py", "lambkit/decode.py", "lambkit/backends/litert.py", "lambkit/backends/ort.py"} <= names
    assert r.handler == "lambda_function.py" and {"load_model", "read_image", "answers_json"} <= set(r.handler_offers)
    assert not any("/tests/" in n or n.endswith(".pyi") for n in names)
    pycs = {n for n in names if n.endswith(".pyc")}
    if PY312:
        assert "numpy/__pycache__/__init__.cpython-312.pyc" in pycs and "__pycache__/lambda_function.cpython-312.pyc" in pycs
        assert all(".cpython-312." in n for n in pycs) and r.bytecode.compiled
    else:
        assert not pycs and not r.bytecode.compiled and "not compiled" in r.bytecode.note
    assert any(n.startswith("numpy/_core/_multiarray_umath.cpython-312-x86_64") for n in names)
    assert shipped["model"]["file"] == "model.tflite" and shipped["schema_version"] == 2 and shipped["labels"] == ["cat", "dog", "bird", "fish"]
    assert "/" not in shipped["source"]  # no host paths in the artifact
    assert r.sha256 == mf.sha256_file(r.artifact)
    assert r.artifact.stat().st_mode & 0o777 == 0o644
    # smoke: ran and passed; on the artifact itself where a python3.12 is here, else a labelled stand-in
    s = r.smoke
    assert s.ran and s.passed and "3.12" in s.label
    if PY312:
        assert not s.stand_in and "artifact itself" in s.label and PY312 in s.label
    else:
        assert s.stand_in and "STAND-IN" in s.label
    assert s.init_ms > 0 and s.invoke_ms > 0 and s.top.split()[0] in ("cat", "dog", "bird", "fish")
    # every mode and format Pillow decodes answered with scores from the slimmed artifact
    assert list(s.images) == [img.name for img in smoke_images.SMOKE_IMAGES]
    assert all(answer.split()[0] in ("cat", "dog", "bird", "fish") for answer in s.images.values())
    assert r.slimmed_bytes > 20 * 2**20
    comps = {c.name: c for c in r.budget.components}
    assert comps["model"].files == 1 and comps["runtime lib"].unzipped > comps["handler"].unzipped
    assert r.budget.total_zipped == r.bytes and not r.budget.failed


def test_the_artifact_and_the_manifest_record_what_was_built(built312, verified_tiny):
    r = built312
    with zipfile.ZipFile(r.artifact) as zf:
        shipped = json.loads(zf.read("lamb.json"))["package"]
    assert shipped["runtime"] == "python3.12" and shipped["arch"] == "x86_64"
    assert shipped["os"] == "Amazon Linux 2023" and shipped["glibc"] == "2.34" and shipped["format"] == "zip"
    assert shipped["runtime_lib"] == "ai-edge-litert" and shipped["runtime_lib_version"] == "2.3.0"
    assert shipped["handler"] == "lambda_function.lambda_handler" and shipped["installed"] == r.installed
    # the ELF audit travels with the artifact: newest needs against what the target has
    audit = shipped["audit"]
    assert audit["passed"] and audit["newest"]["GLIBC"] == r.audit.newest["GLIBC"] and audit["provided"]["GLIBC"] == "2.34"
    assert audit["libraries_resolved"] == r.audit.libraries_resolved > 0 and audit["problems"] == []
    # A zip cannot hold its own sha256, nor a smoke run made after it was written.
    assert shipped["sha256"] is None and shipped["smoke"] is None and shipped["artifact"] is None
    assert mf.package_record(r.artifact) == mf.read_shipped(r.artifact).package
    record = r.record
    assert record.sha256 == r.sha256 and record.zipped_bytes == r.bytes
    assert record.unzipped_bytes == r.budget.total_unzipped and record.smoke == r.smoke
    assert record.artifact_path(verified_tiny) == r.artifact
    assert dataclasses.replace(record, artifact=None, sha256=None, zipped_bytes=None, unzipped_bytes=None,
                               smoke=None) == mf.package_record(r.artifact)


def test_same_inputs_same_sha256(tmp_path, verified_tiny, built312):
    again = build_package(verified_tiny, runtime="python3.12", output=tmp_path / "again.zip", smoke=False)
    assert again.sha256 == built312.sha256


def test_no_slim_keeps_the_accelerators_and_answers_every_image_alike(tmp_path, verified_tiny, built312):
    fat = build_package(verified_tiny, runtime="python3.12", output=tmp_path / "fat.zip", slim_deps=False)
    assert fat.slimming == [] and fat.bytes > built312.bytes
    with zipfile.ZipFile(fat.artifact) as zf:
        assert "ai_edge_litert/libLiteRtWebGpuAccelerator.so" in zf.namelist()
    # slimming is proven, not assumed: the same images, the same answers
    assert fat.smoke.images == built312.smoke.images and len(fat.smoke.images) == len(smoke_images.SMOKE_IMAGES)


def test_slimming_that_breaks_an_image_kind_fails_the_build(tmp_path, verified_tiny, monkeypatch):
    # What slimming did before: delete Pillow's colour management. A LAB TIFF then cannot become RGB.
    from lamb.errors import ArtifactError
    from lamb.release import slim

    cms = slim.SlimRule("pillow colour management", "test", ("PIL/_imagingcms.*.so",))
    monkeypatch.setattr(slim, "slim", functools.partial(slim.slim, rules=(*slim.RULES, cms)))
    out = tmp_path / "fn.zip"
    out.write_bytes(b"previous build")
    with pytest.raises(ArtifactError, match="smoke run") as err:
        build_package(verified_tiny, runtime="python3.12", output=out)
    assert "LAB TIFF" in err.value.message and "RGB JPEG" not in err.value.message
    assert out.read_bytes() == b"previous build"
    assert [p.name for p in tmp_path.iterdir()] == ["fn.zip"]  # no temp file left beside it


def test_python311_zip_runs_itself_on_this_host(tmp_path, verified_copy):

    if targets.host_target() != targets.get_target("python3.11"):
        pytest.skip("this host is not CPython 3.11 x86_64")
    # verified on 2.3.0, shipped (and so verified again) on 1.4.0, Amazon Linux 2's
    r = build_package(verified_copy, runtime="python3.11", output=tmp_path / "fn311.zip")
    assert "verified again on ai-edge-litert 1.4.0" in r.verification
    assert r.runtime_lib.requirement == "ai-edge-litert==1.4.0"
    assert r.smoke.passed and not r.smoke.stand_in and "artifact itself" in r.smoke.label
    with zipfile.ZipFile(r.artifact) as zf:
        assert any("cpython-311" in n for n in zf.namelist())


def test_tflite_runtime_from_the_index_is_refused_before_anything_is_built(tmp_path, verified_tiny):
    # tflite-runtime 2.14's wheels are tagged manylinux2014 but need GLIBC_2.29; Amazon Linux 2 has 2.26.
    out = tmp_path / "tfl.zip"
    out.write_bytes(b"previous build")
    with pytest.raises(DependencyError) as err:
        build_package(verified_tiny, runtime="python3.10", runtime_lib_name="tflite-runtime", output=out)
    message = err.value.message
    assert message.startswith("tflite-runtime 2.14.0 cannot load on python3.10 on x86_64 (Amazon Linux 2, glibc 2.26)")
    assert "needs GLIBC_2.29" in message and "\n" not in message
    assert "--wheelhouse" in err.value.hint and "drop --runtime-lib" in err.value.hint
    assert out.read_bytes() == b"previous build"


def test_budget_failure_keeps_the_old_artifact(tmp_path, verified_tiny):
    out = tmp_path / "fn.zip"
    out.write_bytes(b"previous build")
    with pytest.raises(BudgetExceeded) as err:
        build_package(verified_tiny, runtime="python3.12", output=out, max_size="1MB", smoke=False)
    assert "--max-size" in err.value.message and "numpy" in err.value.message
    assert out.read_bytes() == b"previous build"
    assert [p.name for p in tmp_path.iterdir()] == ["fn.zip"]  # no temp file left beside it


def test_image_context(tmp_path, verified_copy):

    verified_tiny = verified_copy  # verified again on what ships: this test's own copy
    out = tmp_path / "ctx"
    r = build_package(verified_tiny, runtime="python3.12", arch="arm64", fmt="image", output=out, smoke=False)
    assert r.format == "image" and r.sha256 is None and r.slimming == []
    files = {p.name for p in out.iterdir()}
    assert out.stat().st_mode & 0o777 == 0o755
    assert files == {"Dockerfile", ".dockerignore", "README.md", "requirements.txt", "lambda_function.py", "lambkit",
                     "model.tflite", "lamb.json", "sample-event.json"}
    assert (out / "lambkit" / "backends" / "litert.py").is_file() and not list(out.rglob("__pycache__"))
    dockerfile = (out / "Dockerfile").read_text()
    assert "FROM --platform=linux/arm64 public.ecr.aws/lambda/python:3.12" in dockerfile
    reqs = [ln for ln in (out / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    # AL2023's documented GCC 11 libstdc++ (GLIBCXX_3.4.29): 2.1.0 is the newest aarch64 LiteRT that loads
    assert "ai-edge-litert==2.1.0" in reqs and all("==" in ln for ln in reqs)
    # the build smoke-runs the handler on the sample event, bound in for that step only
    assert "RUN --mount=type=bind,source=sample-event.json,target=/tmp/sample-event.json" in dockerfile
    assert "from lambda_function import lambda_handler as handle" in dockerfile
    assert "COPY sample-event.json" not in dockerfile and "docker build` proves the image" in (out / "README.md").read_text()
    readme = (out / "README.md").read_text()
    assert "docker build --platform linux/arm64 --provenance=false -t tiny:latest ." in readme
    assert "docker push $REGISTRY/tiny:latest" in readme and "--architectures arm64" in readme
    # named after the model (tiny.lamb.json), never after a file of the context; no placeholder to fill in
    assert "--function-name tiny " in readme and "--repository-name tiny " in readme and "lamb.json" not in readme
    assert "YOUR" not in readme and "--role arn:aws:iam::$ACCOUNT:role/tiny-role" in readme
    # no smoke run, no measured figures: the shell asks for the settings instead of a made-up 1024 MB / 30 s
    assert "--memory-size $MEMORY --timeout $TIMEOUT" in readme and "MEMORY=${MEMORY:?no smoke run measured this build" in readme
    event = json.loads((out / "sample-event.json").read_text())
    assert set(event) == {"image"}
    assert "!sample-event.json" in (out / ".dockerignore").read_text()  # in the context, never COPYed
    hadolint = Path(sys.executable).with_name("hadolint")
    if hadolint.exists():
        assert subprocess.run([str(hadolint), "Dockerfile"], check=False, cwd=out).returncode == 0
    assert r.budget.checks[0].name.startswith("container image") and r.budget.checks[0].ok
    record = mf.read(verified_tiny).package
    assert record.format == "image" and record.arch == "arm64" and record.sha256 is None and record.zipped_bytes is None
    assert record.artifact_path(verified_tiny) == out and record.smoke.ran is False
    assert mf.package_record(out).target == "python3.12-arm64"


def _dockerfile_smoke(dockerfile: str) -> list[str]:
    """The python3 command of the Dockerfile's smoke step, as argv (its bound event path kept)."""
    import shlex

    lines = dockerfile.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("RUN --mount=type=bind,source=sample-event.json"))
    return shlex.split(lines[start + 1].strip())


def test_the_image_smoke_step_runs_the_model_and_fails_as_the_function_would(tmp_path, verified_copy):
    from lamb.package import standin

    host = targets.host_target()
    if host is None:
        pytest.skip("this machine's Python is not a Lambda runtime")
    out = tmp_path / "ctx"
    build_package(verified_copy, runtime=host.runtime.name, arch=host.arch, fmt="image", output=out, smoke=False)
    argv = _dockerfile_smoke((out / "Dockerfile").read_text())
    assert argv[0] == "python3" and argv[-1] == "/tmp/sample-event.json"
    # The step as docker runs it, on this machine: the context's files and its pinned wheels in one
    # task root (LAMBDA_TASK_ROOT is the image's working directory), the event where it is bound.
    root = standin.unpack_artifact(out, tmp_path / "task")
    run = functools.partial(subprocess.run, [sys.executable, *argv[1:-1], str(out / "sample-event.json")],
                            cwd=root, capture_output=True, text=True, timeout=120)
    ok = run()
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) and "error" not in json.loads(ok.stdout)
    (root / "model.tflite").write_bytes(b"not a model")
    broken = run()
    assert broken.returncode != 0 and "error" in broken.stdout


def test_refuses_unverified_failed_or_changed_models(verified_copy):
    m = mf.read(verified_copy)
    mf.write(dataclasses.replace(m, verification=None), verified_copy)
    with pytest.raises(VerificationFailed, match="not been verified"):
        build_package(verified_copy, smoke=False)
    failed = dataclasses.replace(m.verification, passed=False, failures=["top-1 agreement 0.5 < 0.99"])
    mf.write(dataclasses.replace(m, verification=failed), verified_copy)
    with pytest.raises(VerificationFailed, match="top-1 agreement"):
        build_package(verified_copy, smoke=False)
    stale = dataclasses.replace(m.verification, model_sha256="00" * 32)  # converted again since it was verified
    mf.write(dataclasses.replace(m, verification=stale), verified_copy)
    with pytest.raises(VerificationFailed, match="changed since it was verified") as err:
        build_package(verified_copy, smoke=False)
    assert "--skip-verify" in err.value.hint


def test_python314_arm64_zip_is_refused_in_one_line_and_its_image_leaves_the_verdict_to_docker_build(tmp_path, verified_copy, monkeypatch):
    # AL2023's documented libstdc++ (GCC 11: GLIBCXX_3.4.29) and every cp314 aarch64 LiteRT needing 3.4.30
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["package", str(verified_copy), "--runtime", "python3.14", "--arch", "arm64", "--no-smoke"])
    said = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "error: ai-edge-litert 2.3.0 cannot load on python3.14 on arm64 (Amazon Linux 2023, glibc 2.34)" in said
    assert "needs GLIBCXX_3.4.30" in said and "--arch x86_64" in said and "--format image" in said and "lamb probe" in said
    r = build_package(verified_copy, runtime="python3.14", arch="arm64", fmt="image", output=tmp_path / "ctx", smoke=False)
    assert not r.audit.passed and r.audit.rests_on == "documented"
    assert any("docker build runs the model" in w for w in r.warnings)
    shipped = json.loads((tmp_path / "ctx" / "lamb.json").read_text())
    assert shipped["package"]["audit"]["rests_on"] == "documented"
    assert "RUN --mount=type=bind,source=sample-event.json" in (tmp_path / "ctx" / "Dockerfile").read_text()


def test_package_verifies_again_on_the_release_it_ships_and_records_that_one(tmp_path, verified_copy):
    # verify ran on this machine's ai-edge-litert 2.3.0; python3.13 on arm64 ships 2.1.0 (the ELF audit)
    assert mf.read(verified_copy).verification.runtime_lib_version == "2.3.0"
    with pytest.raises(VerificationFailed, match=r"lamb verify ran the model on ai-edge-litert 2\.3\.0, but python3\.13-arm64 ships"):
        build_package(verified_copy, runtime="python3.13", arch="arm64", output=tmp_path / "fn.zip", smoke=False, reverify=None)
    r = build_package(verified_copy, runtime="python3.13", arch="arm64", output=tmp_path / "fn.zip", smoke=False)
    assert r.verification.startswith("passed on ai-edge-litert 2.1.0")
    assert "verified again on ai-edge-litert 2.1.0, what python3.13-arm64 ships (lamb verify had run ai-edge-litert 2.3.0)" in r.verification
    m = mf.read(verified_copy)
    assert (m.verification.runtime_lib, m.verification.runtime_lib_version) == ("ai-edge-litert", "2.1.0")
    assert (m.package.runtime_lib, m.package.runtime_lib_version) == ("ai-edge-litert", "2.1.0")
    assert r.installed["ai-edge-litert"] == "2.1.0"


def test_python_and_the_command_decide_alike_on_the_same_manifest(tmp_path, verified_copy):
    """``lamb.package.build_package`` from Python verifies again by default, as ``lamb package`` does."""
    twin = tmp_path / "twin"
    shutil.copytree(verified_copy.parent, twin)
    built = build_package(verified_copy, runtime="python3.13", arch="arm64", output=tmp_path / "py.zip", smoke=False)
    result = CliRunner().invoke(app, ["package", str(twin / verified_copy.name), "--runtime", "python3.13", "--arch", "arm64",
                                      "--output", str(tmp_path / "cli.zip"), "--no-smoke", "--json"])
    assert result.exit_code == 0, result.output
    command = json.loads(result.stdout)
    assert (command["runtime_lib"]["name"], command["runtime_lib"]["version"]) == ("ai-edge-litert", built.runtime_lib.version)
    assert command["verification"] == built.verification and "verified again on ai-edge-litert 2.1.0" in built.verification
    python_side, command_side = mf.read(verified_copy).verification, mf.read(twin / verified_copy.name).verification
    assert (python_side.runtime_lib_version, python_side.passed) == (command_side.runtime_lib_version, command_side.passed)


def test_missing_manifest_or_model(tmp_path, verified_copy, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError):
        build_package(None)
    m = mf.read(verified_copy)
    m.model_path(verified_copy).unlink()
    with pytest.raises(InputError, match="does not exist"):
        build_package(verified_copy)
    with pytest.raises(InputError):
        build_package(verified_copy, fmt="tarball")


def test_no_runtime_lib_for_target_is_a_dependency_error(verified_tiny, tmp_path):
    with pytest.raises(DependencyError):
        build_package(verified_tiny, runtime="python3.13", runtime_lib_name="tflite-runtime", output=tmp_path / "x.zip")


# -- CLI ---------------------------------------------------------------------------------------


MY_FUNCTION = """\
from lambkit import answers_json, load_model, read_image

model = load_model()


@answers_json
def lambda_handler(event, context):
    scores = model.predict(read_image(event, context))
    best = max(scores, key=scores.get)
    return {best: scores[best]}  # only the top label
"""


@pytest.mark.e2e
def test_handler_option_ships_the_users_entry_and_smoke_tests_it(tmp_path, verified_tiny, target_installs):
    mine = tmp_path / "my_function.py"
    mine.write_text(MY_FUNCTION)
    r = build_package(verified_tiny, runtime="python3.12", output=tmp_path / "mine.zip", handler=mine)
    with zipfile.ZipFile(r.artifact) as zf:
        assert zf.read("lambda_function.py").decode() == MY_FUNCTION and "lambkit/events.py" in zf.namelist()
    assert r.smoke.passed and r.handler == str(mine)
    assert all(len(answer.split()) == 2 for answer in r.smoke.images.values())  # "cat 0.41": its own answers
    # The command's output tells the user what the shipped package offers their entry.
    from rich.console import Console

    from lamb.package.render import render

    console = Console(record=True, width=1000)
    for renderable in render(r):
        console.print(renderable)
    shown = console.export_text()
    assert f"{mine}, shipped as lambda_function.py; lambkit beside it offers" in shown and "load_model" in shown
    result = CliRunner().invoke(app, ["package", str(verified_tiny), "--runtime", "python3.12", "--no-smoke", "--json",
                                      "--handler", str(mine), "-o", str(tmp_path / "cli.zip")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["handler"] == str(mine) and {"load_model", "read_image", "answers_json"} <= set(data["handler_offers"])


def test_handler_option_refuses_an_entry_without_lambda_handler_before_building(tmp_path, verified_tiny):
    for text, fragment in [("def handler(e, c):\n    return {}\n", "defines no lambda_handler"), ("def (:\n", "not valid Python")]:
        mine = tmp_path / "my_function.py"
        mine.write_text(text)
        with pytest.raises(InputError, match=fragment):
            build_package(verified_tiny, runtime="python3.12", output=tmp_path / "x.zip", handler=mine)
    with pytest.raises(InputError, match="is not a file"):
        build_package(verified_tiny, runtime="python3.12", output=tmp_path / "x.zip", handler=tmp_path / "absent.py")
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.e2e
def test_cli_no_args_packages_the_manifest_in_cwd(tmp_path, verified_copy, monkeypatch):
    monkeypatch.chdir(verified_copy.parent)
    result = CliRunner().invoke(app, ["package", "--runtime", "python3.12", "--no-smoke", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert Path(data["artifact"]) == verified_copy.parent / "tiny-python3.12-x86_64.zip"
    assert data["runtime_lib"]["name"] == "ai-edge-litert" and data["sha256"]
    result = CliRunner().invoke(app, ["package", "--runtime", "python3.12", "--format", "image", "--max-size", "1KB"])
    assert result.exit_code == 8
    assert "--max-size" in result.output
    assert not (verified_copy.parent / "tiny-python3.12-x86_64-image").exists()


@pytest.mark.e2e
def test_cli_refuses_a_target_nothing_loads_on_in_one_sentence(tmp_path, verified_copy, monkeypatch):
    monkeypatch.chdir(verified_copy.parent)
    result = CliRunner().invoke(app, ["package", "--runtime", "python3.11", "--arch", "arm64"])
    assert result.exit_code == 7 and "Traceback" not in result.output
    said = " ".join(result.output.split())
    assert "error: ai-edge-litert 1.4.0 cannot load on python3.11 on arm64 (Amazon Linux 2, glibc 2.26)" in said
    assert "needs GLIBC_2.30" in said and "hint: use python3.12 or newer on arm64" in said
    assert not list(verified_copy.parent.glob("*.zip"))


@pytest.mark.e2e
def test_cli_errors_have_exit_codes(tmp_path, verified_copy, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["package"])
    assert result.exit_code == 3 and "no lamb manifest" in result.output
    m = mf.read(verified_copy)
    mf.write(dataclasses.replace(m, verification=None), verified_copy)
    result = CliRunner().invoke(app, ["package", str(verified_copy)])
    assert result.exit_code == 1 and "--skip-verify" in result.output
    result = CliRunner().invoke(app, ["package", str(verified_copy), "--skip-verify", "--runtime", "python3.12",
                                      "--no-smoke", "-o", str(tmp_path / "f.zip")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f.zip").is_file() and "without a passed verification" in result.output


def test_output_kind_mismatch_is_refused_before_any_work(tmp_path, verified_tiny):
    folder = tmp_path / "fn.zip"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder"):
        build_package(verified_tiny, output=folder)
    afile = tmp_path / "ctx"
    afile.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        build_package(verified_tiny, fmt="image", output=afile)


def test_wheelhouse_build_matches_the_index_build(tmp_path, verified_tiny, target_installs, built312):
    from lamb.release import wheels

    house = tmp_path / "wheelhouse"
    house.mkdir()
    for name in target_installs["python3.12-x86_64"].wheels:
        shutil.copy2(wheels.cache_dir() / name, house / name)
    r = build_package(verified_tiny, runtime="python3.12", output=tmp_path / "offline.zip", wheelhouse=house)
    assert r.wheel_source == "wheelhouse"
    assert r.sha256 == built312.sha256  # same wheels, same bytes
    assert r.smoke.passed and r.smoke.stand_in == (PY312 is None)  # a stand-in's host wheels come from the cache


def test_without_the_targets_python_the_smoke_run_is_a_labelled_stand_in(tmp_path, verified_tiny, target_installs, monkeypatch):
    # As on a machine with no python3.12: no bytecode can be compiled for it, and the smoke run
    # runs the same files and package versions on this machine's Python, saying so.
    host = targets.host_target()
    monkeypatch.setattr(bytecode, "target_python", lambda t: None if t != host else __import__("sys").executable)
    monkeypatch.setattr(targets, "find_python", lambda version: None)  # nor one to compile its bytecode with
    monkeypatch.setattr(targets, "native_runtimes", lambda: [host.runtime] if host else [])
    r = build_package(verified_tiny, runtime="python3.12", output=tmp_path / "fn.zip")
    assert not r.bytecode.compiled and "no Python 3.12" in r.bytecode.note
    with zipfile.ZipFile(r.artifact) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".pyc")]
    s = r.smoke
    assert s.passed and s.stand_in and s.label.startswith("HOST STAND-IN") and "3.12 on the target" in s.label
    # what a stand-in cannot prove, said plainly, and what covered it
    assert ("It cannot prove that the target's own wheels load on Amazon Linux 2023's glibc and "
            "libstdc++: the ELF audit checked that.") in s.label
    # and what would let this machine smoke the artifact itself
    if host is not None:
        assert f"This machine smoke-tests {host.runtime.name} natively" in s.label
    assert "install python3.12 (pyenv, uv or the system's package manager)" in s.label or "uv python install 3.12" in s.label


def test_a_bad_runtime_is_named_before_anything_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no manifest here either: the option is still the first thing said
    with pytest.raises(InputError, match=r"unknown Lambda runtime 'python3.9'") as info:
        build_package(runtime="python3.9")
    assert "python3.14" in info.value.hint


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
@pytest.mark.e2e
def test_image_readme_states_the_advice_from_its_smoke_run(tmp_path, verified_copy):
    """The image context's create-function command carries lamb.cost.advise_function's memory and
    timeout for the smoke run's figures: what lamb invoke advises and lamb deploy applies."""
    from lamb.cost import advise_function

    out = tmp_path / "ctx"
    build_package(verified_copy, runtime="python3.11", fmt="image", output=out)
    smoke = mf.read(verified_copy).package.smoke
    assert smoke.ran and smoke.passed
    advice = advise_function(smoke.invoke_ms, init_ms=smoke.init_ms, peak_rss_mb=smoke.peak_rss_mb, arch="x86_64")
    readme = (out / "README.md").read_text()
    assert f"MEMORY={advice.memory_mb} TIMEOUT={advice.timeout_s}" in readme and "--memory-size $MEMORY --timeout $TIMEOUT" in readme


def test_several_manifests_are_named_the_way_package_takes_one(tmp_path, monkeypatch):
    for stem in ("a", "b"):
        (tmp_path / f"{stem}.lamb.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ManifestError, match="several manifests") as info:
        build_package()
    assert "`lamb package model.lamb.json`" in info.value.hint and "--manifest" not in info.value.hint


# -- what a manifest may name, and two runs at once (issue 24 items 1 and 9) -----------------------


@pytest.mark.parametrize("how", ["absolute", "relative", "symlink"])
def test_a_host_file_the_manifest_names_never_ships(tmp_path, verified_copy, monkeypatch, how):
    host = tmp_path / "hostname"  # stands for /etc/hostname: a file of the host's, outside the model's folder
    host.write_text("build-host-7\n")
    m = mf.read(verified_copy)
    named = {"absolute": str(host), "relative": "../" * 12 + str(host).lstrip("/"), "symlink": m.model.file}[how]
    if how == "symlink":
        m.model_path(verified_copy).unlink()
        m.model_path(verified_copy).symlink_to(host)
    mf.write(dataclasses.replace(m, model=dataclasses.replace(m.model, file=named, sha256=mf.sha256_file(host))), verified_copy)
    monkeypatch.chdir(tmp_path)
    args = ["package", str(verified_copy), "--runtime", "python3.11", "--skip-verify", "--no-smoke", "-o", "out.zip"]
    result = CliRunner().invoke(app, args)
    said = " ".join(result.output.split())
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    assert ("is a symbolic link" if how == "symlink" else f"error: the model {host} lies outside the manifest's folder") in said
    assert not (tmp_path / "out.zip").exists() and not list(tmp_path.glob(".out.zip.*"))


def test_a_model_changed_since_conversion_is_refused_with_skip_verify_too(tmp_path, verified_copy):
    model = mf.read(verified_copy).model_path(verified_copy)
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(ManifestError, match=r"tiny.tflite is not the file `lamb convert` recorded"):
        build_package(verified_copy, skip_verify=True, smoke=False, output=tmp_path / "fn.zip")
    assert not (tmp_path / "fn.zip").exists()


def test_two_package_runs_at_once_on_one_manifest_keep_both_records(tmp_path, verified_copy, target_installs):
    """Two real processes, as two terminals would run them: each reads the manifest at its start and
    records its zip at its end; the second to finish must not write back what it read."""
    def run(runtime: str) -> subprocess.Popen:
        args = ["package", str(verified_copy), "--runtime", runtime, "--skip-verify", "--no-smoke",
                "-o", str(tmp_path / f"{runtime}.zip")]
        return subprocess.Popen([sys.executable, "-c", "from lamb.cli import app; app()", *args], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    m = mf.read(verified_copy)  # verified_tiny's copy: records of what other tests built from it go
    mf.write(dataclasses.replace(m, package=None, packages={}), verified_copy)
    runs = [run("python3.11"), run("python3.12")]
    outputs = [p.communicate(timeout=600)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    m = mf.read(verified_copy)
    kept = {r.runtime: r.artifact for r in m.packages.values()}
    assert kept == {"python3.11": "../python3.11.zip", "python3.12": "../python3.12.zip"}


# -- full and read-only disks, SIGTERM (issue 24 item 8) --------------------------------------------


def test_a_full_or_read_only_output_folder_is_one_line_and_leaves_nothing(verified_copy, small_disk, target_installs):
    from conftest import remount_read_only

    with pytest.raises(InputError, match=rf"^cannot write {small_disk / 'f.zip'}: No space left on device$"):
        build_package(verified_copy, runtime="python3.12", smoke=False, output=small_disk / "f.zip")
    assert list(small_disk.iterdir()) == []  # no .f.zip.*.tmp
    remount_read_only(small_disk)
    with pytest.raises(InputError, match=rf"^cannot write {small_disk}: Read-only file system$"):
        build_package(verified_copy, runtime="python3.12", smoke=False, output=small_disk / "f.zip")


def test_a_full_temporary_folder_is_one_line_and_leaves_nothing(verified_copy, small_disk, tmp_path, monkeypatch, target_installs):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    # the audit of the wheels unpacks them there first (lamb-audit-*), then the build (lamb-package-*)
    with pytest.raises(InputError, match=rf"^cannot write {small_disk}/lamb-(audit|package)-\w+: No space left on device$"):
        build_package(verified_copy, runtime="python3.12", smoke=False, output=tmp_path / "f.zip")
    assert list(small_disk.iterdir()) == [] and not list(tmp_path.glob("*f.zip*"))


def test_sigterm_while_the_zip_is_written_leaves_no_temporary_file(tmp_path, verified_copy, target_installs):
    from conftest import terminate_while

    scratch, out = tmp_path / "tmp", tmp_path / "out"
    scratch.mkdir()
    out.mkdir()
    args = ["package", verified_copy, "--runtime", "python3.12", "--no-smoke", "--no-slim", "-o", out / "f.zip"]
    code, said = terminate_while(args, scratch, lambda: bool(list(out.glob(".f.zip.*.tmp"))))
    assert code == 143, said
    assert "terminated; nothing was left half-written" in said and "Traceback" not in said
    assert list(out.iterdir()) == [] and list(scratch.iterdir()) == []


def test_a_smoke_run_past_lambdas_init_limit_is_refused_in_one_line_naming_it(tmp_path, verified_tiny, target_installs):
    """Issue 24 item 3: the smoke run has Lambda's limits (10 s of init, then the request's timeout)."""
    slow = tmp_path / "slow_function.py"
    slow.write_text("import time\n\ntime.sleep(15)  # a cold start longer than Lambda's init phase\n\n\n"
                    "def lambda_handler(event, context):\n    return {}\n")
    result = CliRunner().invoke(app, ["package", str(verified_tiny), "--runtime", "python3.12", "--handler", str(slow),
                                      "-o", str(tmp_path / "slow.zip")])
    said = " ".join(result.output.split())
    assert result.exit_code == 9 and "Traceback" not in result.output, result.output
    assert "error: the built function failed its smoke run" in said and "Init phase timed out after 10.00 seconds" in said
    assert not (tmp_path / "slow.zip").exists() and not list(tmp_path.glob(".slow.zip.*"))


# -- the course's route: a handler with its own requirement, an image on a given base ----------

COURSE_FUNCTION = """\
from keras_image_helper import create_preprocessor
from lambkit import answers_json, load_model, read_image

preprocessor = create_preprocessor("xception", target_size=(32, 32))  # the course's helper, imported at init
model = load_model()


@answers_json
def lambda_handler(event, context):
    return model.predict(read_image(event, context))
"""


@pytest.mark.e2e
@pytest.mark.network  # keras-image-helper from the index (cached after the first run)
def test_a_handler_that_imports_a_package_lamb_does_not_ship_is_told_to_add_it_and_can(tmp_path, verified_tiny):
    mine = tmp_path / "course_lambda_function.py"
    mine.write_text(COURSE_FUNCTION)
    with pytest.raises(ArtifactError) as missing:
        build_package(verified_tiny, runtime="python3.12", output=tmp_path / "without.zip", handler=mine)
    assert "No module named 'keras_image_helper'" in missing.value.message
    assert "--requirement keras-image-helper" in missing.value.hint and "--no-slim" not in missing.value.hint
    assert not (tmp_path / "without.zip").exists()
    r = build_package(verified_tiny, runtime="python3.12", output=tmp_path / "with.zip", handler=mine, requirements=("keras-image-helper",))
    assert r.smoke.passed and r.installed.get("keras-image-helper")
    with zipfile.ZipFile(r.artifact) as zf:
        assert "keras_image_helper/preprocessors.py" in zf.namelist()
    assert r.audit.passed  # audited with the rest


@pytest.mark.network
def test_an_image_on_a_given_base_with_a_requirements_file_passes_hadolint(tmp_path, verified_tiny):
    mine = tmp_path / "course_lambda_function.py"
    mine.write_text(COURSE_FUNCTION)
    (tmp_path / "requirements.txt").write_text("# the handler's own\nkeras-image-helper\n")
    out = tmp_path / "ctx"
    base = "agrigorev/model-2025-hairstyle:v1"  # the 2025 homework's image, built on public.ecr.aws/lambda/python:3.13
    build_package(verified_tiny, runtime="python3.13", fmt="image", output=out, handler=mine,
                  requirements=(str(tmp_path / "requirements.txt"),), base_image=base, smoke=False)
    dockerfile = (out / "Dockerfile").read_text()
    assert f"FROM --platform=linux/amd64 {base}\n" in dockerfile and "RUN --mount=type=bind,source=sample-event.json" in dockerfile
    pinned = (out / "requirements.txt").read_text()
    assert "keras-image-helper==0.0.2" in pinned
    readme = (out / "README.md").read_text()
    assert f"Base image: `{base}`" in readme and "-p 8080:8080" in readme and "localhost:8080/2015-03-31" in readme
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    lint = subprocess.run([hadolint, "Dockerfile"], check=False, cwd=out, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # The Dockerfile's smoke step, as `docker build` runs it on the given base's Python 3.13: the pinned
    # wheels installed into the task root, the context's files beside them, the event where it is bound.
    python = targets.find_python("3.13")
    if python is not None:
        from lamb.release.wheels import install_for_target

        root = tmp_path / "task"
        shutil.copytree(out, root)
        install_for_target([ln for ln in pinned.splitlines() if ln and not ln.startswith("#")], targets.get_target("python3.13"), root)
        argv = _dockerfile_smoke(dockerfile)
        ran = subprocess.run([python, *argv[1:-1], str(out / "sample-event.json")], cwd=root, capture_output=True, text=True, timeout=120, check=False)
        assert ran.returncode == 0 and list(json.loads(ran.stdout)) == json.loads((out / "lamb.json").read_text())["labels"], ran.stderr
    with pytest.raises(InputError, match="--base-image needs --format image"):
        build_package(verified_tiny, runtime="python3.13", output=tmp_path / "f.zip", base_image=base, smoke=False)
    with pytest.raises(InputError, match="is not a requirement"):
        build_package(verified_tiny, runtime="python3.13", output=tmp_path / "f.zip", requirements=("-e .",), smoke=False)
