"""A brand's voice from its own tweets: signature hashtags, sign-offs, emoji habit, casing and length.

These are what make a tweet sound like one brand and not another. They are learned here (no model,
counts only) for three uses: a ``Style:`` hint in the prompt, the grounding check (a brand's own
recurring hashtag or sign-off is its voice, not an invented fact) and the evaluation's voice share.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

MIN_SHARE = 0.3  # a habit shows in at least this share of the brand's tweets…
MIN_COUNT = 2  # …and in at least this many of them
_PLACEHOLDER = re.compile(r"<\s*(?:hyperlink|mention)\s*>", re.I)
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_HANDLE = re.compile(r"(?<![\w@])@\w+")
# Pictographs, dingbats, symbols and flags: what people mean by "emoji" in a tweet.
EMOJI = re.compile(
    "[\U0001F1E6-\U0001F1FF\U0001F300-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF]\ufe0f?"
)
_SENTENCES = re.compile(r"[^.!?…]+[.!?…]*")


def _strip_markup(text: str) -> str:
    text = _PLACEHOLDER.sub(" ", text)
    text = _HASHTAG.sub(" ", text)
    text = EMOJI.sub(" ", text)
    return " ".join(text.split())


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def last_sentence(text: str) -> str:
    """The tweet's closing sentence without links, hashtags or emoji: where a sign-off lives."""
    sentences = [s.strip() for s in _SENTENCES.findall(_strip_markup(text)) if s.strip(" .!?…")]
    return sentences[-1] if len(sentences) > 1 else ""


@dataclass
class BrandVoice:
    """What recurs in a brand's tweets; empty lists when it has no history (or no habits)."""

    hashtags: list[str] = field(default_factory=list)
    signoffs: list[str] = field(default_factory=list)
    emojis: list[str] = field(default_factory=list)
    lowercase_share: float = 0.0
    median_chars: int = 0
    n: int = 0

    @property
    def markers(self) -> list[str]:
        """The strings whose presence in a tweet says "this brand wrote it"."""
        return [*self.hashtags, *self.signoffs, *self.emojis]

    def hint(self) -> str:
        """One ``Style:`` line for the prompt (empty when nothing recurs)."""
        parts = []
        if self.hashtags:
            parts.append("hashtag " + " ".join(self.hashtags))
        if self.signoffs:
            parts.append(f'sign-off "{self.signoffs[0]}"')
        if self.emojis:
            parts.append("emoji " + " ".join(self.emojis))
        if self.n and self.lowercase_share >= 0.6:
            parts.append("all lowercase")
        if self.median_chars:
            parts.append(f"about {self.median_chars} characters")
        return "; ".join(parts) if (self.hashtags or self.signoffs or self.emojis) else ""

    def found_in(self, tweet: str) -> list[str]:
        """The brand's markers this tweet carries (hashtags and sign-offs case-insensitively)."""
        lowered = _norm(tweet)
        tags = {t.lower() for t in _HASHTAG.findall(tweet)}
        found = [h for h in self.hashtags if h.lower() in tags]
        found += [s for s in self.signoffs if _norm(s) and _norm(s) in lowered]
        found += [e for e in self.emojis if e.rstrip("\ufe0f") in tweet]
        return found

    def to_dict(self) -> dict:
        return asdict(self)


def _recurring(counts: Counter[str], n: int, limit: int) -> list[str]:
    need = max(MIN_COUNT, MIN_SHARE * n)
    return [item for item, c in counts.most_common(limit) if c >= need]


def learn_voice(tweets: Sequence[str], limit: int = 2) -> BrandVoice:
    """The habits shared by at least 30 % (and 2) of ``tweets``: a brand's recent tweets, newest first or not."""
    tweets = [t for t in tweets if t and t.strip()]
    if not tweets:
        return BrandVoice()
    tag_counts: Counter[str] = Counter()
    tag_forms: dict[str, Counter[str]] = {}
    signoff_counts: Counter[str] = Counter()
    signoff_forms: dict[str, Counter[str]] = {}
    emoji_counts: Counter[str] = Counter()
    for tweet in tweets:
        for tag in set(_HASHTAG.findall(tweet)):
            tag_counts[tag.lower()] += 1
            tag_forms.setdefault(tag.lower(), Counter())[tag] += 1
        closing = last_sentence(tweet)
        if closing and len(closing) <= 60:
            key = _norm(closing)
            signoff_counts[key] += 1
            signoff_forms.setdefault(key, Counter())[closing] += 1
        for emoji in {e.rstrip("\ufe0f") for e in EMOJI.findall(tweet)}:
            emoji_counts[emoji] += 1
    n = len(tweets)
    letters = [t for t in (_strip_markup(x) for x in tweets) if any(c.isalpha() for c in t)]
    return BrandVoice(
        hashtags=[tag_forms[t].most_common(1)[0][0] for t in _recurring(tag_counts, n, limit)],
        signoffs=[signoff_forms[s].most_common(1)[0][0] for s in _recurring(signoff_counts, n, limit)],
        emojis=_recurring(emoji_counts, n, limit),
        lowercase_share=sum(t == t.lower() for t in letters) / len(letters) if letters else 0.0,
        median_chars=int(statistics.median(len(t) for t in tweets)),
        n=n,
    )


def handles(text: str) -> list[str]:
    """@handles in a text (a brand's recurring partners count as its voice, not as invented facts)."""
    return _HANDLE.findall(text)
