"""The artifact's layout has one home (lamb.layout); the shipped handler, which cannot import lamb,
spells the names it reads itself, and must agree."""

from __future__ import annotations

from lamb import layout, targets
from lamb.handler import lambda_function
from lamb.package import artifact


def test_the_shipped_handler_agrees_with_the_layout():
    assert lambda_function._MANIFEST == layout.MANIFEST_FILE
    assert lambda_function._MODEL == layout.MODEL_FILE
    module, function = layout.HANDLER.rsplit(".", 1)
    assert module + ".py" == layout.HANDLER_FILE and callable(getattr(lambda_function, function))
    assert lambda_function.__file__.endswith("/" + layout.HANDLER_FILE)


def test_the_image_context_copies_and_runs_the_layout():
    dockerfile = artifact.dockerfile(targets.get_target("python3.12"), ["numpy==2.0.0"], "0")
    assert f"COPY {' '.join(layout.ROOT_FILES)} ${{LAMBDA_TASK_ROOT}}/" in dockerfile
    assert f'CMD ["{layout.HANDLER}"]' in dockerfile
    kept = {line[1:] for line in artifact.DOCKERIGNORE.splitlines() if line.startswith("!")}
    assert kept == {*layout.ROOT_FILES, "requirements.txt"}
