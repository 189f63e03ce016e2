"""One wall-clock deadline per request step (fetching, decoding), cut to the function's own time."""

from __future__ import annotations

import time

from .settings import DEADLINE_MARGIN_S


class Deadline:
    """A wall-clock deadline; ``left()`` raises TimeoutError once it passed. ``why`` names it in
    the error the client gets."""

    def __init__(self, seconds: float, why: str):
        self.seconds, self.why = seconds, why
        self.at = time.monotonic() + seconds

    def left(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left


def within_function_time(seconds: float, why: str, context=None) -> Deadline:
    """``seconds``, or the function's remaining time less ``DEADLINE_MARGIN_S`` when that is
    shorter (``context`` is Lambda's; None off Lambda)."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        left = remaining_ms() / 1000.0 - DEADLINE_MARGIN_S
        if left < seconds:
            seconds = left
            why = f"the function's remaining time ({left + DEADLINE_MARGIN_S:.1f} s, less {DEADLINE_MARGIN_S:g} s to answer)"
    return Deadline(seconds, why)
