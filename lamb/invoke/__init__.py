"""``lamb invoke``: run the built artifact once (or N times warm) the way Lambda would.

The artifact is unpacked to a temp task root and run by ``lamb.local.LocalFunction`` in a fresh
``python -I -S`` process that sees only the artifact and the standard library. The report holds
the handler's response exactly as returned (its own 400s included), the cold start, the
invocation times, the peak memory and the memory setting that follows from it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from lamb import layout
from lamb import manifest as mf
from lamb.cost import (  # noqa: F401 (re-exported)
    MemoryAdvice,
    advise_function,
    advise_memory,
    explicit_pixels,
    memory_advice,
    pixel_budget_floor,
    recommend_memory_mb,
)
from lamb.errors import ArtifactError, InputError, ManifestError
from lamb.handler.lambkit.cpu import this_cpu
from lamb.handler.lambkit.settings import MAX_PAYLOAD_BYTES
from lamb.invoke.report import InvokeReport
from lamb.local import MAX_IMAGE_BYTES, PAYLOAD_TOO_LARGE, LocalFunction, RunSettings, runtime_client_name
from lamb.package.standin import host_stand_in, unpack_artifact
from lamb.progress import Progress, current
from lamb.records import read_at_most
from lamb.runtime_client import runtime_client_for
from lamb.targets import find_python, host_arch, host_python, python_version
from lamb.units import MiB


def _pixel_budget_note(memory_mb: int, env: dict[str, str] | None) -> str:
    from lamb.handler.lambkit import pixel_budget

    pixels = pixel_budget(memory_mb, explicit_pixels(env))
    return (
        f"at {memory_mb:,} MB the handler admits images up to {pixels / 1e6:.1f} megapixels (its pixel budget; "
        "LAMB_MAX_IMAGE_PIXELS sets it) and the advice covers the largest of them"
    )


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every reported figure was actually measured)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


# -- finding the artifact ----------------------------------------------------------------------------


def default_artifact(directory: Path | None = None) -> Path:
    """The artifact ``lamb package`` last built here.

    A manifest here names the artifact ``lamb package`` last built from its model (its package
    record). A manifest without one (written before lamb kept records) points at the artifacts
    named after it, ``<stem>-<runtime>-<arch>.zip`` (or ``...-image/``): the newest wins. Without
    a manifest: the newest zip or image folder here that holds a lamb handler.
    """
    directory = Path(directory or Path.cwd())
    manifests = sorted(directory.glob("*" + mf.SUFFIX))
    candidates: list[Path] = []
    for manifest_path in manifests:
        recorded = _recorded_artifact(manifest_path)
        if recorded is not None:
            candidates.append(recorded)
        else:
            stem = mf.model_stem(manifest_path)
            candidates += [p for p in directory.glob(f"{glob_escape(stem)}-python*") if _is_artifact(p)]
    if not candidates:
        candidates = [p for p in directory.iterdir() if (p.suffix == ".zip" or p.is_dir()) and _is_artifact(p)]
    if not candidates:
        raise InputError(
            f"no Lambda artifact in {directory}",
            "run `lamb package` first, or name the .zip (or image folder) it built",
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _recorded_artifact(manifest_path: Path) -> Path | None:
    try:
        record = mf.read(manifest_path).package
    except ManifestError:
        return None
    path = record.artifact_path(manifest_path) if record is not None else None
    return path if path is not None and _is_artifact(path) else None


def _is_artifact(path: Path) -> bool:
    if path.is_dir():
        return (path / layout.HANDLER_FILE).is_file() and (path / layout.MANIFEST_FILE).is_file()
    if path.suffix != ".zip" or not path.is_file():
        return False
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return layout.HANDLER_FILE in names and layout.MANIFEST_FILE in names


# -- the event ---------------------------------------------------------------------------------------

def _too_large(what: str) -> InputError:
    return InputError(
        f"{what} Lambda's {MAX_PAYLOAD_BYTES // MiB} MB payload limit; Lambda and lamb serve answer 413: {PAYLOAD_TOO_LARGE}",
        "send a smaller event; for a large image, serve it and send its URL (--url)",
    )


def check_payload(event: Any, what: str = "the event") -> Any:
    """``event`` unless its JSON is over Lambda's payload limit (an ``InputError`` in Lambda's words)."""
    try:
        size = len(json.dumps(event).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        raise InputError(f"{what} is not a JSON value", "an event is what json.dumps can write: objects, lists, strings, numbers") from None
    if size > MAX_PAYLOAD_BYTES:
        raise _too_large(f"{what} is {size / MiB:.1f} MB as JSON, larger than")
    return event


def build_event(*, event_file: Path | None = None, image: Path | None = None, url: str | None = None) -> tuple[str, Any]:
    """Exactly one of the three -> (kind, event)."""
    given = [name for name, value in (("--event", event_file), ("--image", image), ("--url", url)) if value is not None]
    if len(given) != 1:
        raise InputError(
            "give exactly one of --event, --image or --url" + (f" (got {', '.join(given)})" if given else ""),
            'e.g. lamb invoke --url https://example.com/cat.jpg, or --event event.json for any JSON event',
        )
    if event_file is not None:
        path = Path(event_file)
        where = "standard input" if str(path) == "-" else str(path)
        try:
            data = read_at_most(path, MAX_PAYLOAD_BYTES)
            if len(data) > MAX_PAYLOAD_BYTES:  # read no further: /dev/zero would not end
                raise _too_large(f"the event in {where} is larger than")
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the event file {path} ({exc.__class__.__name__})", "name a JSON file") from None
        try:
            return "event", json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})", "an event is one JSON value, as in the Lambda console's Test tab") from None
        except RecursionError:
            raise InputError(f"{path} nests its JSON too deeply to read", "Lambda's own runtime could not parse it either") from None
    if image is not None:
        path = Path(image)
        if not path.is_file():
            raise InputError(f"no image at {path}", "name an image file (JPEG, PNG, ...)")
        try:
            data = read_at_most(path, MAX_IMAGE_BYTES)
        except OSError as exc:
            raise InputError(f"cannot read the image {path} ({exc.__class__.__name__})", "name an image file (JPEG, PNG, ...)") from None
        if len(data) > MAX_IMAGE_BYTES:
            raise _too_large(f"the image {path}, sent base64 as the handler takes it, is larger than")
        return "image", check_payload({"image": base64.b64encode(data).decode("ascii")}, f"the image {path}")
    return "url", {"url": url}


# -- running -----------------------------------------------------------------------------------------


def built_for(task_root: Path) -> tuple[str, str, str] | None:
    """(python "3.12", machine "aarch64", arch "arm64") the artifact's wheels are built for.

    The package record in its ``lamb.json`` says so. An artifact packaged before lamb wrote records
    is read from the tags of its extension modules; None when neither tells (pure Python).
    """
    from lamb import targets

    record = mf.package_record(task_root)
    if record is not None and record.format == "image":
        return None  # unpack_artifact installed the image's pinned wheels for this machine
    if record is not None:
        return record.python, targets.ARCHES.get(record.arch, record.arch), record.arch
    compiled = _compiled_for(task_root)
    return None if compiled is None else (*compiled, compiled[1])


def _compiled_for(task_root: Path) -> tuple[str, str] | None:
    """(python "3.12", machine "x86_64") of the first CPython extension module in the task root:
    for artifacts without a package record only."""
    pattern = re.compile(r"\.cpython-(\d)(\d+)-([a-z0-9_]+)-linux-gnu\.so$")
    for path in task_root.rglob("*.so"):
        match = pattern.search(path.name)
        if match:
            return f"{match.group(1)}.{match.group(2)}", match.group(3)
    return None


def check_runnable(task_root: Path, python: str | None, *, stand_in: bool = True) -> tuple[Path, str | None, list[str]]:
    """(task root, interpreter, notes) that run this artifact here.

    Wheels for lamb's own Python and arch run as they are. For another Python version, a
    ``pythonX.Y`` on PATH runs the artifact itself; without one (or for another arch) the handler
    and model run on a host stand-in with the same package versions built for this machine,
    clearly labelled, unless ``stand_in`` is False.
    """
    import platform

    built = built_for(task_root)
    if built is None or python is not None:
        return task_root, python, []
    want_python, want_machine, want_arch = built
    here = host_python()
    if want_machine == platform.machine():
        if want_python == here:
            return task_root, None, []
        found = find_python(want_python)
        if found is not None:
            return task_root, found, [f"the artifact is built for Python {want_python}: ran it with {found}"]
    target = f"Python {want_python} on {want_arch}"
    if not stand_in:
        raise ArtifactError(
            f"the artifact is built for {target}; this machine runs Python {here} on {platform.machine()}",
            f"pass --python /path/to/python{want_python}, allow a host stand-in, or build for this machine: "
            f"`lamb package --runtime python{here}`",
        )
    notes: list[str] = [f"the artifact is built for {target}"]
    return host_stand_in(task_root, notes), None, notes


@contextlib.contextmanager
def runnable_artifact(
    artifact: Path | None, settings: RunSettings
) -> Iterator[tuple[Path, Path, RunSettings, list[str]]]:
    """Resolve, unpack and check an artifact for running here; removes what it unpacked on exit.

    Yields the artifact path, the task root to run, the settings to run it with (their
    interpreter the one that runs it: None for lamb's own; their runtime client AWS's awslambdaric
    where it has a wheel for that interpreter, ``lamb.runtime_client``) and the notes to
    show (what was unpacked, any stand-in).
    """
    artifact = Path(artifact) if artifact is not None else default_artifact()
    unpack_notes: list[str] = []
    task_root = unpack_artifact(artifact, notes=unpack_notes)
    roots = [task_root]
    try:
        task_root, python, notes = check_runnable(task_root, settings.python, stand_in=settings.stand_in)
        roots.append(task_root)
        client = settings.runtime_client
        if client is None:
            client, why = runtime_client_for(python_version(python) or host_python(), host_arch() or "x86_64")
            notes += [why] if why else []
        yield artifact, task_root, replace(settings, python=python, runtime_client=client), unpack_notes + notes
    finally:
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def invoke_artifact(
    artifact: Path | None = None,
    *,
    event_file: Path | None = None,
    image: Path | None = None,
    url: str | None = None,
    event: Any = None,
    repeat: int = 0,
    settings: RunSettings | None = None,
    max_latency_ms: float | None = None,
    arch: str | None = None,
    progress: Progress | None = None,
) -> InvokeReport:
    """Unpack ``artifact``, run its handler once cold and ``repeat`` more times warm, report.

    The event is ``event`` (any JSON value) or built from exactly one of ``event_file``, ``image``
    (sent base64 as ``{"image": ...}``) or ``url`` (``{"url": ...}``). The memory advice weighs
    Lambda cost against latency from the warm median (the first invocation without ``repeat``),
    with the peak RSS as its floor; ``max_latency_ms`` asks for the cheapest setting meeting it.
    """
    if repeat < 0:
        raise InputError("--repeat must be 0 or more", "e.g. --repeat 20 for warm p50/p95")
    if event is not None:
        kind, event = "event", check_payload(event)
    else:
        kind, event = build_event(event_file=event_file, image=image, url=url)
    settings = settings or RunSettings()
    progress = progress or current()
    memory_mb = settings.memory_mb
    with runnable_artifact(artifact, settings) as (unpacked, task_root, run_settings, notes):
        record = mf.package_record(task_root)
        with LocalFunction(task_root, run_settings) as function:
            progress.phase("cold start and first invocation")
            first = function.invoke(event)
            warm: list[float] = []
            if first.error is None and repeat:
                progress.phase("warm invocations", total=repeat)
                for _ in range(repeat):
                    result = function.invoke(event)
                    if result.error is not None:
                        notes.append(f"a warm invocation failed: {result.error.get('errorType')}: {result.error.get('errorMessage')}")
                        break
                    assert result.invoke_ms is not None  # measured whenever the handler answered
                    warm.append(result.invoke_ms)
                    progress.advance()
                    first.peak_rss_mb = max(first.peak_rss_mb or 0.0, result.peak_rss_mb or 0.0)
            version = python_version(run_settings.python) or "?"

    advice = function_advice = None
    if first.error is None and first.peak_rss_mb:
        # The handler runs one interpreter thread per vCPU of the setting, so below 3,538 MB the
        # time measured here is one-thread time, what Lambda's CPU share scales.
        local_ms = percentile(warm, 50) if warm else first.invoke_ms
        # Lambda's price depends on the arch the artifact is built for (its record says which).
        arch = arch or (record.arch if record is not None else "x86_64")
        # the advice lamb deploy applies and the image README states (memory floors, then timeout)
        function_advice = advise_function(local_ms, init_ms=first.init_ms, peak_rss_mb=first.peak_rss_mb, arch=arch,
                                          env=run_settings.env, max_latency_ms=max_latency_ms, first_invoke_ms=first.invoke_ms)
        advice = function_advice.memory
        if not warm:
            notes.append("memory advice from the first invocation's time; --repeat N gives a steadier warm median")
    if first.peak_rss_mb and first.peak_rss_mb > memory_mb * 0.9 and first.error is None:
        notes.append(f"peak memory {first.peak_rss_mb:.0f} MB is close to the {memory_mb} MB setting")
    return InvokeReport(
        artifact=unpacked,
        event_kind=kind,
        response=first.response,
        error=first.error,
        init_ms=first.init_ms,
        invoke_ms=first.invoke_ms,
        warm_ms=warm,
        warm_p50_ms=percentile(warm, 50),
        warm_p95_ms=percentile(warm, 95),
        peak_rss_mb=first.peak_rss_mb,
        memory_mb=memory_mb,
        recommended_memory_mb=advice.recommended_mb if advice else None,
        recommended_timeout_s=function_advice.timeout_s if function_advice else None,
        memory_advice=f"{memory_advice(advice)}; {_pixel_budget_note(advice.recommended_mb, run_settings.env)}" if advice else "",
        python=version,
        runtime_client=runtime_client_name(run_settings),
        logs=first.logs,
        notes=notes,
        memory=advice,
        cpu=this_cpu(),
    )


def parse_env(pairs: list[str] | None) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` -> dict, for ``--env``."""
    env: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--env {pair!r} is not KEY=VALUE", "e.g. --env LAMB_ALLOW_PRIVATE_URLS=1")
        env[key] = value
    return env
