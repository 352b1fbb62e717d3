"""Parse the ``media`` field of a tweet dump.

Dumps store media as the repr of snscrape objects, e.g.
``[Photo(previewUrl='…', fullUrl='…')]`` or ``[Video(thumbnailUrl='…', variants=[VideoVariant(
contentType='video/mp4', url='…', bitrate=…)], …)]``. Nothing in the field is evaluated.

The field comes from whoever wrote the CSV (or typed into the app), so the reader is bounded: a
size cap (``M2T_MAX_DUMP_FIELD_CHARS``) before anything else, then Python's tokenizer (quoting and
escapes exactly as in a repr) and a small recursive-descent parser whose depth follows bracket
nesting and is capped at :data:`MAX_DEPTH`. ``ast.parse`` is not used on the field: unary or
attribute chains that contain no bracket still drive CPython's parser into ``RecursionError`` or
``MemoryError``. Every field the loader reads is type-checked, so a malformed value is one clear
line, not an ``AttributeError`` deep in the loader.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.errors import MediaError, UserError

_KINDS = {"Photo": "photo", "Video": "video", "Gif": "gif", "AnimatedGif": "gif"}
DEFAULT_MAX_CHARS = 20_000  # a real field with four photos or a video's variants is well under 3,000 characters
MAX_DEPTH = 8  # a real field nests 4 deep: [ Video( variants=[ VideoVariant( … ) ] ) ]


@dataclass(frozen=True)
class MediaItem:
    kind: str  # photo | video | gif
    url: str  # best URL to fetch for analysis
    fallback_urls: tuple[str, ...] = field(default_factory=tuple)  # tried in order when url fails


def max_field_chars() -> int:
    """The size cap, from ``M2T_MAX_DUMP_FIELD_CHARS`` (read per call, so a test or the app can change it)."""
    raw = os.environ.get("M2T_MAX_DUMP_FIELD_CHARS", "").strip()
    if not raw:
        return DEFAULT_MAX_CHARS
    try:
        value = int(raw)
    except ValueError:
        raise UserError(f"M2T_MAX_DUMP_FIELD_CHARS must be a whole number of characters, not {raw!r}") from None
    if value < 1:
        raise UserError(f"M2T_MAX_DUMP_FIELD_CHARS must be at least 1, got {value}")
    return value


def looks_like_dump(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("[") and any(f"{name}(" in stripped for name in _KINDS)


class _Malformed(Exception):
    """The field does not follow the dump grammar or holds the wrong kind of value (the message says where)."""


class _Expression:
    """A value outside the grammar we read (e.g. ``datetime(…)`` is read, ``a + b`` is not): fine in a
    field the loader ignores, an error in one it reads."""

    def __repr__(self) -> str:
        return "an expression"


_EXPRESSION = _Expression()
_SKIP = {tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    """The field's tokens (Python's tokenizer: quoting and escapes as in a repr), layout tokens dropped."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in _SKIP]
    except tokenize.TokenError:
        raise _Malformed("an unterminated quote or bracket") from None
    except (SyntaxError, ValueError) as exc:  # e.g. inconsistent indentation after a line break
        raise _Malformed(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__) from None
    bad = next((t for t in tokens if t.type == tokenize.ERRORTOKEN and t.string.strip()), None)
    if bad is not None:
        raise _Malformed(f"unexpected {bad.string!r} at column {bad.start[1] + 1}")
    return tokens


class _Parser:
    """A recursive-descent reader of snscrape reprs: lists, tuples, ``Name(key=value, …)``, strings,
    numbers and ``None``/``True``/``False``.

    Recursion happens only on an opening bracket, and :meth:`sequence` refuses to go past
    :data:`MAX_DEPTH`, so the stack depth is ours to choose, not the field author's.
    """

    def __init__(self, tokens: list[tokenize.TokenInfo]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tokenize.TokenInfo | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tokenize.TokenInfo:
        token = self.peek()
        if token is None:
            raise _Malformed(f"it ends early (expected {expected!r})" if expected else "it ends early")
        if expected is not None and token.string != expected:
            raise _Malformed(f"expected {expected!r} at column {token.start[1] + 1}, found {token.string!r}")
        self.pos += 1
        return token

    def at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.string == text

    def sequence(self, close: str, depth: int, item: Callable[[int], Any]) -> list[Any]:
        """Comma-separated ``item``s up to ``close`` (a trailing comma is allowed, as in a repr)."""
        if depth > MAX_DEPTH:
            raise _Malformed(f"it nests more than {MAX_DEPTH} brackets deep")
        out = []
        while not self.at(close):
            out.append(item(depth))
            if not self.at(close):
                self.take(",")
        self.take(close)
        return out

    def value(self, depth: int) -> Any:
        token = self.take()
        if token.string in ("[", "("):
            return self.sequence("]" if token.string == "[" else ")", depth + 1, self.value)
        if token.type == tokenize.STRING:
            parts = [token.string]
            while (nxt := self.peek()) is not None and nxt.type == tokenize.STRING:
                parts.append(self.take().string)  # 'a' 'b': Python's repr splits nothing, but CSV tools might
            return self.literal(" ".join(parts))
        if token.type == tokenize.NUMBER:
            return self.literal(token.string)
        if token.string == "-" and (nxt := self.peek()) is not None and nxt.type == tokenize.NUMBER:
            return self.literal("-" + self.take().string)
        if token.type == tokenize.NAME:
            if token.string in ("None", "True", "False"):
                return {"None": None, "True": True, "False": False}[token.string]
            name = token.string
            while self.at("."):  # datetime.datetime(…), enum members
                self.take(".")
                name += "." + self.take().string
            if not self.at("("):
                return _EXPRESSION
            self.take("(")
            fields: dict[str, Any] = {"__type__": name}
            for key, value in self.sequence(")", depth + 1, self.argument):
                if key is not None:
                    fields[key] = value
            return fields
        raise _Malformed(f"unexpected {token.string!r} at column {token.start[1] + 1}")

    def argument(self, depth: int) -> tuple[str | None, Any]:
        """``key=value``, or a positional value (kept nowhere: snscrape writes keywords only)."""
        token, nxt = self.peek(), self.tokens[self.pos + 1] if self.pos + 1 < len(self.tokens) else None
        if token is not None and token.type == tokenize.NAME and nxt is not None and nxt.string == "=":
            self.pos += 2
            return token.string, self.value(depth)
        return None, self.value(depth)

    @staticmethod
    def literal(source: str) -> Any:
        """One string or number token's value: ``literal_eval`` of a single token nests nothing, runs nothing."""
        try:
            value = ast.literal_eval(source)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return _EXPRESSION  # f-strings, integers over Python's digit limit
        return value if isinstance(value, str | int | float) else _EXPRESSION


def _parse(text: str) -> list[Any]:
    """The field's top-level list, parsed without evaluating anything."""
    parser = _Parser(_tokens(text))
    parser.take("[")
    items = parser.sequence("]", 1, parser.value)
    if parser.peek() is not None:
        raise _Malformed(f"unexpected text after the closing ']' ({parser.take().string!r})")
    return items


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return f"{value.get('__type__')}(…)"
    if isinstance(value, _Expression):
        return "an expression"
    return f"{type(value).__name__} {value!r}"[:60]


def _text(obj: dict[str, Any], key: str, where: str) -> str | None:
    """An optional string field: absent, None or empty give None; anything but a string is malformed."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Malformed(f"{where}.{key} must be a string URL, got {_describe(value)}")
    return value.strip() or None


def _variants(obj: dict[str, Any], where: str) -> list[tuple[str, str, float]]:
    """``(url, contentType, bitrate)`` of each ``VideoVariant``, every field type-checked."""
    raw = obj.get("variants")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _Malformed(f"{where}.variants must be a list of VideoVariant(…), got {_describe(raw)}")
    out = []
    for i, variant in enumerate(raw):
        here = f"{where}.variants[{i}]"
        if not isinstance(variant, dict) or variant.get("__type__") != "VideoVariant":
            raise _Malformed(f"{here} must be VideoVariant(…), got {_describe(variant)}")
        url = _text(variant, "url", here)
        content_type = variant.get("contentType")
        if content_type is not None and not isinstance(content_type, str):
            raise _Malformed(f"{here}.contentType must be a string, got {_describe(content_type)}")
        bitrate = variant.get("bitrate")
        if bitrate is not None and (isinstance(bitrate, bool) or not isinstance(bitrate, int | float)):
            raise _Malformed(f"{here}.bitrate must be a number, got {_describe(bitrate)}")
        if url:
            out.append((url, content_type or "", float(bitrate or 0)))
    return out


def _item(obj: Any, index: int) -> MediaItem | None:
    """The URLs to try for one top-level object; objects of other kinds (polls, cards) are skipped."""
    if not isinstance(obj, dict):
        raise _Malformed(f"item {index + 1} must be Photo(…), Video(…) or Gif(…), got {_describe(obj)}")
    kind = _KINDS.get(obj["__type__"])
    where = f"{obj['__type__']} (item {index + 1})"
    if kind == "photo":
        urls = [u for u in (_text(obj, "fullUrl", where), _text(obj, "previewUrl", where)) if u]
    elif kind in ("video", "gif"):
        variants = _variants(obj, where)
        thumbnail = _text(obj, "thumbnailUrl", where)
        mp4 = [v for v in variants if "mp4" in v[1]]
        # Lowest bitrate first: keyframes and speech survive compression, downloads stay small.
        mp4.sort(key=lambda v: v[2])
        urls = [v[0] for v in mp4] + [u for u in (thumbnail,) if u]
    else:
        return None
    if not urls:
        return None
    return MediaItem(kind=kind, url=urls[0], fallback_urls=tuple(urls[1:]))


def read_media_field(text: str) -> list[MediaItem]:
    """Media items of a dump's ``media`` cell; a malformed cell is a one-line :class:`MediaError`.

    Empty cells, ``nan`` and text that is not a dump field give ``[]`` (a row without media is fine).
    """
    if not text or not looks_like_dump(text):
        return []
    limit = max_field_chars()
    if len(text) > limit:
        raise MediaError(
            f"the media field is {len(text):,} characters, over the {limit:,} limit "
            "(M2T_MAX_DUMP_FIELD_CHARS); real fields are a few hundred"
        )
    try:
        items = [_item(obj, i) for i, obj in enumerate(_parse(text.strip()))]
    except _Malformed as exc:
        raise MediaError(f"malformed media field: {exc}") from None
    return [item for item in items if item is not None]


def parse_media_field(text: str) -> list[MediaItem]:
    """Like :func:`read_media_field`, but a malformed cell gives ``[]``: for bulk readers (training data)
    where one bad row must cost that row's media, not the run."""
    try:
        return read_media_field(text)
    except MediaError:
        return []
