"""lamb.package.entry (``lamb handler init``): the shipped entry, written to edit and ship."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lamb.cli import app
from lamb.errors import InputError
from lamb.package.build import HANDLER_TEMPLATE, check_handler
from lamb.package.entry import write_entry


def test_it_writes_the_shipped_entry_that_package_accepts(tmp_path):
    report = write_entry(tmp_path)
    assert report.path == tmp_path / "lambda_function.py"
    assert report.path.read_bytes() == HANDLER_TEMPLATE.read_bytes()
    assert check_handler(report.path) == report.path
    assert report.lines == len(HANDLER_TEMPLATE.read_text().splitlines()) and "load_model" in report.offers
    assert report.command == f"lamb package --handler {report.path}"


def test_an_existing_file_is_kept_unless_forced(tmp_path):
    mine = tmp_path / "my_function.py"
    mine.write_text("def lambda_handler(event, context):\n    return 1\n")
    with pytest.raises(InputError, match="exists already"):
        write_entry(mine)
    assert mine.read_text().endswith("return 1\n")
    write_entry(mine, force=True)
    assert mine.read_bytes() == HANDLER_TEMPLATE.read_bytes() and [p.name for p in tmp_path.iterdir()] == ["my_function.py"]


def test_a_path_that_is_no_python_module_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"is not a \.py file"):
        write_entry(tmp_path / "handler.txt")


def test_the_command_writes_here_and_says_how_to_ship_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["handler", "init"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert (tmp_path / "lambda_function.py").is_file() and "lamb package --handler lambda_function.py" in done.output
    again = CliRunner().invoke(app, ["handler", "init", "--json"])
    assert again.exit_code == 3
    shown = json.loads(CliRunner().invoke(app, ["handler", "init", "--force", "--json"]).output)
    assert shown["command"] == "lamb package --handler lambda_function.py"


def test_a_path_holding_markup_is_printed_as_it_is(tmp_path):
    folder = tmp_path / "a[/]b"  # a folder "a[" holding "]b"
    folder.mkdir(parents=True)
    done = CliRunner().invoke(app, ["handler", "init", str(folder / "f[bold].py")], env={"COLUMNS": "400"})
    assert done.exit_code == 0, done.output
    # Rich folds a long path at the terminal's width wherever it likes: read the output unfolded
    assert f"wrote {folder / 'f[bold].py'}" in done.output.replace("\n", "")
