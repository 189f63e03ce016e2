"""The two errors the function answers with instead of raising."""

from __future__ import annotations


class RequestError(Exception):
    """A request this function cannot answer; becomes a JSON error with ``status``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class ImageError(ValueError):
    """Bytes that cannot become the model's input; ``status`` is what the handler answers."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def clip(text, limit: int = 120, quote: bool = True) -> str:
    """A client-given string for an error message (``repr`` when ``quote``), cut short: the
    answer must stay far below Lambda's 6 MB response limit whatever the client sent."""
    shown = repr(text) if quote else str(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def one_line(text, limit: int = 500) -> str:
    """``text`` with every run of whitespace (newlines included) as one space, cut short: a log
    line or an error message must never span lines (a runtime library's errors often do)."""
    return clip(" ".join(str(text).split()), limit, quote=False)
