"""Tables the docs show, generated from lamb's own records when the site is built.

A page asks for a table with a marker line, ``<!-- lamb-table: NAME -->``; the MkDocs hook below
(``on_page_markdown``, registered in ``mkdocs.yml``) replaces it with ``TABLES[NAME]()``, or with
``command_options(COMMAND)`` for ``options:COMMAND``. A marker naming no table fails the build. The records are the owners of these facts (the runtime-library
registry, ``lamb.targets``, ``lamb.errors``, the handler's settings); the docs only render them, so
a new mode, runtime, wheel row, exit code or setting reaches the docs with no edit here.

Nothing here imports TensorFlow: the records are plain data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

NONE = "\u2013"  # an en dash: the cell has nothing to say
MARKER = re.compile(r"^<!-- lamb-table: ([\w:-]+) -->$", re.M)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]], align: str = "") -> str:
    """A Markdown table; ``align`` has one letter per column, ``r`` for right-aligned numbers."""
    rule = ["---:" if (align[i:i + 1] == "r") else "---" for i in range(len(header))]
    return "\n".join([_row(*header), _row(*rule), *(_row(*r) for r in rows)])


def exit_codes() -> str:
    """Every exit code, what it means, and the LambError classes that exit with it."""
    from lamb import errors

    classes: dict[int, list[str]] = {}
    for cls in [errors.LambError, *_subclasses(errors.LambError)]:
        classes.setdefault(cls.exit_code, []).append(f"`{cls.__name__}`")
    rows = [(code, meaning, ", ".join(classes.get(code, [])) or NONE) for code, meaning in errors.EXIT_CODES.items()]
    return _table(("exit code", "meaning", "raised as"), rows, "r")


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.extend([sub, *_subclasses(sub)])
    return found


def modes() -> str:
    """Every (model format, quantization mode) with the default tolerances lamb verify judges it by."""
    from lamb import quantization, runtime_lib

    rows = []
    for fmt in runtime_lib.formats().values():
        libs = ", ".join(lib.name for lib in runtime_lib.for_format(fmt.name))
        for m in fmt.modes:
            t = m.tolerances
            rows.append((
                f"`{fmt.name}` ({libs})", f"`{m.name}`", m.summary, "yes" if m.calibrated else "no",
                *(quantization._number(v) for v in (t.atol, t.rtol, t.min_cosine, t.min_top1)),
            ))
    return _table(
        ("format (runtime libraries)", "mode", "what it is", "needs --calibration", "atol", "rtol (of the range)",
         "min cosine", "min top-1"),
        rows, "....rrrr",
    )


def _version(v: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in v)


def targets() -> str:
    """Every Lambda target (runtime, arch) with its system's documented facts and the wheels it has."""
    from lamb import runtime_lib
    from lamb import targets as t

    rows = []
    for runtime in t.RUNTIMES:
        system = t.SYSTEMS[runtime.os]
        for arch in t.ARCHES:
            target = t.Target(runtime, arch)
            wheels = ", ".join(f"{r.name} {r.version}" for r in runtime_lib.available(target)) or "none"
            rows.append((
                f"`{runtime.name}`" + (" (default)" if runtime.name == t.DEFAULT_RUNTIME and arch == "x86_64" else ""),
                f"`{arch}`", runtime.os, _version(system.glibc), f"GLIBCXX_{_version(system.glibcxx)}",
                f"{_version(system.gcc)}", system.rank("GLIBCXX"), wheels,
            ))
    table = _table(("runtime", "arch", "OS", "glibc", "libstdc++", "GCC", "libstdc++ fact", "wheels tagged for it"), rows)
    return f"{table}\n\nThe default, `{t.DEFAULT_RUNTIME}` on x86_64, is {t.DEFAULT_RUNTIME_WHY}."


def target_sources() -> str:
    """Where each documented fact of each Lambda OS comes from."""
    from lamb import targets as t

    rows = []
    for system in t.SYSTEMS.values():
        for fact, evidence in system.evidence.items():
            rows.append((system.name, fact, evidence.rank, _link(evidence.source)))
    return _table(("OS", "fact", "rank", "source"), rows)


def _literal(text: str) -> str:
    """Plain text as Markdown shows it: ``<model>`` is no HTML tag, ``*.lamb.json`` and
    ``__pycache__`` no emphasis."""
    parts = text.split("`")  # odd parts are code spans, shown as they are
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace("*", "\\*").replace("_", "\\_")
    return "`".join(parts)


def _link(text: str) -> str:
    return re.sub(r"(https://[^\s),]+)", r"<\1>", text)


def wheels() -> str:
    """The runtime-library releases lamb knows, and the targets their wheels are tagged for."""
    from lamb import runtime_lib

    rows = []
    for row in runtime_lib.WHEELS:
        lib = runtime_lib.get(row.name)
        rows.append((
            row.name, row.version, ", ".join(row.pythons), ", ".join(row.arches), "manylinux_" + "_".join(map(str, row.min_glibc)),
            ", ".join(f"`{n}`" for n in row.needs) or NONE, ", ".join(lib.lacks) or NONE,
        ))
    return _table(("runtime library", "release", "Python", "arch", "oldest glibc (tag)", "also needs", "lacks kernels for"), rows)


def runtime_libs() -> str:
    """Every runtime library: what it imports as, the format it runs, its aliases and slim rules."""
    from lamb import runtime_lib

    rows = []
    for lib in runtime_lib.LIBRARIES.values():
        rows.append((
            f"`{lib.name}`", f"`{lib.module}`", f"`{lib.format.file}`", ", ".join(f"`{a}`" for a in lib.aliases) or NONE,
            ", ".join(lib.format.mode_names), ", ".join(r.name for r in lib.slim_rules) or NONE,
        ))
    return _table(("runtime library", "imports as", "model in the artifact", "--runtime-lib aliases", "modes", "slim rules"), rows)


def slim_rules() -> str:
    """Every slimming rule ``lamb package`` applies, in order, with why and what it matches."""
    from lamb.release import slim

    rows = [
        (r.name, _literal(r.why), ", ".join(f"`{p}`" for p in r.patterns) or "computed: what no ELF file links to")
        for r in (*slim.RULES, slim.ORPHANS)
    ]
    return _table(("rule", "why it is dead weight", "what it removes"), rows)


def handler_settings() -> str:
    """The shipped handler's ``LAMB_*`` settings: default, valid values and meaning, from lambkit.settings."""
    from lamb.handler.lambkit import settings as s

    said = _setting_descriptions(s.__doc__ or "")
    defaults = s.Settings()
    rows = []
    for name, field, parse in s._FIELDS:
        if not name.startswith("LAMB_"):
            continue
        default, meaning = said.get(name, ("", ""))
        rows.append((f"`{name}`", _default(name, getattr(defaults, field), default, s), _accepts(parse, s), meaning))
    return _table(("variable", "default", "valid values", "what it sets"), rows)


def _setting_descriptions(doc: str) -> dict[str, tuple[str, str]]:
    """NAME -> (its default, its sentence), from the settings module's docstring, whose list says
    ``- ``NAME`` (default): what it sets``."""
    found: dict[str, tuple[str, str]] = {}
    for match in re.finditer(r"^- ``(LAMB_\w+)`` \((.*?)\): (.*?)(?=^- |\Z)", doc, re.M | re.S):
        default, meaning = (" ".join(g.split()).replace("``", "`") for g in match.group(2, 3))
        found[match.group(1)] = (default, meaning[:1].upper() + meaning[1:])
    return found


def _default(name: str, value: object, said: str, s) -> str:
    """The default as the record holds it; the docstring's words where the record says "derived" (0)."""
    if name == "LAMB_IMAGE_FORMATS":
        return ", ".join(s.DEFAULT_FORMATS)
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int) and value >= 1 << 20:
        return f"{value:,} ({said})" if said else f"{value:,}"
    return f"{value:g} s" if isinstance(value, float) else str(value) if value else said


def _accepts(parse: Callable, s) -> str:
    if parse is s._flag:
        return "1, true, yes, on / 0, false, no, off"
    if parse is s._seconds:
        return f"seconds, above 0, at most {s.MAX_TIMEOUT_S:g}"
    if parse is s._formats:
        return "comma-separated, from " + ", ".join(s.ADMISSIBLE_FORMATS)
    limit = getattr(parse, "limit", None)
    return f"a whole number from 1 to {limit:,}" if limit else "see settings.py"


def command_options(command: str) -> str:
    """Every argument and option of ``lamb COMMAND`` (``"handler init"`` for a subcommand): its
    flags, its default and its help, read from the CLI itself (what ``--help`` prints)."""
    import typer.main

    from lamb.cli import app

    found: Any = typer.main.get_command(app)
    for name in command.split():
        found = found.commands[name]
    rows = []
    for param in found.params:  # typer's (vendored) click parameters: "option" or "argument"
        if param.param_type_name == "option":
            if param.name == "help":
                continue
            flags = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
            default = "" if param.is_flag or param.default in (None, ()) else f"`{param.default}`"
        else:
            flags, default = f"`{param.name.upper()}`", ""
        text = " ".join((getattr(param, "help", None) or "").replace("\\[", "[").split())
        rows.append((flags, default, _literal(text)))
    return _table(("argument or option", "default", "what it does"), rows)


TABLES: dict[str, Callable[[], str]] = {
    "exit-codes": exit_codes,
    "modes": modes,
    "targets": targets,
    "target-sources": target_sources,
    "wheels": wheels,
    "runtime-libs": runtime_libs,
    "slim-rules": slim_rules,
    "handler-settings": handler_settings,
}


VALUE = re.compile(r"<!-- lamb-value: ([a-z][a-z0-9-]*) -->")  # lowercase: a page may show the form, NAME


def _formats(names, last: str) -> str:
    spelled = [{"WEBP": "WebP"}.get(n, n) for n in names]
    return f"{', '.join(spelled[:-1])} {last} {spelled[-1]}" if len(spelled) > 1 else "".join(spelled)


def _default_formats() -> str:
    from lamb.handler.lambkit import settings as s

    return _formats(s.DEFAULT_FORMATS, "and")


def _more_formats() -> str:
    from lamb.handler.lambkit import settings as s

    return _formats([f for f in s.ADMISSIBLE_FORMATS if f not in s.DEFAULT_FORMATS], "or")


#: Facts a sentence names inline, ``<!-- lamb-value: NAME -->``: one owner, the record.
VALUES: dict[str, Callable[[], str]] = {
    "default-formats": _default_formats,  # the image formats the handler opens
    "more-formats": _more_formats,  # the ones LAMB_IMAGE_FORMATS may add
}


def render(markdown: str) -> str:
    """``markdown`` with every table marker replaced by its table (``options:COMMAND`` for a
    command's options, ``options:handler-init`` for a subcommand's); KeyError names an unknown one."""

    def table(match: re.Match) -> str:
        name = match.group(1)
        if name.startswith("options:"):
            command = name.partition(":")[2].replace("-", " ")
            try:
                return command_options(command)
            except KeyError:
                raise KeyError(f"no command `lamb {command}` for {name!r}") from None
        if name not in TABLES:
            raise KeyError(f"no generated table called {name!r}; known: {', '.join(TABLES)}, options:COMMAND")
        return TABLES[name]()

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in VALUES:
            raise KeyError(f"no generated value called {name!r}; known: {', '.join(VALUES)}")
        return VALUES[name]()

    return VALUE.sub(value, MARKER.sub(table, markdown))


def on_page_markdown(markdown: str, page, config, files) -> str:  # the MkDocs hook
    try:
        return render(markdown)
    except KeyError as exc:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{page.file.src_path}: {exc.args[0]}") from None
