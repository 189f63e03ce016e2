"""``lamb serve``: the artifact behind the AWS Runtime Interface Emulator's HTTP endpoint.

The course runs its Lambda image with ``docker run -p 8080:8080`` and posts events to
``http://localhost:8080/2015-03-31/functions/function/invocations``; this answers the same path on
127.0.0.1:8080 by default, so that client works unchanged, without Docker (AWS's docs map
``-p 9000:8080``: ``--port 9000`` serves those). Each of ``workers`` warm
``LocalFunction`` processes serves one request at a time (as one Lambda execution environment
does); requests beyond that wait in a queue, none is dropped. Responses follow the emulator:
200 with the handler's JSON, and for an unhandled error 200 with Lambda's error body plus
``X-Amz-Function-Error: Unhandled``.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lamb import stop
from lamb.cost import FunctionAdvice, advise_function
from lamb.errors import ArtifactError, InputError
from lamb.invoke import percentile
from lamb.local import Invocation, LocalFunction, RunSettings, runtime_client_name
from lamb.serve.protocol import HTTPServer, InvocationHandler
from lamb.serve.report import ServeReport

DEFAULT_PORT = 8080  # the course's `docker run -p 8080:8080`


class _Job:
    __slots__ = ("done", "event", "failure", "result")

    def __init__(self, event: Any):
        self.event = event
        self.done = threading.Event()
        self.result: Invocation | None = None
        self.failure: str | None = None  # why the environment could not be (re)started: no fds, no memory


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
        except (OSError, ArtifactError):
            pass  # no environment yet: each request tries again (and is answered 503 while it cannot)
        finally:
            self.ready.set()
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                job.result = self.function.invoke(job.event)
            except (OSError, ArtifactError) as exc:
                # (Re)starting an environment needs descriptors, memory and a fork; when one is
                # missing the request is answered 503 and the worker lives on for the next one.
                job.failure = str(exc)
            finally:
                job.done.set()


def check_options(port: int, workers: int) -> None:
    if workers < 1:
        raise InputError("--workers must be at least 1", "one worker is one warm Lambda execution environment")
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port", "use a port from 1 to 65535 (0 picks a free one)")


class LocalServer:
    """The emulator endpoint over ``workers`` warm functions; a context manager.

    ``port=0`` picks a free port (see ``url``). ``listen()`` answers at once; requests that come
    before ``load()`` has warmed the workers wait in the queue and are answered once the function
    is loaded, as the emulator does (``start()`` is both). ``close()`` stops accepting, answers
    what still waits, stops the workers and kills their processes.
    """

    def __init__(
        self,
        task_root: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        workers: int = 1,
        settings: RunSettings | None = None,
        artifact: Path | None = None,
    ):
        check_options(port, workers)
        self.task_root = Path(task_root) if task_root is not None else None
        self.settings = settings
        self.host, self.port = host, port
        self.n_workers = workers
        self.jobs: queue.Queue = queue.Queue()
        self.workers: list[_Worker] = []
        self.httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latencies: list[float] = []
        self._answered: list[Invocation] = []  # what the advice rests on (lamb.cost.advise_function)
        self.report = ServeReport(artifact, "", workers)
        self._in_flight = 0  # requests read and not yet answered: close() lets them finish
        self._started = 0.0
        self._closed = threading.Event()
        self.ready = threading.Event()  # set once every worker has finished its cold start

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/2015-03-31/functions/function/invocations"

    @property
    def page_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.listen()
        self.load()

    def listen(self) -> None:
        """Bind and answer from now on; invocations queue until ``load()``."""
        self._started = time.perf_counter()
        try:
            self.httpd = HTTPServer((self.host, self.port), InvocationHandler)
            self.httpd.lamb = self
        except OSError as exc:
            raise InputError(f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})", "pick another --port") from None
        self.port = self.httpd.server_address[1]
        self.report.url = self.url
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="lamb-http", daemon=True)
        self._thread.start()

    def load(self, task_root: Path | None = None, settings: RunSettings | None = None) -> None:
        """Start the workers on ``task_root`` and wait for their cold starts (run in parallel)."""
        self.task_root = Path(task_root) if task_root is not None else self.task_root
        self.settings = settings or self.settings
        root = self.task_root
        if root is None:
            raise InputError("no task root to serve", "pass the unpacked artifact's folder")
        try:
            for i in range(self.n_workers):
                worker = _Worker(i, self.jobs, lambda: LocalFunction(root, self.settings))
                self.workers.append(worker)
                worker.start()
            for worker in self.workers:
                worker.ready.wait()
                if worker.function.init_ms is not None:
                    self.report.init_ms.append(worker.function.init_ms)
        except BaseException:
            self.close()
            raise
        self.ready.set()

    @property
    def init_failures(self) -> list[Invocation]:
        return [w.init_failure for w in self.workers if w.init_failure is not None]

    def serve_forever(self) -> None:
        """Block until Ctrl-C (or SIGTERM, or ``close()`` from another thread); then shut down."""
        try:
            with until_interrupted():
                while not self._closed.wait(0.2):
                    pass
        finally:
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
        if not self.workers:  # never loaded: nobody takes what waits
            _answer_waiting(self.jobs, "lamb serve stopped before the function was loaded")
        deadline = time.monotonic() + CLOSE_GRACE_S  # requests being run get CLOSE_GRACE_S in all to finish
        for worker in self.workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        for worker in self.workers:  # kills any environment still busy with a request
            worker.function.close()
        for worker in self.workers:
            worker.join(timeout=5)
        deadline = time.monotonic() + CLOSE_GRACE_S  # its answer (or its Runtime.ExitError) goes out before exit
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            self.report.p50_ms = percentile(self._latencies, 50)
            self.report.p95_ms = percentile(self._latencies, 95)
        self.report.seconds = time.perf_counter() - self._started
        self.report.advice = self._advice()
        return self.report

    def _advice(self) -> FunctionAdvice | None:
        """The memory and timeout ``lamb invoke`` would advise, from the requests served: the warm
        median, the first request's cold start, the peak memory."""
        answered = self._answered
        if not answered:
            return None
        from lamb import manifest as mf

        warm = [r.invoke_ms for r in answered if not r.cold and r.invoke_ms is not None]
        first = next((r for r in answered if r.cold), answered[0])
        record = mf.package_record(self.task_root) if self.task_root is not None else None
        return advise_function(percentile(warm, 50) if warm else first.invoke_ms, init_ms=first.init_ms,
                               peak_rss_mb=max(r.peak_rss_mb or 0.0 for r in answered) or None,
                               arch=record.arch if record is not None else "x86_64",
                               env=self.settings.env if self.settings else None, first_invoke_ms=first.invoke_ms)

    # -- called from request threads ---------------------------------------------------------------

    def call(self, event: Any) -> Invocation | str:
        """The invocation, or why no environment could run it (answered 503)."""
        job = _Job(event)
        self.jobs.put(job)
        job.done.wait()
        if job.failure is not None:
            return job.failure
        assert job.result is not None
        if job.result.error is None and job.result.invoke_ms is not None:
            with self._lock:
                self._answered.append(job.result)
        return job.result

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _record(self, ms: float, unhandled: bool) -> None:
        with self._lock:
            self.report.requests += 1
            self.report.unhandled_errors += int(unhandled)
            self._latencies.append(ms)

    def _reject(self) -> None:
        with self._lock:
            self.report.rejected += 1


def _answer_waiting(jobs: queue.Queue, why: str) -> None:
    while True:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            return
        if job is not None:
            job.failure = why
            job.done.set()


def _raise_interrupt(signum, frame):  # SIGTERM: shut down as cleanly as for Ctrl-C
    raise KeyboardInterrupt


@contextlib.contextmanager
def until_interrupted() -> Iterator[None]:
    """Ctrl-C, or SIGTERM (where this thread may set signals), ends the block quietly."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if threading.current_thread() is threading.main_thread() else None
    try:
        yield
    except KeyboardInterrupt:
        stop.reset()  # the stop is how serving ends, not a step cut short (lamb.stop)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# How long close() (Ctrl-C, SIGTERM) lets a request being run finish before its environment is
# killed, and then how long it waits for that request's answer to be sent.
CLOSE_GRACE_S = 2.0


def serve_artifact(
    artifact: Path | None = None,
    *,
    port: int = DEFAULT_PORT,
    workers: int = 1,
    settings: RunSettings | None = None,
    on_listening: Callable[[LocalServer], None] | None = None,
    on_ready: Callable[[LocalServer], None] | None = None,
) -> ServeReport:
    """Listen at once, unpack ``artifact`` and serve it until Ctrl-C.

    ``on_listening`` is called as soon as the port answers (requests wait for the function from
    then on), ``on_ready`` once all workers are warm.
    """
    from lamb.invoke import default_artifact, runnable_artifact

    check_options(port, workers)  # before listening or unpacking anything
    artifact = Path(artifact) if artifact is not None else default_artifact()
    server = LocalServer(port=port, workers=workers, settings=settings, artifact=artifact)
    server.listen()
    try:
        # Ctrl-C or SIGTERM while the function loads stops as cleanly as once it serves.
        with until_interrupted():
            if on_listening is not None:
                on_listening(server)
            with runnable_artifact(artifact, settings or RunSettings()) as (unpacked, task_root, run_settings, notes):
                server.report.artifact = unpacked
                server.report.notes = notes
                server.report.runtime_client = runtime_client_name(run_settings)
                server.load(task_root, run_settings)
                if on_ready is not None:
                    on_ready(server)
                server.serve_forever()
    finally:
        server.close()
    return server.report
