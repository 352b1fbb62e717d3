"""Public ngrok tunnel in front of the local Streamlit server.

Everything that touches pyngrok lives here, so tests can replace its network edge
(``pyngrok.ngrok.connect`` and the binary installer) and nothing else.

Two rules shape this module:

* The ngrok authtoken is a credential for somebody's ngrok account. It is read from the
  environment, the Streamlit secrets file or a hidden prompt, handed to pyngrok in memory
  (``PyngrokConfig(auth_token=...)``) and never printed, logged or written to disk by us;
  pyngrok's own log records are scrubbed because ngrok echoes a rejected token back.
* A public URL without a password lets anyone who guesses or sees it run the models on this
  machine, so basic auth is on unless the caller explicitly asks for an open tunnel.

One login layer, ours: the tunnel forwards to the local auth proxy (:mod:`core.serve.proxy`), which checks
the login on every request, and ngrok gets no auth action of its own. Two layers with the same login
(ngrok's ``basic-auth`` action, then the proxy) would work only if ngrok passed the ``Authorization``
header on after its own check, which its documentation does not say; one layer depends only on what ngrok
documents for a plain HTTP endpoint: it forwards the request and adds ``x-forwarded-*`` headers, and
removes headers only when told to (https://ngrok.com/docs/http/request-headers/,
https://ngrok.com/docs/universal-gateway/http-s/upstream-headers). :func:`open_tunnel` refuses to publish a
port that answers without the login it was given, so a wrong wiring cannot open the app to everyone.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import importlib
import logging
import os
import secrets
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from core.errors import UserError

TOKEN_ENV = "NGROK_AUTHTOKEN"
# Where Streamlit itself looks for secrets: the folder the command runs in, then the user's own.
SECRETS_FILES = (Path(".streamlit") / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")
DEFAULT_USER = "m2t"
# Password length: at least 8 against guessing over HTTP; the same range ngrok's basic auth accepted, so
# logins that worked before still do.
PASSWORD_MIN, PASSWORD_MAX = 8, 128
GATE_TIMEOUT_S = 10.0
# No proxy for the loopback gate check, whatever HTTP(S)_PROXY says.
_LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

TOKEN_HELP = (
    "get a free authtoken at https://dashboard.ngrok.com/get-started/your-authtoken and set it with "
    f"`export {TOKEN_ENV}=...` (Colab: add it to the notebook's secrets), or put "
    f"{TOKEN_ENV} = \"...\" in .streamlit/secrets.toml"
)


class TunnelError(UserError):
    """The tunnel could not be opened; the message says what the person can do about it."""


@dataclass
class Tunnel:
    """An open tunnel; ``password`` is kept out of ``repr`` so it cannot leak into logs by accident."""

    public_url: str
    local_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _config: Any = field(default=None, repr=False)
    _redact: Any = field(default=None, repr=False)

    def close(self) -> None:
        """Disconnect the tunnel and stop the ngrok agent; never raises (this runs during shutdown)."""
        from pyngrok import ngrok

        with contextlib.suppress(Exception):  # best effort: the agent may already be gone
            ngrok.disconnect(self.public_url, self._config)
        _kill_quietly(self._config)
        if self._redact is not None:
            _detach(self._redact)


# --------------------------------------------------------------------------- credentials


def parse_auth(auth: str) -> tuple[str, str]:
    """Split ``USER:PASS`` and check it against ngrok's rules before anything starts."""
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise TunnelError("--auth must look like USER:PASS (for example --auth demo:a-long-password)")
    if any(ch.isspace() for ch in user):
        raise TunnelError("--auth: the user name must not contain spaces")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise TunnelError(
            f"--auth: the password must have {PASSWORD_MIN} to {PASSWORD_MAX} characters "
            f"(got {len(password)})"
        )
    return user, password


def generate_credentials() -> tuple[str, str]:
    """Credentials for one session: 16 URL-safe characters is plenty against guessing over HTTP."""
    return DEFAULT_USER, secrets.token_urlsafe(12)


def resolve_credentials(auth: str | None, no_auth: bool) -> tuple[str, str] | None:
    """Decide the link's login (checked by the local auth proxy): explicit, generated, or (only when asked
    for) none."""
    if auth is not None and no_auth:
        raise TunnelError("use either --auth USER:PASS or --no-auth, not both")
    if no_auth:
        return None
    if auth is not None:
        return parse_auth(auth)
    return generate_credentials()


def read_secrets_token(paths: Iterable[Path] | None = None) -> str | None:
    """Token from Streamlit's secrets file: top-level ``NGROK_AUTHTOKEN`` or ``[ngrok] authtoken``
    (``.streamlit/secrets.toml`` in the current folder, then the user-wide one Streamlit also reads)."""
    for path in SECRETS_FILES if paths is None else paths:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            # Say which file; the parser's message may quote the line, i.e. the token.
            raise TunnelError(f"cannot read {path} ({type(exc).__name__}); fix or remove it") from None
        section = data.get("ngrok")
        token = data.get(TOKEN_ENV) or (section.get("authtoken") if isinstance(section, dict) else None)
        if isinstance(token, str) and token.strip():
            return token.strip()
    return None


def resolve_token(
    env: Mapping[str, str] | None = None,
    secrets_paths: Iterable[Path] | None = None,
    stdin: TextIO | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    """Find the authtoken: environment, then secrets file, then a hidden prompt on a terminal."""
    env = os.environ if env is None else env
    token = (env.get(TOKEN_ENV) or "").strip() or read_secrets_token(secrets_paths)
    if token:
        return token
    stdin = sys.stdin if stdin is None else stdin
    if stdin is not None and stdin.isatty():
        try:
            token = prompt("ngrok authtoken (input hidden, not saved): ").strip()
        except (EOFError, KeyboardInterrupt):
            token = ""
        if token:
            return token
    raise TunnelError(f"no ngrok authtoken: {TOKEN_HELP}")


# --------------------------------------------------------------------------- log scrubbing


class _Redact(logging.Filter):
    """Replace secrets in pyngrok's log records: ngrok echoes a rejected token in its error log (the
    password never reaches pyngrok, but is scrubbed too in case a caller's message carries it)."""

    def __init__(self, secrets_: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets_ if s]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def _pyngrok_loggers() -> list[logging.Logger]:
    """Every logger in pyngrok's hierarchy: logger-level filters do not apply to child loggers."""
    names = [n for n in list(logging.Logger.manager.loggerDict) if n.startswith("pyngrok.")]
    return [logging.getLogger(n) for n in {"pyngrok", *names}]


def _attach(redact: _Redact) -> None:
    """Scrub pyngrok's records for as long as the agent runs (its monitor thread keeps logging)."""
    for module in ("pyngrok.installer", "pyngrok.ngrok", "pyngrok.process"):
        importlib.import_module(module)  # creates every pyngrok logger, so each one gets the filter

    for logger in _pyngrok_loggers():
        logger.addFilter(redact)


def _detach(redact: _Redact) -> None:
    for logger in _pyngrok_loggers():
        logger.removeFilter(redact)


# --------------------------------------------------------------------------- opening


def endpoint_options() -> dict[str, Any]:
    """Options for ``ngrok.connect`` beyond address and protocol: none.

    In particular no Traffic Policy and no ``basic-auth`` action: the login is checked once, by the local
    auth proxy the tunnel points at (see the module docstring).
    """
    return {}


def _status(url: str, authorization: str | None) -> int | None:
    """HTTP status of ``GET url`` (None when nothing answers)."""
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with _LOCAL_OPENER.open(request, timeout=GATE_TIMEOUT_S) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def check_gate(local_url: str, login: tuple[str, str]) -> None:
    """Refuse to publish ``local_url`` unless it asks for ``login``: 401 without it, 200 with it.

    This is what makes the auth proxy the one login layer safe to rely on: a tunnel pointed at Streamlit
    itself, or a proxy with another password, fails here before any public URL exists.
    """
    health = f"{local_url}/_stcore/health"
    anonymous = _status(health, None)
    if anonymous != 401:
        seen = "nothing answered" if anonymous is None else f"it answered {anonymous} without a login"
        raise TunnelError(f"refusing to publish {local_url}: it must ask for the login, but {seen}")
    token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
    if _status(health, f"Basic {token}") != 200:
        raise TunnelError(f"refusing to publish {local_url}: it does not accept the login it would be shared with")


def _describe_failure(exc: Exception, scrub: Callable[[str], str], local_url: str) -> str:
    """Turn a pyngrok exception into one actionable sentence (without the token in it)."""
    from pyngrok.exception import PyngrokNgrokInstallError

    code = getattr(exc, "ngrok_error_code", None) or ""
    text = " ".join(str(part) for part in (exc, getattr(exc, "ngrok_error", None) or "", code))
    lowered = text.lower()
    if isinstance(exc, PyngrokNgrokInstallError):
        return ("could not download the ngrok agent (no internet access, or a proxy/firewall blocks "
                f"bin.ngrok.com); the app is still served locally at {local_url}")
    if "ERR_NGROK_4018" in text:
        return f"ngrok requires an authtoken: {TOKEN_HELP}"
    # ngrok prefixes several account errors with "authentication failed"; specific codes first.
    if "ERR_NGROK_108" in text or "simultaneous" in lowered:
        return ("this ngrok account already has an agent online (the free plan allows one); stop the "
                "other `ngrok`/serve session (another terminal, notebook or machine) and retry")
    if (any(c in text for c in ("ERR_NGROK_105", "ERR_NGROK_106", "ERR_NGROK_107"))
            or "authentication failed" in lowered
            or ("authtoken" in lowered and "invalid" in lowered)):
        return ("ngrok rejected the authtoken (invalid, revoked or mistyped); copy it again from "
                f"https://dashboard.ngrok.com/get-started/your-authtoken and reset {TOKEN_ENV}")
    first_line = (scrub(str(exc)).strip().splitlines() or [type(exc).__name__])[0]
    return f"ngrok failed: {first_line[:300]}"


def open_tunnel(
    port: int,
    *,
    login: tuple[str, str] | None,
    token: str | None = None,
    local_url: str | None = None,
    out: TextIO | None = None,
    generated: bool = False,
) -> Tunnel:
    """Open an HTTPS tunnel to ``127.0.0.1:port`` and print its URL (and a generated password, once).

    ``login`` is the login the server at ``port`` checks (the auth proxy of ``m2t serve``); it is verified
    before anything is published (:func:`check_gate`) and announced with the URL. ``None`` publishes an
    open link, with a warning. ngrok itself forwards without an auth action. Raises :class:`TunnelError`
    with a message that says what to do; the caller keeps serving locally.
    """
    out = sys.stdout if out is None else out
    local_url = local_url or f"http://127.0.0.1:{port}"
    if login is not None:
        check_gate(local_url, login)
    token = token or resolve_token()

    from pyngrok import conf, ngrok
    from pyngrok.exception import PyngrokError

    redact = _Redact([token] + ([login[1]] if login else []))
    _attach(redact)
    # In memory only: set_auth_token() would write the token into ngrok's config file.
    config = conf.PyngrokConfig(auth_token=token)
    try:
        endpoint = ngrok.connect(str(port), proto="http", pyngrok_config=config, **endpoint_options())
        if not getattr(endpoint, "public_url", None):
            raise TunnelError("ngrok opened no public URL; see https://dashboard.ngrok.com/endpoints")
    except BaseException as exc:  # also Ctrl-C/SIGTERM mid-connect: never leave a half-started agent
        _kill_quietly(config)
        _detach(redact)
        if isinstance(exc, (PyngrokError, OSError)):
            raise TunnelError(_describe_failure(exc, redact.scrub, local_url)) from None
        raise

    tunnel = Tunnel(public_url=endpoint.public_url, local_url=local_url, _config=config, _redact=redact,
                    username=login[0] if login else None, password=login[1] if login else None)
    _announce(tunnel, generated=login is not None and generated, out=out)
    return tunnel


def _announce(tunnel: Tunnel, *, generated: bool, out: TextIO) -> None:
    """Print the public URL; a generated password is shown exactly once, here."""
    print(f"Public URL: {tunnel.public_url}  (forwarding to {tunnel.local_url})", file=out)
    if tunnel.username is None:
        print("WARNING: no password: anyone who has this URL can use the app.", file=out)
    elif generated:
        print(f"Basic auth: user {tunnel.username}  password {tunnel.password}  "
              "(generated for this session; share it only with your audience)", file=out)
    else:
        print(f"Basic auth: user {tunnel.username}  (password as given with --auth)", file=out)
    out.flush()


def _kill_quietly(config: Any) -> None:
    """Stop a half-started agent so a failed attempt leaves no ngrok process behind."""
    from pyngrok import ngrok

    with contextlib.suppress(Exception):  # cleanup after a failure must not mask it
        ngrok.kill(config)
