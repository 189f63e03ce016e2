"""The protocol every verify runner speaks, and its messages as types.

The runners are executed as scripts (``python -I -S RUNNER ...``), never imported by lamb, often
in another environment (an older NumPy, another Python): so this module, like them, imports only
the standard library. Each runner puts its own folder on ``sys.path`` to import it (``-I`` leaves
the script's folder off); lamb imports it for the message types.

One JSON object per line on the channel: ``Ready`` (or ``Error``), then one ``Done`` per
``RunRequest`` read from stdin, with ``Progress`` events in between. End of input ends the process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar


class TensorInfo(TypedDict):
    """One input or output of the model as the runner reports it."""

    key: str  # what lamb pairs and feeds by: the record's name of it, else the engine's own
    name: str  # the engine's own name (a signature key, a graph input or output)
    shape: list[int]  # -1 where open
    dtype: str  # NumPy's name
    scale: float | None  # an integer tensor's quantization, else None
    zero_point: int | None


class Ready(TypedDict, total=False):
    """The library imported and the model loaded: what the model is, and what it took."""

    event: str  # "ready"
    lib: str  # the runtime library's distribution
    version: str  # its version where the runner imported it from
    numpy: str
    backend: str  # the shipped backend that loaded the model (lambkit.backends)
    layout: str  # "NHWC" | "NCHW": how the model takes an image
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]  # in the record's (the source model's) order where it names them
    tensor_dtypes: dict[str, int]  # NumPy dtype name -> tensors of it (tells quantization modes apart)
    import_s: float
    load_s: float


class RunRequest(TypedDict):
    """lamb -> runner: run the model on these inputs (one ``.npy`` per input key), write to ``out_dir``."""

    cmd: str  # "run"
    inputs: dict[str, str]
    out_dir: str


class Progress(TypedDict):
    event: str  # "progress"
    samples: int  # done since the last event


class Done(TypedDict):
    event: str  # "done"
    outputs: dict[str, str]  # output key -> ``.npy`` of its samples, concatenated
    samples: int
    invoke_s: float  # time inside the library


class Error(TypedDict):
    event: str  # "error"
    stage: str  # "import" | "load" | "invoke"
    type: str  # the exception's class
    message: str  # the library's own words


def open_channel(extra_paths: list[str]):
    """The protocol's channel (the real stdout); anything a library prints goes to stderr instead."""
    # Libraries print banners (XNNPACK, NumPy ABI warnings) on stdout: only the protocol may.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path[:0] = extra_paths
    return channel


def emit(channel, obj: Any) -> None:
    channel.write(json.dumps(obj) + "\n")
    channel.flush()


def error(channel, stage: str, exc: BaseException) -> None:
    message = " ".join(str(exc).split())[:2000]  # the libraries' messages span several lines
    emit(channel, Error(event="error", stage=stage, type=type(exc).__name__, message=message))


T = TypeVar("T")


def stage(channel, name: str, step: Callable[[], T]) -> tuple[T, float] | None:
    """Run one stage of the runner's start ("import", "load"): its result and seconds, or None once
    its failure is reported to lamb (the library's failure is the finding, and ends the runner)."""
    t0 = time.perf_counter()
    try:
        return step(), time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - reported to lamb, which explains it to the user
        error(channel, name, exc)
        return None


def version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def save_outputs(np, out_dir: str, prefix: str, outputs: list[TensorInfo], results: dict) -> dict[str, str]:
    """One ``.npy`` per output (its samples concatenated), keyed as ``outputs`` key them."""
    files = {}
    for i, spec in enumerate(outputs):
        path = os.path.join(out_dir, f"{prefix}_output_{i}.npy")
        np.save(path, np.concatenate(results[spec["key"]]))
        files[spec["key"]] = path
    return files


def serve(channel, run: Callable[[RunRequest], Done]) -> int:
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
