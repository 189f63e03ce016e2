"""``lamb serve``: the artifact behind the AWS Runtime Interface Emulator's HTTP endpoint.

The course runs its Lambda image with Docker and posts events to
``http://localhost:9000/2015-03-31/functions/function/invocations``; this answers the same path on
127.0.0.1, so that client works unchanged, without Docker. Each of ``workers`` warm
``LocalFunction`` processes serves one request at a time (as one Lambda execution environment
does); requests beyond that wait in a queue, none is dropped. Responses follow the emulator:
200 with the handler's JSON, and for an unhandled error 200 with Lambda's error body plus
``X-Amz-Function-Error: Unhandled``.
"""

from __future__ import annotations

import http.server
import json
import queue
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lamb.errors import InputError
from lamb.handler.lambda_function import MAX_PAYLOAD_BYTES
from lamb.invoke import percentile
from lamb.local import Invocation, LocalFunction, RunSettings

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")
DEFAULT_PORT = 9000


@dataclass
class ServeReport:
    """What a ``lamb serve`` session did, reported when it stops."""

    artifact: Path | None
    url: str
    workers: int
    requests: int = 0
    unhandled_errors: int = 0
    rejected: int = 0  # bad HTTP requests (wrong path, not JSON, too large): never reached a worker
    init_ms: list[float] = field(default_factory=list)  # each worker's cold start
    p50_ms: float | None = None  # request latency as the HTTP client saw it (queueing included)
    p95_ms: float | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class _Job:
    __slots__ = ("event", "done", "result")

    def __init__(self, event: Any):
        self.event = event
        self.done = threading.Event()
        self.result: Invocation | None = None


class _Worker(threading.Thread):
    """Owns one LocalFunction; takes jobs from the shared queue until it gets None."""

    def __init__(self, index: int, jobs: queue.Queue, make: Callable[[], LocalFunction]):
        super().__init__(name=f"lamb-worker-{index}", daemon=True)
        self.jobs = jobs
        self.function = make()
        self.ready = threading.Event()
        self.init_failure: Invocation | None = None

    def run(self) -> None:
        try:
            self.init_failure = self.function.start()
        finally:
            self.ready.set()
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                job.result = self.function.invoke(job.event)
            finally:
                job.done.set()


def check_options(port: int, workers: int) -> None:
    if workers < 1:
        raise InputError("--workers must be at least 1", "one worker is one warm Lambda execution environment")
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port", "use a port from 1 to 65535 (0 picks a free one)")


class LocalServer:
    """The emulator endpoint over ``workers`` warm functions; a context manager.

    ``port=0`` picks a free port (see ``url``). ``close()`` stops accepting, stops the workers and
    kills their processes.
    """

    def __init__(
        self,
        task_root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        workers: int = 1,
        settings: RunSettings | None = None,
        artifact: Path | None = None,
    ):
        check_options(port, workers)
        self.task_root = Path(task_root)
        self.host, self.port = host, port
        self.n_workers = workers
        self._make = lambda: LocalFunction(self.task_root, settings)
        self.jobs: queue.Queue = queue.Queue()
        self.workers: list[_Worker] = []
        self.httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latencies: list[float] = []
        self.report = ServeReport(artifact, "", workers)
        self._started = 0.0
        self._closed = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/2015-03-31/functions/function/invocations"

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._started = time.perf_counter()
        try:
            self.httpd = _HTTPServer((self.host, self.port), _InvocationHandler)
            self.httpd.lamb = self
        except OSError as exc:
            raise InputError(f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})", "pick another --port") from None
        self.port = self.httpd.server_address[1]
        self.report.url = self.url
        try:
            for i in range(self.n_workers):
                worker = _Worker(i, self.jobs, self._make)
                self.workers.append(worker)
                worker.start()
            for worker in self.workers:  # cold starts run in parallel; serve once all are warm
                worker.ready.wait()
                if worker.function.init_ms is not None:
                    self.report.init_ms.append(worker.function.init_ms)
        except BaseException:
            self.close()
            raise
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="lamb-http", daemon=True)
        self._thread.start()

    @property
    def init_failures(self) -> list[Invocation]:
        return [w.init_failure for w in self.workers if w.init_failure is not None]

    def serve_forever(self) -> None:
        """Block until Ctrl-C (or SIGTERM, or ``close()`` from another thread); then shut down."""
        previous = signal.signal(signal.SIGTERM, _raise_interrupt) if threading.current_thread() is threading.main_thread() else None
        try:
            while not self._closed.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            self.close()

    def close(self) -> ServeReport:
        with self._lock:
            already = self._closed.is_set()
            self._closed.set()
        if already:
            return self.report
        if self.httpd is not None:
            if self._thread is not None:
                self.httpd.shutdown()  # stop accepting; returns once serve_forever has exited
            self.httpd.server_close()
        for _ in self.workers:
            self.jobs.put(None)
        for worker in self.workers:
            worker.join(timeout=2)
        for worker in self.workers:  # kills any environment still busy with a request
            worker.function.close()
        for worker in self.workers:
            worker.join(timeout=5)
        with self._lock:
            self.report.p50_ms = percentile(self._latencies, 50)
            self.report.p95_ms = percentile(self._latencies, 95)
        self.report.seconds = time.perf_counter() - self._started
        return self.report

    # -- called from request threads ---------------------------------------------------------------

    def call(self, event: Any) -> Invocation:
        job = _Job(event)
        self.jobs.put(job)
        job.done.wait()
        assert job.result is not None
        return job.result

    def _record(self, ms: float, unhandled: bool) -> None:
        with self._lock:
            self.report.requests += 1
            self.report.unhandled_errors += int(unhandled)
            self._latencies.append(ms)

    def _reject(self) -> None:
        with self._lock:
            self.report.rejected += 1


def _raise_interrupt(signum, frame):  # SIGTERM: shut down as cleanly as for Ctrl-C
    raise KeyboardInterrupt


class _HTTPServer(http.server.ThreadingHTTPServer):
    lamb: LocalServer  # what the request handlers serve (set right after the server is made)
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a burst of clients queues in the kernel instead of being refused


# Events nested deeper are refused: at about 990 levels json itself gives up, and an event just
# under that parses here but cannot be encoded again for the worker or its answer sent back.
MAX_EVENT_DEPTH = 500


def _nesting(value: Any) -> int:
    """How deeply lists and objects nest in ``value``, counted without recursion."""
    depth, level = 0, [value]
    while containers := [x for x in level if isinstance(x, (list, dict))]:
        depth += 1
        level = [v for x in containers for v in (x.values() if isinstance(x, dict) else x)]
    return depth


# A client that announces more body than it sends, or stops reading the answer, would otherwise
# hold its request thread forever: the body must arrive within this one deadline, and an idle
# keep-alive connection is closed after it.
CLIENT_TIMEOUT_S = 30.0


class _InvocationHandler(http.server.BaseHTTPRequestHandler):
    """One HTTP connection to the endpoint; ``self.server.lamb`` is the ``LocalServer`` it serves."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the emulator does
    server_version = "lamb-serve"

    @property
    def timeout(self) -> float:
        """Every socket operation's limit (socketserver applies it per connection); read when a
        connection starts, so the module's CLIENT_TIMEOUT_S can be changed at run time."""
        return CLIENT_TIMEOUT_S

    def do_POST(self):  # noqa: N802 (http.server's naming)
        started = time.perf_counter()
        if self._off_route():
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return self._reject(411, "LengthRequiredException", "send a Content-Length")
        length = int(length)
        if length > MAX_PAYLOAD_BYTES:
            self.close_connection = True  # the unread body must not be parsed as the next request
            return self._reject(
                413, "RequestEntityTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation",
            )
        try:
            body = self._read_body(length)
        except TimeoutError:
            self.close_connection = True
            return self._reject(408, "RequestTimeoutException", f"the {length}-byte body did not arrive within {self.timeout:g} s")
        if len(body) < length:
            self.close_connection = True
            return self._reject(400, "InvalidRequestContentException", f"the body ended after {len(body)} of its {length} bytes")
        try:
            event = json.loads(body) if body.strip() else {}
        except RecursionError:
            return self._reject(400, "InvalidRequestContentException", "Could not parse request body into json: nested too deeply")
        except ValueError:  # not JSON, not UTF-8, or an integer of more than 4,300 digits
            return self._reject(400, "InvalidRequestContentException", "Could not parse request body into json")
        if _nesting(event) > MAX_EVENT_DEPTH:
            return self._reject(400, "InvalidRequestContentException", f"the event nests deeper than {MAX_EVENT_DEPTH} levels")
        result = self.server.lamb.call(event)
        headers = {"X-Lamb-Invoke-Ms": f"{result.invoke_ms or 0:.1f}", "X-Lamb-Cold": str(result.cold).lower()}
        if result.error is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
            payload = result.error
        else:
            payload = result.response
        self._send(200, payload, headers)
        self.server.lamb._record((time.perf_counter() - started) * 1000.0, result.error is not None)

    def _read_body(self, length: int) -> bytes:
        """Up to ``length`` bytes, all within one deadline: a client trickling a byte at a time
        restarts a plain socket timeout with every byte. Shorter if the client hung up."""
        deadline = time.monotonic() + self.timeout
        chunks, received = [], 0
        try:
            while received < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(length - received, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        finally:
            self.connection.settimeout(self.timeout)
        return b"".join(chunks)

    def __getattr__(self, name: str):
        # http.server answers a method without a do_<METHOD> with an HTML 501; every method
        # but POST gets the emulator's JSON 405 (404 off the invoke path) instead.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _off_route(self) -> bool:
        """Answer 404 (and say so) when the path is not the invoke path; every method checks it first."""
        if INVOKE_PATH.match(self.path.split("?", 1)[0]):
            return False
        self._reject(404, "ResourceNotFoundException", f"no route {self.path}; POST to /2015-03-31/functions/function/invocations")
        return True

    def _method_not_allowed(self) -> None:
        if self._off_route():
            return
        self._reject(405, "MethodNotAllowed", f"{self.command} is not allowed; POST a JSON event to /2015-03-31/functions/function/invocations", {"Allow": "POST"})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (a malformed request line, headers too long, ...): JSON too,
        # with a status line even when the request line was too broken to name a version.
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            self.request_version = self.protocol_version
        self._reject(code, "InvalidRequestException", message or http.HTTPStatus(code).phrase, {"Connection": "close"})

    def _reject(self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.server.lamb._reject()
        self._send(status, {"errorType": error_type, "errorMessage": message}, headers or {})

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        try:
            data = json.dumps(payload).encode("utf-8")
        except RecursionError:  # the function answered JSON too deep to encode again here
            status, headers = 502, {"X-Amz-Function-Error": "Unhandled"}
            data = json.dumps({"errorType": "Runtime.InvalidResponse", "errorMessage": "the response nests too deeply to serialise"}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has headers only
                self.wfile.write(data)
        except OSError:  # the client hung up or stopped reading (the socket timeout): nobody to tell
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # the CLI reports totals at the end; per-request lines would drown the terminal


def serve_artifact(
    artifact: Path | None = None,
    *,
    port: int = DEFAULT_PORT,
    workers: int = 1,
    settings: RunSettings | None = None,
    on_ready: Callable[[LocalServer], None] | None = None,
) -> ServeReport:
    """Unpack ``artifact`` and serve it until Ctrl-C; ``on_ready`` is called once all workers are warm."""
    from lamb.invoke import runnable_artifact

    check_options(port, workers)  # before unpacking anything
    with runnable_artifact(artifact, settings or RunSettings()) as (artifact, task_root, settings, notes):
        server = LocalServer(task_root, port=port, workers=workers, settings=settings, artifact=artifact)
        server.report.notes = notes
        server.start()
        try:
            if on_ready is not None:
                on_ready(server)
        except BaseException:
            server.close()
            raise
        server.serve_forever()
        return server.report
