"""``m2t serve``: run the Streamlit app with the project's config, optionally shared.

Streamlit runs as a child process in its own process group, so shutting down (Ctrl-C, SIGTERM,
SIGHUP) can stop it together with anything it spawned, and the health endpoint tells us when it
is really ready instead of guessing with a sleep. The ngrok side lives in :mod:`core.serve.tunnel`; a
tunnel failure is reported and the app keeps being served locally.

Every visitor is untrusted, so two more rules:

* the Streamlit child gets a scrubbed environment (:func:`child_environment`): the ngrok authtoken and
  anything that looks like a credential stay in this process, which is the only one that needs them;
* with a password (``--auth``, or the generated one of a tunnel) Streamlit listens on 127.0.0.1 on an
  internal port and :mod:`core.serve.proxy` takes the requested port, checking the login on every
  request: page, health, websocket, uploads. The tunnel points at the proxy, and ngrok forwards without
  a login of its own, so the proxy is the one login layer for the local port and the public link alike
  (why one layer: :mod:`core.serve.tunnel`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from core.errors import UserError
from core.preload import PRELOAD_ENV
from core.preload import enabled as preload_enabled
from core.serve.proxy import AuthProxy, Credentials


def installed_script(module: str) -> Path:
    """The file of a top-level script module shipped with the package (``streamlit_app``, ``streamlit_server``).

    Found where ``import`` would find it (site-packages after ``pip install .``, the checkout for an editable
    install), not through the source tree, so ``m2t serve`` works from any folder. Nothing is imported. When
    it is missing, the path named is where it should be, and :func:`start_server` says it is not there.
    """
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin:
        return Path(spec.origin)
    return Path(__file__).resolve().parents[2] / f"{module}.py"


DEFAULT_APP = installed_script("streamlit_app")
# What Streamlit runs: the app as an st.App whose start-up hook preloads the models (see that file).
LAUNCHER = installed_script("streamlit_server")
# The project's Streamlit settings (upload size, XSRF, no usage statistics, theme), shipped with the
# package and passed as flags, so they apply whatever folder Streamlit starts in.
STREAMLIT_CONFIG = Path(__file__).with_name("streamlit.toml")
APP_SCRIPT_ENV = "M2T_APP_SCRIPT"
# A served app reloads nothing: no file watcher (it watched the whole checkout, .venv included, and lost
# inotify events under load) and no rerun on save. ``--dev`` turns both back on for people editing the app.
SERVING_FLAGS = ("--server.fileWatcherType", "none", "--server.runOnSave", "false")
DEFAULT_PORT = 8501
DEFAULT_HOST = "127.0.0.1"
PROFILES = ("offline", "hub")
PROFILE_ENV = "M2T_PROFILE"
STARTUP_TIMEOUT_S = 90.0
TAIL_LINES = 25
# Names that look like credentials: kept out of the Streamlit child (see child_environment).
SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "APIKEY", "AUTH", "CREDENTIAL",
                  "PRIVATE_KEY", "ACCESS_KEY", "SESSION_KEY", "COOKIE", "SIGNATURE")
# Harmless names that merely contain a marker, and the settings the app reads.
SAFE_NAMES = frozenset({"TOKENIZERS_PARALLELISM", "HF_HUB_DISABLE_IMPLICIT_TOKEN"})
HUB_TOKENS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# No proxy for loopback health checks, whatever HTTP(S)_PROXY says.
_LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Server:
    """A running ``streamlit run`` child; ``tail`` keeps its last output lines for error messages."""

    proc: subprocess.Popen[str]
    port: int
    host: str
    echo: bool = False
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    _reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Loopback URL: what the health check, the tunnel and a local browser use."""
        return f"http://{_probe_host(self.host)}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def last_output(self) -> str:
        return "\n".join(self.tail) or "(no output)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole process group, SIGKILL whatever is left after ``timeout``; idempotent."""
        pgid = self.proc.pid  # start_new_session=True: the child leads its own group
        if self.alive():
            _signal_group(pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(pgid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        # Stragglers (e.g. a decoder the app spawned) outlive the leader's exit otherwise.
        _signal_group(pgid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(timeout=2)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _probe_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::", "localhost") else host


def port_in_use(port: int, host: str = DEFAULT_HOST) -> bool:
    """True when Streamlit could not bind ``host:port``; SO_REUSEADDR as its server uses, so
    sockets lingering in TIME_WAIT from a previous run don't count as "in use"."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def looks_secret(name: str) -> bool:
    upper = name.upper()
    return upper.startswith("NGROK") or upper.endswith("_KEY") or any(m in upper for m in SECRET_MARKERS)


SHARED_ENV = "M2T_SHARED"  # set for the app when people other than the owner can reach it
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def child_environment(environ: Mapping[str, str], profile: str | None) -> dict[str, str]:
    """The environment Streamlit gets: ours minus anything credential-like that the app does not need.

    The app runs code paths a visitor drives, so it should hold no secret it has no use for: the ngrok
    authtoken (the tunnel lives in this process), cloud keys, CI tokens, ``SSH_AUTH_SOCK`` and the like.
    ``M2T_*`` settings always pass. ``HF_TOKEN``/``HUGGING_FACE_HUB_TOKEN`` pass only when the app serves
    the ``hub`` profile, whose gated models (e.g. Llama-2) cannot load without it; the offline profile
    never talks to the hub, so there it is dropped too.
    """
    hub = (profile or environ.get(PROFILE_ENV, "")).strip().lower() == "hub"
    env: dict[str, str] = {}
    for name, value in environ.items():
        upper = name.upper()
        keep = (upper.startswith("M2T_") or upper in SAFE_NAMES or (hub and upper in HUB_TOKENS)
                or not looks_secret(name))
        if keep:
            env[name] = value
    return env


def streamlit_flags(config: Path = STREAMLIT_CONFIG) -> list[str]:
    """``--section.option value`` for every setting of ``config`` (Streamlit takes each as a flag)."""
    flags: list[str] = []
    for section, options in tomllib.loads(config.read_text(encoding="utf-8")).items():
        for option, value in options.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            flags += [f"--{section}.{option}", text]
    return flags


def free_local_port() -> int:
    """An unused loopback port for Streamlit behind the proxy (the kernel picks; released right away)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pump(server: Server, stream: IO[str]) -> None:
    """Drain the child's output (a full pipe would block it), keep a tail, echo when asked."""
    for line in stream:
        server.tail.append(line.rstrip("\n"))
        if server.echo:
            sys.stderr.write(line)
            sys.stderr.flush()
    stream.close()


def start_server(
    port: int = DEFAULT_PORT,
    *,
    host: str = DEFAULT_HOST,
    app: Path = DEFAULT_APP,
    profile: str | None = None,
    echo: bool = False,
    extra_args: list[str] | None = None,
    shared: bool = False,
    preload: bool = False,
    dev: bool = False,
) -> Server:
    """Start ``python -P -m streamlit run`` on the launcher (serving ``app``) in the caller's folder, with the
    project's settings as flags (:data:`STREAMLIT_CONFIG`), so a wheel install serves the same from any folder;
    ``-P`` keeps that folder off the child's ``sys.path``, so an ``app/`` or ``core/`` that happens to be there
    cannot stand in for the installed packages. ``preload`` loads
    the profile's models as the server starts (``serve`` turns it on; off here so tests of the server
    itself load nothing); ``dev`` keeps Streamlit's file watcher and rerun-on-save. Does not wait; see
    :func:`wait_until_ready`."""
    app = Path(app).resolve()
    if not app.is_file():
        raise UserError(f"app not found: {app}")
    if not LAUNCHER.is_file():
        raise UserError(f"{LAUNCHER.name} is not installed with media2tweet (looked for {LAUNCHER}); reinstall it")
    if profile is not None and profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    if port_in_use(port, host):
        raise UserError(f"port {port} is already in use on {host}; stop what uses it or pick another "
                        f"with --port {port + 1}")
    env = dict(child_environment(os.environ, profile), PYTHONUNBUFFERED="1")
    if shared:  # visitors other than the owner: the app offers no server paths or server URLs to choose
        env[SHARED_ENV] = "1"
    if profile is not None:
        env[PROFILE_ENV] = profile
    env[APP_SCRIPT_ENV] = str(app)
    env[PRELOAD_ENV] = "1" if preload else "0"
    cmd = [sys.executable, "-P", "-m", "streamlit", "run", str(LAUNCHER), *streamlit_flags(),
           "--server.port", str(port), "--server.address", host, "--server.headless", "true",
           *(() if dev else SERVING_FLAGS), *(extra_args or [])]
    proc = subprocess.Popen(
        cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
    )
    server = Server(proc=proc, port=port, host=host, echo=echo)
    assert proc.stdout is not None
    server._reader = threading.Thread(target=_pump, args=(server, proc.stdout), daemon=True,
                                      name=f"streamlit-{port}-output")
    server._reader.start()
    return server


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """True when ``GET {url}/_stcore/health`` answers 200 "ok"."""
    try:
        with _LOCAL_OPENER.open(f"{url}/_stcore/health", timeout=timeout) as resp:
            return resp.status == 200 and resp.read().strip() == b"ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until_ready(server: Server, timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Poll the health endpoint; on death or timeout stop the child and raise with its last lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            if server._reader is not None:
                server._reader.join(timeout=2)  # collect its last words
            server.stop()
            raise UserError(f"Streamlit exited (code {server.proc.returncode}) before it was ready. "
                            f"Its last output:\n{server.last_output()}")
        if health_ok(server.url, timeout=1.0):
            return
        time.sleep(0.2)
    server.stop()
    raise UserError(f"Streamlit did not answer {server.url}/_stcore/health within {timeout:.0f} s. "
                    f"Its last output:\n{server.last_output()}")


def share(server: Server, *, login: tuple[str, str] | None, out: TextIO | None = None, port: int | None = None,
          local_url: str | None = None, generated: bool = False) -> Any:
    """Open the ngrok tunnel for ``server``, or for the auth proxy in front of it (``port``/``local_url``).

    ``login`` is the login that port checks (``None``: an open link, which ``serve`` only allows with
    ``--no-auth``). On failure print why on stderr and return ``None``: the local server keeps running,
    which is still useful (and what the message says).
    """
    from core.serve import tunnel  # pyngrok is only imported when sharing

    port = server.port if port is None else port
    local_url = server.url if local_url is None else local_url
    try:
        return tunnel.open_tunnel(port, login=login, local_url=local_url, out=out, generated=generated)
    except UserError as exc:
        message = str(exc)
        if local_url not in message:
            message += f". The app is still served locally at {local_url}"
        print(f"Tunnel not opened: {message}", file=sys.stderr, flush=True)
        return None


class _Stop(Exception):
    """Raised from the SIGTERM/SIGHUP handler so ``finally`` blocks run as for Ctrl-C."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signum)


@contextlib.contextmanager
def _stop_signals() -> Any:
    """Turn SIGTERM/SIGHUP into an exception (Ctrl-C already is one) while serving."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, _raise_stop) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _shielded() -> Any:
    """Ignore a second Ctrl-C/SIGTERM while cleaning up, so cleanup itself is not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def serve(
    port: int = DEFAULT_PORT,
    tunnel: bool = False,
    auth: str | None = None,
    no_auth: bool = False,
    profile: str | None = None,
    app: Path = DEFAULT_APP,
    host: str = DEFAULT_HOST,
    startup_timeout: float = STARTUP_TIMEOUT_S,
    preload: bool = True,
    dev: bool = False,
) -> int:
    """Serve until Ctrl-C/SIGTERM/SIGHUP (exit 0) or until Streamlit dies (exit 1).

    ``preload`` (unless ``M2T_PRELOAD=0``) starts loading the profile's models as the server starts;
    ``dev`` keeps Streamlit's file watcher and rerun-on-save for people editing the app.

    Raises :class:`UserError` for problems found before serving (bad flags, port in use, startup).
    """
    if not tunnel and no_auth:
        raise UserError("--no-auth only applies to a public link; add --tunnel")
    from core.serve.tunnel import parse_auth, resolve_credentials

    # Reject a bad --auth before starting anything. A tunnel without --no-auth gets a generated login.
    credentials = resolve_credentials(auth, no_auth) if tunnel else (parse_auth(auth) if auth else None)
    proxy = None
    if credentials is not None:
        proxy = AuthProxy(host, port, free_local_port(), Credentials(*credentials))
        proxy.start()  # binds the requested port now: "port in use" is reported before Streamlit starts
    try:
        server = start_server(proxy.upstream[1] if proxy else port, host=DEFAULT_HOST if proxy else host,
                              app=app, profile=profile, echo=True,
                              shared=tunnel or credentials is not None or host not in LOOPBACK_HOSTS,
                              preload=preload and preload_enabled(), dev=dev)
    except BaseException:
        if proxy is not None:
            proxy.stop()
        raise
    local_url = f"http://{_probe_host(host)}:{port}"
    shared = None
    try:
        with _stop_signals():
            print(f"Starting Media2Tweet ({Path(app).name}, profile {profile or 'default'}) ...", flush=True)
            wait_until_ready(server, startup_timeout)
            print(f"Local URL: {local_url}  (Ctrl-C to stop)", flush=True)
            if credentials is not None and not tunnel:
                print(f"Basic auth: user {credentials[0]}  (password as given with --auth)", flush=True)
            if tunnel:
                shared = share(server, login=credentials, port=port, local_url=local_url, generated=auth is None)
            code = server.proc.wait()
            print(f"Streamlit stopped unexpectedly (exit code {code}). Its last output:\n"
                  f"{server.last_output()}", file=sys.stderr, flush=True)
            return 1
    except (KeyboardInterrupt, _Stop):
        print("\nStopping ...", file=sys.stderr, flush=True)
        return 0
    finally:
        with _shielded():
            if shared is not None:
                shared.close()
            server.stop()
            if proxy is not None:
                proxy.stop()


# --------------------------------------------------------------------------- CLI


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {port}")
    return port


def configure_serve(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help="local port (default %(default)s)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to bind (default %(default)s; 0.0.0.0 exposes the app to your network)")
    parser.add_argument("--tunnel", action="store_true",
                        help="also share a public https URL through ngrok (needs NGROK_AUTHTOKEN)")
    access = parser.add_mutually_exclusive_group()
    access.add_argument("--auth", metavar="USER:PASS",
                        help="basic auth on every request, local port and public URL alike, checked by one "
                             "local proxy (password 8-128 chars; with --tunnel the default is a generated one)")
    access.add_argument("--no-auth", action="store_true",
                        help="open the public URL without a password (anyone with the link can use it)")
    parser.add_argument("--profile", choices=PROFILES,
                        help=f"model profile passed to the app as {PROFILE_ENV} (default: the app's own)")
    parser.add_argument("--app", type=Path, default=DEFAULT_APP,
                        help="Streamlit script (default %(default)s)")
    parser.add_argument("--no-preload", action="store_true",
                        help=f"load each model when a visitor first needs it instead of at start-up (machines "
                             f"short of memory; same as {PRELOAD_ENV}=0)")
    parser.add_argument("--dev", action="store_true",
                        help="for editing the app: Streamlit's file watcher and rerun-on-save stay on")
    parser.set_defaults(run=run_serve)
    return parser


def run_serve(args: argparse.Namespace) -> int:
    """CLI entry for ``m2t serve``; lets :class:`UserError` reach the CLI's handler."""
    return serve(port=args.port, tunnel=args.tunnel, auth=args.auth, no_auth=args.no_auth,
                 profile=args.profile, app=args.app, host=args.host, preload=not args.no_preload, dev=args.dev)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.serve.server``: the same command without the full CLI (used by the tests).
    Reports a :class:`UserError` like ``core.commands`` does: one ``error: ...`` line, exit code 2."""
    parser = configure_serve(argparse.ArgumentParser(prog="python -m core.serve.server"))
    args = parser.parse_args(argv)
    try:
        return run_serve(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
