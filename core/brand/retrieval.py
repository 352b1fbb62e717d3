"""Pick a post's examples from its brand's history: same account first, nearest by media text, then recency.

History tweets have no captions or OCR, so their text is indexed (BM25, ``bm25s``: a 300,000-row dump
builds in ~20 s and answers a query in a few ms, where rank-bm25 is ~200x slower) and the new post's
media text (caption + OCR + transcript) is the query. Scores are computed over the whole index and then
restricted to the account's rows (cheaper than one index per brand, and the same ranking); likes bucket
and recency break ties, so a post with no media text gets the account's latest tweets.

The index is built once per dump and cached under ``cache_dir()/history/<sha256 of the dump>``
(memory-mapped on load), so a second run on the same dump starts in well under a second.
A brand with no earlier tweet gets the nearest tweets of other brands, and the result says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.brand import cache
from core.brand.history import History, account_key, parse_date, read_history
from core.brand.voice import BrandVoice, learn_voice
from core.registry import cache_dir
from core.stages.prompt import likes_bucket

DEFAULT_K = 3
DEFAULT_TOKEN_BUDGET = 180  # examples' share of the prompt: Gemma-3-270m on CPU pays for every prefill token
EXAMPLE_CHARS = 280
VOICE_WINDOW = 40  # a brand's voice is learned from its latest tweets before the post
_BUCKETS = ("very low", "low", "medium", "high", "very high")
_BOUNDS = np.array([10, 100, 1_000, 10_000])  # prompt.LIKES_BUCKETS' upper bounds, for vectorised bucketing
INDEX_VERSION = "1"


@dataclass(frozen=True)
class Example:
    """One history tweet chosen as an example, with why (its BM25 score against the post's media text)."""

    id: str
    date: str
    likes: float | None
    username: str
    company: str
    content: str
    score: float
    same_account: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Examples:
    """What :meth:`HistoryIndex.examples` found for one post."""

    tweets: list[Example] = field(default_factory=list)
    fallback: bool = False  # True: the account had no earlier tweet, these are other brands'
    note: str = ""  # one line for the person: where the examples came from
    voice: BrandVoice = field(default_factory=BrandVoice)

    @property
    def texts(self) -> list[str]:
        return [t.content for t in self.tweets]


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def _tokenize(texts: list[str], stemmer) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)


def _bucket_index(likes: float | None) -> int | None:
    name = likes_bucket(likes)
    return _BUCKETS.index(name) if name else None


def _iso(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")).replace("T", " ")


def _estimate_tokens(text: str) -> int:
    return len(text) // 4 + 2  # ~4 characters a token for English BPE, plus the "- " and newline


class HistoryIndex:
    """A BM25 index over a history dump's tweets, with per-account row lists sorted by date."""

    def __init__(self, history: History, retriever, build_s: float = 0.0, cached: bool = False) -> None:
        self.history = history
        self.retriever = retriever
        self.build_s = build_s
        self.cached = cached
        self._stemmer = _stemmer()
        order = np.argsort(history.dates, kind="stable")
        self._by_username = self._group(history.usernames, order)
        self._by_company = self._group(history.companies, order)
        self._dates_sorted = order  # all rows by date, for the fallback's "before" cut
        self._ids = np.array(history.ids, dtype=object)
        self._voices: dict[tuple[int, ...], BrandVoice] = {}  # a window's voice, learned once
        # Likes bucket per row (9: unknown, farther than any real bucket), so ranking is vectorised.
        likes = history.likes
        self._buckets = np.where(np.isnan(likes), 9, np.searchsorted(_BOUNDS, np.nan_to_num(likes), side="right"))

    @staticmethod
    def _group(keys: np.ndarray, order: np.ndarray) -> dict[str, np.ndarray]:
        """Account key → its row numbers in date order."""
        sorted_keys = keys[order]
        groups: dict[str, list[int]] = {}
        for row, key in zip(order.tolist(), sorted_keys.tolist(), strict=True):
            if key:
                groups.setdefault(key, []).append(row)
        return {k: np.array(v, dtype=np.int64) for k, v in groups.items()}

    # ------------------------------------------------------------------ building and caching

    @classmethod
    def build(cls, history: History, cache_root: Path | None = None) -> HistoryIndex:
        """Load the cached index for this dump's bytes, or build and cache it (atomically, by rename)."""
        import time

        import bm25s

        root = (cache_root or cache_dir() / "history") / f"{history.digest}-v{INDEX_VERSION}"
        start = time.perf_counter()
        if cache.is_complete(root):
            try:
                retriever = bm25s.BM25.load(str(root), mmap=True, show_progress=False)
                return cls(history, retriever, time.perf_counter() - start, cached=True)
            except (OSError, ValueError):
                cache.discard(root)  # a damaged cache is rebuilt, never trusted
        retriever = bm25s.BM25()
        retriever.index(_tokenize(history.content, _stemmer()), show_progress=False)
        build_s = time.perf_counter() - start
        cache.publish(root, lambda folder: retriever.save(str(folder), show_progress=False), history.path)
        return cls(history, retriever, build_s)

    @classmethod
    def from_path(cls, path: str | Path, cache_root: Path | None = None) -> HistoryIndex:
        return cls.build(read_history(path), cache_root)

    # ------------------------------------------------------------------ querying

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every history tweet against ``query`` (zeros when it has no indexed word)."""
        n = len(self.history)
        tokens = _tokenize([query], self._stemmer)[0] if query.strip() else []
        vocab = self.retriever.vocab_dict
        tokens = [t for t in tokens if t in vocab]
        if not tokens:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)

    def account_rows(self, username: str = "", company: str = "") -> np.ndarray:
        """The account's rows in date order: by username, else by company."""
        rows = self._by_username.get(account_key(username))
        if rows is None or not len(rows):
            rows = self._by_company.get(account_key(company), np.array([], dtype=np.int64))
        return rows

    def _eligible(self, rows: np.ndarray, before: int | None, exclude_id: str | None) -> np.ndarray:
        if before is not None and len(rows):
            rows = rows[self.history.dates[rows] < before]
        if exclude_id is not None and len(rows):
            rows = rows[self._ids[rows] != exclude_id]
        return rows

    def voice(self, username: str = "", company: str = "", before: str | int | None = None,
              exclude_id: str | None = None) -> BrandVoice:
        """The account's voice from its latest tweets before ``before``."""
        cut = int(before) if isinstance(before, int | np.integer) else parse_date(before)
        return self._voice_of(self._eligible(self.account_rows(username, company), cut, exclude_id))

    def earlier(self, username: str = "", company: str = "", before: str | int | None = None,
                exclude_id: str | None = None) -> list[str]:
        """The account's tweets dated before ``before`` (oldest first): what a new tweet must not repeat."""
        cut = int(before) if isinstance(before, int | np.integer) else parse_date(before)
        return [self.history.content[r] for r in self._eligible(self.account_rows(username, company), cut,
                                                                 exclude_id).tolist()]

    def _voice_of(self, rows: np.ndarray) -> BrandVoice:
        """The voice of the latest ``VOICE_WINDOW`` of ``rows`` (memoised: a brand's posts share windows)."""
        window = tuple(rows[-VOICE_WINDOW:].tolist())
        if window not in self._voices:
            if len(self._voices) > 10_000:
                self._voices.clear()
            self._voices[window] = learn_voice([self.history.content[r] for r in window])
        return self._voices[window]

    def examples(
        self,
        *,
        username: str = "",
        company: str = "",
        media_text: str = "",
        before: str | int | None = None,
        exclude_id: str | None = None,
        likes: float | None = None,
        k: int = DEFAULT_K,
        token_budget: int = DEFAULT_TOKEN_BUDGET,
        count_tokens: Callable[[str], int] | None = None,
    ) -> Examples:
        """Up to ``k`` earlier tweets for a post, fitting ``token_budget``; never the post itself or a later one."""
        if k <= 0:
            return Examples(note="history examples switched off (k = 0)")
        cut = int(before) if isinstance(before, int | np.integer) else parse_date(before)
        own = self._eligible(self.account_rows(username, company), cut, exclude_id)
        query = " ".join(filter(None, (media_text, company)))
        scores = self.scores(query)
        fallback = not len(own)
        if fallback:
            pool = self._eligible(self._dates_sorted, cut, exclude_id)
            if len(pool) > 5000:  # the nearest by text first: sorting 300k rows per query is wasted work
                pool = pool[np.argpartition(-scores[pool], 5000)[:5000]]
        else:
            pool = own
        if not len(pool):
            return Examples(note="no history tweet is dated before this post", fallback=True)
        ranked = self._rank(pool, scores, likes)
        tweets = self._fit(ranked, scores, k, token_budget, count_tokens or _estimate_tokens,
                           account_key(username), account_key(company))
        if fallback:
            others = sorted({t.username or t.company for t in tweets})
            note = (f"@{account_key(username) or company} has no earlier tweet in the history: examples from the "
                    f"nearest other brands ({', '.join(others)})")
            return Examples(tweets, True, note, BrandVoice())
        note = f"{len(tweets)} of @{account_key(username) or company}'s {len(own)} earlier tweets"
        return Examples(tweets, False, note, self._voice_of(own))

    def _rank(self, rows: np.ndarray, scores: np.ndarray, likes: float | None) -> np.ndarray:
        """Best text match first; then the likes bucket nearest the target; then the most recent."""
        target = _bucket_index(likes)
        distance = np.zeros(len(rows)) if target is None else np.abs(self._buckets[rows] - target)
        text = np.round(scores[rows].astype(np.float64), 2)
        order = np.lexsort((-self.history.dates[rows], distance, -text))  # last key is the primary one
        return rows[order]

    def _fit(self, ranked: np.ndarray, scores: np.ndarray, k: int, budget: int, count: Callable[[str], int],
             username: str, company: str) -> list[Example]:
        h = self.history
        chosen: list[Example] = []
        seen: set[str] = set()
        used = 0
        for row in ranked.tolist():
            text = h.content[row]
            text = text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1].rstrip() + "…"
            key = text.lower()
            if key in seen:
                continue  # a repeated tweet teaches nothing twice
            cost = count(text)
            if used + cost > budget:
                continue
            seen.add(key)
            used += cost
            likes = None if math.isnan(h.likes[row]) else float(h.likes[row])
            same = bool((username and h.usernames[row] == username) or (company and h.companies[row] == company))
            chosen.append(Example(h.ids[row], _iso(h.dates[row]), likes, h.usernames[row], h.companies[row], text,
                                  round(float(scores[row]), 3), same))
            if len(chosen) >= k:
                break
        return chosen
