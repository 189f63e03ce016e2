"""Bytecode for the target's Python: deterministic, hash-checked, and honest when impossible."""

from __future__ import annotations

import marshal
import shutil
import sys
from pathlib import Path

import pytest

from lamb import targets
from lamb.package import bytecode

HOST_PY = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "deps"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = 41 + 1\n")
    (root / "pkg" / "mod.py").write_text("def f():\n    raise RuntimeError('where am I')\n")
    return root


def _host_target() -> targets.Target:
    target = targets.host_target()
    if target is None:
        pytest.skip("this machine's Python is not a Lambda runtime")
    return target


def test_compiles_unchecked_hash_pycs_that_name_the_lambda_task_root(tree: Path):
    target = _host_target()
    result = bytecode.compile_tree(tree, target)

    assert result.compiled and result.files == 2 and result.bytes_added > 0
    pyc = tree / "pkg" / "__pycache__" / f"mod.cpython-{target.abi[2:]}.pyc"
    data = pyc.read_bytes()
    flags = int.from_bytes(data[4:8], "little")
    assert flags == 0b01  # PEP 552: hash-based, check_source off -> never re-validated on a read-only root
    code = marshal.loads(data[16:])
    assert code.co_filename == "/var/task/pkg/mod.py"


def test_same_sources_give_byte_identical_pycs(tree: Path, tmp_path: Path):
    target = _host_target()
    other = tmp_path / "elsewhere" / "deps"
    shutil.copytree(tree, other)
    bytecode.compile_tree(tree, target)
    bytecode.compile_tree(other, target)
    first = sorted((p.relative_to(tree), p.read_bytes()) for p in tree.rglob("*.pyc"))
    second = sorted((p.relative_to(other), p.read_bytes()) for p in other.rglob("*.pyc"))
    assert first == second and len(first) == 2


def test_another_arch_gets_bytecode_from_this_machines_python_of_its_version(tree: Path):
    # Another architecture's Python can never run here, but bytecode depends on the version alone.
    host = _host_target()
    foreign = targets.get_target(host.runtime.name, "arm64" if host.arch == "x86_64" else "x86_64")
    assert bytecode.target_python(foreign) is None and bytecode.compiler_python(foreign) == sys.executable

    result = bytecode.compile_tree(tree, foreign)
    assert result.compiled and result.files == 2
    pyc = tree / "pkg" / "__pycache__" / f"mod.cpython-{foreign.abi[2:]}.pyc"
    assert marshal.loads(pyc.read_bytes()[16:]).co_filename == "/var/task/pkg/mod.py"


def test_no_interpreter_of_the_targets_version_means_no_pycs_and_a_note(tree: Path, monkeypatch):
    other = next(r for r in targets.RUNTIMES if r.python != HOST_PY)
    target = targets.get_target(other.name, "arm64")
    monkeypatch.setattr(targets, "find_python", lambda version: None)  # as on a machine without pyenv or uv
    assert bytecode.compiler_python(target) is None

    result = bytecode.compile_tree(tree, target)
    assert not result.compiled and result.files == 0
    assert "not compiled" in result.note and other.python in result.note
    assert not list(tree.rglob("*.pyc"))


def test_target_python_for_the_host_runtime_is_this_interpreter():
    assert bytecode.target_python(_host_target()) == sys.executable
