"""Starts AWS's runtime interface client (``awslambdaric``) for ``lamb.local.LocalFunction``.

Standard library only, and never shipped: ``LocalFunction`` copies this file and the stand-in
bootstrap to a temp folder outside the task root and runs this as ``python -I -S launcher.py
RIC_DIR TASK_ROOT HANDLER`` with ``AWS_LAMBDA_RUNTIME_API`` pointing at lamb's Runtime API
(``lamb.runtime_api``). The import path is the task root, then the client's own folder (outside
the task root, as ``/var/runtime`` is on Lambda), then the standard library; the client is then
run as ``python -m awslambdaric HANDLER``.
"""

import importlib.util
import os
import runpy
import sys


def main():
    ric_dir, task_root, handler = sys.argv[1:4]
    # The stand-in bootstrap beside this file watches for lamb going away; loaded by path, so its
    # folder never joins the handler's import path.
    spec = importlib.util.spec_from_file_location("lamb_bootstrap", os.path.join(os.path.dirname(__file__), "bootstrap.py"))
    assert spec is not None and spec.loader is not None  # the file is lamb's own, copied beside this one
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    bootstrap._watch_parent(os.getppid())
    sys.path[:0] = [task_root, ric_dir]
    os.chdir(task_root)
    sys.argv = ["awslambdaric", handler]
    runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
