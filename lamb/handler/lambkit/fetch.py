"""Fetching a url, safely: public addresses only, one deadline, bounded size, checked redirects."""

from __future__ import annotations

import io
import ipaddress
import re
import socket
import threading
import urllib.parse

from . import settings as _settings
from .deadline import Deadline, within_function_time
from .errors import RequestError, clip
from .settings import MAX_REDIRECTS

# IPv6 prefixes that carry an IPv4 address, and where it sits: RFC 6052 section 2.2 puts it right
# after a prefix of 32 to 96 bits, skipping bits 64-71. Inside a VPC with DNS64/NAT64, or on a host
# that still routes the older forms, these reach the IPv4 address, metadata service included.
_EMBEDDED_IPV4 = [
    (ipaddress.ip_network("::/96"), (96,)),  # IPv4-compatible, deprecated (RFC 4291 2.5.5.1)
    (ipaddress.ip_network("::ffff:0:0/96"), (96,)),  # IPv4-mapped (RFC 4291 2.5.5.2)
    (ipaddress.ip_network("::ffff:0:0:0/96"), (96,)),  # IPv4-translated (RFC 2765 2.1)
    # NAT64 well-known prefix (RFC 6052 2.1), the one Route 53 Resolver's DNS64 synthesizes:
    # https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-nat64-dns64.html
    (ipaddress.ip_network("64:ff9b::/96"), (96,)),
    # NAT64 local-use prefix (RFC 8215): the operator picks the prefix length, so every place the
    # address can sit is checked.
    (ipaddress.ip_network("64:ff9b:1::/48"), (48, 56, 64, 96)),
]


def _rfc6052_ipv4(addr: ipaddress.IPv6Address, prefix_len: int) -> ipaddress.IPv4Address:
    packed = addr.packed
    if prefix_len == 96:
        return ipaddress.IPv4Address(packed[12:])
    without_u = packed[:8] + packed[9:]  # bits 64-71 (the "u" octet) never carry address bits
    return ipaddress.IPv4Address(without_u[prefix_len // 8 : prefix_len // 8 + 4])


def embedded_ipv4(addr) -> list:
    """The IPv4 addresses an IPv6 address carries (none for a plain IPv6 or an IPv4 address)."""
    if addr.version != 6:
        return []
    found = [_rfc6052_ipv4(addr, n) for net, lengths in _EMBEDDED_IPV4 if addr in net for n in lengths]
    if addr.sixtofour is not None:  # 6to4, 2002::/16 (RFC 3056)
        found.append(addr.sixtofour)
    if addr.teredo is not None:  # Teredo, 2001::/32 (RFC 4380): (server, client)
        found.extend(addr.teredo)
    return found


def _check_address(ip: str, host: str) -> None:
    """Refuse anything that is not a public unicast address.

    A function that fetches user-given URLs must not become a proxy into its own network: the
    metadata service (169.254.169.254, fd00:ec2::254), the Lambda runtime API on 127.0.0.1:9001,
    VPC-private hosts. ``is_global`` excludes loopback, private, link-local, CGNAT (100.64/10),
    reserved and documentation ranges. An IPv6 address that carries an IPv4 one (``embedded_ipv4``)
    is judged by the IPv4 address(es) it carries, so it cannot smuggle a private one.
    """
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    carried = embedded_ipv4(addr)
    refused = [a for a in carried or [addr] if not a.is_global or a.is_multicast]
    if refused:
        which = f" (which carries {', '.join(sorted({str(a) for a in refused}))})" if carried else ""
        raise RequestError(
            f"refusing to fetch {clip(host)}: it resolves to {ip}{which}, a non-public address "
            "(set LAMB_ALLOW_PRIVATE_URLS=1 on the function to allow it)"
        )


def _allow_private() -> bool:
    return _settings.current().allow_private_urls


def fetch_deadline(context=None) -> Deadline:
    """``LAMB_FETCH_TIMEOUT_S`` (15 s), cut to the function's remaining time minus a margin."""
    seconds = _settings.current().fetch_timeout_s
    return within_function_time(seconds, f"the {seconds:g} s fetch deadline (LAMB_FETCH_TIMEOUT_S)", context)


def _resolve(host: str, port: int, deadline: Deadline) -> str:
    """The address to connect to: resolved once, checked, then used directly (no second lookup
    that DNS rebinding could answer differently).

    ``getaddrinfo`` has no timeout, and a hostile name server can take its time answering, so the
    lookup runs in a thread the deadline waits for.
    """
    answer: dict = {}

    def lookup():
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError) as exc:
            answer["error"] = exc

    thread = threading.Thread(target=lookup, name="lamb-resolve", daemon=True)
    thread.start()
    thread.join(deadline.left())
    if thread.is_alive():
        raise TimeoutError("name resolution")
    if "error" in answer:
        raise RequestError(f"cannot resolve the url's host {clip(host)} ({answer['error']})")
    addresses = [info[4][0] for info in answer["infos"]]
    if not addresses:
        raise RequestError(f"cannot resolve the url's host {clip(host)}")
    if not _allow_private():
        for ip in addresses:  # every answer, so a mixed public/private record cannot slip through
            _check_address(ip, host)
    return addresses[0]


class DeadlineSocket:
    """A connected socket that gives every send and receive what is left of one deadline as its
    timeout.

    http.client reads the status line and headers a line at a time and the body in chunks, each
    a recv that restarts a plain socket timeout: a server trickling a byte every half second
    would never time out. ``makefile`` and ``close`` keep the socket open until both the
    connection and the response are done with it, as ``socket.socket`` does.
    """

    def __init__(self, sock, deadline: Deadline):
        self._sock, self._deadline = sock, deadline
        self._io_refs, self._closed = 0, False

    def recv_into(self, buffer, nbytes=0, flags=0):
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv_into(buffer, nbytes, flags)

    def recv(self, bufsize, flags=0):
        self._sock.settimeout(self._deadline.left())
        return self._sock.recv(bufsize, flags)

    def sendall(self, data, flags=0):
        self._sock.settimeout(self._deadline.left())
        return self._sock.sendall(data, flags)

    def makefile(self, mode="rb", buffering=-1, **_kwargs):
        self._io_refs += 1
        return io.BufferedReader(socket.SocketIO(self, "rb"))  # type: ignore[arg-type]  # SocketIO needs only recv_into and _decref_socketios

    def _decref_socketios(self):  # SocketIO.close() calls this
        self._io_refs -= 1
        if self._closed and self._io_refs <= 0:
            self._sock.close()

    def close(self):
        self._closed = True
        if self._io_refs <= 0:
            self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


_connections = None


def _connection_classes():
    """(HTTP, HTTPS) connection classes that connect to an address resolved and checked
    beforehand, while the Host header and the TLS certificate check use the name, and that keep
    to the fetch's deadline from connect to the last body byte.

    Built on first use: http.client and ssl cost ~0.1 s of import that a function fed base64
    images would otherwise pay in every cold start.
    """
    global _connections
    if _connections is not None:
        return _connections
    import http.client
    import ssl

    class PinnedHTTPConnection(http.client.HTTPConnection):
        def __init__(self, host, port, ip, deadline):
            super().__init__(host, port)
            self._ip, self._deadline = ip, deadline

        def _open(self):
            return socket.create_connection((self._ip, self.port), self._deadline.left())

        def connect(self):
            self.sock = DeadlineSocket(self._open(), self._deadline)

    class PinnedHTTPSConnection(PinnedHTTPConnection):
        default_port = 443

        def connect(self):
            sock = self._open()
            sock.settimeout(self._deadline.left())  # the TLS handshake runs under one timeout of its own
            tls = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            self.sock = DeadlineSocket(tls, self._deadline)

    _connections = (PinnedHTTPConnection, PinnedHTTPSConnection)
    return _connections


# http.client refuses these in a request line, and a browser percent-encodes them: a url holding
# one is a mistake (or an attempt at header injection), said so rather than "fixed".
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")
_KEEP_IN_TARGET = "!#$%&'()*+,/:;=?@[]~"  # everything printable stays; non-ASCII is percent-encoded


def _parse_url(url: str, what: str):
    """``url`` -> (scheme, ASCII host, port, request target); a RequestError naming the problem."""
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(f"{what} {clip(url)} is not valid Unicode text (it holds a lone surrogate)") from None
    bad = _URL_FORBIDDEN.search(url)
    if bad:
        name = "a space" if bad.group() == " " else f"the control character {bad.group()!r}"
        raise RequestError(f"{what} {clip(url)} contains {name} at position {bad.start()}; percent-encode it")
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # "[::1", "[evil.com]", a host NFKC would change, a bad port
        raise RequestError(f"{what} {clip(url)} is malformed: {clip(exc, 200, quote=False)}") from None
    if parts.scheme not in ("http", "https"):
        raise RequestError(f"only http and https urls can be fetched, not {clip(parts.scheme or 'a relative url')}")
    if not host:
        raise RequestError(f"{what} {clip(url)} has no host")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        try:  # an internationalised name: the DNS and the Host header need its ASCII form
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise RequestError(f"the host {clip(host)} in {what} {clip(url)} is not a valid domain name ({exc})") from None
    target = urllib.parse.quote(parts.path or "/", safe=_KEEP_IN_TARGET)
    if parts.query:
        target += "?" + urllib.parse.quote(parts.query, safe=_KEEP_IN_TARGET)
    if port == 0:  # urlsplit accepts it; "port or 80" would quietly fetch from port 80 instead
        raise RequestError(f"{what} {clip(url)} names port 0, which no server listens on")
    return parts.scheme, host, (443 if parts.scheme == "https" else 80) if port is None else port, target


def _read_body(response, host: str, max_bytes: int) -> bytes:
    promised = response.length  # http.client's parsed Content-Length; None when chunked or absent
    if promised is not None and promised > max_bytes:
        raise RequestError(f"the image at the url is {promised} bytes, more than the {max_bytes} allowed", 413)
    chunks, total = [], 0
    while chunk := response.read(64 * 1024):
        total += len(chunk)
        if total > max_bytes:
            raise RequestError(f"the image at the url is more than the {max_bytes} bytes allowed", 413)
        chunks.append(chunk)
    # http.client's read(amt) answers b"" when the connection drops before Content-Length is
    # reached, rather than raising: the server's failure, not a broken image from the client.
    if promised is not None and total < promised:
        raise RequestError(f"the download from {clip(host)} was cut short: {total} of the {promised} bytes promised arrived", 502)
    return b"".join(chunks)


def fetch_url(url: str, deadline: Deadline | None = None) -> bytes:
    """Download ``url`` within the limits above; every redirect hop is checked like the first URL."""
    import http.client
    import ssl

    deadline = deadline or fetch_deadline()
    max_bytes = _settings.current().max_download_bytes
    what = "the url"
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, port, target = _parse_url(url, what)
        conn = None
        try:
            ip = _resolve(host, port, deadline)
            http_cls, https_cls = _connection_classes()
            conn = (https_cls if scheme == "https" else http_cls)(host, port, ip, deadline)
            conn.request("GET", target, headers={"User-Agent": "lamb-lambda/1", "Accept": "image/*", "Accept-Encoding": "identity"})
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise RequestError(f"the url answered HTTP {response.status} without a Location")
                what = f"the redirect from {clip(host)} to"
                try:
                    url = urllib.parse.urljoin(url, location)
                except ValueError as exc:
                    raise RequestError(f"{what} {clip(location)} is malformed: {clip(exc, quote=False)}") from None
                continue
            if response.status != 200:
                raise RequestError(f"the url answered HTTP {response.status} {clip(response.reason, quote=False)}")
            return _read_body(response, host, max_bytes)
        except TimeoutError:  # socket.timeout is TimeoutError too (Python 3.10+)
            raise RequestError(f"fetching the url from {clip(host)} did not finish within {deadline.why}", 504) from None
        except ssl.SSLError as exc:
            raise RequestError(f"TLS error fetching the url from {clip(host)}: {exc.reason or exc}", 502) from None
        except http.client.IncompleteRead as exc:  # a chunked body whose connection dropped
            raise RequestError(f"the download from {clip(host)} was cut short after {len(exc.partial)} bytes", 502) from None
        except (OSError, http.client.HTTPException) as exc:
            raise RequestError(f"could not fetch the url from {clip(host)} ({exc.__class__.__name__}: {clip(exc, quote=False)})", 502) from None
        finally:
            if conn is not None:
                conn.close()
    raise RequestError(f"the url redirected more than {MAX_REDIRECTS} times")
