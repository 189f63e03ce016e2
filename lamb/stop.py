"""A stop asked for (Ctrl-C, SIGTERM through lamb's CLI), kept where code that writes files sees it.

Python runs a signal's handler in the main thread, between bytecodes, so the exception it raises
lands wherever that thread is. Two places cannot take it there:

- Between a temporary file's or folder's creation and the line that notes it for removal
  (``lamb.files``): the file would be left behind. Such a few lines run ``deferred()``: the
  handler notes the stop and the block raises it as it ends. Blocking the signal instead
  (``pthread_sigmask``) does not hold: another thread (TensorFlow's, Rich's) takes it.
- Inside a C extension's callback (TensorFlow's tracing, measured: SIGTERM while a Keras model
  exported), the exception can be swallowed, or surface as a ``SystemError`` from another call,
  and the step would go on or fail as if it had not been stopped. So the stop is also noted:
  ``check()`` raises it again wherever lamb creates or publishes a file, and the CLI treats any
  failure after a stop as the stop (exit 130, or 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds like Ctrl-C (exit code 143)."""


_asked: type[KeyboardInterrupt] | None = None
_deferring = 0  # the main thread's deferred() blocks open


def ask(signum: int, frame: object) -> None:
    """SIGTERM's handler: note the stop, and raise it here unless deferred."""
    _stop(Terminated)


def interrupt(signum: int, frame: object) -> None:
    """SIGINT's (Ctrl-C): the same, as KeyboardInterrupt."""
    _stop(KeyboardInterrupt)


def _stop(kind: type[KeyboardInterrupt]) -> None:
    global _asked
    _asked = _asked or kind
    if not _deferring:
        raise kind


def asked() -> bool:
    return _asked is not None


def raised() -> KeyboardInterrupt:
    """The exception of the stop asked for (Terminated for SIGTERM, KeyboardInterrupt for Ctrl-C)."""
    return (_asked or Terminated)()


def check() -> None:
    """Raise the stop again if one was asked for (and perhaps swallowed on the way)."""
    if _asked is not None:
        raise _asked


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A stop that arrives in the block is raised as it ends (in the main thread; elsewhere the
    handler runs in the main thread anyway, and this does nothing)."""
    global _deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    check()


def reset() -> None:
    """A new command starts unstopped (tests run several in one process)."""
    global _asked
    _asked = None
