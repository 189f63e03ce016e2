"""The protocol every verify runner speaks (the runner scripts the runtime-library records name).

The runners are executed as scripts (``python -I -S RUNNER LIB MODULE MODEL [PATH ...]``), never
imported by lamb, often in another environment (an older NumPy, another Python): so this module,
like them, imports only the standard library. Each runner puts its own folder on ``sys.path`` to
import it (``-I`` leaves the script's folder off).

One JSON object per line on the channel: ``ready`` (or ``error``), then one ``done`` per ``run``
request read from stdin, with ``progress`` events in between. End of input ends the process.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any


def open_channel(extra_paths: list[str]):
    """The protocol's channel (the real stdout); anything a library prints goes to stderr instead."""
    # Libraries print banners (XNNPACK, NumPy ABI warnings) on stdout: only the protocol may.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path[:0] = extra_paths
    return channel


def emit(channel, obj: dict) -> None:
    channel.write(json.dumps(obj) + "\n")
    channel.flush()


def error(channel, stage: str, exc: BaseException) -> None:
    message = " ".join(str(exc).split())[:2000]  # the libraries' messages span several lines
    emit(channel, {"event": "error", "stage": stage, "type": type(exc).__name__, "message": message})


def version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def save_outputs(np, out_dir: str, prefix: str, outputs: list[dict], results: dict) -> dict:
    """One ``.npy`` per output (its samples concatenated), keyed as the signature keys them."""
    files = {}
    for i, spec in enumerate(outputs):
        path = os.path.join(out_dir, f"{prefix}_output_{i}.npy")
        np.save(path, np.concatenate(results[spec["key"]]))
        files[spec["key"]] = path
    return files


def serve(channel, run: Callable[[dict], dict[str, Any]]) -> int:
    """Answer each ``run`` request on stdin; a request the library fails is the finding, and the end."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = run(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - a kernel that fails at run time is a finding too
            error(channel, "invoke", exc)
            return 3
        emit(channel, answer)
    return 0
