"""The docs site (mkdocs.yml, docs/): it builds strictly, and its generated tables are the records.

Nothing here reads prose: the tables come from lamb's records through docs/hooks/tables.py, and
these tests check that generator against the same records, and that every link resolves.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tables():
    spec = importlib.util.spec_from_file_location("lamb_docs_tables", ROOT / "docs" / "hooks" / "tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tables = _tables()


def _rows(markdown: str) -> list[list[str]]:
    """The body rows of a generated Markdown table, as cells."""
    lines = markdown.splitlines()
    assert re.fullmatch(r"\|( -{3,}:? \|)+", lines[1]), lines[1]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[2:]]


def test_the_site_builds_strictly(tmp_path):
    # --strict: a broken link, a page missing from the nav or an unknown table marker fails.
    for module in ("mkdocs", "material"):
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is not installed beside this Python: pip install -e '.[test]' (the test extra has it)")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        capture_output=True, text=True, cwd=tmp_path, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    markers = tables.MARKER.findall((ROOT / "docs" / "reference.md").read_text(encoding="utf-8"))
    assert "lamb-table" not in reference and reference.count("<table>") == len(markers)


def _markers() -> set[str]:
    return {m for page in (ROOT / "docs").rglob("*.md") for m in tables.MARKER.findall(page.read_text(encoding="utf-8"))}


def _commands() -> dict[str, object]:
    """Every command of the CLI, a subcommand as "handler init", with its (vendored click) command."""
    import typer.main

    from lamb.cli import app

    found: dict[str, object] = {}
    for name, command in typer.main.get_command(app).commands.items():
        subcommands = getattr(command, "commands", None)
        found.update({f"{name} {sub}": c for sub, c in subcommands.items()} if subcommands else {name: command})
    return found


def test_every_marker_in_the_docs_names_a_table():
    used = _markers()
    assert {m for m in used if not m.startswith("options:")} <= set(tables.TABLES)
    assert set(tables.TABLES) <= used, "a generated table no page shows"


def test_every_command_has_a_page_with_its_options_table():
    commands = _commands()
    shown = {m.partition(":")[2].replace("-", " ") for m in _markers() if m.startswith("options:")}
    assert shown == set(commands)
    for name, command in commands.items():
        rows = _rows(tables.command_options(name))
        params = [p for p in command.params if p.name != "help"]
        assert len(rows) == len(params), name
        for row, param in zip(rows, params):
            expected = f"`{param.opts[0]}`" if param.param_type_name == "option" else f"`{param.name.upper()}`"
            assert row[0].startswith(expected), (name, row[0])
    with pytest.raises(KeyError, match="no command `lamb nope`"):
        tables.render("<!-- lamb-table: options:nope -->")


def test_an_unknown_marker_fails_and_names_the_tables():
    with pytest.raises(KeyError, match="no generated table called 'nope'; known: exit-codes"):
        tables.render("text\n<!-- lamb-table: nope -->\n")
    assert tables.render("a\n<!-- lamb-table: exit-codes -->\nb").startswith("a\n| exit code |")


def test_the_exit_code_table_is_errors_exit_codes_with_each_class():
    from lamb import errors

    rows = _rows(tables.exit_codes())
    assert [(int(code), meaning) for code, meaning, _ in rows] == list(errors.EXIT_CODES.items())
    raised = {int(code): cell for code, _, cell in rows}
    for cls in (errors.InputError, errors.DependencyError, errors.AwsError, errors.VerificationFailed):
        assert f"`{cls.__name__}`" in raised[cls.exit_code]


def test_the_modes_table_has_every_format_mode_and_its_tolerances():
    from lamb import quantization, runtime_lib

    rows = _rows(tables.modes())
    expected = [
        (fmt.name, m.name, quantization._number(m.tolerances.rtol), quantization._number(m.tolerances.min_top1))
        for fmt in runtime_lib.formats().values() for m in fmt.modes
    ]
    assert [(r[0].split("`")[1], r[1].strip("`"), r[5], r[7]) for r in rows] == expected
    assert [r[3] == "yes" for r in rows] == [m.calibrated for f in runtime_lib.formats().values() for m in f.modes]


def test_the_targets_table_has_every_runtime_on_every_arch_with_its_systems_facts():
    from lamb import runtime_lib, targets

    table, _, default = tables.targets().partition("\n\n")
    rows = _rows(table)
    assert targets.DEFAULT_RUNTIME in default and targets.DEFAULT_RUNTIME_WHY in default
    assert [(r[0].split("`")[1], r[1].strip("`")) for r in rows] == [
        (rt.name, arch) for rt in targets.RUNTIMES for arch in targets.ARCHES
    ]
    for row in rows:
        target = targets.Target(next(rt for rt in targets.RUNTIMES if rt.name in row[0]), row[1].strip("`"))
        system = targets.SYSTEMS[target.runtime.os]
        assert row[2:4] == [system.name, "%d.%d" % system.glibc]
        assert row[-1] == ", ".join(f"{r.name} {r.version}" for r in runtime_lib.available(target))
    assert [r[0] for r in rows if "(default)" in r[0]] == [f"`{targets.DEFAULT_RUNTIME}` (default)"]


def test_the_wheel_and_library_tables_are_the_registry():
    from lamb import runtime_lib

    wheels = _rows(tables.wheels())
    assert [(r[0], r[1]) for r in wheels] == [(w.name, w.version) for w in runtime_lib.WHEELS]
    assert [r[5] for r in wheels] == [", ".join(f"`{n}`" for n in w.needs) or tables.NONE for w in runtime_lib.WHEELS]
    libs = _rows(tables.runtime_libs())
    assert [r[0].strip("`") for r in libs] == list(runtime_lib.names())


def test_the_slim_table_is_every_rule_in_order():
    from lamb.release import slim

    rows = _rows(tables.slim_rules())
    assert [r[0] for r in rows] == [r.name for r in (*slim.RULES, slim.ORPHANS)]
    assert all(f"`{p}`" in row[2] for row, rule in zip(rows, slim.RULES) for p in rule.patterns)


def test_values_named_inline_come_from_the_records():
    from lamb.handler.lambkit import settings

    opened, _, more = tables.render("<!-- lamb-value: default-formats -->|<!-- lamb-value: more-formats -->").partition("|")
    spelled = {"WEBP": "WebP"}
    assert re.split(r", | and ", opened) == [spelled.get(f, f) for f in settings.DEFAULT_FORMATS]
    assert re.split(r", | or ", more) == [f for f in settings.ADMISSIBLE_FORMATS if f not in settings.DEFAULT_FORMATS]
    with pytest.raises(KeyError, match="no generated value called 'nope'"):
        tables.render("<!-- lamb-value: nope -->")


def test_the_settings_table_is_every_lamb_variable_with_its_default():
    from lamb.handler.lambkit import settings

    rows = {r[0].strip("`"): r for r in _rows(tables.handler_settings())}
    assert list(rows) == [n for n in settings.NAMES if n.startswith("LAMB_")]
    assert all(r[3] for r in rows.values()), "a setting the settings docstring does not describe"
    assert rows["LAMB_IMAGE_FORMATS"][1] == ", ".join(settings.DEFAULT_FORMATS)
    assert rows["LAMB_IMAGE_FORMATS"][2].endswith(", ".join(settings.ADMISSIBLE_FORMATS))
    assert rows["LAMB_FETCH_TIMEOUT_S"][1] == f"{settings.Settings().fetch_timeout_s:g} s"
    assert rows["LAMB_NUM_THREADS"][2] == "a whole number from 1 to 256"


def test_every_link_in_the_readme_resolves():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert links, "the README links into the docs"
    assert [link for link in links if "://" not in link and not (ROOT / link).exists()] == []


def test_the_readme_stays_a_readme():
    # Issue 27: the README points into the docs; what grows goes into a docs page.
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 150


def test_every_file_the_docs_name_exists():
    # A page that names lamb/package/lib_choice.py after it moved is as broken as a dead link.
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    named = set(re.findall(r"(?<![/\w.-])((?:lamb|tests|benchmarks|models|docs)/[\w/.*<>-]*[\w/*>])", text))
    assert "lamb/runtime_lib/" in named
    ignored = {line.strip().strip("/") for line in (ROOT / ".gitignore").read_text().splitlines() if line.strip()}
    missing = [p for p in named if p.strip("/") not in ignored and not list(ROOT.glob(re.sub(r"<[^>]*>", "*", p).rstrip("/")))]
    assert sorted(missing) == []


def test_nested_lists_and_tables_are_indented_as_python_markdown_reads_them():
    # MkDocs' Markdown nests a list or a table in a list item at 4 spaces; at 2 it renders flat,
    # silently, and --strict does not catch it.
    wrong = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        fenced = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            fenced ^= line.lstrip().startswith("```")
            if not fenced and re.match(r"^ {1,3}([-*] |\d+\. |\|)", line):
                wrong.append(f"{page.relative_to(ROOT)}:{number}")
    assert wrong == []
