"""Issue 10's "Done when", kept: no library module over 500 lines (the shipped handler ships as
one file), no function over 100 lines, no library function over 10 parameters (the CLI's
commands take one per option, as Typer wants). The import layers are tests/test_imports.py."""

from __future__ import annotations

import ast
import io
import re
import tokenize
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


# Issues 15 and 23: each runtime library has one seam. Only an engine's own files name it or its
# format (its record, its converter, its backend in the shipped handler), the sources of that format
# (an ONNX export is a source too, with its own reference runner), and the manifest's version-1
# migration; every generic module asks lamb.runtime_lib (or lamb.source) instead. Comments,
# docstrings, `--help` texts and `examples in backquotes` may name them: they explain, they do not decide.
ENGINE_WORDS = re.compile(r"tflite|onnx|litert|\bort\b", re.IGNORECASE)
MAY_NAME_AN_ENGINE = {
    "lamb/runtime_lib/__init__.py",  # the registry imports its engine families, in preference order
    "lamb/runtime_lib/litert.py",  # the LiteRT records: formats, modes, libraries, wheels, slim rules
    "lamb/runtime_lib/onnxruntime.py",  # ONNX Runtime's
    "lamb/convert/tflite.py",  # the tflite format's converter
    "lamb/convert/onnx.py",  # the onnx format's converter
    "lamb/verify/_reference_runner.py",  # the ONNX source's reference implementations
    "lamb/manifest.py",  # migrate_v1: version 1 named the model after the one format it knew
}
SHIPPED = "lamb/handler/"  # its backends are per runtime library; it cannot import lamb to ask
SOURCES = "lamb/source/"  # the source seam: the ONNX source names its format (issue 22)


def _code_words(text: str) -> list[tuple[int, str]]:
    """(line, token) for the names and string literals a module decides with: not its comments, its
    docstrings, the ``help=`` texts it passes, nor the `examples` its strings quote in backquotes."""
    tree = ast.parse(text)
    skipped: set[tuple[int, int]] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                skipped.update((line, 0) for line in range(first.lineno, (first.end_lineno or first.lineno) + 1))
        if isinstance(node, ast.keyword) and node.arg == "help":
            skipped.update((line, 0) for line in range(node.value.lineno, (node.value.end_lineno or node.value.lineno) + 1))
    words = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if (token.start[0], 0) in skipped or token.type == tokenize.COMMENT:
            continue
        if token.type in (tokenize.NAME, tokenize.STRING) or token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            words.append((token.start[0], re.sub(r"`[^`]*`", "", token.string)))
    return words


def _naming_an_engine(text: str) -> list[int]:
    return [line for line, word in _code_words(text) if ENGINE_WORDS.search(word)]


def test_only_an_engines_own_files_name_it():
    naming = {
        name: lines for name, text in _sources()
        if not name.startswith((SHIPPED, SOURCES)) and name not in MAY_NAME_AN_ENGINE and (lines := _naming_an_engine(text))
    }
    assert naming == {}


def test_the_engine_word_check_reads_code_not_explanations():
    assert _naming_an_engine('lib = "onnxruntime"\n') == [1]
    assert _naming_an_engine("from lamb.runtime_lib import litert\n") == [1]
    assert _naming_an_engine("if fmt == 'tflite':\n    pass\n") == [1]
    assert _naming_an_engine("x = 1  # LiteRT's order\n") == []
    assert _naming_an_engine('"""Runs a .tflite or an .onnx."""\n') == []
    assert _naming_an_engine('option(help="a .tflite or .onnx file")\n') == []
    assert _naming_an_engine('hint = "run `lamb convert model.onnx` first"\n') == []
    assert _naming_an_engine("port = sort(effort)\n") == []  # ort only as a word


# Issue 22: sources have one seam. Only lamb/source/ tells a Keras file, a SavedModel folder and an
# ONNX file apart (lamb.source.open_source); convert, verify and compare ask the source it returns.
SOURCE_MARKS = {".h5", ".hdf5", ".keras", ".onnx", ".pt", ".pth", "saved_model.pb", "saved_model.pbtxt"}


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
