"""The artifact's layout: what ``lamb package`` puts at the root of every artifact, beside the wheels.

One home for these names: package writes them, budget counts them, local and invoke look for
them, deploy points Lambda at them. The model sits beside them under its format's file name
(``lamb.runtime_lib.ModelFormat.file``), named in the shipped manifest's ``model.file``. The
shipped handler cannot import lamb, so it spells what it reads itself (``lambkit.model.RECORD_FILE``,
``V1_MODEL_FILE``); ``tests/test_layout.py`` checks that they agree.
"""

from __future__ import annotations

#: The handler module; Lambda imports it from the task root.
HANDLER_FILE = "lambda_function.py"
#: The package the handler module imports (fetching, decoding, limits, the model's backends): a folder.
HANDLER_PACKAGE = "lambkit"
#: The shipped manifest: a trimmed copy of ``<stem>.lamb.json`` plus the package record.
MANIFEST_FILE = "lamb.json"
#: Lambda's handler setting (``module.function``), the AWS convention for Python.
HANDLER = "lambda_function.lambda_handler"
#: Where Lambda puts a zip function's code: LAMBDA_TASK_ROOT, also on LD_LIBRARY_PATH
#: (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
TASK_ROOT = "/var/task"
#: The distribution the handler decodes images with; neither runtime library depends on it, so
#: every artifact ships it beside them.
IMAGE_LIBRARY = "pillow"


def root_files(model_file: str, external_data: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Everything lamb itself writes at the root, for a model stored as ``model_file`` (its format's
    file name) with the files it loads from beside itself; the rest of the task root is installed wheels."""
    return (HANDLER_FILE, HANDLER_PACKAGE, model_file, *external_data, MANIFEST_FILE)
