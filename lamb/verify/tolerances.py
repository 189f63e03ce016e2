"""What counts as "computes the same": a ``Tolerances`` per quantization mode, and the user's overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lamb import runtime_lib
from lamb.errors import InputError
from lamb.quantization import Tolerances


@dataclass(frozen=True)
class ToleranceOverrides:
    """The limits the user set (``--atol``, ``--top-k``, ...); ``None`` keeps the mode's default."""

    atol: float | None = None
    rtol: float | None = None
    min_top1: float | None = None
    min_cosine: float | None = None
    top_k: int | None = None
    min_topk: float | None = None  # defaults to min_top1

    def over(self, base: Tolerances) -> Tolerances:
        """``base`` with every value set here laid over it, each checked for range."""
        given: dict[str, Any] = {}
        for name in ("atol", "rtol", "min_top1", "min_cosine"):
            value = getattr(self, name)
            if value is None:
                continue
            if value < 0 or (name.startswith("min_") and value > 1):
                raise InputError(
                    f"--{name.replace('_', '-')} {value} is out of range",
                    "tolerances are >= 0; --min-top1 and --min-cosine are fractions in [0, 1]",
                )
            given[name] = float(value)
        if self.top_k is not None:
            if self.top_k < 2:
                raise InputError(f"--top-k {self.top_k} is too small", "top-1 is always checked; use --top-k 2 or more")
            given["top_k"] = int(self.top_k)
            given["min_topk"] = float(self.min_topk if self.min_topk is not None else given.get("min_top1", base.min_top1))
        return dataclasses.replace(base, **given)


def default_tolerances(
    mode: str, overrides: ToleranceOverrides | None = None, fmt: runtime_lib.ModelFormat | None = None,
) -> Tolerances:
    """The defaults of ``fmt``'s mode (each on its row in the format's record, with their sources;
    default: the default library's format) with any explicit value laid over them."""
    fmt = fmt or runtime_lib.default().format
    try:
        base = fmt.mode(mode).tolerances
    except KeyError:
        raise InputError(f"unknown quantization mode {mode!r}", f"use one of: {', '.join(fmt.mode_names)}") from None
    return (overrides or ToleranceOverrides()).over(base)
