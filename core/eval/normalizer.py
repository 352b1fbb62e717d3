"""English text normalisation for scoring.

WER/CER on raw strings punish differences no listener would call an error (case,
punctuation, "25" vs "twenty-five"), so speech metrics are computed after a
Whisper-style normaliser.  We reuse Whisper's own ``EnglishTextNormalizer`` as shipped
in ``transformers`` (pure Python, no download): it lowercases, expands common
contractions ("won't" -> "will not"), removes punctuation and symbols, and spells
numbers as **digits** ("twenty five" -> "25").  Whisper loads its British->American
spelling table from a hub file; offline we pass a small built-in table instead.

Known Whisper quirks kept on purpose (they apply to both sides, so WER stays fair):
a lone "one" stays a word (so "one of" is not turned into "1 of"), "oh" becomes "0",
and words in brackets (``[music]``, ``(laughs)``) are dropped.

Tweet placeholders ``<hyperlink>`` and ``<mention>`` are protected: both functions keep
each as one token instead of dropping it as a bracketed annotation.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

PLACEHOLDERS: tuple[str, ...] = ("<hyperlink>", "<mention>")

# Alphanumeric stand-ins that survive every tokenizer we use (sacrebleu 13a splits on
# '<', '>' and '_', rouge-score keeps only [a-z0-9]), so a placeholder counts as one word.
PLACEHOLDER_WORDS: dict[str, str] = {"<hyperlink>": "xxhyperlinkxx", "<mention>": "xxmentionxx"}

_PLACEHOLDER_RE = re.compile(r"<\s*(hyperlink|mention)\s*>", re.IGNORECASE)
_WORD_RE = re.compile(r"\b(xxhyperlinkxx|xxmentionxx)\b")
_SYMBOL_ONLY_RE = re.compile(r"[.$%\u00a2\u20ac\u00a3]+")
_WORD_TO_PLACEHOLDER = {word: ph for ph, word in PLACEHOLDER_WORDS.items()}

# A small British -> American table (Whisper's full table needs a hub download).
BRITISH_TO_AMERICAN: dict[str, str] = {
    "analyse": "analyze",
    "analysed": "analyzed",
    "apologise": "apologize",
    "behaviour": "behavior",
    "catalogue": "catalog",
    "centre": "center",
    "centres": "centers",
    "cheque": "check",
    "colour": "color",
    "colours": "colors",
    "colourful": "colorful",
    "defence": "defense",
    "favour": "favor",
    "favourite": "favorite",
    "favourites": "favorites",
    "flavour": "flavor",
    "flavours": "flavors",
    "grey": "gray",
    "harbour": "harbor",
    "honour": "honor",
    "humour": "humor",
    "jewellery": "jewelry",
    "labour": "labor",
    "licence": "license",
    "litre": "liter",
    "litres": "liters",
    "metre": "meter",
    "metres": "meters",
    "neighbour": "neighbor",
    "neighbours": "neighbors",
    "offence": "offense",
    "organisation": "organization",
    "organise": "organize",
    "organised": "organized",
    "programme": "program",
    "programmes": "programs",
    "realise": "realize",
    "realised": "realized",
    "recognise": "recognize",
    "theatre": "theater",
    "travelled": "traveled",
    "travelling": "traveling",
    "tyre": "tire",
    "tyres": "tires",
}


class _Normalizer(Protocol):
    def __call__(self, s: str) -> str: ...


@lru_cache(maxsize=1)
def _whisper_normalizer() -> _Normalizer:
    """Build Whisper's normaliser once; importing transformers costs ~1 s, so do it lazily."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer(BRITISH_TO_AMERICAN)


def placeholders_to_words(text: str) -> str:
    """Replace ``<hyperlink>``/``<mention>`` (any case/spacing) by one alphanumeric word each."""
    return _PLACEHOLDER_RE.sub(lambda m: f" {PLACEHOLDER_WORDS['<' + m.group(1).lower() + '>']} ", text)


def words_to_placeholders(text: str) -> str:
    """Inverse of :func:`placeholders_to_words` (after lowercasing)."""
    return _WORD_RE.sub(lambda m: _WORD_TO_PLACEHOLDER[m.group(1)], text)


def normalize(text: str) -> str:
    """Whisper-style English normalisation for WER/CER.

    Lowercase, no punctuation/symbols (except ``$ % .`` inside numbers, as Whisper),
    numbers as digits, single spaces, no leading/trailing space.  ``<hyperlink>`` and
    ``<mention>`` survive as single tokens.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() expects str, got {type(text).__name__}")
    protected = placeholders_to_words(text)
    out = _whisper_normalizer()(protected)
    # Whisper leaves a lone "." from "..." (and bare "$"/"%"); such a token is no word.
    words = [w for w in words_to_placeholders(out).split() if not _SYMBOL_ONLY_RE.fullmatch(w)]
    return " ".join(words)


def normalize_tweet(text: str) -> str:
    """Light normalisation for tweet text: lowercase and single spaces, punctuation kept.

    Placeholders are canonicalised (``< Hyperlink >`` -> ``<hyperlink>``) and separated
    from neighbouring characters, so ``"see<hyperlink>"`` becomes ``"see <hyperlink>"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_tweet() expects str, got {type(text).__name__}")
    spaced = _PLACEHOLDER_RE.sub(lambda m: f" <{m.group(1).lower()}> ", text)
    return " ".join(spaced.lower().split())
