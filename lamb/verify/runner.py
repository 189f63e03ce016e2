"""The runtime library a Lambda artifact ships, and running the converted model on it for ``lamb verify``.

Which library (``pick_runtime_lib``: what ``lamb package`` would ship, as
``lamb.release.lib_choice.resolve`` decides it), an environment that has it
(``resolve_runtime_env``: lamb's own when its installation fits, an isolated cached one for a
library whose needs clash with lamb's, such as a library built against NumPy 1.x), and a runner
subprocess (``ModelRunner``, ``python -I -S _runner.py``) that runs the model through the shipped
handler's backend of that library (``lambkit.backends``), importing only it and NumPy, never
TensorFlow. A library that cannot import, load or run the model raises ``RunnerFailure``;
``explain_failure`` turns it into one sentence about what that means for the artifact, as the
library's record explains its errors.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from lamb import runtime_lib
from lamb.errors import DependencyError
from lamb.files import writing
from lamb.manifest import Manifest
from lamb.source.base import RunFailed
from lamb.verify._runner_protocol import Ready, RunRequest

# -- the runtime library and its environment -----------------------------------------------------


@dataclass
class RuntimeEnv:
    """Where and how the runner runs: an interpreter and the paths that hold the runtime library."""

    lib: str
    python: str
    paths: list[str]
    origin: str  # "lamb's environment" | "isolated environment at <dir>"


def pick_runtime_lib(
    lib: str | None = None, runtime: str | None = None, manifest: Manifest | None = None, model_format: str | None = None,
) -> runtime_lib.RuntimeLibChoice:
    """The runtime library to verify on, pinned, and why: what the artifact will ship, as
    ``lamb.release.lib_choice.resolve`` decides it for ``runtime`` (a Lambda runtime, ``python3.13``,
    or target, ``python3.13-arm64``; default: the newest). ``lib`` alone, without a runtime: that
    library's newest wheel for this machine. A previous verification in the manifest is ignored
    here: which library verify used is what it is meant to establish."""
    from lamb import targets
    from lamb.release import lib_choice

    fresh = dataclasses.replace(manifest, verification=None) if manifest is not None else None
    target = None if runtime is None and lib is not None else targets.get_target(runtime)  # None: this machine
    return lib_choice.resolve(target, fresh, lib, model_format=model_format, purpose=lib_choice.VERIFY).choice


def resolve_runtime_env(lib: str, requirements: Sequence[str] = ()) -> RuntimeEnv:
    """Find (or build, once, under the lamb cache) an environment that has ``lib`` importable.

    A library installed with lamb is used from lamb's own installation when it satisfies the
    requirement. A library with needs of its own (one built against NumPy 1.x, while lamb's
    environment has NumPy 2) always gets an isolated environment of Linux wheels for this
    machine's Python, installed the way the artifact's dependencies are
    (``lamb.release.wheels.install_for_target``).
    """
    lib = runtime_lib.normalise_name(lib)
    library = runtime_lib.get(lib)
    requirements = list(requirements) or [library.name]
    if not library.needs and len(requirements) == 1 and _installed_satisfies(lib, requirements[0]):
        import importlib.util

        paths = []
        for module in (library.module, "numpy"):
            spec = importlib.util.find_spec(module)
            assert spec is not None and spec.origin is not None  # both are lamb dependencies
            site = str(Path(spec.origin).parent.parent)
            if site not in paths:
                paths.append(site)
        return RuntimeEnv(lib, sys.executable, paths, "lamb's environment")
    for need in library.needs:
        if not any(_dist(r) == _dist(need) for r in requirements):
            requirements.append(need)
    dest = _isolated_env(requirements)
    return RuntimeEnv(lib, sys.executable, [str(dest)], f"isolated environment at {dest}")


def _dist(requirement: str) -> str:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    return canonicalize_name(Requirement(requirement).name)


def _installed_satisfies(dist: str, requirement: str | None) -> bool:
    from importlib import metadata

    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    if not requirement:
        return True
    from packaging.requirements import Requirement

    return Requirement(requirement).specifier.contains(version, prereleases=True)


def _isolated_env(requirements: list[str]) -> Path:
    from lamb.release import wheels
    from lamb.targets import RUNTIMES, host_smoke_target

    # This machine as it is (its own glibc), not its Lambda row: a release tagged manylinux_2_27
    # (ai-edge-litert 2.x) installs here even when the row of this Python is Amazon Linux 2.
    target = host_smoke_target()
    if target is None:
        raise DependencyError(
            f"cannot install {requirements[0]} here: no Lambda runtime matches this machine's Python {sys.version_info.major}.{sys.version_info.minor} on {os.uname().machine}",
            f"run lamb verify with a Python a Lambda runtime uses ({', '.join(r.python for r in RUNTIMES)}), "
            f"or use --runtime-lib {runtime_lib.default().name}",
        )
    dest = wheels.cache_root() / "verify-runtimes" / f"{wheels.requirements_slug(requirements)}-{target.name}"
    return wheels.cached_tree(dest, lambda tmp: wheels.install_for_target(requirements, target, tmp))


# -- the runner process ---------------------------------------------------------------------------

_HANDLER_DIR = Path(__file__).parent.parent / "handler"  # lambkit: the runner runs the shipped backend
_RUNNER = Path(__file__).with_name("_runner.py")
_REFERENCE_RUNNER = Path(__file__).with_name("_reference_runner.py")


class RunnerFailure(RunFailed):
    """The runtime library could not import, load or run the model (internal; becomes report.error)."""

    def __init__(self, stage: str, message: str, stderr: str = ""):
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.stderr = stderr  # what the library printed: NumPy's ABI complaint lands only there


# Time limits on the runner, each for one answer: a library that takes longer is stopped and the
# verification fails with a sentence naming the limit (onnxruntime 1.16.3 loads If nodes nested 30
# deep for hours, where 1.32 takes 0.02 s). The smoke run gives the built function 120 s a request
# (lamb.package.build); Lambda gives its init 10 s, then retries it within the first request's
# timeout (docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html). A model this
# machine cannot load, or answer one input of, in 2 minutes is none to ship.
LIMITS_S = {"load": 120.0, "invoke": 120.0}  # stage -> seconds
_LIMITED = {"load": "loading a model", "invoke": "answering one input"}


class ModelRunner:
    """The converted model, loaded by the shipped backend of its runtime library in a subprocess
    that lives for one verification."""

    def __init__(self, env: RuntimeEnv, model: Path, record: dict[str, Any] | None = None, *, _command: list[str] | None = None):
        """``record``: the model's record (its manifest as a dict), which tells the backend the
        input's layout and the outputs' names and order, as the shipped ``lamb.json`` tells it."""
        self.env = env
        self.model = Path(model)
        self._expired: float | None = None  # the time limit that stopped the runner
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 - lives as long as the runner
        self._record = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)  # noqa: SIM115 - removed by close
        json.dump(record or {}, self._record)
        self._record.close()
        backend = runtime_lib.get(env.lib).handler_backend
        cmd = _command or [str(_RUNNER), env.lib, backend, str(self.model), self._record.name]
        self._proc = subprocess.Popen(
            [env.python, "-I", "-S", *cmd, *env.paths, str(_HANDLER_DIR)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
        )
        self.info: Ready | None = None

    @classmethod
    def reference(cls, env: RuntimeEnv, source: Path, module: str) -> ModelRunner:
        """A *source* model on a reference implementation (``_reference_runner.py``: ``module`` is
        ``onnx.reference`` or ``onnxruntime-unoptimized``), not on the shipped backend."""
        return cls(env, source, _command=[str(_REFERENCE_RUNNER), env.lib, module, str(source)])

    def wait_ready(self) -> Ready:
        """Block until the library has loaded the model; its signature, version and timings."""
        if self.info is None:
            self.info = cast(Ready, self._read("load"))
        return self.info

    def run(
        self, inputs: dict[str, np.ndarray], workdir: Path, on_progress: Callable[[int], None] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Run the model on ``inputs``; ``on_progress(n)`` as each batch of ``n`` samples is done."""
        files = {}
        for i, (key, array) in enumerate(inputs.items()):
            path = Path(workdir) / f"model_input_{i}.npy"
            with writing(path):  # the temporary folder full: one line naming the file
                np.save(path, np.ascontiguousarray(array, dtype=np.float32))
            files[key] = str(path)
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(RunRequest(cmd="run", inputs=files, out_dir=str(workdir))) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # the runner died; _read reports how
        answer = self._read("invoke")
        while answer.get("event") == "progress":
            if on_progress is not None:
                on_progress(int(answer["samples"]))
            answer = self._read("invoke")
        return {key: np.load(path) for key, path in answer["outputs"].items()}, answer

    def _read(self, stage: str) -> dict[str, Any]:
        """The runner's next event, within ``stage``'s time limit (the runner is stopped past it)."""
        assert self._proc.stdout is not None
        limit = LIMITS_S.get(stage, LIMITS_S["invoke"])
        watchdog = threading.Timer(limit, self._expire, (limit,))
        watchdog.start()
        try:
            line = self._proc.stdout.readline()
        finally:
            watchdog.cancel()
        if not line and self._expired is not None:
            self._proc.wait()
            what = _LIMITED.get(stage, _LIMITED["invoke"])
            raise RunnerFailure(stage, f"it did not finish within {self._expired:g} s, lamb's time limit for {what} "
                                       "(lamb.verify.runner.LIMITS_S), and was stopped", self._stderr_text())
        if not line:
            code = self._proc.wait()
            stderr = self._stderr_text()
            tail = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            raise RunnerFailure(stage, f"the runtime process died ({how}): {tail[-1] if tail else 'no output'}", stderr)
        event = json.loads(line)
        if event.get("event") == "error":
            raise RunnerFailure(event["stage"], f"{event['type']}: {event['message']}", self._stderr_text())
        return event

    def _stderr_text(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def _expire(self, limit: float) -> None:
        self._expired = limit
        self.kill()

    def kill(self) -> None:
        """Stop the runner now (a time budget ran out); the pending read reports it as a failure."""
        if self._proc.poll() is None:
            self._proc.kill()

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()
        with contextlib.suppress(OSError):
            os.unlink(self._record.name)

    def __enter__(self) -> ModelRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def explain_failure(lib: str, version: str, model: Path, failure: RunnerFailure) -> tuple[str, str]:
    """One sentence: what the runtime library said, and what it means for the artifact; and the way out.

    The library's own error texts are explained by its record (``RuntimeLib.explanations``); a
    library built against NumPy 1.x fails the same way whichever it is."""
    import re

    text = failure.message
    where = f"{lib} {version}".strip()
    library = runtime_lib.get(lib)
    others = " or ".join(other.name for other in runtime_lib.for_format(library.format.name) if other.name != library.name)
    way_out = f"ship a runtime library that can run the model{f' ({others})' if others else ''}, or convert it again"
    abi = re.search(r"compiled using NumPy 1\.x cannot be run in\s+NumPy ([0-9.]+)", failure.stderr)
    if abi or "_ARRAY_API not found" in failure.stderr + text:
        numpy = f"NumPy {abi.group(1)}" if abi else "NumPy 2"
        return (f"{where} cannot run with {numpy}: it was built against NumPy 1.x, so the artifact needs numpy<2 "
                f"beside it ({_short(text, 120)})", way_out)
    for explanation in library.explanations:
        found = re.search(explanation.pattern, f"{text}\n{failure.stderr}")
        if found:
            return explanation.says.format(where=where, model=model.name, **found.groupdict()), explanation.hint
    if failure.stage == "import":
        return f"{where} cannot be imported: {_short(text)}", way_out
    if failure.stage == "load":
        return f"{where} cannot load {model.name}: {_short(text)}", way_out
    return f"{where} failed while running {model.name}: {_short(text)}", way_out


def _short(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lib_version(env: RuntimeEnv) -> str:
    """The version of ``env.lib`` installed where the runner will import it from."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    for dist in metadata.distributions(path=env.paths):
        if dist.metadata["Name"] and canonicalize_name(dist.metadata["Name"]) == env.lib:
            return dist.version
    return "unknown"
