"""Download media over http(s) with a timeout and a size cap.

Real tweet dumps are full of dead links; every failure becomes a ``MediaError`` so a
batch row records it and moves on instead of crashing the run.
"""

from __future__ import annotations

import os

import requests

from core.errors import MediaError

DEFAULT_TIMEOUT_S = 15.0
DEFAULT_MAX_BYTES = int(os.environ.get("M2T_MAX_MEDIA_BYTES", 500 * 1024 * 1024))  # = the app's upload limit
_HEADERS = {"User-Agent": "Media2Tweet/0.1 (+https://github.com/media2tweet)"}


def is_url(text: str) -> bool:
    return text.strip().lower().startswith(("http://", "https://"))


def fetch_bytes(url: str, *, timeout: float = DEFAULT_TIMEOUT_S, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The body of ``url``, refusing anything larger than ``max_bytes`` before reading it all."""
    try:
        with requests.get(url, stream=True, timeout=timeout, headers=_HEADERS) as resp:
            if resp.status_code >= 400:
                raise MediaError(f"could not fetch {url}: HTTP {resp.status_code}")
            declared = int(resp.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise MediaError(f"{url} is {declared / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB")
            chunks: list[bytes] = []
            total = 0
            for chunk in resp.iter_content(chunk_size=1 << 16):
                total += len(chunk)
                if total > max_bytes:
                    raise MediaError(f"{url} is larger than the {max_bytes / 1e6:.0f} MB limit")
                chunks.append(chunk)
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise MediaError(f"could not fetch {url} ({reason}); check the URL or upload the file instead") from None
    data = b"".join(chunks)
    if not data:
        raise MediaError(f"{url} returned an empty body")
    return data
