"""Parse the ``media`` field of a tweet dump.

Dumps store media as the repr of snscrape objects, e.g.
``[Photo(previewUrl='…', fullUrl='…')]`` or ``[Video(thumbnailUrl='…', variants=[VideoVariant(
contentType='video/mp4', url='…', bitrate=…)], …)]``. We parse them with ``ast`` instead of
regexes over URLs so quoting and nesting are handled, and never ``eval`` untrusted text.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

_KINDS = {"Photo": "photo", "Video": "video", "Gif": "gif", "AnimatedGif": "gif"}


@dataclass(frozen=True)
class MediaItem:
    kind: str  # photo | video | gif
    url: str  # best URL to fetch for analysis
    fallback_urls: tuple[str, ...] = field(default_factory=tuple)  # tried in order when url fails


def looks_like_dump(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("[") and any(f"{name}(" in stripped for name in _KINDS)


def _value(node: ast.AST):
    """Literal value of a call argument; nested calls become dicts with a ``__type__`` key."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        out = {"__type__": node.func.id}
        out.update({kw.arg: _value(kw.value) for kw in node.keywords if kw.arg})
        return out
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(elt) for elt in node.elts]
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _item(obj: dict) -> MediaItem | None:
    kind = _KINDS.get(obj.get("__type__", ""))
    if kind == "photo":
        urls = [u for u in (obj.get("fullUrl"), obj.get("previewUrl")) if u]
    elif kind in ("video", "gif"):
        variants = [v for v in obj.get("variants") or [] if isinstance(v, dict) and v.get("url")]
        mp4 = [v for v in variants if "mp4" in str(v.get("contentType", ""))]
        # Lowest bitrate first: keyframes and speech survive compression, downloads stay small.
        mp4.sort(key=lambda v: v.get("bitrate") or 0)
        urls = [v["url"] for v in mp4] + [u for u in (obj.get("thumbnailUrl"),) if u]
    else:
        return None
    if not urls:
        return None
    return MediaItem(kind=kind, url=urls[0], fallback_urls=tuple(urls[1:]))


def parse_media_field(text: str) -> list[MediaItem]:
    """Media items of a dump's ``media`` cell; empty for ``nan``/empty/unparseable cells."""
    if not text or not looks_like_dump(text):
        return []
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return []
    nodes = tree.body.elts if isinstance(tree.body, ast.List) else [tree.body]
    items = []
    for node in nodes:
        obj = _value(node)
        if isinstance(obj, dict):
            item = _item(obj)
            if item is not None:
                items.append(item)
    return items
