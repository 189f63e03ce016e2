"""``lamb handler init``: the handler entry, written here to edit and ship with ``--handler``."""

from __future__ import annotations

from pathlib import Path

import typer

from lamb.cli.common import JsonOpt, VerboseOpt, app, console, handle_errors, print_json
from lamb.markup import plain

handler_app = typer.Typer(help="The function's handler: start your own from lamb's.", no_args_is_help=True)
app.add_typer(handler_app, name="handler")


@handler_app.command("init")
def init(
    output: Path = typer.Argument(None, help="The file to write, or its folder \\[default: ./lambda_function.py]."),
    force: bool = typer.Option(False, "--force", help="Write over an existing file."),
    verbose: bool = VerboseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Write lamb's handler entry (lambda_function.py, 22 lines) here, to edit and ship with --handler.

    The entry imports what it needs from lambkit, which every artifact ships beside it (load_model, read_image, answers_json, ...). Edit it (answer only the top label, log something, accept another event), then `lamb package --handler lambda_function.py` ships it as the function's lambda_function.py and smoke-tests it like lamb's own. Nothing is written over an existing file without --force.

    Examples:

      lamb handler init

      lamb handler init my_function.py
    """
    with handle_errors(verbose):
        from lamb.package.entry import write_entry

        report = write_entry(output, force=force)
    if as_json:
        print_json(report)
        return
    console.print(f"wrote {plain(report.path)} ({report.lines} lines): lamb's handler entry", highlight=False)
    console.print(f"lambkit, shipped beside it, offers: {plain(', '.join(report.offers))}", highlight=False, soft_wrap=True)
    console.print(f"edit it, then ship it: [bold]{plain(report.command)}[/]", highlight=False)
