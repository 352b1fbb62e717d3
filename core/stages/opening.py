"""The first words of the tweet, taken from the post's own text, for the model to continue in its own words.

Why: a 270M model given a poster and a brand's earlier tweets leans on the earlier tweets. With history only about
a third of its tweets on unseen brands kept half of their poster's facts ("Welcome back home! We are ready to take
on the new season." for HOME GAME SATURDAY 3PM); asking in the instruction did not change that. Starting the
tweet with the poster's words does: every candidate keeps the facts, and the model, continuing after them, writes
the sentence around them. It costs nothing extra: the opening is prefilled with the prompt, not decoded.

The opening is the poster's text in reading order, shouting taken out (an all-capitals line becomes a sentence,
weekday and month names keep their capital), lines of one block joined into one phrase and a change of block
marked with a colon ("Mega sale: Offer valid until June 30"), cut at ``MAX_WORDS``. A post without text in its
media (a photo, speech) gets none: a transcript is speech, not a headline, and a photo's subject opens no tweet
well ("Cat." is not a tweet), so the prompt's fields carry those; so does text the recogniser read unsure of
itself (:func:`read_clearly`: a page of small print in a photo reads as noise).
"""

from __future__ import annotations

import re

MAX_WORDS = 16  # the opening's length in words: a poster's headline and its facts, not its fine print
MIN_LETTERS = 3  # a text with fewer letters than this (a stray mark read as "I") opens nothing
# The opening ends mid-sentence, so the model goes on with words of its own: ended with a full stop, or not at all,
# the 270M model closed the sentence at once on 3 of 16 posters ("Island hopping buy one get one free this weekend.")
CONTINUE = ","
# The recogniser's mean confidence (weighted by characters) a text needs to open a tweet: the rendered posters read
# at 0.6-1.0 a box; a photo of a printed page, mirrored, read as "noitstnsmp9z b9z6d" at 0.25-0.35.
MIN_READ_CONFIDENCE = 0.5
SHOUTING = 0.6  # a line with this share of capital letters shouts ("GRAND OPENING this"): it is calmed
_NAMED = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
          "march", "april", "june", "july", "august", "september", "october", "november", "december")
_WORD = re.compile(r"\S+")


def _shouting(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 2 and sum(c.isupper() for c in letters) >= SHOUTING * len(letters)


def _calm_word(word: str, first: bool) -> str:
    lower = word.lower()
    core = lower.strip(".,!?:;'\"()")
    if core in _NAMED or core.rstrip("s") in _NAMED or core == "i":
        return lower.replace(core, core.capitalize(), 1)
    return lower[:1].upper() + lower[1:] if first else lower


def calm(line: str, first: bool = True) -> str:
    """An all-capitals line as a sentence would write it; any other line as it is."""
    if not _shouting(line):
        return line
    words = _WORD.findall(line)
    return " ".join(_calm_word(w, first and i == 0) for i, w in enumerate(words))


def read_clearly(boxes: list[tuple[str, float]]) -> bool:
    """Whether the OCR's ``(text, confidence)`` boxes read clearly enough to put their words first in a tweet."""
    weights = [len(text) for text, _ in boxes]
    if not sum(weights):
        return False
    return sum(w * c for w, (_, c) in zip(weights, boxes, strict=True)) / sum(weights) >= MIN_READ_CONFIDENCE


def facts_opening(ocr_text: str, max_words: int = MAX_WORDS) -> str:
    """The tweet's first words from the media's text (see the module's note); "" when it has none."""
    lines = [" ".join(line.split()) for line in ocr_text.splitlines() if line.strip()]
    if sum(c.isalpha() for c in "".join(lines)) < MIN_LETTERS:
        return ""
    parts: list[str] = []
    words = 0
    for index, line in enumerate(lines):
        new_block = index > 0 and _new_block(lines[index - 1], line)
        text = calm(line, first=index == 0 or new_block)
        taken = _WORD.findall(text)[: max_words - words]
        if not taken:
            break
        parts.append(("" if index == 0 else ": " if new_block else " ") + " ".join(taken))
        words += len(taken)
    opening = "".join(parts).rstrip(" ,;:-")
    return opening if opening[-1:] in ".!?…" else opening + CONTINUE


def _new_block(before: str, line: str) -> bool:
    """Whether ``line`` starts a new block rather than wrapping ``before``: the capitals change, and either the
    shouting line has ended ("MEGA SALE" / "Offer valid…") or the shouting starts ("Cosy Cat Bed" / "BUY ONE…")."""
    if _shouting(before) == _shouting(line):
        return False
    last = _WORD.findall(before)[-1]
    return _shouting(line) or (last.isupper() and any(c.isalpha() for c in last))
