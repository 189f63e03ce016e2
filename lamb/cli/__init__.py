"""lamb's command line: parse, call one library function, render its result.

No business logic lives here. ``common`` holds the app and what every command shares; each
command lives with its neighbours in the pipeline: ``model`` (convert, verify, compare),
``artifact`` (package, invoke, serve), ``handler`` (handler init), ``deploy``, ``probe``.
"""

from lamb.cli import model, artifact, handler, deploy, probe  # noqa: F401, I001 (importing them registers the commands, in pipeline order)
from lamb.cli.common import app, console, err_console, handle_errors, print_json, to_jsonable

__all__ = ["app", "console", "err_console", "handle_errors", "print_json", "to_jsonable"]
