"""unpack_artifact and the host stand-in: task roots this machine can run."""

from __future__ import annotations

import os
import re
import zipfile

import pytest
from conftest import at_most

from lamb.errors import ArtifactError, InputError
from lamb.local import LocalFunction
from lamb.package.standin import unpack_artifact


def test_unpack_zip(tmp_path):
    artifact = tmp_path / "fn.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.writestr("lambda_function.py", "def lambda_handler(e, c):\n    return {'ok': e}\n")
        info = zipfile.ZipInfo("bin/tool")
        info.external_attr = 0o755 << 16
        zf.writestr(info, "#!/bin/sh\n")
    root = unpack_artifact(artifact)
    try:
        assert (root / "lambda_function.py").is_file()
        assert os.access(root / "bin" / "tool", os.X_OK)
        with LocalFunction(root) as fn:
            assert fn.invoke(3).response == {"ok": 3}
    finally:
        import shutil

        shutil.rmtree(root)


def test_unpack_refuses_zip_slip(tmp_path):
    artifact = tmp_path / "evil.zip"
    with zipfile.ZipFile(artifact, "w") as zf:
        zf.writestr("lambda_function.py", "")
        zf.writestr("../escaped.py", "")
    dest = tmp_path / "dest"
    with pytest.raises(ArtifactError):
        unpack_artifact(artifact, dest)
    assert not (tmp_path / "escaped.py").exists()
    assert not dest.exists()  # nothing half-unpacked


def test_unpack_errors(tmp_path):
    with pytest.raises(InputError):
        unpack_artifact(tmp_path / "missing.zip")
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("hello")
    with pytest.raises(InputError):
        unpack_artifact(not_zip)
    no_handler = tmp_path / "nohandler.zip"
    with zipfile.ZipFile(no_handler, "w") as zf:
        zf.writestr("src/lambda_function.py", "")
    with pytest.raises(ArtifactError, match=r"no lambda_function.py at its root"):
        unpack_artifact(no_handler)


def test_unpack_folder(tmp_path):
    folder = tmp_path / "image"
    folder.mkdir()
    (folder / "lambda_function.py").write_text("def lambda_handler(e, c):\n    return 1\n")
    (folder / "Dockerfile").write_text("FROM scratch\n")
    root = unpack_artifact(folder, tmp_path / "root")
    assert (root / "lambda_function.py").is_file() and not (root / "Dockerfile").exists()


def test_an_image_contexts_requirements_give_its_exact_pins():
    from lamb.package.standin import _pins

    text = "# pinned by lamb package\nNumPy==2.0.0  # the runtime library's\nai_edge_litert==1.4.0\n-r other.txt\npillow>=10\nnot valid ===\n"
    assert _pins(text) == {"numpy": "2.0.0", "ai-edge-litert": "1.4.0"}


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_an_image_folder_with_what_lamb_never_writes_is_refused_before_it_is_copied(tmp_path, kind):
    # Before: copying followed the link (the host's file landed in the task root) or waited on the pipe forever.
    folder = tmp_path / "image"
    folder.mkdir()
    (folder / "lambda_function.py").write_text("def lambda_handler(e, c):\n    return 1\n")
    secret = tmp_path / "host-secret"
    secret.write_text("not yours")
    if kind == "symlink":
        (folder / "lamb.json").symlink_to(secret)
    else:
        os.mkfifo(folder / "lamb.json")
    what = "a symbolic link (lamb.json)" if kind == "symlink" else "a pipe, socket or device (lamb.json)"
    with at_most(30), pytest.raises(ArtifactError, match=rf"the artifact {folder} holds {re.escape(what)}"):
        unpack_artifact(folder, tmp_path / "root")
    assert not (tmp_path / "root").exists()
