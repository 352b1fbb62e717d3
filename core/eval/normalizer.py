"""English text normalisation for scoring.

WER/CER on raw strings punish differences no listener would call an error (case,
punctuation, "25" vs "twenty-five"), so speech metrics are computed after Whisper's English
normaliser.  The reference is the ``whisper-normalizer`` package (0.1.15, pinned with the test
dependencies): its ``EnglishTextNormalizer`` followed by jiwer is what people mean by "WER with
Whisper's normaliser", and :func:`normalize` returns exactly its output (whitespace stripped, as jiwer
strips it), which ``tests/test_eval_normalizer.py`` checks on many transcripts.  It lowercases, expands
contractions ("won't" -> "will not", "kinda" -> "kind of"), removes punctuation and symbols, spells
numbers as **digits** ("twenty five" -> "25") and maps British spellings to American ones with
Whisper's full 1,739-word table (``data/english.json``, shipped with the package, so no download).

The code is Whisper's normaliser as shipped in ``transformers`` (pure Python, nothing to
download), with the four informal forms the reference package adds ("kinda", "sorta", "dunno",
"cause") put in at the reference's place in its table.  (openai-whisper's own repository has moved
on in small ways, e.g. it re-attaches "$ 5" to "$5"; the pinned package is the fixed point.)

Whisper's quirks are kept, since they are what everyone else's numbers include and they apply to
both sides: a lone "one" stays a word, "oh" becomes "0", "'s" becomes " is" ("the theatre's" ->
"the theater is"), words in brackets (``[music]``, ``(laughs)``, ``<hyperlink>``) are dropped, and a
token of symbols alone survives (the "." left from "...", a lone "£").

One variant exists, never the default, and it is named in the metric's signature:
``"whisper-words"`` keeps the tweet placeholders ``<hyperlink>`` and ``<mention>`` as one token each
and then drops tokens made only of symbols.  Its numbers differ from everyone else's (on one held-out
set WER 3.34 against the reference's 3.50), so it is for looking at words only, never for comparison.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

from core.errors import UserError

PLACEHOLDERS: tuple[str, ...] = ("<hyperlink>", "<mention>")

SpeechNormalizer = Literal["whisper", "whisper-words"]
SPEECH_NORMALIZERS: tuple[str, ...] = ("whisper", "whisper-words")
DEFAULT_SPEECH_NORMALIZER: SpeechNormalizer = "whisper"

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


# The reference (whisper-normalizer 0.1.15) has four informal forms that transformers' copy of Whisper's
# table lacks; each goes right after the entry named here, so substitutions run in the reference's order.
_REFERENCE_EXTRAS: dict[str, dict[str, str]] = {
    r"\bwanna\b": {r"\bkinda\b": "kind of", r"\bsorta\b": "sort of", r"\bdunno\b": "do not know"},
    r"\bshoulda\b": {r"\bcause\b": "because"},
}


@lru_cache(maxsize=1)
def _whisper_normalizer() -> _Normalizer:
    """Build Whisper's normaliser once, lazily (importing transformers costs ~1 s), as the reference has it."""
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    normalizer = EnglishTextNormalizer(british_to_american())
    replacers: dict[str, str] = {}
    for pattern, replacement in normalizer.replacers.items():
        replacers[pattern] = replacement
        replacers.update(_REFERENCE_EXTRAS.get(pattern, {}))
    normalizer.replacers = replacers
    return normalizer


def placeholders_to_words(text: str) -> str:
    """Replace ``<hyperlink>``/``<mention>`` (any case/spacing) by one alphanumeric word each."""
    return _PLACEHOLDER_RE.sub(lambda m: f" {PLACEHOLDER_WORDS['<' + m.group(1).lower() + '>']} ", text)


def words_to_placeholders(text: str) -> str:
    """Inverse of :func:`placeholders_to_words` (after lowercasing)."""
    return _WORD_RE.sub(lambda m: _WORD_TO_PLACEHOLDER[m.group(1)], text)


def check_speech_normalizer(variant: str) -> None:
    """Refuse an unknown variant name with one line naming the known ones."""
    if variant not in SPEECH_NORMALIZERS:
        raise UserError(f"normalizer must be one of {', '.join(SPEECH_NORMALIZERS)}, got {variant!r}")


def normalize(text: str, variant: SpeechNormalizer = DEFAULT_SPEECH_NORMALIZER) -> str:
    """English normalisation for WER/CER: the reference's output by default (see the module docstring).

    Lowercase, no punctuation, numbers as digits, American spellings, single spaces, no leading or
    trailing space.  ``variant="whisper-words"`` (never the default) keeps ``<hyperlink>``/``<mention>``
    as one token each and drops tokens made only of symbols.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize() expects str, got {type(text).__name__}")
    check_speech_normalizer(variant)
    if variant == "whisper":
        return " ".join(_whisper_normalizer()(text).split())
    out = _whisper_normalizer()(placeholders_to_words(text))
    return " ".join(w for w in words_to_placeholders(out).split() if not _SYMBOL_ONLY_RE.fullmatch(w))


def normalize_tweet(text: str) -> str:
    """Light normalisation for tweet text: lowercase and single spaces, punctuation kept.

    Placeholders are canonicalised (``< Hyperlink >`` -> ``<hyperlink>``) and separated
    from neighbouring characters, so ``"see<hyperlink>"`` becomes ``"see <hyperlink>"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_tweet() expects str, got {type(text).__name__}")
    spaced = _PLACEHOLDER_RE.sub(lambda m: f" <{m.group(1).lower()}> ", text)
    return " ".join(spaced.lower().split())
