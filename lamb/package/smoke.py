"""``lamb package``'s smoke run: the built artifact answering sample images in a fresh Python.

Where this machine has the target's Python (pyenv's python3.12, or its own), the artifact itself
runs; elsewhere a host stand-in of the same files does, and says so. Either way it runs as
``lamb invoke`` runs it: under AWS's runtime interface client where it has a wheel for the
interpreter (``lamb.runtime_client``), lamb's stand-in bootstrap elsewhere.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from lamb import manifest as mf
from lamb import runtime_lib, targets
from lamb.errors import ArtifactError, DependencyError, InputError
from lamb.handler.lambkit.cpu import this_cpu
from lamb.local import MAX_IMAGE_BYTES
from lamb.manifest import SmokeResult
from lamb.package import bytecode, formats, standin
from lamb.package.formats import Build
from lamb.records import read_at_most


def smoke_hint(error: str | None) -> str:
    """What to do about a failed smoke run: a module the handler imports that nothing ships is
    added with --requirement; anything else is in the handler's logs."""
    import re

    missing = re.search(r"No module named '([\w.]+)'", error or "")
    if missing:
        module = missing.group(1).split(".")[0]
        return (f"the handler imports {module}, which nothing in the artifact provides: add the package that does with "
                f"--requirement (e.g. --requirement {module.replace('_', '-')}, or --requirement requirements.txt)")
    return "run with --verbose for the handler's logs; try --no-slim or another --runtime-lib"


# -- the smoke run --------------------------------------------------------------------------------------


def sample_event(manifest: mf.Manifest, image: Path | None = None) -> dict:
    """A direct-invocation event with an image: the user's, or a seeded synthetic one."""
    if image is not None:
        if not Path(image).is_file():
            raise InputError(f"no sample image at {image}", "pass an existing .jpg/.png to --sample-image")
        data = read_at_most(image, MAX_IMAGE_BYTES)
        if len(data) > MAX_IMAGE_BYTES:
            raise InputError(f"the sample image {image} is larger than {MAX_IMAGE_BYTES / 2**20:.1f} MB, more than fits "
                             "base64 in Lambda's 6 MB payload", "pass a smaller .jpg/.png to --sample-image")
    else:
        import numpy as np
        from PIL import Image

        shape = manifest.inputs[0].shape if manifest.inputs else [1, 224, 224, 3]
        h, w = (int(d) if d and d > 0 else 224 for d in shape[1:3]) if len(shape) == 4 else (224, 224)
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
    return {"image": base64.b64encode(data).decode("ascii")}


def run(
    build: Build, writer: formats.ArtifactFormat, temp: Path, choice: runtime_lib.RuntimeLibChoice, compiled: bool,
    work: Path, wheelhouse: Path | None,
) -> SmokeResult:
    """The built artifact answering sample images in a fresh Python, recorded by its writer; an
    ArtifactError naming what failed and what to do when it does not answer them all."""
    build.progress.phase("smoke run: the handler on sample images in a fresh Python")
    result = _smoke(build, writer, temp, choice, compiled, work, wheelhouse)
    if not result.passed:
        raise ArtifactError(f"the built function failed its smoke run ({result.label}): {result.error}", smoke_hint(result.error))
    writer.record_smoke(build, temp, result)
    return result


def _smoke(
    build: Build, writer: formats.ArtifactFormat, temp: Path, choice: runtime_lib.RuntimeLibChoice, compiled: bool,
    work: Path, wheelhouse: Path | None,
) -> SmokeResult:
    target, event = build.target, build.sample_event
    own_python = bytecode.target_python(target)
    if own_python is not None and writer.runs_itself and not targets.can_run_on_host(target):
        # Another Python of the target's version on this machine (e.g. pyenv's python3.12): the
        # artifact itself runs, not a stand-in.
        root, what = writer.task_root(build, temp, work / "task")
        label = f"{what}, on Python {target.python_version} ({own_python}){_HOST_LIBC}"
        return _run(root, event, label, stand_in=False, python=target.name, executable=own_python)
    if targets.can_run_on_host(target):
        root, what = writer.task_root(build, temp, work / "task")
        label = f"{what}, on this machine's Python {target.python_version}{_HOST_LIBC}"
        return _run(root, event, label, stand_in=False, python=target.name)

    host = targets.host_smoke_target()
    if host is None:
        return SmokeResult(False, True, True, "not run: this machine is not Linux CPython with glibc, so it cannot load any Lambda wheel")
    root = work / "task"
    try:
        stand_in = standin.build_stand_in(
            build.install.installed, root, own=build.files, keep=choice.name, extra=choice.extra_requirements,
            slim_deps=build.slim_deps, compile_bytecode=compiled, wheelhouse=wheelhouse,
        )
    except DependencyError as exc:
        raise DependencyError(exc.message, "package for this machine's Python to test here, or pass --no-smoke") from None
    why = []
    if host.python_version != target.python_version:
        why.append(f"Python {host.python_version} here, {target.python_version} on the target")
    if host.arch != target.arch:
        why.append(f"{host.arch} here, {target.arch} on the target")
    if host.runtime.glibc < target.runtime.glibc:
        why.append(f"glibc {host.glibc} here, {target.glibc} on the target")
    label = (
        f"HOST STAND-IN: this machine cannot run {target.name} wheels ({'; '.join(why)}); "
        f"ran the same files with {stand_in.how}. It cannot prove that the target's own wheels load on "
        f"{target.runtime.os}'s glibc and libstdc++: the ELF audit checked that. {_native(target)}"
    )
    result = _run(root, event, label, stand_in=True, python=f"{host.name} (host)")
    result.differences = stand_in.differences
    return result


def _native(target: targets.Target) -> str:
    """What would let this machine smoke the artifact itself: the runtimes it can, and how to get
    the target's own Python (never downloaded by lamb)."""
    note = targets.native_note(exclude=target.runtime.name).capitalize()
    if target.arch != targets.host_arch():
        return f"{note} on {targets.host_arch()}"
    return f"{note}; for {target.runtime.name}'s own, install {targets.python_offer(target.python_version)}"


# A smoke run here loads the wheels with this machine's glibc and libstdc++, never the target's.
_HOST_LIBC = "; this machine's C libraries, not the target's: the ELF audit checked those"


def _run(root: Path, event: dict, label: str, *, stand_in: bool, python: str, executable: str | None = None) -> SmokeResult:
    """The function at ``root`` run as ``lamb invoke`` runs it: under AWS's runtime interface
    client where it has a wheel for the interpreter (``lamb.runtime_client``), which the
    label then names; lamb's stand-in bootstrap elsewhere, and the label says why."""
    from lamb.local import LocalFunction, RunSettings, runtime_client_name
    from lamb.package import smoke_images
    from lamb.runtime_client import runtime_client_for

    answers: dict[str, str] = {}
    failed: list[str] = []
    client, why = runtime_client_for(targets.python_version(executable) or targets.host_python(), targets.host_arch() or "x86_64")
    settings = RunSettings(memory_mb=10240, timeout_s=120.0, python=executable, runtime_client=client)
    label = f"{label}; {why}" if why else f"{label}; run by {runtime_client_name(settings)}"
    with LocalFunction(root, settings) as fn:
        first = fn.invoke(event)
        second = fn.invoke(event) if first.error is None else None
        if first.error is None:
            for name, image_event in smoke_images.events():
                image_error, answers[name] = _answer(fn.invoke(image_event))
                if image_error is not None:
                    failed.append(f"{name}: {image_error}")
    inv = second or first
    error, top = _answer(first)
    if error is None and failed:
        # Good images all: an error is what slimming (or the target's Pillow) cannot decode.
        error = f"{len(failed)} of {len(answers)} kinds of image failed: " + "; ".join(failed)
    return SmokeResult(
        ran=True, passed=error is None, stand_in=stand_in, label=label, python=python,
        init_ms=first.init_ms, invoke_ms=inv.invoke_ms, peak_rss_mb=inv.peak_rss_mb,
        top=top if error is None else None, error=error, images=answers, cpu=this_cpu().as_dict(),
    )


def _answer(inv) -> tuple[str | None, str]:
    """(error or None, one-phrase answer) for one invocation: "cat 0.4100" or what went wrong."""
    if inv.error is not None:
        error = f"{inv.error.get('errorType')}: {inv.error.get('errorMessage')}"
        if inv.logs:
            error += " | logs: " + inv.logs.strip().splitlines()[-1][:300]
        return error, error
    response = inv.response
    if not isinstance(response, dict) or "error" in response or not response:
        if isinstance(response, dict) and "error" in response:
            error = f"answered {response.get('statusCode', '?')} {str(response['error'])[:200]}"
        else:
            error = f"the handler answered {str(response)[:300]}"
        return error, error
    flat = response if all(isinstance(v, (int, float)) for v in response.values()) else next(iter(response.values()), {})
    if not isinstance(flat, dict) or not flat:
        error = f"the handler answered {str(response)[:300]}"
        return error, error
    best = max(flat, key=lambda label: flat[label])
    return None, f"{best} {flat[best]:.4f}"

