"""The page ``lamb serve`` shows at ``/``, and the status it polls at ``/lamb/status``.

The page (``static/index.html``, package data) is plain HTML, CSS and JavaScript: no build step and
nothing fetched from elsewhere. It posts to the same invocation endpoint as curl and the course's
``test.py``, and reads the function's time and cold start from the answer's ``X-Lamb-*`` headers.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

PAGE_PATHS = ("/", "/index.html")
STATUS_PATH = "/lamb/status"


def page() -> bytes:
    return resources.files("lamb.serve").joinpath("static").joinpath("index.html").read_bytes()


def status(server: Any) -> dict[str, Any]:
    """What the page shows above the image: the artifact, whether the function is loaded, the cold starts."""
    failures = server.init_failures
    return {
        "artifact": server.report.artifact.name if server.report.artifact else None,
        "ready": server.ready.is_set(),
        "workers": server.n_workers,
        "init_ms": list(server.report.init_ms),
        "init_error": failures[0].error if failures else None,
        "runtime_client": server.report.runtime_client,
        "invoke_path": "/2015-03-31/functions/function/invocations",
    }
