"""The artifact's layout has one home (lamb.layout); the shipped handler, which cannot import lamb,
spells the names it reads itself, and must agree."""

from __future__ import annotations

import ast
from pathlib import Path

from lamb import layout, runtime_lib, targets
from lamb.handler.lambkit import model
from lamb.package import artifact, build

ROOT = layout.root_files(runtime_lib.default().format.file)


def test_the_shipped_handler_agrees_with_the_layout():
    assert model.RECORD_FILE == layout.MANIFEST_FILE
    # A record without a model entry is version 1's, whose model was always LiteRT's file.
    assert runtime_lib.get("ai-edge-litert").format.file == model.V1_MODEL_FILE
    module, function = layout.HANDLER.rsplit(".", 1)
    assert module + ".py" == layout.HANDLER_FILE and build.HANDLER_TEMPLATE.name == layout.HANDLER_FILE
    entry = ast.parse(build.HANDLER_TEMPLATE.read_text(encoding="utf-8"))
    assert function in {n.name for n in entry.body if isinstance(n, ast.FunctionDef)}
    assert (build.HANDLER_PACKAGE / "__init__.py").is_file() and build.HANDLER_PACKAGE.name == layout.HANDLER_PACKAGE
    assert Path(model.__file__).parent == build.HANDLER_PACKAGE


def test_the_image_context_copies_and_runs_the_layout():
    dockerfile = artifact.dockerfile(targets.get_target("python3.12"), ["numpy==2.0.0"], "0", ROOT)
    files = [n for n in ROOT if n != layout.HANDLER_PACKAGE]
    assert f"COPY {' '.join(files)} ${{LAMBDA_TASK_ROOT}}/" in dockerfile
    # COPY of several sources copies a folder's contents, not the folder: the package gets its own line.
    assert f"COPY {layout.HANDLER_PACKAGE} ${{LAMBDA_TASK_ROOT}}/{layout.HANDLER_PACKAGE}/" in dockerfile
    assert f'CMD ["{layout.HANDLER}"]' in dockerfile
    kept = {line[1:] for line in artifact.dockerignore(ROOT).splitlines() if line.startswith("!")}
    assert kept == {*ROOT, "requirements.txt", artifact.SAMPLE_EVENT}
