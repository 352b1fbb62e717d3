"""English text normalisation for scoring.

WER/CER on raw strings punish differences no listener would call an error (case,
punctuation, "25" vs "twenty-five"), so speech metrics are computed after a
Whisper-style normaliser.  We reuse Whisper's own ``EnglishTextNormalizer`` as shipped
in ``transformers`` (pure Python, no download): it lowercases, expands common
contractions ("won't" -> "will not"), removes punctuation and symbols, and spells
numbers as **digits** ("twenty five" -> "25") and maps British spellings to American ones
with Whisper's full 1,739-word table (``data/english.json``, shipped with the package, so no
download).  Before the two steps below, the result equals the ``whisper-normalizer`` package's.

Known Whisper quirks kept on purpose (they apply to both sides, so WER stays fair):
a lone "one" stays a word (so "one of" is not turned into "1 of"), "oh" becomes "0",
"'s" becomes " is" ("the theatre's" -> "the theater is"), and words in brackets
(``[music]``, ``(laughs)``) are dropped.  Then a token of symbols alone (a "." left from "...")
is dropped.

Tweet placeholders ``<hyperlink>`` and ``<mention>`` are protected: both functions keep
each as one token instead of dropping it as a bracketed annotation.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Protocol

PLACEHOLDERS: tuple[str, ...] = ("<hyperlink>", "<mention>")

# Alphanumeric stand-ins that survive every tokenizer we use (sacrebleu 13a splits on
# '<', '>' and '_', rouge-score keeps only [a-z0-9]), so a placeholder counts as one word.
PLACEHOLDER_WORDS: dict[str, str] = {"<hyperlink>": "xxhyperlinkxx", "<mention>": "xxmentionxx"}

_PLACEHOLDER_RE = re.compile(r"<\s*(hyperlink|mention)\s*>", re.IGNORECASE)
_WORD_RE = re.compile(r"\b(xxhyperlinkxx|xxmentionxx)\b")
_SYMBOL_ONLY_RE = re.compile(r"[.$%\u00a2\u20ac\u00a3]+")
_WORD_TO_PLACEHOLDER = {word: ph for ph, word in PLACEHOLDER_WORDS.items()}

# Whisper's own British -> American spelling table (openai-whisper's normalizers/english.json, MIT,
# shipped with its licence in data/LICENSE-whisper.txt).  A partial table makes "optimised" vs
# "optimized" a word error whenever the word is missing from it; this is the table Whisper's
# published WERs use.
SPELLING_TABLE = Path(__file__).with_name("data") / "english.json"
SPELLING_ENTRIES = 1739  # entries in the shipped table (part of the WER signature)


@lru_cache(maxsize=1)
def british_to_american() -> dict[str, str]:
    """Whisper's British -> American spelling table (1,739 words), read once."""
    with SPELLING_TABLE.open(encoding="utf-8") as fh:
        return dict(json.load(fh))


class _Normalizer(Protocol):
    def __call__(self, s: str) -> str: ...


@lru_cache(maxsize=1)
def _whisper_normalizer() -> _Normalizer:
    """Build Whisper's normaliser once; importing transformers costs ~1 s, so do it lazily."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer(british_to_american())


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
