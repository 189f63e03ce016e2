"""The core install (``pip install lamb``, no ``keras`` extra) handles ONNX models end to end.

A real separate venv holds lamb's core dependencies and its test extra, and so no TensorFlow,
Keras, tf-keras, tf2onnx, h5py or LiteRT; lamb itself comes from this checkout (PYTHONPATH), so
the venv depends only on the requirement list and is built once per list and Python under lamb's
cache (about a minute from pip's cache), then reused. The ONNX tests listed in ``CORE_TESTS`` run
in it with pytest, and a Keras model given to it gets the one line naming the install command.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from lamb.cache import cache_root
from lamb.source.keras import KERAS_EXTRA_INSTALL, KERAS_EXTRA_MODULES

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
# Test modules whose every test runs on the core install: the ONNX flow from convert to serve
# (compare and the labelled images in the homework's flow), deploy (against moto) and probe.
CORE_TESTS = [
    "tests/test_e2e_onnx_course.py", "tests/test_e2e_onnx_elsewhere.py", "tests/test_convert_onnx_input.py",
    "tests/test_convert_heads.py", "tests/test_source_onnx.py", "tests/test_deploy_run.py", "tests/test_probe.py",
]
# A venv unused this long is another requirement list's: removed when a new one is built.
STALE_S = 3 * 24 * 3600
# Besides the keras extra's own modules: what it pulls in that the core must not need.
NOT_IN_CORE = (*KERAS_EXTRA_MODULES, "tf2onnx", "ai_edge_litert")


def _requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return sorted(project["dependencies"] + project["optional-dependencies"]["test"])


@pytest.fixture(scope="session")
def core_python() -> Path:
    """The Python of a venv with the core and test requirements only (built on first use, then cached)."""
    requirements = _requirements()
    key = hashlib.sha256(json.dumps([sys.version, requirements]).encode()).hexdigest()[:16]
    venv = cache_root() / "test-venvs" / f"core-{key}"
    python, done = venv / "bin" / "python", venv / ".complete"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"core-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worktree or session may be building the same venv
        if not done.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            done.write_text("\n".join(requirements) + "\n")
            for other in venv.parent.glob("core-*/.complete"):
                if time.time() - other.stat().st_mtime > STALE_S:
                    shutil.rmtree(other.parent, ignore_errors=True)
        done.touch()  # in use: not stale
    return python


def _run(python: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500, check=False)


def test_the_core_install_has_no_tensorflow(core_python):
    probe = "import importlib.util, json, sys; print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m)]))"
    found = _run(core_python, "-c", probe, *NOT_IN_CORE)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == []
    # ...and the lamb it runs is this checkout.
    where = _run(core_python, "-c", "import lamb; print(lamb.__file__)")
    assert Path(where.stdout.strip()).parent == REPO / "lamb"


def test_the_onnx_flow_passes_on_the_core_install(core_python):
    result = _run(core_python, "-m", "pytest", "-n", "0", "-x", "-q", "-p", "no:cacheprovider", *CORE_TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]


def test_a_keras_model_on_the_core_install_gets_one_line_naming_the_extra(core_python, tmp_path):
    model = tmp_path / "model.h5"
    model.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))  # an HDF5 signature: what a Keras .h5 starts with
    result = _run(core_python, "-c", "from lamb.cli import app; app()", "convert", str(model), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 4, result.stderr
    assert len(lines) == 1 and KERAS_EXTRA_INSTALL in lines[0] and "model.h5" in lines[0]
    assert not list(tmp_path.glob("model.*.json"))
