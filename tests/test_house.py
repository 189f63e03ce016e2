"""Issue 10's "Done when", kept: no library module over 500 lines (the shipped handler ships as
one file), no function over 100 lines, no library function over 10 parameters (the CLI's
commands take one per option, as Typer wants). The import layers are tests/test_imports.py."""

from __future__ import annotations

import ast
from pathlib import Path

LAMB = Path(__file__).resolve().parent.parent / "lamb"
ONE_FILE: set[str] = set()  # modules exempt from the size limit (none since the handler became a package)


def _sources() -> list[tuple[str, str]]:
    return [(p.relative_to(LAMB.parent).as_posix(), p.read_text(encoding="utf-8")) for p in sorted(LAMB.rglob("*.py"))]


def _functions(text: str):
    return [n for n in ast.walk(ast.parse(text)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_module_over_500_lines():
    long = {name: len(text.splitlines()) for name, text in _sources() if name not in ONE_FILE}
    assert {name: n for name, n in long.items() if n > 500} == {}


def test_no_function_over_100_lines():
    long = {
        f"{name}:{f.lineno} {f.name}": f.end_lineno - f.lineno + 1
        for name, text in _sources() for f in _functions(text)
    }
    assert {where: n for where, n in long.items() if n > 100} == {}


def test_no_library_function_over_10_parameters():
    def count(f) -> int:
        a = f.args
        named = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
        return len(named) + (a.vararg is not None) + (a.kwarg is not None)

    wide = {
        f"{name}:{f.lineno} {f.name}": count(f)
        for name, text in _sources() if not name.startswith("lamb/cli/") for f in _functions(text)
    }
    assert {where: n for where, n in wide.items() if n > 10} == {}
