"""The shipped handler's url fetching under attack: one deadline, malformed urls, address classes.

Every server here is a local one on 127.0.0.1 (reached with LAMB_ALLOW_PRIVATE_URLS=1); the
address-class tests refuse before connecting, and ``no_connect`` fails them if they ever try.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import socket
import threading
import time

import pytest
from test_handler import handler, http_api_event, proxy_result, rest_event  # noqa: F401 (handler is a fixture)

from lamb.handler.lambkit import fetch


@pytest.fixture
def raw_server():
    """``start(respond)`` -> the base url of a TCP server on 127.0.0.1 that reads each request and
    then calls ``respond(conn, stop)``: a server that can misbehave in ways http.server cannot."""
    started = []

    def start(respond):
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.1)
        stop = threading.Event()

        def handle(conn):
            with conn:
                try:
                    conn.recv(65536)
                    respond(conn, stop)
                except OSError:  # the handler hung up on us: what these servers are for
                    pass

        def serve():
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=handle, args=(conn,), daemon=True).start()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started.append((stop, thread, listener))
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for stop, thread, listener in started:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.fixture
def no_connect(handler, monkeypatch):  # noqa: F811
    """Fail loudly if the handler opens any connection (the refusals must come first)."""
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise ConnectionRefusedError(f"test: the handler tried to connect to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts
    assert attempts == []


def trickle_body(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000000\r\n\r\n")
    while not stop.wait(0.1):
        conn.sendall(b"\0")


def trickle_headers(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    for byte in itertools.cycle(b"X-Slow: aaaaaaaaaaaaaaaa\r\n"):
        if stop.wait(0.1):
            return
        conn.sendall(bytes([byte]))


class LambdaContext:
    def __init__(self, remaining_ms: int):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


# -- 1. one wall-clock deadline across connect, headers and body -----------------------------------


@pytest.mark.parametrize("respond", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_trickling_server_meets_one_deadline(handler, monkeypatch, raw_server, respond):  # noqa: F811
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.setenv("LAMB_FETCH_TIMEOUT_S", "1")
    url = raw_server(respond)
    started = time.monotonic()
    result = handler.lambda_handler({"url": url + "/cat.png"}, None)
    elapsed = time.monotonic() - started
    assert result["statusCode"] == 504
    assert "did not finish within the 1 s fetch deadline (LAMB_FETCH_TIMEOUT_S)" in result["error"]
    assert 0.9 < elapsed < 4  # each byte arrives within any per-read timeout: only the deadline ends it


def test_the_deadline_never_outlasts_the_function(handler, monkeypatch, raw_server):  # noqa: F811
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    monkeypatch.delenv("LAMB_FETCH_TIMEOUT_S", raising=False)  # 15 s, but the function has 2 s left
    event = rest_event(json.dumps({"url": raw_server(trickle_body) + "/cat.png"}))
    started = time.monotonic()
    status, body = proxy_result(handler.lambda_handler(event, LambdaContext(2000)))
    elapsed = time.monotonic() - started
    assert status == 504 and "the function's remaining time (2.0 s, less 1 s to answer)" in body["error"]
    assert 0.9 < elapsed < 4  # not the 15 s default


def test_a_function_out_of_time_does_not_fetch(handler, no_connect):  # noqa: F811
    result = handler.lambda_handler({"url": "http://93.184.215.14/cat.png"}, LambdaContext(500))
    assert result["statusCode"] == 504


def test_the_deadline_covers_name_resolution(handler, monkeypatch):  # noqa: F811
    monkeypatch.setenv("LAMB_FETCH_TIMEOUT_S", "0.5")
    release = threading.Event()

    def slow_resolver(*args, **kwargs):  # a name server that takes its time
        release.wait(10)
        raise socket.gaierror("test: too late")

    monkeypatch.setattr(socket, "getaddrinfo", slow_resolver)
    started = time.monotonic()
    try:
        result = handler.lambda_handler({"url": "http://slow-dns.invalid/cat.png"}, None)
    finally:
        release.set()
    assert result["statusCode"] == 504 and time.monotonic() - started < 4  # the resolver would take 10 s


def test_a_default_deadline_of_15_s(handler, monkeypatch):  # noqa: F811
    monkeypatch.delenv("LAMB_FETCH_TIMEOUT_S", raising=False)
    assert fetch.fetch_deadline(None).seconds == 15
    assert fetch.fetch_deadline(LambdaContext(900_000)).seconds == 15
    monkeypatch.setenv("LAMB_FETCH_TIMEOUT_S", "4.5")
    assert fetch.fetch_deadline(LambdaContext(900_000)).seconds == 4.5
    assert fetch.fetch_deadline(LambdaContext(3000)).seconds == pytest.approx(2.0)


# -- 2. malformed urls and redirect Locations: 400 naming the problem -------------------------------

MALFORMED = [
    ("http://[::1/", "Invalid IPv6 URL"),
    ("http://[evil.com]/", "does not appear to be an IPv4 or IPv6 address"),
    ("http://ex\u2100ample.com/", "invalid characters under NFKC normalization"),
    ("http://example.com/a cat.png", "contains a space at position 20"),
    ("http://example.com/a\r\nX-Injected: 1", "contains the control character '\\r'"),
    ("http://exa mple.com/", "contains a space"),
    ("http://\udcff.example/", "lone surrogate"),
    ("http://b\u00fccher..example/", "is not a valid domain name"),
]


@pytest.mark.parametrize("url, fragment", MALFORMED)
def test_malformed_urls_answer_400_naming_the_problem(handler, no_connect, url, fragment):  # noqa: F811
    result = handler.lambda_handler({"url": url}, None)
    assert result["statusCode"] == 400 and fragment in result["error"], result


@pytest.mark.parametrize(
    "location, fragment",
    [
        (b"http://[::1/", "Invalid IPv6 URL"),
        (b"http://[evil.com]/", "does not appear to be an IPv4 or IPv6 address"),
        ("http://ex\u2100ample.com/".encode("utf-8"), "not a valid domain name"),  # http.client reads it as latin-1
        (b"/a cat.png", "contains a space"),
        (b"http://example.com/a\r\n b", "contains a space"),  # a folded header line: http.client unfolds it
    ],
)
def test_malformed_redirect_locations_answer_400(handler, monkeypatch, raw_server, location, fragment):  # noqa: F811
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    url = raw_server(lambda conn, stop: conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"))
    result = handler.lambda_handler({"url": url + "/start"}, None)
    assert result["statusCode"] == 400, result
    assert "the redirect from '127.0.0.1' to" in result["error"] and fragment in result["error"]


def test_a_huge_url_gets_a_short_error(handler, no_connect):  # noqa: F811
    result = handler.lambda_handler({"url": "http://example.com/" + "a" * 1_000_000 + " "}, None)
    assert result["statusCode"] == 400 and len(result["error"]) < 400


def test_non_ascii_paths_are_percent_encoded(handler, monkeypatch, raw_server):  # noqa: F811
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    seen = []

    def record(conn, stop):  # the request line was read by raw_server; answer with what a browser would send
        seen.append(True)
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    result = handler.lambda_handler({"url": raw_server(record) + "/k\u00e4tze.png?q=\u00fc"}, None)
    assert result["statusCode"] == 400 and "HTTP 404" in result["error"] and seen
    assert fetch._parse_url("http://h/k\u00e4tze.png?q=\u00fc", "the url")[3] == "/k%C3%A4tze.png?q=%C3%BC"


def test_a_content_length_that_is_not_a_number(handler, monkeypatch, raw_server, png_bytes):  # noqa: F811
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")
    url = raw_server(lambda conn, stop: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\nConnection: close\r\n\r\n" + png_bytes))
    result = handler.lambda_handler({"url": url + "/cat.png"}, None)
    assert list(result) == ["cat", "dog", "bird", "fish"]  # read to the end of the connection


# -- 4. IPv4 addresses inside IPv6 ones are judged as IPv4 ----------------------------------------

EMBEDDED = [
    ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
    ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
    ("::ffff:0:127.0.0.1", "127.0.0.1"),  # IPv4-translated
    ("64:ff9b::169.254.169.254", "169.254.169.254"),  # NAT64 well-known prefix: the metadata service
    ("64:ff9b:1::a9fe:a9fe", "169.254.169.254"),  # NAT64 local-use, /96
    ("64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254"),  # NAT64 local-use, /48 (bits 64-71 skipped)
    ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4
    ("2002:0a00:0001::", "10.0.0.1"),  # 6to4
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),  # Teredo: the client (documentation range)
    ("2001:0:a00:1:8000:63bf:3fff:fdd2", "10.0.0.1"),  # Teredo: a private server
]


@pytest.mark.parametrize("ip, carried", EMBEDDED)
def test_embedded_ipv4_is_refused_like_ipv4(handler, no_connect, ip, carried):  # noqa: F811
    result = handler.lambda_handler({"url": f"http://[{ip}]/latest/meta-data/"}, None)
    assert result["statusCode"] == 400, result
    assert "non-public address" in result["error"] and carried in result["error"].split("carries ", 1)[1]


def test_embedded_ipv4_through_dns(handler, no_connect, monkeypatch):  # noqa: F811
    # DNS64 answers a name with a NAT64 address: the check sees what the name resolves to.
    answer = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("64:ff9b::a9fe:a9fe", 80, 0, 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: answer)
    result = handler.lambda_handler({"url": "http://images.example.com/cat.png"}, None)
    assert result["statusCode"] == 400 and "carries 169.254.169.254" in result["error"]


@pytest.mark.parametrize("ip", ["64:ff9b::8.8.8.8", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700::1111", "8.8.8.8"])
def test_public_addresses_pass_the_check(handler, ip):  # noqa: F811
    fetch._check_address(ip, "example.com")  # no RequestError


def test_every_rfc6052_position_is_extracted(handler):  # noqa: F811
    metadata = ipaddress.ip_address("169.254.169.254")
    for ip in ("64:ff9b:1:a9fe:a9:fe00::", "64:ff9b:1:a9:fe:a9fe::", "64:ff9b:1:0:a9:fea9:fe00:0", "64:ff9b:1::a9fe:a9fe"):
        assert metadata in fetch.embedded_ipv4(ipaddress.ip_address(ip)), ip


@pytest.mark.parametrize("host", ["0177.0.0.1", "2130706433", "127.1", "0x7f.1"])
def test_unusual_ipv4_spellings_are_refused(handler, no_connect, host):  # noqa: F811
    socket.getaddrinfo(host, 80, flags=socket.AI_NUMERICHOST)  # numeric: the handler's lookup asks no DNS server
    result = handler.lambda_handler({"url": f"http://{host}/"}, None)
    assert result["statusCode"] == 400 and "resolves to 127.0.0.1" in result["error"]


# -- issue 17 item 5: a download cut short, port 0 ---------------------------------------------------


def test_a_download_cut_short_is_the_servers_fault(handler, monkeypatch, raw_server, png_bytes):  # noqa: F811
    monkeypatch.setenv("LAMB_ALLOW_PRIVATE_URLS", "1")

    def cut_short(conn, stop):  # promises the whole PNG, sends half, hangs up
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(png_bytes))
        conn.sendall(png_bytes[: len(png_bytes) // 2])

    def chunked_cut_short(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(png_bytes) + png_bytes[:100])

    result = handler.lambda_handler({"url": raw_server(cut_short) + "/cat.png"}, None)
    assert result["statusCode"] == 502 and "the download from '127.0.0.1' was cut short" in result["error"], result
    assert f"{len(png_bytes) // 2} of the {len(png_bytes)} bytes" in result["error"]
    result = handler.lambda_handler({"url": raw_server(chunked_cut_short) + "/cat.png"}, None)
    assert result["statusCode"] == 502 and "cut short" in result["error"], result


def test_port_zero_is_refused_not_fetched_from_port_80(handler, no_connect):  # noqa: F811
    for url in ("http://127.0.0.1:0/x", "https://example.com:0/x", "http://[::1]:0/"):
        result = handler.lambda_handler({"url": url}, None)
        assert result["statusCode"] == 400 and "port 0" in result["error"], result
    assert fetch._parse_url("http://h/x", "the url")[2] == 80 and fetch._parse_url("https://h/x", "the url")[2] == 443
