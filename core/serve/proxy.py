"""A basic-auth gate in front of Streamlit, for ``m2t serve --auth`` (and every password-protected tunnel).

Streamlit has no login of its own, and every endpoint needs guarding, not just the page: the health
check, the websocket that carries the whole session (``/_stcore/stream``), uploads
(``/_stcore/upload_file/…``) and media. So Streamlit listens on 127.0.0.1 on an internal port and this
proxy, in the serving process, takes the port the person asked for. It works on the HTTP framing only,
which covers every endpoint (and websockets) the same way, with nothing to keep in step with Streamlit:

* each connection carries exactly one request: its head is read (bounded size and time), the
  ``Authorization`` header is checked with a constant-time comparison, and only then is anything sent
  upstream. Without valid credentials: ``401`` with ``WWW-Authenticate``, and the connection closes.
* a plain request is forwarded with ``Connection: close`` and exactly ``Content-Length`` body bytes, so
  a second request can never ride on an authenticated connection (no keep-alive, no pipelining, no
  request smuggling: ``Transfer-Encoding`` request bodies are refused, browsers do not send them);
* a websocket upgrade, once authorised, becomes a byte pipe both ways for as long as it lives.

The ``Authorization`` header is removed before forwarding; nothing here logs headers or credentials.

This is the one login layer of ``m2t serve``: with ``--tunnel`` ngrok forwards to this proxy without an auth
action of its own (why: :mod:`core.serve.tunnel`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import socket
import threading
from dataclasses import dataclass, field

from core.errors import UserError

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT_S = 30.0  # a client that trickles its headers (slowloris) is dropped after this
UPSTREAM_CONNECT_TIMEOUT_S = 10.0
REALM = "Media2Tweet"
_CHUNK = 1 << 16
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "authorization", "proxy-authorization", "te",
               "trailer"}


def _digest(text: bytes) -> bytes:
    return hashlib.sha256(text).digest()


class Credentials:
    """``USER:PASS`` kept as a digest: fixed-length, constant-time comparison, and no plain copy in memory
    of the proxy object that could end up in a repr or a log line."""

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self._expected = _digest(f"{user}:{password}".encode())

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r})"

    def check(self, header: str | None) -> bool:
        """True when ``header`` is ``Basic base64(user:pass)`` with the right pair."""
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(_digest(given), self._expected)


@dataclass
class Request:
    """A parsed request head: enough to decide, and to rebuild it without the hop-by-hop headers."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def is_websocket(self) -> bool:
        upgrade = ",".join(self.get("upgrade")).lower()
        connection = ",".join(self.get("connection")).lower()
        return "websocket" in upgrade and "upgrade" in connection

    def head(self, *, upgrade: bool) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [f"{k}: {v}" for k, v in self.headers if k.lower() not in _HOP_BY_HOP]
        lines += ["Connection: Upgrade"] if upgrade else ["Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class BadRequest(Exception):
    """A request this proxy will not forward; ``status`` is what the client gets."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_head(raw: bytes) -> Request:
    """Strict parsing: anything ambiguous is refused rather than guessed, so this proxy and Streamlit's
    server can never disagree about where a request ends."""
    try:
        text = raw.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise BadRequest(400, "Bad Request") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "Bad Request")
    request = Request(method=parts[0], target=parts[1], version=parts[2])
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" or ":" not in line:  # obsolete folding or garbage
            raise BadRequest(400, "Bad Request")
        name, _, value = line.partition(":")
        if not name or name != name.strip():
            raise BadRequest(400, "Bad Request")
        request.headers.append((name, value.strip()))
    return request


def body_length(request: Request) -> int:
    if request.get("transfer-encoding"):
        raise BadRequest(411, "Length Required")
    lengths = request.get("content-length")
    if not lengths:
        return 0
    if len(set(lengths)) != 1 or not lengths[0].isdigit():
        raise BadRequest(400, "Bad Request")
    return int(lengths[0])


def _response(status: int, reason: str, extra: dict[str, str] | None = None) -> bytes:
    body = f"{status} {reason}\n".encode()
    headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body)),
               "Connection": "close", "Cache-Control": "no-store", **(extra or {})}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"HTTP/1.1 {status} {reason}\r\n{head}\r\n".encode() + body


UNAUTHORIZED = _response(401, "Unauthorized", {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'})


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None = None) -> None:
    """Copy until EOF (or exactly ``limit`` bytes), then half-close the destination."""
    left = limit
    while left is None or left > 0:
        chunk = await reader.read(_CHUNK if left is None else min(_CHUNK, left))
        if not chunk:
            break
        writer.write(chunk)
        await writer.drain()
        if left is not None:
            left -= len(chunk)
    if limit is None and writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


class AuthProxy:
    """The gate: ``start()`` binds (raising :class:`UserError` when the port is taken) and serves from a
    daemon thread with its own event loop; ``stop()`` closes it and every connection."""

    def __init__(self, host: str, port: int, upstream_port: int, credentials: Credentials,
                 upstream_host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.upstream = (upstream_host, upstream_port)
        self.credentials = credentials
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise UserError(f"port {self.port} is already in use on {self.host}; stop what uses it or pick "
                            f"another with --port {self.port + 1}") from None
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def start(self) -> None:
        sock = self._bind()
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def begin() -> None:
            self._server = await asyncio.start_server(self._handle, sock=sock, limit=MAX_HEAD_BYTES)
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.create_task(begin())
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name=f"m2t-auth-proxy-{self.port}")
        self._thread.start()
        if not ready.wait(10):
            raise UserError("the authentication proxy did not start")

    def stop(self) -> None:
        """Idempotent; safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def end() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            loop.stop()

        with contextlib.suppress(RuntimeError):  # loop already stopping
            asyncio.run_coroutine_threadsafe(end(), loop)
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ----------------------------------------------------------------------- one connection

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            upstream = await self._serve_one(reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, OSError):
            pass  # the client or Streamlit went away: nothing to tell anyone
        except asyncio.CancelledError:
            pass  # stopping
        finally:
            for w in (upstream, writer):
                if w is not None:
                    w.close()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(w.wait_closed(), 2)
            self._tasks.discard(task)

    async def _serve_one(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> asyncio.StreamWriter | None:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except asyncio.LimitOverrunError:
            writer.write(_response(431, "Request Header Fields Too Large"))
            return None
        except asyncio.IncompleteReadError:
            return None
        try:
            request = parse_head(raw[:-4])
            authorised = self.credentials.check((request.get("authorization") or [None])[0])
            if not authorised:
                writer.write(UNAUTHORIZED)
                await writer.drain()
                return None
            upgrade = request.is_websocket
            length = 0 if upgrade else body_length(request)
        except BadRequest as exc:
            writer.write(_response(exc.status, exc.reason))
            await writer.drain()
            return None
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.upstream),
                                                          UPSTREAM_CONNECT_TIMEOUT_S)
        except (TimeoutError, OSError):
            writer.write(_response(502, "Bad Gateway"))
            await writer.drain()
            return None
        up_writer.write(request.head(upgrade=upgrade))
        await up_writer.drain()
        to_upstream = asyncio.ensure_future(_copy(reader, up_writer, None if upgrade else length))
        try:
            await _copy(up_reader, writer)  # the response (or the websocket's server side) until it ends
        finally:
            if not to_upstream.done():
                to_upstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await to_upstream
        return up_writer
