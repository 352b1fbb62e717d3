"""``core.serve.tunnel`` with pyngrok's network edge replaced (``ngrok.connect`` and the binary installer).

Everything else is real: a Streamlit server shared by the module checks that a failed tunnel
leaves the local app answering, the real auth proxy is the one login layer, and a stand-in for ngrok's
forwarding (a local HTTP server that relays each request with its headers, as ngrok does for an endpoint
without actions) shows what a visitor of the public link gets.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyngrok import installer, ngrok
from pyngrok.exception import PyngrokNgrokError, PyngrokNgrokInstallError

from core.errors import UserError
from core.serve import server as serve
from core.serve import tunnel
from core.serve.proxy import AuthProxy, Credentials

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "2tEsT_sEcReT_ngrok_token_0123456789abcdef"  # noqa: S105 - fake
PUBLIC_URL = "https://m2t-test.ngrok-free.app"
USER, PASSWORD = "alice", "correct-horse-battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    real = REPO_ROOT / "streamlit_app.py"
    app = real
    if not real.is_file():
        app = tmp_path_factory.mktemp("app") / "app.py"
        app.write_text("import streamlit as st\n\nst.write('tunnel test')\n", encoding="utf-8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = serve.start_server(port, app=app)
    serve.wait_until_ready(srv, timeout=60)
    yield srv
    srv.stop()


@pytest.fixture
def gate(server: Any) -> Iterator[AuthProxy]:
    """The real auth proxy in front of the module's Streamlit, as ``serve --auth`` runs it."""
    proxy = AuthProxy("127.0.0.1", free_port(), server.port, Credentials(USER, PASSWORD))
    proxy.start()
    yield proxy
    proxy.stop()


class FakeConnect:
    """Stands in for ``pyngrok.ngrok.connect``; logs the token through pyngrok's logger the way
    ngrok's own error output would, to prove the scrubbing."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def __call__(self, addr: str, proto: str = "http", pyngrok_config: Any = None, **options: Any) -> Any:
        self.calls.append({"addr": addr, "proto": proto, "config": pyngrok_config, "options": options})
        token = getattr(pyngrok_config, "auth_token", None)
        logging.getLogger("pyngrok.process.ngrok").warning("agent starting, authtoken=%s", token)
        logging.getLogger("pyngrok.ngrok").debug("Creating tunnel with options: %s", options)
        if self.error is not None:
            raise self.error
        return SimpleNamespace(public_url=PUBLIC_URL)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No token from this machine, no terminal to prompt on, no ngrok binary, and nothing may
    write the token into ngrok's config file."""
    monkeypatch.delenv(tunnel.TOKEN_ENV, raising=False)
    monkeypatch.setattr(tunnel, "SECRETS_FILES", (tmp_path / "missing-secrets.toml",))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.setenv("PYNGROK_NGROK_PATH", str(tmp_path / "ngrok-bin" / "ngrok"))

    def no_config_writes(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the token must not be written to ngrok's config file")

    monkeypatch.setattr(ngrok, "set_auth_token", no_config_writes)


@pytest.fixture
def fake_connect(monkeypatch: pytest.MonkeyPatch) -> FakeConnect:
    fake = FakeConnect()
    monkeypatch.setattr(ngrok, "connect", fake)
    return fake


def test_token_goes_to_pyngrok_but_never_to_output(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    caplog.set_level(logging.DEBUG)
    opened = tunnel.open_tunnel(8501, login=None)
    try:
        assert fake_connect.calls[0]["config"].auth_token == TOKEN
        assert fake_connect.calls[0]["addr"] == "8501"
        assert fake_connect.calls[0]["proto"] == "http"
        out, err = capsys.readouterr()
        assert PUBLIC_URL in out
        assert TOKEN not in out + err + caplog.text + repr(opened)
        assert "authtoken=***" in caplog.text  # the record was kept, only the secret removed
    finally:
        opened.close()


def test_a_login_is_generated_by_default_and_fresh_per_session() -> None:
    user, password = tunnel.resolve_credentials(None, no_auth=False)  # type: ignore[misc]
    assert user == tunnel.DEFAULT_USER and tunnel.PASSWORD_MIN <= len(password) <= tunnel.PASSWORD_MAX
    assert tunnel.resolve_credentials(None, no_auth=False) != (user, password)
    assert tunnel.resolve_credentials(None, no_auth=True) is None
    assert tunnel.resolve_credentials(f"{USER}:{PASSWORD}", no_auth=False) == (USER, PASSWORD)


def test_ngrok_gets_no_auth_action_and_the_proxy_port(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect, gate: AuthProxy,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    caplog.set_level(logging.DEBUG)
    opened = tunnel.open_tunnel(gate.port, login=(USER, PASSWORD), generated=True)
    opened.close()
    [call] = fake_connect.calls
    assert call["addr"] == str(gate.port) and call["options"] == {}  # no traffic policy, no basic-auth action
    out = capsys.readouterr().out
    assert out.count(PASSWORD) == 1  # a generated password is shown once, for the person to share
    assert PASSWORD not in caplog.text  # pyngrok never saw it


def test_explicit_auth_is_announced_without_the_password(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect, gate: AuthProxy, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    tunnel.open_tunnel(gate.port, login=(USER, PASSWORD)).close()
    out = capsys.readouterr().out
    assert USER in out
    assert PASSWORD not in out


def test_a_port_that_does_not_ask_for_the_login_is_not_published(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect, server: Any, gate: AuthProxy,
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    with pytest.raises(tunnel.TunnelError, match="answered 200 without a login"):
        tunnel.open_tunnel(server.port, login=(USER, PASSWORD))  # Streamlit itself, no proxy in front
    with pytest.raises(tunnel.TunnelError, match="does not accept the login"):
        tunnel.open_tunnel(gate.port, login=(USER, "another-password"))
    with pytest.raises(tunnel.TunnelError, match="nothing answered"):
        tunnel.open_tunnel(free_port(), login=(USER, PASSWORD))
    assert fake_connect.calls == []


def test_open_tunnel_only_with_no_auth(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    tunnel.open_tunnel(8501, login=None).close()
    assert fake_connect.calls[0]["options"] == {}
    assert "anyone who has this URL" in capsys.readouterr().out


@pytest.mark.parametrize(("auth", "no_auth", "message"), [
    ("no-colon", False, "USER:PASS"),
    ("alice:short", False, "8 to 128"),
    ("alice:" + "x" * 129, False, "8 to 128"),
    (":long-enough-pass", False, "USER:PASS"),
    ("alice:long-enough-pass", True, "not both"),
])
def test_bad_auth_is_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect, auth: str, no_auth: bool, message: str,
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    port = free_port()
    with pytest.raises(tunnel.TunnelError, match=message):
        serve.serve(port=port, tunnel=True, auth=auth, no_auth=no_auth)
    assert fake_connect.calls == []
    assert not serve.port_in_use(port)  # no proxy was started either


def test_token_sources(tmp_path: Path) -> None:
    top = tmp_path / "top.toml"
    top.write_text(f'NGROK_AUTHTOKEN = "{TOKEN}"\n', encoding="utf-8")
    nested = tmp_path / "nested.toml"
    nested.write_text(f'[ngrok]\nauthtoken = "{TOKEN}-2"\n', encoding="utf-8")
    assert tunnel.resolve_token(env={"NGROK_AUTHTOKEN": "from-env"}, secrets_paths=[top]) == "from-env"
    assert tunnel.resolve_token(env={}, secrets_paths=[top]) == TOKEN
    assert tunnel.resolve_token(env={}, secrets_paths=[tmp_path / "none.toml", nested]) == TOKEN + "-2"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    prompts: list[str] = []
    token = tunnel.resolve_token(env={}, secrets_paths=[], stdin=Tty(),
                                 prompt=lambda text: prompts.append(text) or " typed ")
    assert token == "typed"
    assert "hidden" in prompts[0]
    with pytest.raises(tunnel.TunnelError, match="NGROK_AUTHTOKEN"):
        tunnel.resolve_token(env={}, secrets_paths=[], stdin=io.StringIO(""))
    broken = tmp_path / "broken.toml"
    broken.write_text(f'NGROK_AUTHTOKEN = "{TOKEN}\n', encoding="utf-8")
    with pytest.raises(tunnel.TunnelError) as excinfo:
        tunnel.resolve_token(env={}, secrets_paths=[broken])
    assert TOKEN not in str(excinfo.value)


def test_repo_ignores_the_secrets_file() -> None:
    ignored = (REPO_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".streamlit/secrets.toml" in ignored


def assert_still_served(srv: Any, err: str) -> None:
    assert f"still served locally at {srv.url}" in err
    assert err.count("\n") == 1, err  # one line, no traceback
    assert serve.health_ok(srv.url)


def test_no_token_keeps_serving_locally(
    server: Any, fake_connect: FakeConnect, capsys: pytest.CaptureFixture[str],
) -> None:
    assert serve.share(server, login=None) is None
    err = capsys.readouterr().err
    assert "no ngrok authtoken" in err
    assert "NGROK_AUTHTOKEN" in err
    assert fake_connect.calls == []
    assert_still_served(server, err)


@pytest.mark.parametrize(("detail", "expected"), [
    ("The authtoken you specified does not look like a proper ngrok authtoken.\n"
     f"Your authtoken: {TOKEN}\n\nERR_NGROK_105", "rejected the authtoken"),
    ("Your account is limited to 1 simultaneous ngrok agent sessions.\n"
     f"authtoken: {TOKEN}\n\nERR_NGROK_108", "already has an agent online"),
])
def test_ngrok_refusal_keeps_serving_locally(
    server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, detail: str, expected: str,
) -> None:
    # ngrok quotes the token it rejected; none of that may reach the person's screen.
    ngrok_error = f"authentication failed: {detail}"
    error = PyngrokNgrokError(f"The ngrok process errored on start: {ngrok_error}.", [], ngrok_error)
    monkeypatch.setattr(ngrok, "connect", FakeConnect(error))
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    assert serve.share(server, login=None) is None
    out, err = capsys.readouterr()
    assert expected in err
    assert TOKEN not in out + err + caplog.text
    assert_still_served(server, err)


def test_download_failure_keeps_serving_locally(
    server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """The real ``ngrok.connect`` runs; only the installer's download is replaced."""
    def offline_install(*_a: Any, **_k: Any) -> None:
        raise PyngrokNgrokInstallError("An error occurred while downloading ngrok from "
                                       "https://bin.equinox.io/...: <urlopen error [Errno -3] "
                                       "Temporary failure in name resolution>")

    monkeypatch.setattr(installer, "install_ngrok", offline_install)
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    assert serve.share(server, login=None) is None
    err = capsys.readouterr().err
    assert "could not download the ngrok agent" in err
    assert_still_served(server, err)


def test_tunnel_error_is_a_user_error() -> None:
    assert issubclass(tunnel.TunnelError, UserError)


def test_share_prints_public_url_and_closes(
    server: Any, monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    shared = serve.share(server, login=None)
    assert shared is not None
    assert fake_connect.calls[0]["addr"] == str(server.port)
    out = capsys.readouterr().out
    assert f"Public URL: {PUBLIC_URL}" in out
    assert server.url in out
    shared.close()
    assert serve.health_ok(server.url)  # closing the tunnel leaves the local app alone


# --------------------------------------------------------------------------- one login layer, end to end


class Forwarder(BaseHTTPRequestHandler):
    """Stand-in for ngrok's edge: relays each request to the tunnel's address with every header as sent,
    adding the ``x-forwarded-*`` headers ngrok documents, and relays the response back."""

    upstream_port = 0
    seen_authorization: list[str | None] = []

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        self.seen_authorization.append(self.headers.get("Authorization"))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        headers.update({"X-Forwarded-For": self.client_address[0], "X-Forwarded-Proto": "https",
                        "X-Forwarded-Host": self.headers.get("Host", "")})
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = _relay  # noqa: N815 (http.server's naming)

    def log_message(self, *args: object) -> None:
        pass


class ForwardingConnect(FakeConnect):
    """``ngrok.connect`` replaced at the network edge: instead of ngrok's cloud, a local forwarder to the
    address it was given; its URL is the "public" one."""

    def __init__(self) -> None:
        super().__init__()
        self.forwarders: list[ThreadingHTTPServer] = []
        self.connected = threading.Event()

    def __call__(self, addr: str, proto: str = "http", pyngrok_config: Any = None, **options: Any) -> Any:
        super().__call__(addr, proto, pyngrok_config, **options)
        handler = type("Bound", (Forwarder,), {"upstream_port": int(addr), "seen_authorization": []})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.forwarders.append(httpd)
        self.connected.set()
        return SimpleNamespace(public_url=f"http://127.0.0.1:{httpd.server_address[1]}")


def visit(public_url: str, path: str, authorization: str | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = public_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path, headers={"Authorization": authorization} if authorization else {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.slow
def test_the_public_link_asks_for_the_login_once_at_the_local_proxy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """``serve --tunnel --auth`` for real (Streamlit, the proxy, the CLI's wiring), with ngrok's forwarding
    played by a local relay: a visitor with the login gets the app, without it a 401 from the proxy."""
    connect = ForwardingConnect()
    monkeypatch.setattr(ngrok, "connect", connect)
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    started: list[serve.Server] = []
    real_start = serve.start_server

    def recording_start(*args: Any, **kwargs: Any) -> serve.Server:  # a pass-through, to stop it at the end
        started.append(real_start(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(serve, "start_server", recording_start)
    port = free_port()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(
        serve.serve(port=port, tunnel=True, auth=f"{USER}:{PASSWORD}", startup_timeout=90)), daemon=True)
    runner.start()
    try:
        assert connect.connected.wait(120), capsys.readouterr()
        [call] = connect.calls
        assert call["addr"] == str(port) and call["options"] == {}  # the proxy's port; no ngrok auth action
        public = connect.forwarders[0]
        public_url = f"http://127.0.0.1:{public.server_address[1]}"

        status, headers, body = visit(public_url, "/")
        assert status == 401 and headers["www-authenticate"].startswith("Basic ")
        assert visit(public_url, "/_stcore/health", basic(USER, "not-the-password"))[0] == 401
        status, _, page = visit(public_url, "/", basic(USER, PASSWORD))
        assert status == 200 and b'<div id="root">' in page  # the app's page, through relay and proxy
        assert visit(public_url, "/_stcore/health", basic(USER, PASSWORD))[::2] == (200, b"ok")
        assert public.RequestHandlerClass.seen_authorization[-1] == basic(USER, PASSWORD)  # type: ignore[attr-defined]
    finally:
        for server in started:
            server.stop()  # serve() then returns on its own and closes the proxy and the tunnel
        runner.join(60)
        for httpd in connect.forwarders:
            with contextlib.suppress(OSError):
                httpd.shutdown()
                httpd.server_close()
    assert result == [1] and not runner.is_alive()
    assert not serve.port_in_use(port)  # the proxy is gone with it
    out, err = capsys.readouterr()
    assert "Public URL: " in out and PASSWORD not in out + err
