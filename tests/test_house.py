"""Issue 10's "Done when", kept: no library module over 500 lines (the shipped handler ships as
one file), no function over 100 lines, no library function over 10 parameters (the CLI's
commands take one per option, as Typer wants). The import layers are tests/test_imports.py."""

from __future__ import annotations

import ast
import re
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


# -- the code map (docs/architecture.md) ------------------------------------------------------------

ARCHITECTURE = LAMB.parent / "docs" / "architecture.md"


def _map_entries() -> list[tuple[list[str], str]]:
    """(paths, description) per entry of the map: the code block under "## Code map"."""
    text = ARCHITECTURE.read_text(encoding="utf-8").split("## Code map", 1)[1]
    block = text.split("```", 2)[1]
    entries: list[list[str]] = []
    for line in block.splitlines():
        if line.startswith("lamb/"):
            entries.append([line])
        elif line.startswith(" ") and entries:
            entries[-1].append(line)
    out = []
    for lines in entries:
        entry = " ".join(lines)
        paths = re.findall(r"\blamb/[\w/]+(?:\.py|/)", entry)
        description = entry
        for path in paths:
            description = description.replace(path, " ")
        out.append((paths, description))
    return out


def _top_level() -> set[str]:
    return {
        f"lamb/{p.name}" + ("/" if p.is_dir() else "")
        for p in LAMB.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").is_file())
    }


def _parts(package: Path) -> set[str]:
    return {
        p.stem for p in package.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").is_file())
    }


def test_the_code_map_lists_every_module_and_only_modules_that_exist():
    listed = {path for paths, _ in _map_entries() for path in paths}
    assert {p for p in listed if not (LAMB.parent / p).exists()} == set(), "the code map (docs/architecture.md) names what is gone"
    assert _top_level() - listed == set(), "modules missing from the code map (docs/architecture.md, ## Code map)"


def test_the_code_map_names_every_part_of_each_package():
    missing = {}
    for paths, description in _map_entries():
        for path in paths:
            if path.endswith("/"):
                absent = {n for n in _parts(LAMB.parent / path) if not re.search(rf"(?<![\w/]){re.escape(n)}\b", description)}
                if absent:
                    missing[path] = sorted(absent)
    assert missing == {}, "parts of packages missing from their entry in the code map (docs/architecture.md)"


# Issue 15: the runtime library has one seam. Only the LiteRT engine's own files name its format
# (its record, its converter, its verify runner), the shipped handler (its LiteRT backend), and the
# manifest's version-1 migration; every generic module asks lamb.runtime_lib instead.
MAY_NAME_TFLITE = {
    "lamb/runtime_lib/litert.py",  # the LiteRT records: formats, modes, libraries, wheels, slim rules
    "lamb/convert/tflite.py",  # the tflite format's converter
    "lamb/verify/_tflite_runner.py",  # LiteRT's verify runner
    "lamb/manifest.py",  # migrate_v1: version 1 named the model after the one format it knew
}
SHIPPED = "lamb/handler/"  # its backends are per runtime library; it cannot import lamb to ask


def test_only_the_litert_engine_names_tflite():
    naming = {name for name, text in _sources() if "tflite" in text.lower()}
    assert {n for n in naming if not n.startswith(SHIPPED)} - MAY_NAME_TFLITE == set()


# Issue 22: sources have one seam. Only lamb/source/ tells a Keras file, a SavedModel folder and an
# ONNX file apart (lamb.source.open_source); convert, verify and compare ask the source it returns.
SOURCE_MARKS = {".h5", ".hdf5", ".keras", ".onnx", ".pt", ".pth", "saved_model.pb", "saved_model.pbtxt"}
SOURCES = "lamb/source/"


def _branches_on_a_source_suffix(text: str) -> list[int]:
    """Lines comparing something with a source model's suffix (or a SavedModel's file), or asking endswith() of it."""

    def marks(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str) and node.value.lower() in SOURCE_MARKS
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(marks(e) for e in node.elts)

    lines = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Compare) and any(marks(n) for n in [node.left, *node.comparators]):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("endswith", "match", "with_suffix"):
            if any(marks(a) for a in node.args):
                lines.append(node.lineno)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and marks(node.right):
            lines.append(node.lineno)  # folder / "saved_model.pb": a folder's shape
    return lines


def test_no_module_outside_the_sources_branches_on_a_model_files_suffix():
    found = {name: lines for name, text in _sources() if not name.startswith(SOURCES) and (lines := _branches_on_a_source_suffix(text))}
    assert found == {}


def test_the_suffix_check_finds_what_it_looks_for():
    assert _branches_on_a_source_suffix('if path.suffix.lower() == ".onnx":\n    pass\n') == [1]
    assert _branches_on_a_source_suffix('x = p.suffix in (".h5", ".keras")\n') == [1]
    assert _branches_on_a_source_suffix('x = (folder / "saved_model.pb").is_file()\n') == [1]
    assert _branches_on_a_source_suffix('x = name.endswith(".onnx")\n') == [1]
    assert _branches_on_a_source_suffix('suffix = ".onnx"\n') == []  # a format's record may name it
