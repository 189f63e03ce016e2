"""Text lamb did not write, made safe to print inside Rich markup.

Renderers style lamb's own words with Rich markup (``[dim]note:[/]``), and Rich reads markup in
every string it prints, table cells included. A label, a path, a model's tensor name, an error
message or a function's log line can hold ``[/]`` or ``[bold]``: printed as markup it crashes
the print (``MarkupError``) or restyles what follows. Every such text passes through ``plain``
on its way into a renderable; lamb's own markup stays outside it.
"""

from __future__ import annotations

from rich.markup import escape


def plain(value: object) -> str:
    """``value`` as text that Rich markup prints exactly as it is (brackets and backslashes too)."""
    return escape(str(value))
