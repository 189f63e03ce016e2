"""Dataclasses from JSON with every field's type checked: the one place lamb's records (the
manifest, the artifact's ``lamb.json``) are validated on read.

A hand-edited manifest with ``labels: 5`` or ``inputs: null`` is refused in one sentence naming the
field ("the manifest's 'labels' is a whole number (5); expected a list"), never a TypeError
traceback from deep inside a later step.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from lamb.errors import LambError


def read_at_most(path: Path | str, limit: int) -> bytes:
    """The bytes at ``path`` (``-``: standard input), but never more than ``limit + 1`` of them: a
    caller that gets more than ``limit`` refuses the file without having read it (``/dev/zero``,
    a 1.5 GB file of spaces). OSError as ``open`` raises it."""
    if str(path) == "-":
        stream = getattr(sys.stdin, "buffer", sys.stdin)
        data = stream.read(limit + 1)
        return data.encode("utf-8") if isinstance(data, str) else data
    with open(path, "rb") as f:
        return f.read(limit + 1)


def nesting(value: Any) -> int:
    """How deeply lists and objects nest in ``value``, counted without recursion."""
    depth, level = 0, [value]
    while containers := [x for x in level if isinstance(x, (list, dict))]:
        depth += 1
        level = [v for x in containers for v in (x.values() if isinstance(x, dict) else x)]
    return depth


class TooDeep(ValueError):
    """JSON nested deeper than its reader's bound."""


def loads(data: bytes | str, max_depth: int) -> Any:
    """JSON nested at most ``max_depth`` deep; ``ValueError`` (JSON's own, or one naming the bound)
    (``TooDeep`` for the bound) otherwise. Python's parser gives up near 1,000 levels with a ``RecursionError``, and code that
    walks the value afterwards (type checks, ``json.dumps``) well before."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise TooDeep(f"it nests deeper than {max_depth} levels") from None
    if nesting(value) > max_depth:
        raise TooDeep(f"it nests deeper than {max_depth} levels")
    return value


def build(cls: type, data: Any, where: str, error: type[LambError], hint: str) -> Any:
    """An instance of the dataclass ``cls`` from the JSON value ``data``, each field checked against
    its annotation (nested dataclasses, lists, dicts, optional fields): a hand-edited file with a
    wrong type raises ``error`` with one sentence naming the field at ``where``, and ``hint``."""
    what = where or "the manifest"
    if not isinstance(data, dict):
        raise error(f"{_name(where)} is {_describe(data)}; expected an object", hint)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise error(f"{what} has fields this lamb does not know: {', '.join(unknown)}", hint)
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise error(f"{what} is incomplete: it has no {', '.join(repr(m) for m in missing)}", hint)
    values = {name: _value(hints[name], value, f"{where}.{name}" if where else name, error, hint)
              for name, value in data.items()}
    return cls(**values)


def _value(hint: Any, value: Any, where: str, error: type[LambError], why: str) -> Any:
    """``value`` checked against the annotation ``hint`` (and built, for a dataclass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where, error, why)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, where, error, why)
    if origin is list:
        check(value, list, where, error, why)
        return [_value(args[0], item, f"{where}[{i}]", error, why) for i, item in enumerate(value)]
    if origin is dict:
        check(value, dict, where, error, why)
        return {_value(args[0], k, where, error, why): _value(args[1], v, f"{where}.{k}", error, why) for k, v in value.items()}
    if hint is Any:
        return value
    check(value, hint, where, error, why)
    return value


_KINDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list",
          dict: "an object"}


def check(value: Any, kind: type, where: str, error: type[LambError], hint: str) -> None:
    """``value`` is a ``kind`` (JSON's: a bool is no number, an int is a float), else ``error``."""
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise error(f"{_name(where)} is {_describe(value)}; expected {_KINDS.get(kind, kind.__name__)}", hint)


def _name(where: str) -> str:
    return f"the manifest's {where!r}" if where else "the manifest"


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value)
    return f"{_KINDS.get(type(value), type(value).__name__)} ({text if len(text) <= 40 else text[:39] + '…'})"
