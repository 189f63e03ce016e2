"""Slimming rules on real installed wheels: what each removes, what it must keep."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from lamb.release import slim

pytestmark = pytest.mark.network


@pytest.fixture
def tree312(tmp_path, target_installs):
    dest = tmp_path / "deps"
    shutil.copytree(target_installs["python3.12-x86_64"].dest, dest, symlinks=True)
    return dest


@pytest.fixture
def tree311(tmp_path, target_installs):
    dest = tmp_path / "deps"
    shutil.copytree(target_installs["python3.11-x86_64"].dest, dest, symlinks=True)
    return dest


def _saved(results):
    return {r.rule: r.bytes_saved for r in results}


def test_every_rule_is_reported_with_the_bytes_it_saved(tree312):
    before = sum(p.stat().st_size for p in tree312.rglob("*") if p.is_file())
    results = slim.slim(tree312)
    after = sum(p.stat().st_size for p in tree312.rglob("*") if p.is_file())
    assert [r.rule for r in results] == [r.name for r in slim.rules_for(tree312)] + [slim.ORPHANS.name]
    assert not any(r.rule.startswith("onnxruntime") for r in results)  # a LiteRT tree gets LiteRT's rules
    assert sum(r.bytes_saved for r in results) == before - after
    saved = _saved(results)
    for rule in ("tests", "type stubs", "litert accelerators", "litert vendor plugins", "litert tools",
                 "pillow extras", "orphaned vendored libraries"):
        assert saved[rule] > 0, rule
    assert after < before * 0.6


def test_accelerators_plugins_and_tools_go_the_interpreter_stays(tree312):
    slim.slim(tree312)
    pkg = tree312 / "ai_edge_litert"
    assert not (pkg / "libLiteRtWebGpuAccelerator.so").exists()
    assert not (pkg / "vendors").exists() and not (pkg / "tools").exists()
    assert (pkg / "interpreter.py").is_file() and (pkg / "libpywrap_litert_common.so").is_file()
    assert list(pkg.glob("_pywrap_litert_interpreter_wrapper*.so"))
    assert not list(tree312.rglob("tests")) and not list(tree312.rglob("*.pyi"))
    assert not (tree312 / "numpy" / "_core" / "include").exists()
    # what Pillow's JPEG decoder links to stays; FreeType and AVIF go
    libs = {p.name.split("-")[0] for p in (tree312 / "pillow.libs").iterdir()}
    assert "libjpeg" in libs and "libfreetype" not in libs and "libavif" not in libs


def test_a_library_something_links_to_is_never_removed(tree311):
    # ai-edge-litert 1.4's interpreter wrapper links libLiteRtRuntimeCApi.so (2.x's does not link
    # libLiteRt.so): the accelerator rule names both, the DT_NEEDED guard keeps the linked one.
    pkg = tree311 / "ai_edge_litert"
    assert "libLiteRtRuntimeCApi.so" in slim.elf_needed(pkg / "libpywrap_litert_common.so")
    slim.slim(tree311)
    assert (pkg / "libLiteRtRuntimeCApi.so").is_file()


def test_slimmed_python311_tree_still_runs_a_model(tree311, converted_tiny):
    slim.slim(tree311)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import numpy as np; from ai_edge_litert.interpreter import Interpreter;"
        "from PIL import Image; import io;"
        "it = Interpreter(model_path=sys.argv[2]); it.allocate_tensors();"
        "d = it.get_input_details()[0]; it.set_tensor(d['index'], np.zeros(d['shape'], d['dtype'])); it.invoke();"
        "b = io.BytesIO(); Image.new('RGB', (8, 8)).save(b, 'JPEG'); Image.open(io.BytesIO(b.getvalue())).load();"
        "print(it.get_tensor(it.get_output_details()[0]['index']).shape)"
    )
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(tree311), str(converted_tiny.model_path)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(1, 4)" in proc.stdout


def test_elf_reader_matches_what_pillow_links(target_installs):
    imaging = next((target_installs["python3.12-x86_64"].dest / "PIL").glob("_imaging.cpython-*.so"))
    needed = slim.elf_needed(imaging)
    assert any(n.startswith("libjpeg") for n in needed) and "libc.so.6" in needed
    assert slim.elf_needed(imaging.parent / "__init__.py") == []
