"""``lamb handler init``: the shipped handler's entry, written where a user can edit it.

Customising the function starts from lamb's own ``lambda_function.py`` (22 lines), not from a copy
dug out of site-packages: ``write_entry`` writes it into a folder, and the result says how
``lamb package --handler`` ships it (as ``lambda_function.py``, with ``lambkit`` beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lamb import layout
from lamb import manifest as mf
from lamb.errors import InputError
from lamb.package.build import HANDLER_TEMPLATE, check_handler, handler_offers


@dataclass
class EntryReport:
    """What ``write_entry`` wrote, and how to ship it."""

    path: Path
    lines: int
    offers: list[str] = field(default_factory=list)  # what lambkit offers the entry to import
    command: str = ""  # the lamb package command that ships it


def write_entry(output: Path | None = None, *, force: bool = False) -> EntryReport:
    """Write lamb's handler entry to ``output`` (a file, or a folder for ``lambda_function.py``;
    default: the current folder). An existing file is kept unless ``force``; the write is atomic."""
    path = Path(output) if output is not None else Path.cwd()
    if path.is_dir() or (output is not None and not path.suffix):
        path = path / layout.HANDLER_FILE
    if path.suffix != ".py":
        raise InputError(f"{path} is not a .py file", f"name the entry like a Python module, e.g. {layout.HANDLER_FILE}")
    if path.exists() and not force:
        raise InputError(f"{path} exists already", "edit it, pass another path, or --force to write lamb's entry over it")
    text = HANDLER_TEMPLATE.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.atomic_write_bytes(path, text)
    check_handler(path)  # what lamb package --handler will accept
    shown = path if not path.is_absolute() or Path.cwd() not in path.parents else path.relative_to(Path.cwd())
    return EntryReport(
        path=path, lines=len(text.decode("utf-8").splitlines()), offers=handler_offers(),
        command=f"lamb package --handler {shown}",
    )
