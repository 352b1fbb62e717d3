"""The brand kit: a finish that adds the brand's sign-off, hashtag and emoji to a tweet that lacks them.

A 270M model follows a ``Style:`` line only now and then, and tuning it on the brand's tweets teaches the
voice but invents facts (issue 21). The markers themselves are not facts: they are the same in every tweet
of the brand, so they can be added after the model wrote the substance, exactly and without cost. The kit
adds each marker kind only when the tweet has none of the brand's markers of that kind, only when the
result still fits in 280 characters, and records what it added so a person sees it as added, not written.

A kit comes from the brand's learned voice (:func:`BrandKit.from_voice`, its most frequent marker of each
kind) or is typed in by a person for a brand with no history (the app's kit fields).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from core.brand.voice import EMOJI, BrandVoice

MAX_CHARS = 280
_TAIL_TOKEN = re.compile(r"^(?:#\w+|<\s*(?:hyperlink|mention)\s*>|" + EMOJI.pattern + r"+)[.,!]?$", re.I)
_HASHTAG = re.compile(r"^#\w+")
_ENDS_SENTENCE = re.compile(r"[.!?…:)\]]$")


@dataclass(frozen=True)
class BrandKit:
    """One sign-off, one hashtag and one emoji (each may be empty)."""

    signoff: str = ""
    hashtag: str = ""
    emoji: str = ""

    @classmethod
    def from_voice(cls, voice: BrandVoice) -> BrandKit:
        """The brand's most frequent marker of each kind, as learned from its history."""
        return cls(signoff=voice.signoffs[0] if voice.signoffs else "",
                   hashtag=voice.hashtags[0] if voice.hashtags else "",
                   emoji=voice.emojis[0] if voice.emojis else "")

    @classmethod
    def typed(cls, signoff: str = "", hashtag: str = "", emoji: str = "") -> BrandKit:
        """A kit a person typed: spaces trimmed, a hashtag without its ``#`` gets one, inner spaces dropped."""
        tag = "".join(hashtag.split()).lstrip("#")
        return cls(signoff=" ".join(signoff.split()), hashtag=f"#{tag}" if tag else "", emoji=emoji.strip())

    @property
    def empty(self) -> bool:
        return not (self.signoff or self.hashtag or self.emoji)

    def voice(self) -> BrandVoice:
        """The kit as a voice, to check a tweet against when no learned voice is at hand."""
        return BrandVoice(hashtags=[self.hashtag] if self.hashtag else [],
                          signoffs=[self.signoff] if self.signoff else [],
                          emojis=[self.emoji] if self.emoji else [])

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class KitResult:
    """The finished tweet and the markers the kit added to it (empty: the tweet already had them all)."""

    tweet: str
    added: list[str] = field(default_factory=list)


def _split_tail(tweet: str) -> tuple[str, list[str]]:
    """The tweet's body and its trailing run of hashtags, placeholders and emoji (kept in their order)."""
    words = tweet.split()
    cut = len(words)
    while cut > 0 and _TAIL_TOKEN.match(words[cut - 1]):
        cut -= 1
    return " ".join(words[:cut]), words[cut:]


def apply_kit(tweet: str, kit: BrandKit, voice: BrandVoice | None = None) -> KitResult:
    """``tweet`` with the kit's sign-off, emoji and hashtag added where it has none of that kind.

    ``voice`` (the brand's learned voice, default the kit's own) decides what "has one" means: a tweet
    carrying the brand's second hashtag needs no other. Layout: body, emoji, sign-off, hashtags, then the
    tweet's own trailing placeholders (``<hyperlink>`` stays last, as brands post it). Markers are tried in
    the order sign-off, hashtag, emoji; one that would take the tweet past 280 characters is left out.
    An empty tweet stays empty: a kit finishes a tweet, it does not replace one.
    """
    if not tweet.strip() or kit.empty:
        return KitResult(tweet)
    voices = [kit.voice(), *([voice] if voice is not None else [])]
    found = {m for v in voices for m in v.found_in(tweet)}
    has = {kind: any(m in found for v in voices for m in getattr(v, attr))
           for kind, attr in (("signoff", "signoffs"), ("hashtag", "hashtags"), ("emoji", "emojis"))}
    body, tail = _split_tail(tweet)
    if not body:  # only hashtags and placeholders: nothing to finish
        return KitResult(tweet)
    tags = [t for t in tail if _HASHTAG.match(t)]
    emojis = [t for t in tail if EMOJI.match(t)]
    rest = [t for t in tail if t not in tags and t not in emojis]
    added: list[str] = []

    def render(sign: str, tag: str, emo: str) -> str:
        text = body
        own_emojis = " ".join([*emojis, emo]).strip()
        if sign and not _ENDS_SENTENCE.search(text):
            text += "."
        return " ".join(filter(None, (text, own_emojis, sign, " ".join([*tags, tag]).strip(), " ".join(rest))))

    chosen = {"signoff": "", "hashtag": "", "emoji": ""}
    for kind, marker in (("signoff", kit.signoff), ("hashtag", kit.hashtag), ("emoji", kit.emoji)):
        if not marker or has[kind]:
            continue
        trial = dict(chosen, **{kind: marker})
        if len(render(trial["signoff"], trial["hashtag"], trial["emoji"])) <= MAX_CHARS:
            chosen = trial
            added.append(marker)
    if not added:
        return KitResult(tweet)
    return KitResult(render(chosen["signoff"], chosen["hashtag"], chosen["emoji"]), added)
