"""`ruff check` and `mypy` pass with the configuration in pyproject.toml ([tool.ruff], [tool.mypy]).

They run from this Python's environment (the `test` extra installs them), on this checkout, so
`python -m pytest` (the README's second command, and CI's) fails with their findings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name(tool)
    if not script.exists():
        pytest.fail(f"{tool} is not installed beside this Python: pip install -e '.[test]'")
    return subprocess.run([str(script), *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    proc = _run("ruff", "check", "--no-cache", "--output-format", "concise")
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_mypy_finds_nothing():
    # The files to check ("lamb") come from [tool.mypy]; the cache stays out of the checkout.
    proc = _run("mypy", "--cache-dir", str(ROOT / ".pytest_cache" / "mypy"))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
