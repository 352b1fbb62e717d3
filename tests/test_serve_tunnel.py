"""``core.serve.tunnel`` with pyngrok's network edge replaced (``ngrok.connect`` and the binary installer).

Everything else is real: a Streamlit server shared by the module checks that a failed tunnel
leaves the local app answering.
"""

from __future__ import annotations

import io
import logging
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyngrok import installer, ngrok
from pyngrok.exception import PyngrokNgrokError, PyngrokNgrokInstallError

from core.errors import UserError
from core.serve import server as serve
from core.serve import tunnel

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "2tEsT_sEcReT_ngrok_token_0123456789abcdef"  # noqa: S105 - fake
PUBLIC_URL = "https://m2t-test.ngrok-free.app"


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
    opened = tunnel.open_tunnel(8501)
    try:
        assert fake_connect.calls[0]["config"].auth_token == TOKEN
        assert fake_connect.calls[0]["addr"] == "8501"
        assert fake_connect.calls[0]["proto"] == "http"
        out, err = capsys.readouterr()
        assert PUBLIC_URL in out
        assert TOKEN not in out + err + caplog.text + repr(opened)
        assert "authtoken=***" in caplog.text  # the record was kept, only the secret removed
        assert opened.password not in caplog.text
    finally:
        opened.close()


def test_basic_auth_is_on_by_default_with_generated_credentials(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    opened = tunnel.open_tunnel(8501)
    opened.close()
    policy = fake_connect.calls[0]["options"]["traffic_policy"]
    action = policy["on_http_request"][0]["actions"][0]
    assert action["type"] == "basic-auth"
    [credential] = action["config"]["credentials"]
    user, password = credential.split(":", 1)
    assert (user, password) == (opened.username, opened.password)
    assert 8 <= len(password) <= 128
    out = capsys.readouterr().out
    assert out.count(password) == 1  # shown once, for the person to share
    assert tunnel.open_tunnel(8501).password != password  # fresh per session


def test_explicit_auth_is_used_and_not_echoed(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    tunnel.open_tunnel(8501, auth="alice:correct-horse-battery").close()
    action = fake_connect.calls[0]["options"]["traffic_policy"]["on_http_request"][0]["actions"][0]
    assert action["config"]["credentials"] == ["alice:correct-horse-battery"]
    out = capsys.readouterr().out
    assert "alice" in out
    assert "correct-horse-battery" not in out


def test_open_tunnel_only_with_no_auth(
    monkeypatch: pytest.MonkeyPatch, fake_connect: FakeConnect, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(tunnel.TOKEN_ENV, TOKEN)
    tunnel.open_tunnel(8501, no_auth=True).close()
    assert "traffic_policy" not in fake_connect.calls[0]["options"]
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
    with pytest.raises(tunnel.TunnelError, match=message):
        tunnel.open_tunnel(8501, auth=auth, no_auth=no_auth)
    assert fake_connect.calls == []


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
    assert serve.share(server) is None
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
    assert serve.share(server) is None
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
    assert serve.share(server) is None
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
    shared = serve.share(server)
    assert shared is not None
    assert fake_connect.calls[0]["addr"] == str(server.port)
    out = capsys.readouterr().out
    assert f"Public URL: {PUBLIC_URL}" in out
    assert server.url in out
    shared.close()
    assert serve.health_ok(server.url)  # closing the tunnel leaves the local app alone
