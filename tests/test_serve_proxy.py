"""``core.serve.proxy``: basic auth on every endpoint, in front of a real Streamlit and of a plain upstream.

The end-to-end part runs the real ``serve --auth`` command on a free port on 127.0.0.1 and knocks on the
page, the health check, the websocket stream and the upload endpoint with and without the login.
"""

from __future__ import annotations

import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from core.serve.proxy import AuthProxy, Credentials, parse_head

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "streamlit_app.py"
USER, PASSWORD = "demo", "correct-horse-battery-staple"
GOOD = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
WRONG = "Basic " + base64.b64encode(f"{USER}:not-the-password".encode()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port: int, path: str, *, auth: str | None = None, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={**({"Authorization": auth} if auth else {}),
                                                       **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------- unit: credentials and parsing


def test_credentials_check_is_exact() -> None:
    creds = Credentials(USER, PASSWORD)
    assert creds.check(GOOD)
    assert creds.check("basic " + GOOD.split()[1])  # the scheme is case-insensitive
    for bad in (None, "", WRONG, "Bearer x", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"demo").decode(),
                GOOD + "x"):
        assert not creds.check(bad), bad
    assert PASSWORD not in repr(creds) and PASSWORD not in repr(vars(creds))


def test_parse_head_refuses_ambiguous_requests() -> None:
    from core.serve.proxy import BadRequest, body_length

    ok = parse_head(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3")
    assert body_length(ok) == 3
    for raw in (b"GET /x\r\nHost: a", b"GET /x HTTP/1.1\r\n folded: value", b"GET /x HTTP/1.1\r\nNoColon",
                b"GET /x HTTP/1.1\r\nHost : a"):
        with pytest.raises(BadRequest):
            parse_head(raw)
    for raw, status in ((b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked", 411),
                        (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4", 400),
                        (b"POST / HTTP/1.1\r\nContent-Length: -1", 400)):
        with pytest.raises(BadRequest) as info:
            body_length(parse_head(raw))
        assert info.value.status == status


# --------------------------------------------------------------------------- unit: a plain upstream


class Echo(BaseHTTPRequestHandler):
    """Upstream that reports what reached it."""

    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append(dict(self.headers))
        body = b"upstream ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.seen.append(dict(self.headers))
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gate() -> Iterator[int]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = AuthProxy("127.0.0.1", free_port(), upstream.server_address[1], Credentials(USER, PASSWORD))
    proxy.start()
    Echo.seen.clear()
    yield proxy.port
    proxy.stop()
    upstream.shutdown()
    upstream.server_close()


def test_plain_upstream_needs_the_login_and_never_sees_it(gate: int) -> None:
    status, headers, _ = request(gate, "/")
    assert status == 401 and headers["www-authenticate"].startswith("Basic realm=")
    assert request(gate, "/", auth=WRONG)[0] == 401
    assert Echo.seen == []  # refused requests never reach the upstream
    status, headers, body = request(gate, "/", auth=GOOD)
    assert (status, body) == (200, b"upstream ok")
    assert "Authorization" not in Echo.seen[0]  # the password stops at the gate
    status, _, body = request(gate, "/echo", auth=GOOD, method="POST", body=b"x" * 100_000)
    assert (status, len(body)) == (200, 100_000)


def test_one_request_per_connection_no_smuggling(gate: int) -> None:
    """An authorised request followed by a second, unauthenticated one on the same connection: only the
    first reaches the upstream."""
    with socket.create_connection(("127.0.0.1", gate), timeout=10) as sock:
        sock.sendall(f"GET /first HTTP/1.1\r\nHost: x\r\nAuthorization: {GOOD}\r\n\r\n"
                     "GET /second HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        for _ in range(100):  # bounded: the proxy closes after one response
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.count(b"HTTP/1.") == 1 and b"upstream ok" in data
    assert len(Echo.seen) == 1
    with socket.create_connection(("127.0.0.1", gate), timeout=10) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {GOOD}\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 411")
    assert len(Echo.seen) == 1


# --------------------------------------------------------------------------- end to end: real serve --auth


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[str], Path]]:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.serve.server", "--port", str(port), "--auth", f"{USER}:{PASSWORD}",
             "--app", str(APP)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=out, text=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        while not any("Local URL" in line for line in lines):
            line = proc.stdout.readline()  # serve gives up by itself after its startup timeout
            assert line, log.read_text()
            lines.append(line)
        threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
        try:
            yield port, proc, log
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert PASSWORD not in "".join(lines) + log.read_text(), "the password must not be printed or logged"


@pytest.mark.slow
def test_page_and_health_need_the_login(served: tuple[int, subprocess.Popen[str], Path]) -> None:
    port, _, _ = served
    for path in ("/", "/_stcore/health", "/_stcore/host-config", "/static/does-not-matter.js"):
        status, headers, body = request(port, path)
        assert status == 401, path
        assert headers["www-authenticate"] == 'Basic realm="Media2Tweet", charset="UTF-8"'
        assert b"root" not in body
        assert request(port, path, auth=WRONG)[0] == 401
    status, _, page = request(port, "/", auth=GOOD)
    assert status == 200 and b'<div id="root">' in page
    assert request(port, "/_stcore/health", auth=GOOD)[:3:2] == (200, b"ok")


@pytest.mark.slow
def test_websocket_stream_needs_the_login(served: tuple[int, subprocess.Popen[str], Path]) -> None:
    port, _, _ = served
    uri = f"ws://127.0.0.1:{port}/_stcore/stream"
    origin = f"http://127.0.0.1:{port}"
    with pytest.raises(InvalidStatus) as info:
        ws_connect(uri, origin=origin, open_timeout=10, subprotocols=["streamlit"]).close()  # type: ignore[list-item]
    assert info.value.response.status_code == 401
    with ws_connect(uri, origin=origin, open_timeout=10, subprotocols=["streamlit"],  # type: ignore[list-item]
                    additional_headers={"Authorization": GOOD}) as ws:
        assert ws.protocol.state.name == "OPEN"  # the handshake went through to Streamlit


@pytest.mark.slow
def test_upload_endpoint_needs_the_login(served: tuple[int, subprocess.Popen[str], Path]) -> None:
    port, _, _ = served
    boundary = "m2t-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\nPNGDATA\r\n--{boundary}--\r\n").encode()
    form = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    path = "/_stcore/upload_file/some-session/some-file"
    for method in ("PUT", "POST"):
        assert request(port, path, method=method, body=body, headers=form)[0] == 401
    # With the login the request reaches Streamlit, which judges it on its own terms (XSRF, session).
    assert request(port, path, method="PUT", body=body, headers=form, auth=GOOD)[0] != 401


@pytest.mark.slow
def test_streamlit_itself_listens_only_on_loopback_elsewhere(served: tuple[int, subprocess.Popen[str], Path]) -> None:
    port, proc, _ = served
    children = psutil.Process(proc.pid).children(recursive=True)
    listening = {(c.laddr.ip, c.laddr.port) for child in children for c in child.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN}
    assert listening, "Streamlit listens somewhere"
    assert all(ip == "127.0.0.1" and p != port for ip, p in listening), listening
