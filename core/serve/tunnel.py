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
"""

from __future__ import annotations

import contextlib
import getpass
import importlib
import logging
import os
import secrets
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from core.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_ENV = "NGROK_AUTHTOKEN"
SECRETS_FILES = (REPO_ROOT / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")
DEFAULT_USER = "m2t"
# ngrok rejects basic-auth passwords outside this range.
PASSWORD_MIN, PASSWORD_MAX = 8, 128

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
            f"--auth: ngrok needs a password of {PASSWORD_MIN} to {PASSWORD_MAX} characters "
            f"(got {len(password)})"
        )
    return user, password


def generate_credentials() -> tuple[str, str]:
    """Credentials for one session: 16 URL-safe characters is plenty against guessing over HTTP."""
    return DEFAULT_USER, secrets.token_urlsafe(12)


def resolve_credentials(auth: str | None, no_auth: bool) -> tuple[str, str] | None:
    """Decide the tunnel's basic auth: explicit, generated, or (only when asked for) none."""
    if auth is not None and no_auth:
        raise TunnelError("use either --auth USER:PASS or --no-auth, not both")
    if no_auth:
        return None
    if auth is not None:
        return parse_auth(auth)
    return generate_credentials()


def read_secrets_token(paths: Iterable[Path] | None = None) -> str | None:
    """Token from Streamlit's secrets file: top-level ``NGROK_AUTHTOKEN`` or ``[ngrok] authtoken``
    (the repo's ``.streamlit/secrets.toml``, then the user-wide one Streamlit also reads)."""
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
    """Replace secrets in pyngrok's log records: ngrok echoes a rejected token in its error log,
    and pyngrok logs the tunnel options (with the basic-auth password) at debug level."""

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


def endpoint_options(credentials: tuple[str, str] | None) -> dict[str, Any]:
    """Options for ``ngrok.connect``.

    pyngrok 9 talks to the ngrok v3 agent through ``/api/endpoints`` (agent config v3), where the
    old per-tunnel ``basic_auth`` field no longer exists; basic auth is a Traffic Policy action.
    """
    if credentials is None:
        return {}
    user, password = credentials
    policy = {"on_http_request": [{"actions": [{"type": "basic-auth",
                                                "config": {"credentials": [f"{user}:{password}"]}}]}]}
    return {"traffic_policy": policy}


def _describe_failure(exc: Exception, scrub: Callable[[str], str], local_url: str) -> str:
    """Turn a pyngrok exception into one actionable sentence (without the token in it)."""
    from pyngrok.exception import PyngrokNgrokError, PyngrokNgrokInstallError

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
    if isinstance(exc, PyngrokNgrokError) and ("traffic_policy" in lowered or "traffic policy" in lowered):
        return (f"ngrok refused the basic-auth traffic policy ({scrub(str(exc)).splitlines()[0]}); "
                "update pyngrok/ngrok, or use --no-auth at your own risk")
    first_line = (scrub(str(exc)).strip().splitlines() or [type(exc).__name__])[0]
    return f"ngrok failed: {first_line[:300]}"


def open_tunnel(
    port: int,
    *,
    auth: str | None = None,
    no_auth: bool = False,
    token: str | None = None,
    local_url: str | None = None,
    out: TextIO | None = None,
    generated: bool | None = None,
) -> Tunnel:
    """Open an HTTPS tunnel to ``127.0.0.1:port`` and print its URL (and generated credentials, once).

    Raises :class:`TunnelError` with a message that says what to do; the caller keeps serving locally.
    """
    out = sys.stdout if out is None else out
    local_url = local_url or f"http://127.0.0.1:{port}"
    credentials = resolve_credentials(auth, no_auth)  # validate before asking for a token
    token = token or resolve_token()

    from pyngrok import conf, ngrok
    from pyngrok.exception import PyngrokError

    redact = _Redact([token] + ([credentials[1]] if credentials else []))
    _attach(redact)
    # In memory only: set_auth_token() would write the token into ngrok's config file.
    config = conf.PyngrokConfig(auth_token=token)
    try:
        endpoint = ngrok.connect(str(port), proto="http", pyngrok_config=config,
                                 **endpoint_options(credentials))
        if not getattr(endpoint, "public_url", None):
            raise TunnelError("ngrok opened no public URL; see https://dashboard.ngrok.com/endpoints")
    except BaseException as exc:  # also Ctrl-C/SIGTERM mid-connect: never leave a half-started agent
        _kill_quietly(config)
        _detach(redact)
        if isinstance(exc, (PyngrokError, OSError)):
            raise TunnelError(_describe_failure(exc, redact.scrub, local_url)) from None
        raise

    tunnel = Tunnel(public_url=endpoint.public_url, local_url=local_url, _config=config, _redact=redact,
                    username=credentials[0] if credentials else None,
                    password=credentials[1] if credentials else None)
    # ``generated``: the caller made the password itself (serve shares it with its auth proxy) and it
    # still has to be shown once.
    generated = (auth is None) if generated is None else generated
    _announce(tunnel, generated=credentials is not None and generated, out=out)
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
