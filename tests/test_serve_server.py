"""``core.serve.server`` against a real Streamlit process: readiness, HTTP, clean shutdown, clear errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from core.errors import UserError
from core.serve import server as serve

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_APP = REPO_ROOT / "streamlit_app.py"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real app when it exists; otherwise a minimal one in its own folder (Streamlit watches
    the script's folder, so not a crowded one like /tmp)."""
    if REAL_APP.is_file():
        return REAL_APP
    path = tmp_path_factory.mktemp("app") / "app.py"
    path.write_text("import streamlit as st\n\nst.title('Media2Tweet test app')\n", encoding="utf-8")
    return path


def get(url: str) -> tuple[int, str]:
    with NO_PROXY.open(url, timeout=5) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def gone(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes of ``procs`` still alive (zombies count as gone)."""
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_gone(procs: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (left := gone(procs)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.slow
def test_server_answers_over_http_and_stops_without_leftovers(app: Path) -> None:
    port = free_port()
    server = serve.start_server(port, app=app, profile="offline")
    try:
        serve.wait_until_ready(server, timeout=60)
        status, body = get(f"http://127.0.0.1:{port}/_stcore/health")
        assert (status, body.strip()) == (200, "ok")
        status, page = get(f"http://127.0.0.1:{port}/")
        assert status == 200
        assert '<div id="root">' in page
        child = psutil.Process(server.proc.pid)
        assert child.environ().get("M2T_PROFILE") == "offline"
        assert "M2T_SHARED" not in child.environ()  # the owner's own local app keeps every choice
        assert Path(child.cwd()) == REPO_ROOT  # so .streamlit/config.toml applies
        family = [child, *child.children(recursive=True)]
    finally:
        server.stop()
    assert wait_gone(family) == []
    assert not serve.health_ok(f"http://127.0.0.1:{port}", timeout=1)
    server.stop()  # idempotent


@pytest.mark.slow
def test_cli_stops_streamlit_on_sigterm(app: Path, tmp_path: Path) -> None:
    """The real command, started from another directory, stopped the way a supervisor stops it."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    with (tmp_path / "err.log").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.serve.server", "--port", str(port), "--app", str(app)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
        )
        try:
            assert proc.stdout is not None
            lines = []
            while not any("Local URL" in line for line in lines):
                line = proc.stdout.readline()  # serve gives up by itself after its startup timeout
                assert line, (tmp_path / "err.log").read_text()
                lines.append(line)
            assert serve.health_ok(f"http://127.0.0.1:{port}")
            family = psutil.Process(proc.pid).children(recursive=True)
            assert any("streamlit" in " ".join(p.cmdline()) for p in family)
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0
    assert f"Local URL: http://127.0.0.1:{port}" in "".join(lines) + out
    assert wait_gone(family) == []
    assert "Traceback" not in (tmp_path / "err.log").read_text()


def test_port_in_use_is_a_clear_error(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UserError, match=rf"port {port} is already in use.*--port"):
            serve.start_server(port, app=app)
        assert serve.main(["--port", str(port), "--app", str(app)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: port {port} is already in use")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_early_exit_shows_streamlit_output(app: Path) -> None:
    server = serve.start_server(free_port(), app=app, extra_args=["--no-such-option", "1"])
    with pytest.raises(UserError, match=r"(?s)Streamlit exited \(code \d+\).*no-such-option"):
        serve.wait_until_ready(server, timeout=30)
    assert not server.alive()


def test_flags_are_checked_before_starting(app: Path) -> None:
    with pytest.raises(UserError, match="add --tunnel"):
        serve.serve(port=free_port(), no_auth=True, app=app)
    with pytest.raises(UserError, match="8 to 128"):
        serve.serve(port=free_port(), auth="demo:short", app=app)  # --auth alone guards the local port
    with pytest.raises(UserError, match="8 to 128"):
        serve.serve(port=free_port(), tunnel=True, auth="demo:short", app=app)
    with pytest.raises(UserError, match="unknown profile"):
        serve.start_server(free_port(), app=app, profile="cloud")
    with pytest.raises(UserError, match="app not found"):
        serve.start_server(free_port(), app=app.parent / "missing.py")


# --------------------------------------------------------------------------- the child's environment


FAKE_SECRETS = {
    "NGROK_AUTHTOKEN": "2tEsT_ngrok_token_never_in_the_app",
    "OPENAI_API_KEY": "sk-test", "AWS_SECRET_ACCESS_KEY": "aws-test", "GITHUB_TOKEN": "ghp-test",
    "DB_PASSWORD": "pw-test", "SSH_AUTH_SOCK": "/tmp/agent.sock", "GOOGLE_APPLICATION_CREDENTIALS": "/k.json",
    "KAGGLE_KEY": "kaggle-test", "HF_TOKEN": "hf_test",
}
KEPT = {"M2T_RESULTS_DB": "/tmp/results.sqlite", "M2T_MAX_MEDIA_BYTES": "1000000",
        "TOKENIZERS_PARALLELISM": "false", "LANG": "C.UTF-8"}


@pytest.mark.parametrize(("profile", "hub_token_kept"), [("offline", False), ("hub", True), (None, False)])
def test_child_environment_drops_secrets(profile: str | None, hub_token_kept: bool) -> None:
    env = serve.child_environment({**FAKE_SECRETS, **KEPT, "PATH": "/usr/bin"}, profile)
    assert {k: env[k] for k in KEPT} == KEPT and env["PATH"] == "/usr/bin"
    assert ("HF_TOKEN" in env) is hub_token_kept
    assert not set(FAKE_SECRETS) - {"HF_TOKEN"} & set(env)
    # the profile may also come from the environment (M2T_PROFILE=hub m2t serve)
    assert "HF_TOKEN" in serve.child_environment({"HF_TOKEN": "x", "M2T_PROFILE": "hub"}, None)


@pytest.mark.slow
def test_streamlit_child_gets_no_ngrok_token(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real child process, read back from /proc: the token stays in the serving process."""
    for name, value in {**FAKE_SECRETS, **KEPT}.items():
        monkeypatch.setenv(name, value)
    server = serve.start_server(free_port(), app=app, profile="offline", shared=True)
    try:
        serve.wait_until_ready(server, timeout=60)
        child_env = psutil.Process(server.proc.pid).environ()
        raw = Path(f"/proc/{server.proc.pid}/environ").read_bytes()
    finally:
        server.stop()
    assert "NGROK_AUTHTOKEN" not in child_env
    assert FAKE_SECRETS["NGROK_AUTHTOKEN"].encode() not in raw
    assert not set(FAKE_SECRETS) & set(child_env)  # offline profile: HF_TOKEN dropped as well
    assert child_env["M2T_RESULTS_DB"] == KEPT["M2T_RESULTS_DB"] and child_env["M2T_PROFILE"] == "offline"
    assert child_env["M2T_SHARED"] == "1"  # a shared app: registry models only (app.settings.shared_app)


def test_the_project_settings_reach_streamlit_from_the_package() -> None:
    import tomllib

    shipped = tomllib.loads(serve.STREAMLIT_CONFIG.read_text(encoding="utf-8"))
    # .streamlit/config.toml serves a plain `streamlit run` from the checkout; m2t serve uses the shipped copy.
    assert shipped == tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    flags = serve.streamlit_flags()
    pairs = dict(zip(flags[::2], flags[1::2], strict=True))
    assert pairs["--server.maxUploadSize"] == "500" and pairs["--server.enableXsrfProtection"] == "true"
    assert pairs["--browser.gatherUsageStats"] == "false" and pairs["--theme.primaryColor"] == "#1D9BF0"
    assert len(pairs) == sum(len(options) for options in shipped.values())


def test_the_entry_scripts_are_found_where_python_imports_them() -> None:
    import importlib.util

    for module, path in (("streamlit_app", serve.DEFAULT_APP), ("streamlit_server", serve.LAUNCHER)):
        spec = importlib.util.find_spec(module)
        assert spec is not None and Path(str(spec.origin)) == path and path.is_file()
