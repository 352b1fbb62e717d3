"""Facts kept to the inputs: which checkable details of a tweet its inputs do not support.

A small LLM writes fluent tweets that invent facts ("building rockets since 1969"). This stage lists a
tweet's checkable details (numbers, prices, percentages, dates and times, @handles, capitalised names,
URLs other than the ``<hyperlink>`` placeholder) and marks those found nowhere in what the model was
given: the metadata, the caption, the OCR text and the transcript. A brand's recurring hashtags and
sign-offs (from its own history) are its voice, not facts, so they never count against a tweet.

It also reports coverage: which salient input words (the OCR text's words, the caption's subject) the
tweet uses, since a tweet that ignores its own poster is as wrong as one that invents a price.

Pure functions, no model: cheap enough to run on every candidate of every row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime

# Words that start with a capital for grammar, not because they name something.
_COMMON_CAPITALISED = frozenset(
    """
    a an the and or but so if in on at to of for from with by as is are was were be been it its it's this that
    these those there here we we're we've our ours us you you're your yours i i'm i've me my he she they them
    their what when where why how who which new now just get got meet join check see find come don't do does
    did can can't will won't let let's make take try shop grab discover explore introducing say thanks thank
    happy hello hi hey good great big more most all every each no not yes our today tonight tomorrow weekend
    week month year ok okay wow oh ready time day night morning afternoon evening stay keep go going love
    """.split()
)
# Promotional words are capitalised for emphasis ("GRAND OPENING", "50% OFF"), not names; on a poster they
# are still its salient words, so they are excluded from names only.
_PROMO = frozenset("off sale free only limited edition news open opening grand order buy now best first last".split())
_PHOTO_WORDS = frozenset(
    "photo picture image text words some any very much than then also into onto over under about up down out off"
    " one two three ten".split()
)
_STOPWORDS = _COMMON_CAPITALISED | _PROMO | _PHOTO_WORDS  # not a name
_SALIENT_STOPWORDS = _COMMON_CAPITALISED | _PHOTO_WORDS  # not worth asking a tweet to use
MIN_CONTENT_WORDS = 2  # fewer real words ("<link>", "#ad") is not a tweet, however likely the model finds it
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PLACEHOLDER = re.compile(r"<\s*(hyperlink|mention)\s*>", re.I)

# Order matters: the first pattern that claims a span wins, so a price is not also a bare number.
_DETAIL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("url", re.compile(r"\b(?:https?://|www\.)[^\s<>()\[\]]*[^\s<>()\[\].,!?;:'\"]", re.I)),  # no trailing ")."
    ("handle", re.compile(r"(?<![\w@])@\w{2,}")),
    ("price", re.compile(r"[$€£¥]\s?\d[\d,]*(?:\.\d+)?\s?(?:[kKmM]\b)?"
                         r"|\b\d[\d,]*(?:\.\d+)?\s?(?:usd|eur|gbp|dollars?|euros?|pounds?)\b", re.I)),
    ("percent", re.compile(r"\b\d+(?:\.\d+)?\s?(?:%|percent\b)", re.I)),
    ("time", re.compile(r"\b\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)|\b\d{1,2}:\d{2}\b", re.I)),
    ("date", re.compile(r"\b\d{1,4}[/.-]\d{1,2}(?:[/.-]\d{1,4})?\b|\b(?:" + "|".join(m[:3] for m in _MONTHS)
                        + r")[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?\b|\b(?:" + "|".join(_WEEKDAYS) + r")s?\b", re.I)),
    ("number", re.compile(r"(?<![\w#])\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|k|m|x)?\b", re.I)),
)
_CAP_WORD = re.compile(r"(?<![\w#@<])[A-Z][\w'’&.-]*[A-Za-z0-9]|(?<![\w#@<])[A-Z]\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?…:]\s*$|^\s*$")


@dataclass(frozen=True)
class Detail:
    """One checkable detail of a tweet, where it is, and whether the inputs back it."""

    kind: str  # url | handle | price | percent | time | date | number | name
    text: str
    start: int
    end: int
    supported: bool = True


@dataclass
class GroundingReport:
    """What :func:`check` found for one tweet."""

    details: list[Detail] = field(default_factory=list)
    salient: list[str] = field(default_factory=list)  # input words a tweet should use
    used: list[str] = field(default_factory=list)  # the salient words the tweet does use
    content_words: int = MIN_CONTENT_WORDS  # words outside placeholders and markup

    @property
    def unsupported(self) -> list[Detail]:
        return [d for d in self.details if not d.supported]

    @property
    def coverage(self) -> float:
        """Share of salient input words the tweet uses (1.0 when the inputs had none)."""
        return len(self.used) / len(self.salient) if self.salient else 1.0

    def to_dict(self) -> dict:
        return {
            "unsupported": [d.text for d in self.unsupported],
            "details": [asdict(d) for d in self.details],
            "coverage": round(self.coverage, 4),
            "salient": self.salient,
            "used": self.used,
        }


def _fold(text: str) -> str:
    """Lowercase without accents, so "Café" in a tweet matches "CAFE" on a poster."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("’", "'")


def _words(text: str) -> list[str]:
    return _WORD.findall(_fold(text))


def _numbers(text: str) -> set[float]:
    return {float(n) for n in _NUMBER.findall(_fold(text).replace(",", ""))}


def _date_facts(date: str) -> list[str]:
    """Words a tweet may use about its own date: weekday, month, day, year, hour (as text)."""
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%d/%m/%Y %H:%M",
                "%m/%d/%Y %H:%M"):
        try:
            when = datetime.strptime(date.strip()[:19], fmt)
        except ValueError:
            continue
        hour12 = when.hour % 12 or 12
        return [_WEEKDAYS[when.weekday()], _MONTHS[when.month - 1], str(when.day), str(when.year),
                str(when.hour), str(hour12), f"{when.hour}:{when.minute:02d}", f"{hour12}:{when.minute:02d}"]
    return []


@dataclass(frozen=True)
class Evidence:
    """Everything a tweet may draw on, prepared once per row (candidates share it)."""

    words: frozenset[str]
    numbers: frozenset[float]
    folded: str
    voice: frozenset[str]  # folded voice markers: recurring hashtags, handles, sign-off words
    # Words of the brand's earlier tweets: they back a name or a handle (the brand's own products, places, people),
    # never a number, a price or a date (last season's price is no fact about this post).
    history: frozenset[str] = frozenset()

    @classmethod
    def from_inputs(cls, sources: Iterable[str], date: str = "", voice: Iterable[str] = (),
                    history: Iterable[str] = ()) -> Evidence:
        texts = [s for s in sources if s] + _date_facts(date) + ([date] if date else [])
        folded = " ".join(_fold(t) for t in texts)
        voice_folded = frozenset(_fold(v) for v in voice if v)
        voice_words = {w for v in voice_folded for w in _words(v)}
        history_words = frozenset(w for text in history for w in _words(text))
        return cls(frozenset(_words(folded)) | voice_words, frozenset(_numbers(folded)), folded, voice_folded,
                   history_words)


def _supported(kind: str, text: str, evidence: Evidence) -> bool:
    folded = _fold(text).strip()
    if folded in evidence.voice or folded.lstrip("@#") in {v.lstrip("@#") for v in evidence.voice}:
        return True
    if kind == "url":
        return folded.rstrip("/.,!?)") in evidence.folded
    if kind == "handle":
        return folded.lstrip("@") in evidence.words | evidence.history
    if kind in ("price", "percent", "time", "number", "date"):
        numbers = _numbers(folded)
        words = [w for w in _words(folded) if not w.isdigit() and not _NUMBER.fullmatch(w)]
        named = [w for w in words if w.rstrip("s") in _WEEKDAYS or w[:3] in {m[:3] for m in _MONTHS}]
        if numbers and not numbers <= evidence.numbers:
            return False
        return all(w.rstrip("s") in evidence.words or any(e.startswith(w[:3]) for e in evidence.words
                                                          if len(w) >= 3 and w[:3] in {m[:3] for m in _MONTHS})
                   for w in named) if named else True
    # A capitalised name: every word of it appears somewhere in the inputs or the brand's earlier tweets.
    return all(w in evidence.words or w in evidence.history for w in _words(folded))


def _sentence_start(text: str, start: int) -> bool:
    return bool(_SENTENCE_END.search(text[:start]))


def extract_details(tweet: str) -> list[Detail]:
    """Checkable details in reading order (placeholders and hashtags are not facts)."""
    masked = _PLACEHOLDER.sub(lambda m: " " * len(m.group(0)), tweet)
    taken: list[tuple[int, int]] = []
    found: list[Detail] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for kind, pattern in _DETAIL_PATTERNS:
        for m in pattern.finditer(masked):
            if free(m.start(), m.end()):
                taken.append((m.start(), m.end()))
                found.append(Detail(kind, m.group(0).strip(), m.start(), m.end()))
    # Capitalised names: runs of capitalised words, minus grammar capitals at a sentence start.
    run: list[re.Match[str]] = []
    matches = [m for m in _CAP_WORD.finditer(masked) if free(m.start(), m.end())]
    for i, m in enumerate(matches):
        run.append(m)
        nxt = matches[i + 1] if i + 1 < len(matches) else None
        if nxt is not None and re.fullmatch(r"\s+", masked[m.end():nxt.start()]):
            continue
        words = [w for w in run if _fold(w.group(0)).strip(".'’-") not in _STOPWORDS]
        if words and _sentence_start(masked, run[0].start()) and words[0] is run[0] and len(words) == 1:
            words = []  # one capitalised word opening a sentence is grammar, not a name
        elif words and _sentence_start(masked, run[0].start()) and words[0] is run[0] and len(run) > 1:
            pass  # "Orbit Lab has…": a multi-word name at a sentence start is still a name
        if words:
            a, b = words[0].start(), words[-1].end()
            found.append(Detail("name", masked[a:b], a, b))
        run = []
    return sorted(found, key=lambda d: d.start)


def salient_words(ocr_text: str = "", caption: str = "", limit: int = 12) -> list[str]:
    """Input words a tweet about this media should use: OCR words first, then the caption's subject."""
    seen: dict[str, None] = {}
    for word in _words(ocr_text):
        # Numbers on a poster ("20% OFF") are its most checkable facts; short words are mostly grammar.
        if word.isdigit() or (len(word) >= 3 and word not in _SALIENT_STOPWORDS and not any(c.isdigit() for c in word)):
            seen.setdefault(word, None)
    subject = re.sub(r"^(?:a|an)\s+(?:photo|picture|image)\s+of\s+(?:a|an|the)?\s*", "", _fold(caption).strip())
    for word in _words(subject.split(",")[0]):
        if len(word) >= 3 and word not in _SALIENT_STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)[:limit]


def check(tweet: str, evidence: Evidence, salient: Sequence[str] = ()) -> GroundingReport:
    """The tweet's details, each marked supported or not, and which salient words it uses."""
    details = [Detail(d.kind, d.text, d.start, d.end, _supported(d.kind, d.text, evidence))
               for d in extract_details(tweet)]
    tweet_words = set(_words(tweet))
    used = [w for w in salient if w in tweet_words or (len(w) > 4 and any(t.startswith(w[:-1]) for t in tweet_words))]
    # words with a letter: a bare date and time ("2023-11-08 16:46", echoed from the prompt) is no tweet either
    content = sum(any(c.isalpha() for c in w) for w in _words(re.sub(r"<[^<>]{0,40}>", " ", tweet)))
    return GroundingReport(details, list(salient), used, content)


_SENTENCE = re.compile(r"[^.!?…]+(?:[.!?…]+|$)")


def without_invented(tweet: str, report: GroundingReport, keep: str = "") -> str:
    """The tweet without its sentences that state an unsupported detail, when what is left still says something.

    Why: a small model writes the post's facts first and then runs on into an opponent, a stadium, a trophy
    ("… Saturday 3pm. We beat Riverside FC at Old Park to lift the 2019 Cup!"). Dropping the sentences that carry
    them keeps the tweet and its facts. In the sentence holding ``keep`` (the tweet's opening, its facts) only the
    comma-separated clauses after it that carry the detail go ("Rope toy half price this Friday, 10/25." → "… this
    Friday."); a detail inside ``keep`` itself stays. Nothing is dropped when fewer than ``THIN_WORDS`` words would
    be left: then the ranking and the second look deal with the tweet as a whole. Placeholders, hashtags and emoji
    that followed a dropped sentence stay.
    """
    bad = [(d.start, d.end) for d in report.unsupported]
    if not bad:
        return tweet
    spans = [m.span() for m in _SENTENCE.finditer(tweet) if m.group(0).strip()]
    kept, dropped = [], False
    for start, end in spans:
        sentence = tweet[start:end]
        invented = any(start <= a < end for a, _ in bad)
        if invented and keep and keep in sentence:
            trimmed = _without_invented_clauses(sentence, start, bad, keep)
            dropped = dropped or trimmed != sentence
            kept.append(trimmed)
            continue
        if invented and _plain_words(sentence):
            # what trails the sentence's words (a placeholder, hashtags, emoji) is the tweet's, not the claim's
            tail = re.search(r"(?:\s*(?:<[^<>]{1,40}>|[#@]\w+|[^\w\s.!?,;:'\"…-]+))+\s*$", sentence)
            if tail and _plain_words(sentence[: tail.start()]):
                kept.append(sentence[tail.start():])
            dropped = True
            continue
        kept.append(sentence)
    if not dropped:
        return tweet
    shorter = " ".join(" ".join(kept).split())
    return shorter if len(_plain_words(shorter)) >= THIN_WORDS else tweet


def _without_invented_clauses(sentence: str, offset: int, bad: list[tuple[int, int]], keep: str) -> str:
    """``sentence`` (at ``offset`` in the tweet) without the clauses after ``keep`` that hold a detail in ``bad``."""
    head = keep.rstrip(",")
    at = sentence.find(head)
    head_end = at + len(head)
    ending = re.search(r"[.!?…]*\s*$", sentence)
    body_end = ending.start() if ending else len(sentence)
    clauses, position, kept = sentence[head_end:body_end].split(","), head_end, []
    for index, clause in enumerate(clauses):
        span = (offset + position, offset + position + len(clause))
        if clause.strip() and not any(span[0] <= a < span[1] for a, _ in bad):
            kept.append(clause if index == 0 else "," + clause)  # the first piece follows the opening directly
        position += len(clause) + 1
    if len(kept) == len([c for c in clauses if c.strip()]):
        return sentence
    end = sentence[body_end:].strip() or "."
    return sentence[:head_end] + "".join(kept).rstrip() + end + (" " if sentence.endswith(" ") else "")


# A tweet that has ended (a sentence end, a hashtag, an emoji) and then goes on after a dash is two tweets.
_RUN_ON = re.compile(r"(?:[.!?]|#\w+|[^\w\s.,!?;:'\"<>()&%$@#*/-])\s+[-–—]\s+(?=\S)")


def cut_run_on(tweet: str) -> str:
    """The tweet up to where it ended before running on into another one after a dash ("… See you soon! #FurDays
    - Good evening, welcome to my shop…", seen in a third of the brand-history drafts that ran to the token
    limit): the run-on part repeats the brand's markers and invents the most. Kept whole when what comes before
    the dash would be thin."""
    match = _RUN_ON.search(tweet)
    if match is None:
        return tweet
    head = tweet[: match.start() + len(match.group(0).split()[0])].rstrip()
    return head if len(_plain_words(head)) >= THIN_WORDS else tweet


def rank_key(report: GroundingReport, logprob: float | None = None, *, copy: bool = False, thin: bool = False,
             voice: int = 0) -> tuple:
    """Sort key for candidates, best first:

    1. never a near copy of an earlier tweet of the brand (``copy``), nor a non-tweet (fewer than
       ``MIN_CONTENT_WORDS`` words outside placeholders and markup);
    2. grounding: fewest unsupported details;
    3. facts kept: coverage of at least one half of the poster's salient words, so a tweet that drops the post's
       facts never wins over one that keeps them (with the facts-first opening every candidate opens with them);
    4. substance: a tweet that writes a sentence of its own (not ``thin``) before one that only repeats the poster;
    5. voice: the most of the brand's markers (``voice``);
    6. the rest of coverage, then the model's likelihood.
    """
    return (copy, report.content_words < MIN_CONTENT_WORDS, len(report.unsupported), report.coverage < 0.5, thin,
            -voice, -report.coverage, -(logprob if logprob is not None else 0.0))


# --------------------------------------------------------------------------- substance and stale copies

THIN_WORDS = 4  # a tweet needs at least this many words of its own beyond the media's text to say something
NEAR_COPY_RATIO = 0.6  # word-level difflib ratio at or above which a tweet is a near copy of an earlier one
_MARKUP = re.compile(r"<[^<>]{0,40}>|(?<!\w)[#@]\w+")


def _plain_words(text: str) -> list[str]:
    """The words of a text without placeholders, hashtags, @handles or emoji (folded, in order)."""
    return _words(_MARKUP.sub(" ", text))


def own_words(tweet: str, media_text: str) -> list[str]:
    """The tweet's words that are not in the media's own text (OCR, transcript): what the writer added.

    Hashtags, @mentions, ``<hyperlink>``/``<mention>`` placeholders and emoji are not words here, so
    ``AUTHOR TALK THURSDAY 6PM #ShelfLife`` under a poster that says AUTHOR TALK THURSDAY 6PM has none.
    """
    media = set(_words(media_text))
    return [w for w in _plain_words(tweet) if w not in media]


def is_thin(tweet: str, media_text: str) -> bool:
    """Fewer than ``THIN_WORDS`` words of the tweet's own: the poster's words, a bare hashtag or a placeholder."""
    return len(own_words(tweet, media_text)) < THIN_WORDS


def copy_similarity(tweet: str, earlier: str, ignore: Iterable[str] = ()) -> float:
    """Word-level ``difflib`` ratio (2·matches / total words) of two tweets without markup and ``ignore`` phrases.

    Words, not characters: a brand's new tweet on its usual template ("Star Map from Orbit Lab: 30% off
    this weekend" after "Moon Lamp from Orbit Lab: 20% off today") shares the frame but not the facts,
    scores ~0.55 and stays new; a re-post of an old notice scores ~1.0. ``ignore`` (the brand's sign-offs)
    keeps a shared sign-off from making every short tweet look like every other one.
    """
    from difflib import SequenceMatcher

    phrases = [" ".join(_words(p)) for p in ignore if _words(p)]

    def prepared(text: str) -> list[str]:
        joined = " " + " ".join(_plain_words(text)) + " "
        for phrase in phrases:
            joined = joined.replace(f" {phrase} ", " ")
        return joined.split()

    a, b = prepared(tweet), prepared(earlier)
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def near_copy(tweet: str, history: Sequence[str], ignore: Iterable[str] = ()) -> tuple[float, int]:
    """The highest :func:`copy_similarity` of ``tweet`` to any of ``history`` and that tweet's index (-1: none).

    A tweet of fewer than ``THIN_WORDS`` plain words is never a copy (it is thin, which counts on its own).
    Compare the result with ``NEAR_COPY_RATIO``.
    """
    ignore = list(ignore)
    if len(_plain_words(tweet)) < THIN_WORDS:
        return 0.0, -1
    best, where = 0.0, -1
    for i, earlier in enumerate(history):
        ratio = copy_similarity(tweet, earlier, ignore)
        if ratio > best:
            best, where = ratio, i
    return best, where


def labels_named(tweet: str, labels: Iterable[str], allowed: str = "") -> list[str]:
    """The classifier labels (e.g. the caption's top-5) the tweet names that nothing in ``allowed`` backs.

    A label is named when all its words (of 3+ letters) are in the tweet, so "our bobsled team" names
    ``bobsled``. ``allowed`` is text that says what the media shows (its OCR text; in an evaluation, the
    reference tweet): a label sharing a word with it is the right subject ("Egyptian cat" for a photo the
    brand calls "our shop cat"), one sharing none is a wrong subject.
    """
    tweet_words = set(_plain_words(tweet))
    allowed_words = set(_words(allowed))
    named = []
    for label in labels:
        words = [w for w in _words(label) if len(w) >= 3]
        if words and all(w in tweet_words or w + "s" in tweet_words for w in words) \
                and not any(w in allowed_words or w + "s" in allowed_words for w in words):
            named.append(label)
    return named
