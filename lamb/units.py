"""Sizes as lamb prints them. MB means MiB (2**20 bytes) everywhere, as Lambda counts its limits
(the 250 MB unzipped limit is 262,144,000 bytes), so a figure can be held against a limit as is."""

from __future__ import annotations

MiB = 2**20


def mb(n: int | None) -> str:
    """``n`` bytes as MB with one decimal, no unit ("12.3"); "-" for None. For table columns."""
    return "-" if n is None else f"{n / MiB:.1f}"


def human_bytes(n: int) -> str:
    """``n`` bytes with the unit that reads best: "512 B", "12.3 KB", "83.2 MB", "1.2 GB"."""
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
