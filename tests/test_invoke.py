"""lamb invoke: the artifact (zip or folder) run once cold and N times warm, as Lambda would."""

from __future__ import annotations

import base64
import json
import os
import time
import zipfile
from pathlib import Path

import pytest
from conftest import TINY_LABELS
from typer.testing import CliRunner

from lamb.cli import app
from lamb.cli.common import to_jsonable
from lamb.cost import advise_memory
from lamb.errors import ArtifactError, InputError
from lamb.handler.lambkit.cpu import this_cpu
from lamb.invoke import (
    InvokeReport,
    build_event,
    check_runnable,
    default_artifact,
    invoke_artifact,
    percentile,
    pixel_budget_floor,
    recommend_memory_mb,
)
from lamb.local import RunSettings


def zip_tree(root: Path, output: Path, extra: dict[str, str] | None = None) -> Path:
    """Zip a task root (following the fixture's symlinks), stored: speed over size in tests."""
    with zipfile.ZipFile(output, "w", zipfile.ZIP_STORED) as zf:
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                path = Path(folder) / name
                zf.write(path, path.relative_to(root).as_posix())
        for name, text in (extra or {}).items():
            zf.writestr(name, text)
    return output


@pytest.fixture(scope="session")
def tiny_zip(tiny_task_root, tmp_path_factory):
    return zip_tree(tiny_task_root, tmp_path_factory.mktemp("artifact") / "tiny-python3.11-x86_64.zip")


@pytest.fixture
def png_file(tmp_path, png_bytes):
    path = tmp_path / "cat.png"
    path.write_bytes(png_bytes)
    return path


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_image_event_cold_and_warm(tiny_zip, png_file):
    report = invoke_artifact(tiny_zip, image=png_file, repeat=5, settings=RunSettings(memory_mb=512))
    assert isinstance(report, InvokeReport)
    assert report.error is None and report.event_kind == "image"
    assert list(report.response) == TINY_LABELS
    assert report.init_ms > 0 and report.invoke_ms > 0
    assert len(report.warm_ms) == 5 and all(ms > 0 for ms in report.warm_ms)
    assert report.warm_p50_ms <= report.warm_p95_ms <= max(report.warm_ms)
    assert 20 < report.peak_rss_mb < 512
    # Cost and latency pick the setting (where cost stops being flat, from the warm median); RSS is the floor.
    assert report.memory.local_ms == report.warm_p50_ms
    assert report.recommended_memory_mb == advise_memory(report.warm_p50_ms, peak_rss_mb=report.peak_rss_mb).recommended_mb
    assert recommend_memory_mb(report.peak_rss_mb) <= report.recommended_memory_mb <= 1769
    assert report.memory.floors["peak RSS"] == recommend_memory_mb(report.peak_rss_mb)
    assert report.memory_mb == 512 and report.python == "3.11"


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_url_event_with_env(tiny_zip, image_server):
    blocked = invoke_artifact(tiny_zip, url=image_server + "/cat.png")
    assert blocked.error is None and blocked.status_code == 400  # the handler's own answer, as is
    assert "non-public" in blocked.response["error"]
    allowed = invoke_artifact(tiny_zip, url=image_server + "/cat.png", settings=RunSettings(env={"LAMB_ALLOW_PRIVATE_URLS": "1"}))
    assert list(allowed.response) == TINY_LABELS and allowed.event_kind == "url"


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_any_json_event_from_file(tiny_zip, tmp_path, png_bytes):
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "headers": {"content-type": "image/png"},
        "requestContext": {"http": {"method": "POST"}}, "body": base64.b64encode(png_bytes).decode(), "isBase64Encoded": True,
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    report = invoke_artifact(tiny_zip, event_file=path)
    assert report.status_code == 200 and report.event_kind == "event"
    assert list(json.loads(report.response["body"])) == TINY_LABELS


def test_unhandled_error_reported_like_lambda(tmp_path):
    artifact = tmp_path / "raises.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.writestr("lambda_function.py", "def lambda_handler(event, context):\n    raise KeyError('nope')\n")
        zf.writestr("lamb.json", "{}")
    report = invoke_artifact(artifact, event={"x": 1}, repeat=3)
    assert report.response is None and report.warm_ms == []
    assert report.error["errorType"] == "KeyError"
    assert any("lambda_function.py" in line for line in report.error["stackTrace"])


@pytest.mark.parametrize("kwargs", [{}, {"image": Path("a.png"), "url": "http://x"}])
def test_exactly_one_event_source(kwargs):
    with pytest.raises(InputError, match="exactly one"):
        build_event(**kwargs)


def test_bad_event_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(InputError, match="not JSON"):
        build_event(event_file=bad)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    with pytest.raises(InputError, match="nests its JSON too deeply"):
        build_event(event_file=deep)
    with pytest.raises(InputError, match="cannot read"):
        build_event(event_file=tmp_path / "missing.json")
    with pytest.raises(InputError, match="no image"):
        build_event(image=tmp_path / "missing.png")


def test_default_artifact_is_the_newest_package_output(tmp_path, monkeypatch):
    def fake_zip(name, mtime):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("lambda_function.py", "")
            zf.writestr("lamb.json", "{}")
        os.utime(path, (mtime, mtime))
        return path

    with pytest.raises(InputError, match="no Lambda artifact"):
        default_artifact(tmp_path)
    now = time.time()
    (tmp_path / "tiny.lamb.json").write_text("{}")
    fake_zip("tiny-python3.11-x86_64.zip", now - 100)
    newest = fake_zip("tiny-python3.12-arm64.zip", now)
    (tmp_path / "tiny-python3.13-x86_64.zip").write_text("not a zip")  # ignored, not an artifact
    image = tmp_path / "tiny-python3.12-x86_64-image"
    image.mkdir()
    (image / "lambda_function.py").write_text("")
    (image / "lamb.json").write_text("{}")
    os.utime(image, (now - 50, now - 50))
    monkeypatch.chdir(tmp_path)
    assert default_artifact() == Path.cwd() / newest.name


def test_default_artifact_without_manifest(tmp_path):
    other = tmp_path / "function.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("lambda_function.py", "")
        zf.writestr("lamb.json", "{}")
    with zipfile.ZipFile(tmp_path / "unrelated.zip", "w") as zf:
        zf.writestr("readme.txt", "")
    assert default_artifact(tmp_path) == other


def test_memory_rule():
    assert recommend_memory_mb(40) == 128  # Lambda's minimum
    assert recommend_memory_mb(300) == 448  # 300 x 1.25 + 32 = 407 -> next 64 MB step
    assert recommend_memory_mb(9000) == 10240  # Lambda's maximum
    assert recommend_memory_mb(120) % 64 == 0


def test_pixel_budget_floor_holds_the_largest_admitted_image():
    from lamb.handler.lambkit.decode import IMAGE_BYTES_PER_PIXEL, pixel_budget

    # The demo model peaks near 57 MB: 128 MB would hold it, but not the 4.2-megapixel image the
    # handler admits at 128 MB. At 192 MB the budget is 6.3 megapixels, and that fits.
    assert recommend_memory_mb(57) == 128
    assert pixel_budget_floor(57) == 192
    for peak in (57, 300, 2000):
        floor = pixel_budget_floor(peak)
        image_mb = pixel_budget(floor) * IMAGE_BYTES_PER_PIXEL / 2**20
        assert recommend_memory_mb(peak + image_mb) <= floor
    assert pixel_budget_floor(57, {"LAMB_MAX_IMAGE_PIXELS": "1000000"}) == recommend_memory_mb(57 + 8 * 1e6 / 2**20)
    assert pixel_budget_floor(9000) == 10240


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
def test_the_50_megapixel_png_is_a_413_not_out_of_memory(tiny_zip, tmp_path):
    from test_handler_input import big_png

    image = tmp_path / "huge.png"
    image.write_bytes(big_png(10000, 5000))  # 194 KB; decoded, 200 MB
    report = invoke_artifact(tiny_zip, image=image, settings=RunSettings(memory_mb=128))
    assert report.error is None and report.status_code == 413, report.error
    assert "over the pixel budget of 4.2 megapixels" in report.response["error"]
    assert report.peak_rss_mb < 128
    assert report.memory.floors["the pixel budget"] == pixel_budget_floor(report.peak_rss_mb)
    assert "the advice covers the largest of them" in report.memory_advice


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0


def test_artifact_for_another_python_or_arch(tmp_path, monkeypatch):
    import lamb.invoke as invoke_module

    (tmp_path / "mod.cpython-399-x86_64-linux-gnu.so").write_bytes(b"")
    monkeypatch.setattr(invoke_module, "find_python", lambda version: None)
    with pytest.raises(ArtifactError, match=r"built for Python 3.99 on x86_64"):
        check_runnable(tmp_path, None, stand_in=False)
    monkeypatch.setattr(invoke_module, "find_python", lambda version: "/opt/python3.99")
    assert check_runnable(tmp_path, None) == (tmp_path, "/opt/python3.99", ["the artifact is built for Python 3.99: ran it with /opt/python3.99"])
    assert check_runnable(tmp_path, "/my/python") == (tmp_path, "/my/python", [])  # the user's choice wins
    (tmp_path / "mod.cpython-399-x86_64-linux-gnu.so").unlink()
    (tmp_path / "mod.cpython-311-riscv64-linux-gnu.so").write_bytes(b"")
    with pytest.raises(ArtifactError, match=r"built for Python 3.11 on riscv64"):
        check_runnable(tmp_path, None, stand_in=False)


def test_the_package_record_says_what_the_artifact_is_built_for(tmp_path, monkeypatch):
    from test_manifest import make_manifest, make_record

    import lamb.invoke as invoke_module
    from lamb import manifest as mf

    # The record wins over what the extension modules' names would suggest.
    (tmp_path / "mod.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    mf.write(make_manifest(package=make_record(python="3.99", arch="arm64")), tmp_path / "lamb.json")
    monkeypatch.setattr(invoke_module, "find_python", lambda version: None)
    with pytest.raises(ArtifactError, match=r"built for Python 3.99 on arm64"):
        check_runnable(tmp_path, None, stand_in=False)


def test_an_unpacked_image_context_runs_here_as_it_is(tmp_path):
    """unpack_artifact installs an image's pinned wheels for this machine: no other Python is sought."""
    from test_manifest import make_manifest, make_record

    from lamb import manifest as mf

    mf.write(make_manifest(package=make_record(python="3.99", arch="x86_64", format="image")), tmp_path / "lamb.json")
    assert check_runnable(tmp_path, None, stand_in=False) == (tmp_path, None, [])


def test_default_artifact_is_the_one_the_manifest_recorded(tmp_path):
    from test_manifest import make_manifest, make_record

    from lamb import manifest as mf

    recorded = tmp_path / "elsewhere" / "fn.zip"
    recorded.parent.mkdir()
    for path in (recorded, tmp_path / "m-python3.12-x86_64.zip"):  # the second is newer but not recorded
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("lambda_function.py", "")
            zf.writestr("lamb.json", "{}")
    mf.write(make_manifest(package=make_record(artifact="elsewhere/fn.zip")), tmp_path / "m.lamb.json")
    assert default_artifact(tmp_path) == recorded


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
@pytest.mark.e2e
def test_artifact_for_another_python_runs_on_a_labelled_stand_in(tmp_path, monkeypatch, converted_tiny, png_file):
    """`lamb package`'s default target is the newest runtime; invoke still runs it here, labelled."""
    import shutil

    import lamb.invoke as invoke_module
    from lamb.package import build_package

    shutil.copy2(converted_tiny.model_path, tmp_path / "tiny.tflite")
    shutil.copy2(converted_tiny.manifest_path, tmp_path / "tiny.lamb.json")
    package = build_package(tmp_path / "tiny.lamb.json", runtime="python3.12", skip_verify=True, smoke=False,
                            output=tmp_path / "tiny.zip")
    monkeypatch.setattr(invoke_module, "find_python", lambda version: None)  # as if no python3.12 here
    report = invoke_artifact(package.artifact, image=png_file)
    assert report.error is None and list(report.response) == TINY_LABELS
    assert report.notes[0] == "the artifact is built for Python 3.12 on x86_64"
    assert report.notes[1].startswith("HOST STAND-IN")
    assert "natively" in report.notes[1]  # and which runtimes this machine could run as they are
    # The stand-in runs the artifact's own runtime library version, not what this Python's Lambda
    # row would pick (ai-edge-litert 1.4.0 for python3.11): only packages without a host wheel differ.
    assert package.installed["ai-edge-litert"] == "2.3.0"
    assert "ai-edge-litert" not in report.notes[1].split("except", 1)[-1]
    with pytest.raises(ArtifactError):
        invoke_artifact(package.artifact, image=png_file, settings=RunSettings(stand_in=False))


# -- CLI -----------------------------------------------------------------------------------------


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
@pytest.mark.e2e
def test_cli_json(tiny_zip, png_file):
    result = CliRunner().invoke(app, ["invoke", str(tiny_zip), "--image", str(png_file), "--repeat", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert list(data["response"]) == TINY_LABELS and len(data["warm_ms"]) == 2
    assert data["cpu"] == to_jsonable(this_cpu())  # the CPU the figures were measured on


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
@pytest.mark.e2e
def test_cli_table_and_default_artifact(tiny_zip, png_file, tmp_path, monkeypatch):
    os.symlink(tiny_zip, tmp_path / tiny_zip.name)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["invoke", "--image", str(png_file)])
    assert result.exit_code == 0, result.output
    assert "recommended memory" in result.output and f"timed on {this_cpu().model}" in " ".join(result.output.split())


def test_cli_exit_codes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["invoke", "--url", "http://example.com/x.jpg"])
    assert result.exit_code == InputError.exit_code  # no artifact here
    artifact = tmp_path / "raises.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.writestr("lambda_function.py", "def lambda_handler(event, context):\n    raise ValueError('x')\n")
    result = CliRunner().invoke(app, ["invoke", str(artifact), "--url", "http://example.com/x.jpg"])
    assert result.exit_code == ArtifactError.exit_code
    result = CliRunner().invoke(app, ["invoke", str(artifact), "--url", "http://x", "--env", "NOEQUALS"])
    assert result.exit_code == InputError.exit_code


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
@pytest.mark.e2e
def test_pipeline_package_then_invoke_default(tmp_path, monkeypatch, converted_tiny, png_file):
    """`lamb package` in a folder, then `lamb invoke` with no artifact: it finds the package's zip."""
    import shutil

    from lamb.package import build_package

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(converted_tiny.model_path, work / "tiny.tflite")
    shutil.copy2(converted_tiny.manifest_path, work / "tiny.lamb.json")
    monkeypatch.chdir(work)
    package = build_package(work / "tiny.lamb.json", runtime="python3.11", skip_verify=True, smoke=False)
    assert package.artifact.parent == work
    assert default_artifact() == package.artifact
    result = CliRunner().invoke(app, ["invoke", "--image", str(png_file), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["artifact"] == str(package.artifact) and list(data["response"]) == TINY_LABELS


@pytest.mark.network  # runtime wheels for this machine (cached after the first run)
@pytest.mark.e2e
def test_image_context_folder_runs_with_its_pinned_wheels(tmp_path, converted_tiny, png_file):
    """An image folder's requirements are what its Dockerfile installs; invoke installs them here."""
    import shutil

    from lamb.package import build_package

    shutil.copy2(converted_tiny.model_path, tmp_path / "tiny.tflite")
    shutil.copy2(converted_tiny.manifest_path, tmp_path / "tiny.lamb.json")
    package = build_package(tmp_path / "tiny.lamb.json", runtime="python3.11", fmt="image", skip_verify=True,
                            smoke=False, output=tmp_path / "image")
    report = invoke_artifact(package.artifact, image=png_file)
    assert report.error is None and list(report.response) == TINY_LABELS
    assert not [n for n in report.notes if "STAND-IN" in n]  # python3.11 pins install on this python3.11


def test_cli_prints_the_functions_own_text_as_it_is(tmp_path):
    """A path, an error and log lines holding Rich markup are printed, not read as markup."""
    folder = tmp_path / "a[/]b"  # a folder "a[" holding "]b"
    folder.mkdir(parents=True)
    artifact = folder / "f[bold].zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.writestr("lambda_function.py", "def lambda_handler(event, context):\n    print('[/] log [bold]')\n    raise ValueError('[/i] broken')\n")
        zf.writestr("lamb.json", "{}")
    event = folder / "e[/].json"
    event.parent.mkdir(parents=True, exist_ok=True)
    event.write_text("{}")
    result = CliRunner().invoke(app, ["invoke", str(artifact), "--event", str(event), "--verbose"])
    assert result.exit_code == 9, result.output
    assert "[/] log [bold]" in result.stdout and "[/i] broken" in result.stdout and "f[bold].zip" in result.stdout
    missing = CliRunner().invoke(app, ["invoke", str(folder / "gone[/].zip"), "--event", str(event)])
    assert missing.exit_code == 3 and "gone[/].zip" in missing.stderr, missing.output


@pytest.mark.parametrize("source", ["/dev/zero", "7 MB file", "7 MB on stdin", "image"])
def test_an_event_over_lambdas_6_mb_is_refused_before_it_is_read_whole(tmp_path, source):
    """Lambda and lamb serve answer such an event 413; invoke refuses it in the same words, reading
    no more than the limit (/dev/zero read until MemoryError; a 1 GiB image reached 4.1 GB)."""
    seven_mb = b'{"pad": "' + b" " * (7 * 2**20) + b'"}'
    args, stdin = ["--event", "-"], None
    if source == "/dev/zero":
        args = ["--event", "/dev/zero"]
    elif source == "7 MB file":
        (tmp_path / "big.json").write_bytes(seven_mb)
        args = ["--event", str(tmp_path / "big.json")]
    elif source == "7 MB on stdin":
        stdin = seven_mb
    else:
        with open(tmp_path / "huge.png", "wb") as f:
            f.truncate(2**30)  # sparse: 1 GiB that takes no disk
        args = ["--image", str(tmp_path / "huge.png")]
    result = CliRunner().invoke(app, ["invoke", str(tmp_path / "never-unpacked.zip"), *args], input=stdin)
    assert result.exit_code == 3, result.output
    assert "6 MB payload limit" in result.stderr and "413: Request must be smaller than 6291456 bytes" in result.stderr
    assert "Traceback" not in result.output


def test_an_endless_stdin_is_read_no_further_than_the_limit(monkeypatch):
    import io
    import sys

    with open("/dev/zero", "rb") as zeros:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(zeros))
        with pytest.raises(InputError, match="the event in standard input is larger than Lambda's 6 MB payload limit"):
            build_event(event_file=Path("-"))


def test_an_event_passed_in_is_held_to_the_same_limit(tmp_path):
    with pytest.raises(InputError, match=r"the event is 7\.0 MB as JSON, larger than Lambda's 6 MB payload limit"):
        invoke_artifact(tmp_path / "never-unpacked.zip", event={"pad": " " * (7 * 2**20)})
    # just under the limit, the image's event is built (the artifact is what is missing then)
    (tmp_path / "fits.png").write_bytes(b"\x89PNG" + bytes(4 * 2**20))
    assert len(json.dumps(build_event(image=tmp_path / "fits.png")[1])) < 6 * 2**20
