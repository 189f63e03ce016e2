"""Run a built artifact the way Lambda runs it, without Docker.

``lamb.package.standin.unpack_artifact`` turns the zip (or an image-context folder) into a task
root; ``LocalFunction`` runs its handler in a fresh ``python -I -S`` subprocess whose import path
holds only the task root and the standard library, with Lambda's environment variables, working
directory and context object, under one ``RunSettings`` value. The handler is imported once (the
cold start, timed) and then answers events, warm, like a Lambda execution environment.

What runs the handler: AWS's own runtime interface client (``awslambdaric``, installed outside the
task root for the interpreter that runs it: ``RunSettings.runtime_client``), talking to the Runtime
API lamb serves (``lamb.runtime_api``); or, where no awslambdaric wheel exists for that Python,
lamb's stand-in bootstrap (``_lambda_bootstrap.py``) over a pipe. ``runtime_client_name`` says which.

What it mirrors from Lambda: handler exceptions come back as ``errorMessage``/``errorType``/
``stackTrace`` (the runtime's format) rather than crashing lamb; a timeout, a crash, or going over
the memory setting kills the environment and the next invocation starts a new one (cold again).
What it cannot mirror: Lambda's CPU share (locally the handler gets the whole machine, Lambda gives
one vCPU per 1,769 MB), its read-only file system outside /tmp, and its exact OS.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamb import layout
from lamb.cost import check_memory
from lamb.errors import ArtifactError, InputError
from lamb.handler.lambkit.settings import MAX_PAYLOAD_BYTES

HANDLER = layout.HANDLER
#: Lambda's default is 128 MB (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html);
#: image models need far more, so the local default is a mid-sized model's. ``lamb invoke`` prints
#: a recommendation from the measured peak.
DEFAULT_MEMORY_MB = 1024
DEFAULT_TIMEOUT_S = 30.0
#: Lambda limits the init phase (importing the handler) to 10 seconds
#: (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html, "Init phase").
INIT_TIMEOUT_S = 10.0
#: What Lambda answers (a 413, RequestEntityTooLargeException) to an event over its 6 MB
#: synchronous payload limit; ``lamb invoke`` and ``lamb serve`` refuse such events in its words.
PAYLOAD_TOO_LARGE = f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation"
#: base64 sends 3 bytes as 4 characters: a larger image cannot fit in an event Lambda accepts.
MAX_IMAGE_BYTES = MAX_PAYLOAD_BYTES * 3 // 4
_BOOTSTRAP = Path(__file__).with_name("_lambda_bootstrap.py")
_RIC_LAUNCHER = Path(__file__).with_name("_ric_launcher.py")
STAND_IN_CLIENT = "lamb's stand-in bootstrap"


def runtime_client_name(settings: RunSettings) -> str:
    """What runs the handler under ``settings``, for the output."""
    if settings.runtime_client is None:
        return STAND_IN_CLIENT
    return f"AWS's runtime interface client ({settings.runtime_client.name})"


@dataclass
class Invocation:
    """One invocation's outcome, as Lambda would report it."""

    response: Any  # what the handler returned (None when it raised, timed out or crashed)
    init_ms: float | None  # the execution environment's cold start (python start + handler import)
    invoke_ms: float | None  # the handler call itself
    peak_rss_mb: float | None  # the environment's peak resident memory so far ("Max Memory Used")
    error: dict[str, Any] | None = None  # Lambda's unhandled-error body: errorMessage, errorType, stackTrace
    cold: bool = False  # True when this invocation started the environment
    request_id: str = ""
    logs: str = ""  # what the handler printed to stdout/stderr during this invocation (and its init)


@dataclass(frozen=True)
class RunSettings:
    """How a function runs here: Lambda's settings, and what runs it.

    One value for ``LocalFunction``, ``LocalServer``, ``invoke_artifact`` and ``serve_artifact``.
    """

    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    init_timeout_s: float = INIT_TIMEOUT_S
    env: dict[str, str] = field(default_factory=dict)  # added to Lambda's variables (--env)
    python: str | None = None  # the interpreter; None: lamb's own (or the target's, when found)
    stand_in: bool = True  # may a host stand-in run an artifact this machine cannot load?
    runtime_client: Path | None = None  # awslambdaric installed for the interpreter; None: the stand-in bootstrap


# -- artifacts -> task roots ------------------------------------------------------------------------


def extract_zip(path: Path, dest: Path) -> None:
    """Unzip an artifact into ``dest`` as Lambda does: permissions kept, nothing outside ``dest``."""
    root = dest.resolve()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if target != root and root not in target.parents:  # "../" or absolute names
                raise ArtifactError(f"{path} holds an entry outside its root: {info.filename!r}", "rebuild it with `lamb package`")
            zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)  # zipfile drops permissions; Lambda keeps them (executables, .so)


# -- the execution environment ----------------------------------------------------------------------


def lambda_environment(
    task_root: Path,
    *,
    runtime_dir: Path,
    tmp_dir: Path,
    memory_mb: int,
    timeout_s: float,
    function_name: str,
    handler: str,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The variables Lambda sets for a Python function; nothing from lamb's own environment
    (no AWS credentials, no PYTHONPATH, no virtualenv) leaks in except ``PATH``."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "LD_LIBRARY_PATH": f"{task_root}:{task_root}/lib",  # Lambda puts /var/task and /var/task/lib there
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(timeout_s)),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        # Lambda's only writable place is /tmp; here each environment gets its own.
        "TMPDIR": str(tmp_dir),
        "HOME": str(tmp_dir),
    }
    env.update(extra or {})
    return env


class _Process:
    """One running execution environment: the subprocess and its two pipes."""

    def __init__(self, popen: subprocess.Popen, to_child: int, from_child: int, log_path: Path, channel: Any = None):
        self.channel = channel  # lamb.runtime_api.RuntimeAPIChannel when awslambdaric runs the handler
        self.popen = popen
        self.to_child = to_child
        self.from_child = from_child
        self.log_path = log_path
        self.log_offset = 0
        self.buffer = b""
        self.init_ms: float | None = None
        self.invocations = 0  # the first one is the cold invocation

    def read_logs(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                data = f.read()
        except OSError:
            return ""
        self.log_offset += len(data)
        return data.decode("utf-8", errors="replace")

    def read_message(self, timeout_s: float) -> dict[str, Any] | None:
        """The next JSON line from the child; None on timeout; EOFError when the child is gone."""
        if self.channel is not None:
            return self.channel.read_message(timeout_s)
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.from_child], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def send(self, message: dict[str, Any]) -> None:
        if self.channel is not None:
            return self.channel.send(message)
        data = (json.dumps(message) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(self.to_child, view)
            view = view[written:]


def _kill(popen: subprocess.Popen, fds: list[int]) -> None:
    """Kill the environment and anything it started (its own session), close the pipes."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    # Only while the leader is unreaped (running or a zombie) is its pid surely still this group's
    # id; after wait() the number could belong to someone else. The group goes too: anything the
    # handler started dies with it.
    if popen.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL is not ignorable
        popen.wait(timeout=5)


class LocalFunction:
    """A local Lambda execution environment for a task root; use as a context manager.

    ``invoke(event)`` returns an ``Invocation``; the first one after start (or after a timeout,
    crash or out-of-memory kill) is cold. Not thread-safe by design: one environment serves one
    request at a time, as on Lambda; run several for concurrency (``lamb serve --workers``).
    """

    def __init__(
        self,
        task_root: Path,
        settings: RunSettings | None = None,
        *,
        handler: str = HANDLER,
        function_name: str = "lamb-local",
    ):
        settings = settings or RunSettings()
        self.task_root = Path(task_root).resolve()
        if not self.task_root.is_dir():
            raise InputError(f"no task root at {self.task_root}", "unpack the artifact first (lamb.package.standin.unpack_artifact)")
        self.memory_mb = check_memory(settings.memory_mb)
        self.timeout_s = settings.timeout_s
        self.init_timeout_s = settings.init_timeout_s
        self.handler = handler
        self.function_name = function_name
        self.extra_env = dict(settings.env)
        self.python = settings.python or sys.executable
        self.runtime_client = settings.runtime_client
        self.init_error: dict[str, Any] | None = None
        self._proc: _Process | None = None
        self._runtime_dir: Path | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> LocalFunction:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.popen.pid if self._proc else None

    @property
    def init_ms(self) -> float | None:
        return self._proc.init_ms if self._proc else None

    def start(self) -> Invocation | None:
        """Start the environment (the cold start) unless it runs; returns the init outcome when it
        failed (as an ``Invocation`` carrying the error), else None."""
        if self._proc is not None:
            return None
        if self._runtime_dir is None:
            self._runtime_dir = Path(tempfile.mkdtemp(prefix="lamb-runtime-"))
            shutil.copy2(_BOOTSTRAP, self._runtime_dir / "bootstrap.py")
            shutil.copy2(_RIC_LAUNCHER, self._runtime_dir / "launcher.py")
            (self._runtime_dir / "tmp").mkdir()
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._runtime_dir), True)
        tmp_dir = self._runtime_dir / "tmp"
        log_path = self._runtime_dir / f"log-{uuid.uuid4().hex}.txt"
        env = lambda_environment(
            self.task_root,
            runtime_dir=self._runtime_dir,
            tmp_dir=tmp_dir,
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
            function_name=self.function_name,
            handler=self.handler,
            extra=self.extra_env,
        )
        started = time.perf_counter()
        proc = self._spawn(env, log_path)
        # Backstop for a LocalFunction dropped without close(): never leave a process behind.
        weakref.finalize(proc, _kill, proc.popen, [])
        self._proc = proc
        try:
            message = proc.read_message(self.init_timeout_s)
        except EOFError:
            message = {"error": self._exit_error(proc, "init")}
        except BaseException:
            self._stop()
            raise
        if message is None:
            message = {"error": {
                "errorMessage": f"Init phase timed out after {self.init_timeout_s:.2f} seconds",
                "errorType": "Runtime.InitTimeout", "stackTrace": [],
            }}
        proc.init_ms = (time.perf_counter() - started) * 1000.0
        rss = message.get("peak_rss_mb")
        error = message.get("error")
        if error is None and rss is not None and rss > self.memory_mb:
            error = _oom_error("init", rss, self.memory_mb)
        if error is not None:
            self.init_error = error
            logs = proc.read_logs()
            self._stop()
            return Invocation(None, proc.init_ms, None, rss, error, cold=True, logs=logs)
        self.init_error = None
        return None

    def _spawn(self, env: dict[str, str], log_path: Path) -> _Process:
        """Start the process that runs the handler: awslambdaric against a Runtime API of its own,
        or the stand-in bootstrap over two pipes."""
        assert self._runtime_dir is not None
        api = None
        if self.runtime_client is not None:
            from lamb.runtime_api import RuntimeAPI

            api = RuntimeAPI(f"arn:aws:lambda:{env['AWS_REGION']}:000000000000:function:{self.function_name}")
            env = {**env, "AWS_LAMBDA_RUNTIME_API": api.address}
            keep: tuple[int, ...] = ()
            script, fds = [str(self._runtime_dir / "launcher.py"), str(self.runtime_client), str(self.task_root), self.handler], []
        else:
            to_child_r, to_child_w = os.pipe()
            from_child_r, from_child_w = os.pipe()
            fds, keep = [to_child_r, to_child_w, from_child_r, from_child_w], (to_child_r, from_child_w)
            script = [str(self._runtime_dir / "bootstrap.py"), str(self.task_root), self.handler, str(to_child_r), str(from_child_w)]
        try:
            with open(log_path, "wb") as log:
                popen = subprocess.Popen(
                    # -B: Lambda's task root is read-only, so no .pyc gets cached between cold starts there.
                    # -u: prints and tracebacks reach the log in the order they happened.
                    [self.python, "-I", "-S", "-B", "-u", *script],
                    cwd=self.task_root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=keep,
                    # Its own session: Ctrl-C reaches lamb only, and lamb kills the whole group.
                    start_new_session=True,
                )
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            if api is not None:
                api.close()
            raise ArtifactError(f"cannot start {self.python} ({exc})", "check the Python interpreter lamb runs under") from None
        if api is not None:
            from lamb.runtime_api import RuntimeAPIChannel

            channel = RuntimeAPIChannel(api, popen.pid)
            return _Process(popen, -1, -1, log_path, channel)
        os.close(fds[0])
        os.close(fds[3])
        return _Process(popen, fds[1], fds[2], log_path)

    def close(self) -> None:
        """Kill the environment (and anything it started) and remove its temp files.

        Safe from another thread while ``invoke`` runs: the kill comes first, so the invocation
        ends at once (reported as a runtime exit) instead of holding the shutdown until timeout.
        """
        proc = self._proc
        if proc is not None and proc.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
        with self._lock:
            self._stop()
            if self._finalizer is not None:
                self._finalizer()  # removes the runtime dir (bootstrap, /tmp, logs)
                self._finalizer = None
                self._runtime_dir = None

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _kill(proc.popen, [fd for fd in (proc.to_child, proc.from_child) if fd >= 0])
            if proc.channel is not None:
                proc.channel.api.close()

    # -- invoking ---------------------------------------------------------------------------------

    def invoke(self, event: Any) -> Invocation:
        """Run the handler on ``event`` (any JSON value); never raises for handler failures."""
        with self._lock:
            if self._proc is None:
                failed = self.start()
                if failed is not None:
                    return failed
            proc = self._proc
            assert proc is not None
            cold = proc.invocations == 0
            proc.invocations += 1
            request_id = str(uuid.uuid4())
            deadline_ms = time.time() * 1000 + self.timeout_s * 1000
            error: dict[str, Any] | None
            try:
                proc.send({"request_id": request_id, "event": event, "deadline_ms": deadline_ms})
                message = proc.read_message(self.timeout_s)
            except (EOFError, BrokenPipeError):
                error = self._exit_error(proc, "invoke", request_id)
                logs = proc.read_logs()
                self._stop()
                return Invocation(None, proc.init_ms, None, None, error, cold, request_id, logs)
            except BaseException:  # Ctrl-C mid-invocation: the environment is in an unknown state
                self._stop()
                raise
            if message is None:
                logs = proc.read_logs()
                self._stop()
                error = {
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after {self.timeout_s:.2f} seconds",
                    "errorType": "Sandbox.Timedout", "stackTrace": [],
                }
                return Invocation(None, proc.init_ms, self.timeout_s * 1000.0, None, error, cold, request_id, logs)
            logs = proc.read_logs()
            rss = message.get("peak_rss_mb")
            error = message.get("error")
            response = message.get("response")
            if rss is not None and rss > self.memory_mb:
                # Lambda kills an environment the moment it crosses its memory setting.
                error, response = _oom_error(request_id, rss, self.memory_mb), None
                self._stop()
            return Invocation(response, proc.init_ms, message.get("invoke_ms"), rss, error, cold, request_id, logs)

    def _exit_error(self, proc: _Process, phase: str, request_id: str = "") -> dict[str, Any]:
        # Peek at the exit status without reaping (WNOWAIT), so _kill can still clean the group.
        status = None
        deadline = time.monotonic() + 2.0
        while status is None and time.monotonic() < deadline:
            try:
                status = os.waitid(os.P_PID, proc.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                break
            if status is None:
                time.sleep(0.01)
        if status is not None and status.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
            how = f"signal: {signal.Signals(status.si_status).name}"
        elif status is not None:
            how = f"exit status {status.si_status}"
        else:
            how = "closed its pipe"
        prefix = f"RequestId: {request_id} " if request_id else ""
        return {
            "errorMessage": f"{prefix}Error: Runtime exited with error: {how} ({phase} phase)",
            "errorType": "Runtime.ExitError",
            "stackTrace": [],
        }


def _oom_error(request_id: str, rss: float, memory_mb: int) -> dict[str, Any]:
    return {
        "errorMessage": (
            f"RequestId: {request_id} Error: Runtime exited with error: signal: killed "
            f"(peak RSS {rss:.0f} MB > {memory_mb} MB memory setting)"
        ),
        "errorType": "Runtime.OutOfMemory",
        "stackTrace": [],
    }
