"""Brand history in the app: upload a tweet dump (or pick a recent one) whose tweets become examples.

Uploaded dumps are kept under ``cache_dir()/history/dumps`` named by their content hash, so "recent"
survives a server restart and the index (cached by the same hash) is built once per dump. The index
loads through ``st.cache_resource`` keyed on that hash: one per server, shared by every session.
"""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import streamlit as st

from core.brand.kit import BrandKit
from core.brand.retrieval import HistoryIndex

RECENT = 6
NONE = "(no history)"


def dumps_dir() -> Path:
    from core.registry import cache_dir

    return cache_dir() / "history" / "dumps"


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded dump by its content hash (the same file uploaded twice is one dump)."""
    safe = re.sub(r"[^\w.-]+", "_", Path(name).name)[-60:] or "history.csv"
    target = dumps_dir() / f"{hashlib.sha256(data).hexdigest()[:16]}-{safe}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    target.touch()  # most recently used first
    return target


def recent_dumps(limit: int = RECENT) -> list[Path]:
    folder = dumps_dir()
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)[:limit]


def label(path: Path) -> str:
    return path.name.split("-", 1)[-1]


@st.cache_resource(show_spinner="Indexing the brand history…", max_entries=4)
def load_index(path: str, size: int, mtime: float) -> HistoryIndex:
    """One index per dump file (size and mtime in the key: a replaced file is indexed again)."""
    return HistoryIndex.from_path(path)


def index_for(path: Path) -> HistoryIndex:
    stat = path.stat()
    return load_index(str(path), stat.st_size, stat.st_mtime)


def highlight_unsupported(tweet: str, grounding: dict) -> str:
    """The tweet as Markdown with each unsupported detail on a red background (HTML-escaped otherwise)."""
    spans = sorted((d["start"], d["end"]) for d in grounding.get("details", []) if not d.get("supported", True))
    out, last = [], 0
    for start, end in spans:
        if start < last:
            continue
        out.append(_escape(tweet[last:start]))
        out.append(f":red-background[{_escape(tweet[start:end])}]")
        last = end
    out.append(_escape(tweet[last:]))
    return "".join(out)


def _escape(text: str) -> str:
    """Plain text safe inside Markdown: no links, emphasis or directives from what the model wrote."""
    text = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|:~<>$])", r"\\\1", text)


def grounding_caption(grounding: dict) -> str:
    unsupported = grounding.get("unsupported", [])
    salient, used = grounding.get("salient", []), grounding.get("used", [])
    parts = [f"{len(unsupported)} detail{'s' if len(unsupported) != 1 else ''} not in the inputs"
             + (": " + ", ".join(unsupported) if unsupported else "")]
    if salient:
        parts.append(f"uses {len(used)} of {len(salient)} salient input words"
                     + (f" ({', '.join(used)})" if used else "")
                     + (f"; unused: {', '.join(w for w in salient if w not in used)}" if len(used) < len(salient)
                        else ""))
    return " · ".join(parts)


def kit_fields() -> tuple[bool, BrandKit | None]:
    """The brand kit toggle and, for a brand with no history, its kit typed in (None: the learned one)."""
    on = st.toggle("Brand kit: add the brand's sign-off, hashtag and emoji where the tweet lacks them", value=True,
                   key="tweet.kit_on", help="Learned from the history (the markers the brand uses most). The "
                   "tweet shows what the kit added. Off: the tweet stays as the model wrote it.")
    st.caption("No history for this brand? Type its kit (it replaces the learned one):")
    left, middle, right = st.columns([2, 2, 1])
    signoff = left.text_input("Sign-off", key="tweet.kit_signoff", placeholder="Happy reading!")
    hashtag = middle.text_input("Hashtag", key="tweet.kit_hashtag", placeholder="#ShelfLife")
    emoji = right.text_input("Emoji", key="tweet.kit_emoji", placeholder="📚", max_chars=4)
    typed = BrandKit.typed(signoff or "", hashtag or "", emoji or "")
    return on, (None if typed.empty else typed)


def kit_caption(grounding: dict) -> str:
    """What the brand kit added to a tweet ("" when nothing), so it reads as added, not written by the model."""
    added = grounding.get("kit_added") or []
    return f"Brand kit added: {' '.join(added)}" if added else ""
