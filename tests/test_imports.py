"""The import layers in pyproject.toml ([tool.importlinter]) hold: `lint-imports` passes.

The CLI sits above the steps, the steps above the shared modules; the shipped handler imports
nothing from lamb; no two modules import each other. A change that breaks one fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_lint_imports_keeps_every_contract():
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():
        pytest.fail("lint-imports is not installed beside this Python: pip install -e '.[test]'")
    env = dict(os.environ)
    # Analyse this checkout, whatever copy of lamb the environment has installed.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([str(script), "--no-cache"], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout
