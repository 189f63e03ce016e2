"""Progress on long steps: library code says where it is, the CLI decides whether anyone sees it.

A step calls ``phase("converting")`` as each phase starts (with ``total=`` when it counts items,
e.g. calibration images) and ``advance()`` per item, on the ``Progress`` it was given or, when
given none, on ``current()``. The default, ``SILENT``, does nothing, so library code and tests
never draw anything. The CLI wraps a step in ``for_terminal(...)``: Rich progress on stderr when
stderr is a terminal and ``--json`` is off, ``SILENT`` otherwise, so pipes, logs and scripts see
only the result. ``current()`` spares every function between the CLI and a loop deep inside a
step (calibration, the Keras and runtime-library passes of verify) a parameter of its own.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any


class Progress:
    """Where a step is; this base class shows nothing (``SILENT``)."""

    def phase(self, description: str, total: int | None = None) -> None:
        """A new phase starts (the previous one is done); ``total``: items it will count."""

    def advance(self, n: int = 1) -> None:
        """``n`` more items of the current phase are done."""


SILENT = Progress()
_CURRENT: ContextVar[Progress] = ContextVar("lamb_progress", default=SILENT)


def current() -> Progress:
    """The progress the running step reports to (``SILENT`` unless a caller set one)."""
    return _CURRENT.get()


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Make ``progress`` the ``current()`` one while the block runs."""
    token = _CURRENT.set(progress)
    try:
        yield progress
    finally:
        _CURRENT.reset(token)


class RichProgress(Progress):
    """One line per phase on a Rich ``Progress``: a spinner, and a bar with counts when counted."""

    def __init__(self, bar: Any):
        self._bar = bar
        self._task: Any = None

    def phase(self, description: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, n)

    def _finish(self) -> None:
        if self._task is not None:
            task = self._bar.tasks[-1]
            # A counted phase ends full; an uncounted one ends as a finished spinner.
            self._bar.update(self._task, total=task.total or 1, completed=task.total or 1)


def shows(as_json: bool, stream: Any = None) -> bool:
    """True when progress should be drawn: a terminal on ``stream`` (stderr) and no ``--json``."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not as_json and bool(isatty and isatty())


@contextlib.contextmanager
def for_terminal(as_json: bool, stream: Any = None) -> Iterator[Progress]:
    """``RichProgress`` on stderr while the block runs when ``shows(...)``, else ``SILENT``;
    the bar is removed when the block ends, so only the step's result remains on screen."""
    if not shows(as_json, stream):
        yield SILENT
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    console = Console(file=sys.stderr if stream is None else stream)
    bar = Bar(
        SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )
    with bar, reporting(RichProgress(bar)) as shown:
        yield shown
