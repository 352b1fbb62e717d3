"""Download media over http(s) under a URL policy, a total time budget and a size cap.

Real tweet dumps are full of dead links; every failure becomes a ``MediaError`` so a batch row
records it and moves on instead of crashing the run.

The app is shared with untrusted visitors, and a URL they type is fetched *by this machine*. So a
URL is only fetched when it is http(s) and its host resolves to public internet addresses only:
loopback, private, link-local (cloud metadata at 169.254.169.254), multicast, reserved and
unspecified addresses are refused (IPv4 and IPv6, including IPv4-mapped, 6to4, Teredo and NAT64
forms that embed an IPv4 address). Redirects are followed here, one hop at a time (at most
``MAX_REDIRECTS``), and every hop is checked the same way.

DNS rebinding: each hop resolves its host once, checks every address, and then connects to one of
*those checked addresses* (the ``Host`` header and, for https, SNI and certificate verification still
use the name). No second lookup happens at connect time, so a name cannot answer "public" to the
check and "private" to the connection. The price: proxy variables (``HTTP(S)_PROXY``) are not used,
because a proxy would resolve the name itself.

``M2T_ALLOW_PRIVATE_URLS=1`` (or the CLI's ``--allow-private-urls``, which sets it) lifts the address
check for local use, e.g. media on a LAN server; the scheme check, budget and size cap stay.

The whole download (DNS, connect, TLS, headers, body, every redirect) must finish within
``M2T_DOWNLOAD_BUDGET_S`` seconds (default 60): a watchdog shuts the socket down at the deadline,
so a server that drips one byte at a time cannot hold a worker for longer. ``timeout`` still bounds
each single read, ``M2T_MAX_MEDIA_BYTES`` the size.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import MediaError, UserError

DEFAULT_TIMEOUT_S = 15.0
DEFAULT_MAX_BYTES = int(os.environ.get("M2T_MAX_MEDIA_BYTES", 500 * 1024 * 1024))  # = the app's upload limit
DEFAULT_BUDGET_S = 60.0
MAX_REDIRECTS = 5
ALLOW_PRIVATE_ENV = "M2T_ALLOW_PRIVATE_URLS"
BUDGET_ENV = "M2T_DOWNLOAD_BUDGET_S"
_SCHEMES = {"http": 80, "https": 443}
_REDIRECTS = {301, 302, 303, 307, 308}
_HEADERS = {
    "User-Agent": "Media2Tweet/0.1 (+https://github.com/media2tweet)",
    "Accept": "*/*",
    "Accept-Encoding": "identity",  # no transparent decompression: the size cap counts what we keep
    "Connection": "close",
}
_CHUNK = 1 << 16
# Addresses that embed an IPv4 address, checked as that address too.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_TRUE = {"1", "true", "yes", "on"}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


def private_urls_allowed() -> bool:
    """Read at every fetch (not at import), so the CLI flag and tests can switch it at run time."""
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in _TRUE


def download_budget() -> float:
    """Seconds one download may take in total, from ``M2T_DOWNLOAD_BUDGET_S`` (default 60)."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if not raw:
        return DEFAULT_BUDGET_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise UserError(f"{BUDGET_ENV} must be a number of seconds between 0 and 3600, got {raw!r}")
    return value


# --------------------------------------------------------------------------- address policy


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address; the server half is checked below as well
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: Address) -> bool:
    """True only for globally routable unicast addresses (``is_global`` alone lets multicast pass)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None and not is_public_address(ip.teredo[0]):
            return False
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public_address(inner):
            return False
        if ip.scope_id:
            return False
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


@dataclass(frozen=True)
class Target:
    """One hop's parsed URL: what to connect to and what to say about it."""

    url: str
    scheme: str
    host: str  # as in the URL, lowercase, without brackets
    port: int
    path: str  # path + query, never empty

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == _SCHEMES[self.scheme] else f"{name}:{self.port}"


def parse_target(url: str, *, shown: str) -> Target:
    """Split and check a URL's scheme; ``shown`` is how errors name it (the URL, or only its host)."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise MediaError(f"could not fetch {shown}: not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise MediaError(f"could not fetch {shown}: only http:// and https:// URLs are fetched")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise MediaError(f"could not fetch {shown}: the URL has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url=url.strip(), scheme=scheme, host=host, port=port or _SCHEMES[scheme], path=path)


def _resolve(host: str, port: int, seconds: float) -> list[Address]:
    """``getaddrinfo`` in a daemon thread so a slow resolver counts against the budget too."""
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True, name="m2t-resolve")
    thread.start()
    thread.join(max(0.0, seconds))
    if thread.is_alive():
        raise TimeoutError(host)
    if "error" in box:
        raise OSError(host)
    found: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in box["infos"]:  # type: ignore[union-attr]
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in found:
            found.append(ip)
    return found


def allowed_addresses(target: Target, *, seconds: float, allow_private: bool, shown: str) -> list[Address]:
    """Every address ``target.host`` resolves to, or a refusal if any of them is not public.

    All of them must pass, not just one: a name answering with a public and a private address would
    otherwise let the connection land on the private one.
    """
    refusal = (f"could not fetch {shown}: {target.host} is not a public internet host (it does not resolve, "
               "or resolves to a loopback, private, link-local, multicast or reserved address); "
               f"for local use pass --allow-private-urls or set {ALLOW_PRIVATE_ENV}=1")
    try:
        literal: Address | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = _resolve(target.host, target.port, seconds)
        except TimeoutError:
            raise MediaError(f"could not fetch {shown}: looking up {target.host} took too long") from None
        except OSError:
            raise MediaError(refusal if not allow_private else
                             f"could not fetch {shown}: {target.host} does not resolve") from None
    if not addresses:
        raise MediaError(refusal)
    if not allow_private and not all(is_public_address(ip) for ip in addresses):
        raise MediaError(refusal)
    return addresses


# --------------------------------------------------------------------------- budget


@dataclass
class _Budget:
    """A deadline for a whole download; at expiry every registered socket is shut down, which wakes a
    read blocked on a server that sends one byte at a time."""

    seconds: float
    deadline: float = 0.0
    expired: bool = False
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _timer: threading.Timer | None = None

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.seconds
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)

    def watch(self, sock: socket.socket) -> None:
        """Watch a dup of the connection's socket: shutting it down ends reads on the TLS wrapper too."""
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


# --------------------------------------------------------------------------- connections


def _tls_context() -> ssl.SSLContext:
    try:
        import certifi  # what requests used before: the same trust store as the rest of the project

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:
        return ssl.create_default_context()


def _connect(address: Address, port: int, timeout: float) -> socket.socket:
    """TCP to an address literal, with no resolver call at all (``create_connection`` would ask
    ``getaddrinfo`` again, even for a literal)."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


class _PinnedConnection(http.client.HTTPSConnection):
    """HTTP(S) to an already checked address: no DNS lookup at connect time.

    TLS still sends the host name (SNI) and verifies the certificate against it, so pinning the
    address does not weaken https.
    """

    def __init__(self, target: Target, address: Address, *, timeout: float, budget: _Budget,
                 context: ssl.SSLContext | None) -> None:
        if context is None and target.scheme == "https":
            context = _tls_context()
        super().__init__(str(address), target.port, timeout=timeout, context=context)
        self._target = target
        self._address = address
        self._budget = budget

    def connect(self) -> None:
        self.sock = _connect(self._address, self.port, min(self.timeout, self._budget.left()))
        self.sock.settimeout(self.timeout)  # per read from here on; the budget's watchdog bounds the total
        self._budget.watch(self.sock.dup())
        if self._target.scheme == "https":
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self._target.host)


def _open(target: Target, addresses: list[Address], *, timeout: float, budget: _Budget,
          context: ssl.SSLContext | None) -> tuple[_PinnedConnection, http.client.HTTPResponse]:
    """GET ``target`` from the first checked address that accepts a connection."""
    last: Exception | None = None
    for address in addresses:
        conn = _PinnedConnection(target, address, timeout=timeout, budget=budget, context=context)
        try:
            conn.request("GET", target.path, headers={**_HEADERS, "Host": target.host_header})
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            last = exc
            if budget.expired:
                break
    raise last if last is not None else OSError("no address")


def _read_body(resp: http.client.HTTPResponse, *, max_bytes: int, shown: str) -> bytes:
    declared = resp.getheader("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise MediaError(f"{shown} is {int(declared) / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = resp.read1(_CHUNK)  # at most one read from the socket: never waits to fill a buffer
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise MediaError(f"{shown} is larger than the {max_bytes / 1e6:.0f} MB limit")
        chunks.append(chunk)
    if resp.length:  # http.client counts down Content-Length: the server closed before sending it all
        raise http.client.IncompleteRead(b"", resp.length)
    return b"".join(chunks)


def fetch_bytes(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    budget_s: float | None = None,
    allow_private: bool | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> bytes:
    """The body of ``url`` under the URL policy (module docstring), a total time budget and a size cap.

    ``allow_private``/``budget_s`` default to the environment (``M2T_ALLOW_PRIVATE_URLS``,
    ``M2T_DOWNLOAD_BUDGET_S``). Errors name the URL given, and only the *host* of a redirect
    target: a redirect's path may be an internal detail the visitor should not learn.
    """
    allow_private = private_urls_allowed() if allow_private is None else allow_private
    seconds = download_budget() if budget_s is None else budget_s
    target = parse_target(url, shown=url.strip())
    budget = _Budget(seconds)
    try:
        return _fetch(target, url.strip(), timeout=timeout, max_bytes=max_bytes, budget=budget,
                      allow_private=allow_private, context=tls_context)
    finally:
        budget.close()


def _fetch(target: Target, given: str, *, timeout: float, max_bytes: int, budget: _Budget,
           allow_private: bool, context: ssl.SSLContext | None) -> bytes:
    shown = given

    def over_budget() -> MediaError:
        return MediaError(f"could not fetch {shown}: the download took longer than {budget.seconds:g} s "
                          f"(the limit is set by {BUDGET_ENV})")

    fail: Callable[[str], MediaError] = lambda reason: MediaError(  # noqa: E731
        f"could not fetch {shown} ({reason}); check the URL or upload the file instead")
    for _hop in range(MAX_REDIRECTS + 1):
        addresses = allowed_addresses(target, seconds=budget.left(), allow_private=allow_private, shown=shown)
        if budget.expired or budget.left() <= 0:
            raise over_budget()
        try:
            conn, resp = _open(target, addresses, timeout=timeout, budget=budget, context=context)
        except ssl.SSLError:
            raise over_budget() if budget.expired else fail("TLS error") from None
        except (OSError, http.client.HTTPException) as exc:
            raise over_budget() if budget.expired else fail(type(exc).__name__) from None
        try:
            if resp.status in _REDIRECTS:
                location = resp.getheader("Location")
                if not location:
                    raise MediaError(f"could not fetch {shown}: HTTP {resp.status} without a Location")
                next_url = urllib.parse.urljoin(target.url, location.strip())
                try:
                    hop_host = urllib.parse.urlsplit(next_url).hostname or "?"
                except ValueError:
                    hop_host = "?"
                shown = f"{given} (redirected to host {hop_host})"
                target = parse_target(next_url, shown=shown)
                continue
            if resp.status >= 400:
                raise MediaError(f"could not fetch {shown}: HTTP {resp.status}")
            if resp.status != 200:
                raise MediaError(f"could not fetch {shown}: unexpected HTTP {resp.status}")
            data = _read_body(resp, max_bytes=max_bytes, shown=shown)
            if budget.expired:  # a shut-down socket reads as a clean end: the body may be cut short
                raise over_budget()
        except (OSError, http.client.HTTPException) as exc:
            raise over_budget() if budget.expired else fail(type(exc).__name__) from None
        finally:
            resp.close()
            conn.close()
        if not data:
            raise MediaError(f"{shown} returned an empty body")
        return data
    raise MediaError(f"could not fetch {shown}: more than {MAX_REDIRECTS} redirects")
