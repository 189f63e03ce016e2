"""The Lambda runtimes table: rows, platform tags, lookups."""

from __future__ import annotations

import sys

import pytest

from lamb import targets
from lamb.errors import InputError


def test_table_covers_python310_to_314_on_both_arches():
    names = targets.runtime_names()
    assert names == ["python3.10", "python3.11", "python3.12", "python3.13", "python3.14"]
    for name in names:
        for arch in ("x86_64", "arm64"):
            t = targets.get_target(name, arch)
            assert t.name == f"{name}-{arch}"


@pytest.mark.parametrize(
    ("runtime", "os_name", "glibc"),
    [("python3.10", "Amazon Linux 2", (2, 26)), ("python3.11", "Amazon Linux 2", (2, 26)),
     ("python3.12", "Amazon Linux 2023", (2, 34)), ("python3.14", "Amazon Linux 2023", (2, 34))],
)
def test_os_and_glibc_follow_the_runtime(runtime, os_name, glibc):
    t = targets.get_target(runtime)
    assert t.runtime.os == os_name
    assert t.runtime.glibc == glibc


def test_platform_tags_cover_every_manylinux_the_glibc_loads():
    t = targets.get_target("python3.11", "arm64")
    tags = t.platform_tags
    assert tags[0] == "manylinux_2_26_aarch64"
    assert "manylinux_2_17_aarch64" in tags and tags[-1] == "manylinux2014_aarch64"
    assert not any("2_27" in tag or "x86_64" in tag for tag in tags)  # ai-edge-litert 2.x (2_27) must not match
    t12 = targets.get_target("python3.12", "x86_64")
    assert t12.platform_tags[0] == "manylinux_2_34_x86_64"
    assert "manylinux_2_27_x86_64" in t12.platform_tags
    assert t12.abi == "cp312" and t12.python_version == "3.12"


def test_image_and_docker_platform():
    t = targets.get_target("3.13", "arm64")  # "3.13" is accepted for python3.13
    assert t.base_image == "public.ecr.aws/lambda/python:3.13"
    assert t.docker_platform == "linux/arm64"
    assert targets.get_target("python3.12").docker_platform == "linux/amd64"


def test_default_is_the_named_runtime_on_x86_64():
    t = targets.get_target()
    assert t.runtime.name == targets.DEFAULT_RUNTIME and t.arch == "x86_64"


@pytest.mark.parametrize(("runtime", "arch"), [("python2.7", None), ("python3.12", "sparc")])
def test_unknown_runtime_or_arch_is_an_input_error(runtime, arch):
    with pytest.raises(InputError) as err:
        targets.get_target(runtime, arch)
    assert err.value.hint


def test_host_targets_describe_this_machine():
    host = targets.host_smoke_target()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if host is None:
        pytest.skip("not Linux CPython with glibc")
    assert host.python_version == python
    assert host.runtime.glibc == targets.host_glibc()
    row = targets.host_target()
    if row is not None:
        assert row.runtime.python == python and targets.can_run_on_host(row)
    other = next(r for r in targets.RUNTIMES if r.python != python)
    assert not targets.can_run_on_host(targets.Target(other, host.arch))


def test_find_python_finds_this_python_and_refuses_what_is_not_there():
    found = targets.find_python(targets.host_python())
    assert found is not None
    assert targets.find_python("2.9") is None
    assert targets.python_version(found) == targets.host_python() == targets.python_version()
    assert targets.python_version("/no/such/python") is None


def test_the_help_lists_the_runtimes_of_the_table():
    from typer.testing import CliRunner

    from lamb.cli import app

    names = targets.runtime_names()
    help_text = " ".join(CliRunner().invoke(app, ["package", "--help"], env={"COLUMNS": "300"}).output.split())
    assert " | ".join(names) in help_text
    assert f"[default: {targets.default_runtime().name}: {targets.DEFAULT_RUNTIME_WHY}]" in help_text  # and why


def test_native_runtimes_are_those_whose_own_python_is_here():
    native = targets.native_runtimes()
    host = targets.host_target()
    if host is not None:
        assert host.runtime in native
    for runtime in native:
        assert runtime.python == targets.host_python() or targets.find_python(runtime.python)
    note = targets.native_note()
    assert all(r.name in note for r in native)


def test_uv_install_is_offered_only_when_uv_is_here_and_may_download(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert targets.python_offer("3.14") == "python3.14 (pyenv, uv or the system's package manager)"
    uv = tmp_path / "uv"
    uv.write_text("#!/bin/sh\nexit 0\n")
    uv.chmod(0o755)
    assert targets.python_offer("3.14") == "`uv python install 3.14` (uv is installed here)"
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    assert "uv python install" not in targets.python_offer("3.14")


def test_find_python_looks_in_uvs_interpreters(tmp_path, monkeypatch):
    # uv keeps its managed interpreters in $UV_PYTHON_INSTALL_DIR/cpython-X.Y.Z-<platform>/bin
    python = targets.host_python()
    home = tmp_path / "uv" / f"cpython-{python}.99-linux-x86_64-gnu" / "bin"
    home.mkdir(parents=True)
    (home / f"python{python}").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "uv"))
    assert targets.find_python(python) == str(home / f"python{python}")
