"""Lambda's Runtime API, served by lamb to AWS's own runtime interface client (``awslambdaric``).

On Lambda, and in AWS's Python base images, the process that imports the handler and calls it is
``awslambdaric``: it asks Lambda's Runtime API for work over HTTP
(https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html). ``GET
/2018-06-01/runtime/invocation/next`` blocks until there is an event and returns it with the
request id, deadline and function ARN in ``Lambda-Runtime-*`` headers; the client answers with
``POST .../invocation/{id}/response`` or ``.../invocation/{id}/error`` (the error body is the one
Lambda returns: ``errorMessage``, ``errorType``, ``stackTrace``). A failed init (an import error,
a missing handler function) is ``POST /2018-06-01/runtime/init/error``, after which it exits.

``RuntimeAPI`` serves those paths for one execution environment on 127.0.0.1 (a free port), and
``RuntimeAPIChannel`` turns them into the messages ``lamb.local.LocalFunction`` reads from its
own stand-in bootstrap, so both run under the same timeouts, memory checks and error reports.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from lamb.handler.lambkit.settings import MAX_PAYLOAD_BYTES

PREFIX = "/2018-06-01/runtime"
NEXT = PREFIX + "/invocation/next"
INIT_ERROR = PREFIX + "/init/error"
_RESULT = re.compile(re.escape(PREFIX) + r"/invocation/([^/]+)/(response|error)$")
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"  # awslambdaric's lambda_runtime_client.py
# A response is limited as a request is ("Invocation payload (request and response)": 6 MB).
MAX_RESPONSE_BYTES = MAX_PAYLOAD_BYTES


@dataclass
class Message:
    """What the runtime client told the Runtime API, in order."""

    kind: str  # "next" (waiting for an event: init is done), "response", "error", "init_error"
    request_id: str = ""
    body: bytes = b""
    error_type: str = ""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    api: RuntimeAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client was killed mid-request (a timeout, close()): nothing to report on lamb's terminal


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm holds the second
        # until the client's delayed ACK, 40 ms on Linux, which would be counted as invoke time.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        if self.path != NEXT:
            return self._answer(404, {"errorType": "InvalidRequest", "errorMessage": f"no route {self.path}"})
        api = self.server.api
        api.messages.put(Message("next"))
        work = api.events.get()
        if work is None:  # the environment is being shut down
            return self._answer(500, {"errorType": "Runtime.Shutdown", "errorMessage": "the environment is shutting down"})
        request_id, body, deadline_ms = work
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(deadline_ms)))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", api.function_arn)
        self.send_header("Lambda-Runtime-Trace-Id", f"Root=1-{int(time.time()):08x}-{request_id.replace('-', '')[:24]};Sampled=0")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        match = _RESULT.match(self.path)
        if length > MAX_RESPONSE_BYTES:  # what Lambda answers the caller instead of the response
            self.close_connection = True
            self._answer(413, {"errorType": "RequestEntityTooLarge", "errorMessage": "response over 6 MB"})
            too_large = {"errorType": "Function.ResponseSizeTooLarge", "stackTrace": [],
                         "errorMessage": f"Response payload size ({length} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."}
            self.server.api.messages.put(Message("error", match.group(1) if match else "", json.dumps(too_large).encode()))
            return None
        body = self.rfile.read(length)
        error_type = self.headers.get(ERROR_TYPE_HEADER, "")
        if match:
            message = Message(match.group(2), match.group(1), body, error_type)
        elif self.path == INIT_ERROR:
            message = Message("init_error", "", body, error_type)
        else:
            return self._answer(404, {"errorType": "InvalidRequest", "errorMessage": f"no route {self.path}"})
        self._answer(202, {"status": "OK"})
        self.server.api.messages.put(message)

    def _answer(self, status: int, payload: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RuntimeAPI:
    """The Runtime API for one execution environment, on 127.0.0.1; ``address`` goes into
    ``AWS_LAMBDA_RUNTIME_API``. ``events`` takes (request id, JSON body, deadline in ms) for the
    client's next ``GET``; ``messages`` holds what the client said."""

    def __init__(self, function_arn: str):
        self.function_arn = function_arn
        self.messages: queue.Queue[Message] = queue.Queue()
        self.events: queue.Queue[tuple[str, bytes, float] | None] = queue.Queue()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.api = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="lamb-runtime-api", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return "127.0.0.1:%d" % self._httpd.server_address[1]

    def close(self) -> None:
        self.events.put(None)  # a GET waiting for work returns, so its thread ends
        self._httpd.shutdown()
        self._httpd.server_close()


class RuntimeAPIChannel:
    """The runtime client's messages as the stand-in bootstrap's (``lamb/_lambda_bootstrap.py``).

    ``read_message`` returns ``{"type": "init", "error"}`` once the client first asks for work (or
    reports an init error), and ``{"type": "result", "response" | "error", "invoke_ms"}`` for each
    event ``send`` gave it; the peak memory comes from ``peak_rss_mb``. None on timeout; EOFError
    when the process is gone (``alive`` says so).
    """

    def __init__(self, api: RuntimeAPI, pid: int):
        self.api = api
        self.alive = lambda: _running(pid)
        self.peak_rss_mb = lambda: _peak_rss_mb(pid)
        self._sent_at: float | None = None
        self._initialised = False

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message["event"]).encode("utf-8")
        self._sent_at = time.perf_counter()
        self.api.events.put((message["request_id"], body, message["deadline_ms"]))

    def read_message(self, timeout_s: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                message = self.api.messages.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                if not self.alive():
                    raise EOFError from None
                continue
            if message.kind == "next":
                if self._initialised:
                    continue  # the client waiting again after an answer
                self._initialised = True
                return {"type": "init", "error": None, "peak_rss_mb": self.peak_rss_mb()}
            if message.kind == "init_error":
                return {"type": "init", "error": _error_body(message), "peak_rss_mb": self.peak_rss_mb()}
            result: dict[str, Any] = {"type": "result", "request_id": message.request_id, "peak_rss_mb": self.peak_rss_mb()}
            if self._sent_at is not None:
                result["invoke_ms"] = (time.perf_counter() - self._sent_at) * 1000.0
            if message.kind == "error":
                result["error"] = _error_body(message)
            else:
                try:
                    result["response"] = json.loads(message.body) if message.body.strip() else None
                except ValueError:  # a handler may answer bytes of its own: passed on as text
                    result["response"] = message.body.decode("utf-8", errors="replace")
            return result


def _running(pid: int) -> bool:
    """Whether the environment's process still runs; it is not reaped (WNOWAIT), so ``_kill`` can
    still kill its group by that pid."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def _peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), read from outside, as Lambda's "Max Memory Used"."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _error_body(message: Message) -> dict[str, Any]:
    """The error as the client wrote it (its ``requestId`` field dropped: lamb reports its own)."""
    try:
        body = json.loads(message.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"errorMessage": message.body.decode("utf-8", errors="replace"), "errorType": message.error_type, "stackTrace": []}
    body.pop("requestId", None)
    return body
