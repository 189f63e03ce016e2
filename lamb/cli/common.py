"""What every command shares: the Typer app, the consoles, the common options, one error handler
and one JSON writer. Nothing heavy is imported here, so ``lamb --help`` stays fast. Errors: every
``LambError`` becomes one line (plus a hint) and its exit code; ``--verbose`` shows the traceback
and TensorFlow's own logs as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from lamb import stop
from lamb.cost import LAMBDA_MAX_MEMORY_MB, LAMBDA_MIN_MEMORY_MB
from lamb.errors import EXIT_CODES, LambError
from lamb.markup import plain
from lamb.targets import DEFAULT_RUNTIME_WHY, default_runtime, runtime_names

app = typer.Typer(
    name="lamb",
    help=(
        "Turn a trained image model (Keras .h5/.keras, a SavedModel, or an ONNX export from PyTorch) into an "
        "AWS Lambda artifact for a runtime library (LiteRT, ONNX Runtime), proven to compute what the source "
        "model computes and to fit and run on Lambda.\n\n"
        "Pipeline: lamb convert MODEL -> lamb verify -> lamb package -> lamb invoke / lamb serve -> lamb deploy.\n\n"
        "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items()) + "."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

F = TypeVar("F", bound=Callable[..., Any])

console = Console()
err_console = Console(stderr=True)

VerboseOpt = typer.Option(False, "--verbose", "-v", help="Show TensorFlow's logs and full tracebacks.")
JsonOpt = typer.Option(False, "--json", help="Print the result as JSON (for scripts) instead of tables.")
# invoke and serve run the same function the same way:
EnvOpt = typer.Option(None, "--env", help="KEY=VALUE for the function's environment (repeatable), e.g. LAMB_ALLOW_PRIVATE_URLS=1.")
NoStandInOpt = typer.Option(
    False, "--no-stand-in", help="Fail instead of running a host stand-in when this machine cannot load the artifact's wheels."
)
MemoryOpt = typer.Option(
    1024, "--memory", help=f"The function's memory setting in MB ({LAMBDA_MIN_MEMORY_MB}-{LAMBDA_MAX_MEMORY_MB}): sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE and the kill limit."
)
TimeoutOpt = typer.Option(30.0, "--timeout", help="The function's timeout in seconds, per invocation.")
PythonOpt = typer.Option(
    None, "--python", help="The interpreter to run it with \\[default: lamb's own Python, or pythonX.Y on PATH for an artifact built for X.Y]."
)
# and these mean the same wherever they appear:
RuntimeOpt = typer.Option(
    None, "--runtime", "-r",
    help=f"Lambda runtime: {' | '.join(runtime_names())} \\[default: {default_runtime().name}: {DEFAULT_RUNTIME_WHY}].",
)
SampleImageOpt = typer.Option(None, "--sample-image", help="Image the smoke run sends \\[default: a seeded synthetic JPEG].")
AllowUnsafeLambdaOpt = typer.Option(
    False, "--allow-unsafe-lambda", help="Load Lambda layers holding Python code (runs that code: only for files you trust)."
)


def help_from_tables(**fields: str) -> Callable[[F], F]:
    """Fill ``{name}`` in a command's docstring (its --help) from lamb's tables, as EXIT_CODES fills the app's."""

    def fill(command: F) -> F:
        doc = command.__doc__ or ""
        for name, text in fields.items():
            doc = doc.replace("{" + name + "}", text)
        command.__doc__ = doc
        return command

    return fill


@contextlib.contextmanager
def handle_errors(verbose: bool) -> Iterator[None]:
    """Turn a LambError into one line on stderr and its exit code."""
    from lamb import tflog

    tflog.configure(verbose)
    _log_to_stderr(verbose)
    # SIGTERM (kill, a CI runner's timeout) unwinds as Ctrl-C does: every temporary file and
    # folder a step holds is removed on the way out, where the default action would leave them.
    main_thread = threading.current_thread() is threading.main_thread()
    stop.reset()
    # Ctrl-C keeps Python's meaning unless it is ignored (`lamb serve &` in a script: the shell
    # starts a background job with SIGINT ignored, and it must stay so).
    previous = (signal.signal(signal.SIGTERM, stop.ask), signal.getsignal(signal.SIGINT)) if main_thread else None
    if previous is not None and previous[1] is signal.default_int_handler:
        signal.signal(signal.SIGINT, stop.interrupt)
    try:
        with _quiet_once_stopped(verbose):
            yield
    except LambError as exc:
        if stop.asked():  # what failed is what the stop broke (lamb.stop)
            _stopped(stop.raised())
        if verbose:
            err_console.print_exception()
        err_console.print(f"[bold red]error:[/] {plain(exc.message)}", highlight=False, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {plain(exc.hint)}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt as exc:
        _stopped(exc)
    except Exception:
        if stop.asked():  # the stop, swallowed by a C extension and surfacing as another error
            _stopped(stop.raised())
        raise
    else:
        if stop.asked():
            _stopped(stop.raised())
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous[0])
            if previous[1] is signal.default_int_handler:  # ours was set in its place
                signal.signal(signal.SIGINT, previous[1])


@contextlib.contextmanager
def _quiet_once_stopped(verbose: bool) -> Iterator[None]:
    """``sys.stderr`` while a step runs, back as it was before lamb's own lines are printed: once
    lamb was stopped, what a library prints of the error the stop left inside it (TensorFlow's
    tracing prints a SystemError's traceback) is dropped. ``--verbose`` keeps it."""
    stderr = sys.stderr
    if not verbose:
        sys.stderr = _QuietOnceStopped(stderr)
    try:
        yield
    finally:
        sys.stderr = stderr


class _QuietOnceStopped:
    """A stream that drops what is written to it once lamb was stopped (``_quiet_once_stopped``)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        return len(text) if stop.asked() else self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _stopped(exc: KeyboardInterrupt) -> NoReturn:
    """Ctrl-C or SIGTERM: every temporary file a step noted is removed; exit 130 or 143."""
    from lamb.files import remove_unsettled

    remove_unsettled()
    how, code = ("terminated", 143) if isinstance(exc, stop.Terminated) else ("interrupted", 130)
    err_console.print(f"[bold red]{how}[/]; nothing was left half-written")
    raise typer.Exit(code) from None


_LOG_HANDLER: logging.Handler | None = None


def _log_to_stderr(verbose: bool) -> None:
    """--verbose: lamb's debug trail (what pip, the audit, the converter and AWS did) on stderr."""
    global _LOG_HANDLER
    logger = logging.getLogger("lamb")
    if _LOG_HANDLER is not None:  # a second command in one process (tests) starts clean
        logger.removeHandler(_LOG_HANDLER)
        _LOG_HANDLER = None
    if not verbose:
        logger.setLevel(logging.WARNING)
        return
    from rich.logging import RichHandler

    _LOG_HANDLER = RichHandler(console=err_console, show_time=False, show_path=False, markup=False, highlighter=None)
    _LOG_HANDLER.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger.addHandler(_LOG_HANDLER)
    logger.setLevel(logging.DEBUG)


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths and numpy scalars -> plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj


def print_json(result: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(result), indent=2) + "\n")


@app.callback(invoke_without_command=True)
def main(
    version: bool = typer.Option(False, "--version", help="Print lamb's version and exit.", is_eager=True),
) -> None:
    if version:
        from lamb import __version__

        console.print(f"lamb {__version__}")
        raise typer.Exit(0)
