"""The emulator's HTTP side of ``lamb serve``: reading a request within its limits, answering in JSON.

Every refusal is the emulator's JSON error with a status (400, 404, 405, 408, 411, 413, 501, 503),
never a dropped connection or a traceback. ``self.server.lamb`` is the ``LocalServer`` a
request is run by (``lamb.serve``).
"""

from __future__ import annotations

import errno
import http.server
import io
import json
import os
import re
import socket
import time
from collections.abc import Callable
from email.message import Message
from typing import Any

from lamb.handler.lambkit.settings import MAX_PAYLOAD_BYTES
from lamb.local import PAYLOAD_TOO_LARGE
from lamb.records import nesting
from lamb.serve import page

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")

_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE)


class HTTPServer(http.server.ThreadingHTTPServer):
    lamb: Any  # the LocalServer (lamb.serve) the request handlers serve, set right after the server is made
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a burst of clients queues in the kernel instead of being refused

    def __init__(self, *args: Any, **kwargs: Any):
        self._reserve: int | None = None  # server_close() runs when binding fails
        super().__init__(*args, **kwargs)
        # One descriptor held in reserve: out of descriptors, accept() fails and the connection
        # stays in the kernel's queue, so the listening socket stays readable and the loop spins.
        # Freeing the reserve lets us accept it, answer 503 and close it.
        self._reserve = os.open(os.devnull, os.O_RDONLY)

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in _OUT_OF_FDS:
                self._shed()
            raise  # socketserver drops this one attempt and keeps serving

    def _shed(self) -> None:
        """Accept one waiting connection with the reserve descriptor and answer it 503."""
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
        try:
            conn, _ = self.socket.accept()
        except OSError:
            return
        try:
            conn.settimeout(1.0)
            body = json.dumps({"errorType": "ServiceUnavailable", "errorMessage": "lamb serve is out of file descriptors; retry shortly"}).encode()
            head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            conn.sendall(head.encode() + body)
        except OSError:
            pass
        finally:
            conn.close()
            self.lamb._reject()
            try:
                self._reserve = os.open(os.devnull, os.O_RDONLY)
            except OSError:
                self._reserve = None  # taken meanwhile: the next shortage is answered by dropping

    def server_close(self) -> None:
        super().server_close()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None


class _DeadlineReader(socket.SocketIO):
    """A connection's reads, each limited by the time left to the handler's current deadline.

    A plain socket timeout restarts with every byte, so a client sending one header byte every
    20 s would hold a thread forever; here the request line and headers share one deadline (and
    the body gets another, as long).
    """

    def __init__(self, sock: socket.socket, deadline: Callable[[], float]):
        super().__init__(sock, "rb")
        self._conn = sock
        self._deadline = deadline

    def readinto(self, b: Any) -> int | None:
        left = self._deadline() - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        self._conn.settimeout(left)
        return super().readinto(b)


# Events nested deeper are refused: at about 990 levels json itself gives up, and an event just
# under that parses here but cannot be encoded again for the worker or its answer sent back.
MAX_EVENT_DEPTH = 500


# A client that announces more body than it sends, or stops reading the answer, would otherwise
# hold its request thread forever: the body must arrive within this one deadline, and an idle
# keep-alive connection is closed after it.
CLIENT_TIMEOUT_S = 30.0


_DIGITS = re.compile(r"[0-9]{1,19}", re.ASCII)
# 8 hex digits: 4 GiB, far past the limit. CRLF only (RFC 9112 7.1): a server that also ends a chunk
# line at a bare LF reads a body differently from a proxy that does not, and that is smuggling.
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(;[^\r\n]*)?\r\n$")
_MAX_CHUNK_LINE = 4096
_MAX_TRAILERS = 100


class _BadBody(Exception):
    """A body refused before it reached a worker: the status and the emulator's error."""

    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


# Closing a socket with unread input sends a reset, which can destroy the answer still on its way
# to a client that is sending a body we refused (a 413): so stop sending, then read and drop what
# it still sends, for at most this long and this much (Apache's lingering close does the same).
LINGER_S = 2.0
LINGER_BYTES = 16 * 1024 * 1024


def _lingering_close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_WR)
        deadline, drained = time.monotonic() + LINGER_S, 0
        while drained < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            chunk = conn.recv(1 << 16)
            if not chunk:
                return
            drained += len(chunk)
    except OSError:  # the client is gone, or the deadline passed: close as it is
        pass


def _too_large() -> _BadBody:
    return _BadBody(413, "RequestEntityTooLargeException", PAYLOAD_TOO_LARGE)


def _list_field(headers: Message, name: str) -> list[str] | None:
    """A list-valued header's elements over all its lines (RFC 9110 5.6.1), empty elements
    dropped and case kept; None when the request has no such header."""
    lines = headers.get_all(name)
    if lines is None:
        return None
    return [element.strip() for line in lines for element in str(line).split(",") if element.strip()]


# RFC 3986's host (an IP literal in brackets, or a reg-name / IPv4 address) and an optional port;
# empty is allowed (RFC 9112 3.2: a target without an authority).
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(:[0-9]*)?")


def _body_length(headers: Message, version: str) -> int | None:
    """The request body's length in bytes, or None for a chunked body, framed as RFC 9112 6.3 says.

    Every ambiguity is refused (and the connection then closed by the caller) rather than
    resolved, since a proxy in front may resolve it the other way: that difference is what
    request smuggling rides on.
    """
    codings = _list_field(headers, "Transfer-Encoding")
    lengths = _list_field(headers, "Content-Length")
    if codings is not None:
        if version == "HTTP/1.0":  # 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing
            raise _BadBody(400, "InvalidRequestException", "Transfer-Encoding is not HTTP/1.0; send a Content-Length")
        if lengths is not None:  # 6.3: may be an attempt at request smuggling
            raise _BadBody(400, "InvalidRequestException", "send either Content-Length or Transfer-Encoding: chunked, not both")
        # 6.3: unless chunked is the last coding the body's end cannot be known; chunked once only
        if [c.lower() for c in codings].count("chunked") != 1 or codings[-1].lower() != "chunked":
            raise _BadBody(400, "InvalidRequestException", f"Transfer-Encoding {', '.join(codings)[:80]!r} does not end with chunked, once")
        if len(codings) > 1:  # 6.1: a coding the server does not implement is a 501
            raise _BadBody(501, "NotImplementedException", f"Transfer-Encoding {', '.join(codings[:-1])[:80]!r} is not implemented; send the body chunked only")
        return None
    if lengths is None:
        raise _BadBody(411, "LengthRequiredException", "send a Content-Length (or Transfer-Encoding: chunked)")
    # ASCII digits only: str.isdigit() admits "²" and other digits int() refuses, and a byte
    # count longer than 19 digits is no byte count (int() refuses over 4,300 digits).
    for value in lengths or [""]:
        if not _DIGITS.fullmatch(value):
            raise _BadBody(400, "InvalidRequestException", f"Content-Length {value[:40]!r} is not a byte count")
    # RFC 9110 8.6: a repeated Content-Length of one value may be read as that value; two
    # different values leave the body's end unknown
    if len({int(value) for value in lengths}) > 1:
        raise _BadBody(400, "InvalidRequestException", f"Content-Length is given as {', '.join(lengths)[:80]!r}; send one value")
    length = int(lengths[0])
    if length > MAX_PAYLOAD_BYTES:
        raise _too_large()
    return length


class InvocationHandler(http.server.BaseHTTPRequestHandler):
    """One HTTP connection to the endpoint; ``self.server.lamb`` is the ``LocalServer`` it serves."""

    server: HTTPServer

    protocol_version = "HTTP/1.1"  # keep-alive, as the emulator does
    server_version = "lamb-serve"

    @property
    def timeout(self) -> float:  # type: ignore[override]  # a property on purpose: read per connection
        """Every socket operation's limit (socketserver applies it per connection); read when a
        connection starts, so the module's CLIENT_TIMEOUT_S can be changed at run time."""
        return CLIENT_TIMEOUT_S

    _linger = False  # refused mid-body: drain what the client still sends before closing

    def finish(self) -> None:
        super().finish()
        if self._linger:
            _lingering_close(self.connection)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # socketserver's reader; ours reads within the request's deadline
        self._deadline = time.monotonic() + self.timeout
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, lambda: self._deadline))

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        # RFC 9112 5.1, 5.2: a field line that is not "name: value" (whitespace before the colon,
        # no colon: Python drops it and every line after it) or is folded onto the next line is
        # refused, never guessed at: a proxy in front may have read it otherwise.
        if self.headers.defects or any("\n" in str(value) for value in self.headers.values()):
            self.send_error(400, "a header line is not 'name: value' on a line of its own")
            return False
        # RFC 9112 3.2: an HTTP/1.1 request without Host, or with two, or with one that is no
        # host[:port], is a 400 (as the Lambda emulator's Go server answers); a proxy in front
        # may route by a Host this server would have read differently.
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1 or (not hosts and self.request_version == "HTTP/1.1") or not all(_HOST.fullmatch(h.strip(" \t")) for h in hosts):
            self.send_error(400, "an HTTP/1.1 request needs one Host header, host[:port]")
            return False
        return True

    def handle_one_request(self) -> None:
        # One deadline from the first byte awaited to the last header (an idle keep-alive
        # connection is closed by it too); http.server closes the connection when it passes.
        self._deadline = time.monotonic() + self.timeout
        try:
            super().handle_one_request()
        except ConnectionError:  # the client reset the connection: nobody to answer, nothing to report
            self.close_connection = True

    def do_GET(self):
        """The page at / (``lamb.serve.page``) and the status it polls; the emulator's 404/405 elsewhere."""
        path = self.path.split("?", 1)[0]
        self._unread_body()  # a GET's body is never read
        if path in page.PAGE_PATHS:
            return self._send_bytes(200, page.page(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})
        if path == page.STATUS_PATH:
            return self._send(200, page.status(self.server.lamb), {"Cache-Control": "no-store"})
        return self._method_not_allowed()

    def do_POST(self):
        started = time.perf_counter()
        if self._off_route():
            return
        self.server.lamb._begin()
        try:
            self._invoke(started)
        finally:
            self.server.lamb._end()

    def _invoke(self, started: float) -> None:
        self._deadline = time.monotonic() + self.timeout  # the body's own deadline
        try:
            length = _body_length(self.headers, self.request_version)
            body = self._read_chunked() if length is None else self._read_sized(length)
        except _BadBody as bad:
            self.close_connection = True  # what is left of the body must not be read as the next request
            self._linger = True
            return self._reject(bad.status, bad.error_type, bad.message)
        except TimeoutError:
            self.close_connection = True
            return self._reject(408, "RequestTimeoutException", f"the body did not arrive within {self.timeout:g} s")
        try:
            event = json.loads(body) if body.strip() else {}
        except RecursionError:
            return self._reject(400, "InvalidRequestContentException", "Could not parse request body into json: nested too deeply")
        except ValueError:  # not JSON, not UTF-8, or an integer of more than 4,300 digits
            return self._reject(400, "InvalidRequestContentException", "Could not parse request body into json")
        if nesting(event) > MAX_EVENT_DEPTH:
            return self._reject(400, "InvalidRequestContentException", f"the event nests deeper than {MAX_EVENT_DEPTH} levels")
        result = self.server.lamb.call(event)
        if isinstance(result, str):
            return self._reject(503, "ServiceUnavailable", f"lamb serve cannot start the function now: {result}; retry shortly", {"Retry-After": "1"})
        headers = {"X-Lamb-Invoke-Ms": f"{result.invoke_ms or 0:.1f}", "X-Lamb-Cold": str(result.cold).lower(),
                   "X-Lamb-Init-Ms": f"{result.init_ms or 0:.1f}"}
        if result.error is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
            payload = result.error
        else:
            payload = result.response
        self._send(200, payload, headers)
        self.server.lamb._record((time.perf_counter() - started) * 1000.0, result.error is not None)

    def _read_sized(self, length: int) -> bytes:
        body = self.rfile.read(length)
        if len(body) < length:
            raise _BadBody(400, "InvalidRequestContentException", f"the body ended after {len(body)} of its {length} bytes")
        return body

    def _read_chunked(self) -> bytes:
        """A chunked body (RFC 9112 7.1), within the same size limit and deadline as a sized one."""
        chunks, received = [], 0
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
            size = _CHUNK_SIZE.match(line)
            if len(line) > _MAX_CHUNK_LINE or size is None:
                raise _BadBody(400, "InvalidRequestException", "a chunk's size line is not hexadecimal digits ending in CRLF")
            n = int(size.group(1), 16)
            if n == 0:
                break
            received += n
            if received > MAX_PAYLOAD_BYTES:
                raise _too_large()
            chunk = self.rfile.read(n)
            if len(chunk) < n or self.rfile.read(2) != b"\r\n":
                raise _BadBody(400, "InvalidRequestContentException", "the chunked body ended early or a chunk lacks its CRLF")
            chunks.append(chunk)
        for _ in range(_MAX_TRAILERS + 1):  # trailers, ignored, up to the empty line
            line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
            if line == b"\r\n":
                return b"".join(chunks)
            if not line.endswith(b"\r\n") or len(line) > _MAX_CHUNK_LINE:
                break
        raise _BadBody(400, "InvalidRequestException", "the chunked body's trailers do not end")

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
        self._unread_body()
        self._reject(404, "ResourceNotFoundException", f"no route {self.path}; POST to /2015-03-31/functions/function/invocations")
        return True

    def _unread_body(self) -> None:
        """A request answered without reading its body: close the connection after the answer,
        so that the body is not read as the next request (a request smuggled inside it)."""
        if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            self.close_connection = True

    def _method_not_allowed(self) -> None:
        if self._off_route():
            return
        self._unread_body()
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
        self._send_bytes(status, data, "application/json", headers)

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has headers only
                self.wfile.write(data)
        except OSError:  # the client hung up or stopped reading (the socket timeout): nobody to tell
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the CLI reports totals at the end; per-request lines would drown the terminal
