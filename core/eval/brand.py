"""The challenge's evaluation protocol around ``m2t evaluate --task llm``: splits, history, extra metrics.

``--split brand|time`` turns one dump into a test set and a history (the rest); ``--history CSV`` gives
a separate history. Every run with either records, beside the usual corpus scores:

* ``raw_*``: the same metrics with ``<hyperlink>``/``<mention>`` scored as the text stands (no placeholder words);
* ``floor_*`` / ``floor_raw_*``: the same predictions against permuted references, the chance floor of each score;
* ``unsupported_per_tweet``, ``unsupported_share``, ``coverage``, ``fact_use_share``: the grounding check;
* ``voice_share`` (and ``ref_voice_share``, its ceiling): tweets carrying their brand's habits, learned from history;
* ``fallback_share``: rows whose brand had no earlier tweet (examples came from other brands);
* ``thin_share``: tweets with fewer than 4 words of their own beyond the media's text and the brand's sign-off
  (``grounding.is_thin``);
* ``near_copy_share``: tweets whose word-level difflib ratio to one of their brand's earlier tweets is at least
  0.6 (``grounding.near_copy``; sign-offs, hashtags, emoji and placeholders left out);
* ``voice_marker_share`` and ``voice_{hashtags,signoffs,emojis}_share``: each marker kind the brand uses (learned
  from its history before the row), counted per (row, kind): does the tweet carry one of that kind;
* ``subject_error_share``: tweets naming the captioner's top label when it shares no word with the reference or the
  poster's text (the classifier's wrong guess written as the subject; the other top-5 labels never reach the prompt);
* ``invented_number_share``: tweets with an unsupported number, price, percentage, date or time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.brand.history import History, dump_digest, history_from_frame, read_history
from core.brand.retrieval import HistoryIndex
from core.brand.split import Split, split_dump
from core.brand.voice import BrandVoice
from core.errors import UserError
from core.eval.scoring import score, shuffled_floor
from core.stages.grounding import NEAR_COPY_RATIO, is_thin, labels_named, near_copy, own_words
from core.tables import read_tweet_dump

if TYPE_CHECKING:
    from core.eval.datasets import Dataset, Item
    from core.pipeline import Prediction, PredictRequest

FLOOR_METRICS = ("bleu", "bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "cider")
FACT_USE_COVERAGE = 0.5  # a tweet "uses its poster's facts" when it uses at least half its salient words
LABELS = {
    "unsupported_per_tweet": "unsupported details / tweet",
    "unsupported_share": "tweets with unsupported details",
    "coverage": "input-word coverage",
    "fact_use_share": "tweets using their own facts",
    "voice_share": "tweets in the brand's voice",
    "ref_voice_share": "references in the brand's voice",
    "fallback_share": "rows with no own history",
    "history_examples": "history examples",
    "brand_kit": "brand kit on",
    "thin_share": "thin tweets (< 4 own words)",
    "near_copy_share": "near copies of history",
    "ref_near_copy_share": "references near copies",
    "subject_error_share": "tweets naming a wrong subject",
    "invented_number_share": "tweets with an invented number",
    "photo_subject_share": "photo tweets naming the subject",
    "caption_subject_share": "photo captions naming the subject",
    "voice_marker_share": "brand markers carried (per kind)",
    "voice_hashtags_share": "brand hashtag carried",
    "voice_signoffs_share": "brand sign-off carried",
    "voice_emojis_share": "brand emoji carried",
    **{f"raw_{k}": f"{k} (raw placeholders)" for k in FLOOR_METRICS},
    **{f"floor_{k}": f"{k} shuffled floor" for k in FLOOR_METRICS},
    **{f"floor_raw_{k}": f"{k} raw, shuffled floor" for k in FLOOR_METRICS},
}


@dataclass
class BrandEval:
    """How a tweet evaluation uses brand history: the index (or None), examples per row, the split."""

    index: HistoryIndex | None = None
    k: int = 3
    split: Split | None = None
    kit: bool = True  # the brand kit finish on each row's tweet

    @property
    def active(self) -> bool:
        return self.index is not None

    def describe(self) -> str:
        if self.index is None:
            return ""
        where = f"split {self.split.kind} ({self.split.info})" if self.split else f"history {self.index.history.path}"
        kit = "" if self.kit else "; brand kit off"
        return f"{where}; {len(self.index.history)} history tweets; {self.k} examples per row{kit}"


def prepare(
    dataset: Dataset,
    *,
    history: str | Path | None = None,
    split: str | None = None,
    cutoff: str | None = None,
    seed: int = 0,
    k: int = 3,
    limit: int | None = None,
    kit: bool = True,
) -> tuple[Dataset, BrandEval]:
    """The test rows and the history index for a run; checks every input before any model loads."""
    if k < 0:
        raise UserError(f"--examples must be 0 or more, got {k}")
    if split is None and cutoff is not None:
        raise UserError("--cutoff needs --split time")
    if split is not None and history is not None:
        raise UserError("--split makes the history from the data itself; drop --history (or --split)")
    if split is None and history is None:
        if limit is not None:
            dataset = replace(dataset, items=dataset.items[:limit], limited=len(dataset.items) > limit)
        return dataset, BrandEval(k=k, kit=kit)
    if split is not None:
        frame = read_tweet_dump(dataset.path)
        chosen = split_dump(frame, split, cutoff=cutoff, seed=seed, where=str(dataset.path))
        rest = frame[~chosen.test]
        hist: History = history_from_frame(rest, dataset.path, chosen.key(dump_digest(dataset.path)))
        items = [item for item in dataset.items if chosen.test[item.position]]
        if not items:
            raise UserError(f"{dataset.path}: no test row of --split {split} has a reference to score against")
        total = len(items)
        items = items[:limit] if limit is not None else items
        dataset = replace(dataset, items=items, limited=len(items) < total or dataset.limited)
    else:
        hist = read_history(history)
        chosen = None
        if limit is not None:
            dataset = replace(dataset, items=dataset.items[:limit], limited=len(dataset.items) > limit)
    return dataset, BrandEval(HistoryIndex.build(hist), k, chosen, kit)


def configure(request: PredictRequest, item: Item, brand: BrandEval) -> PredictRequest:
    """Give one row's request its history: never the row itself (by id), never a later tweet (by date)."""
    if brand.index is not None:
        request.history = brand.index
        request.history_k = brand.k
        request.row_id = item.row.get("id") or None
    request.brand_kit = brand.kit
    return request


def row_voice(brand: BrandEval, item: Item) -> list[str]:
    """The row's brand's voice markers, learned from its history before the row (the same for every k)."""
    if brand.index is None:
        return []
    row = item.row
    return brand.index.voice(row.get("username", ""), row.get("inferred company", ""), row.get("date", ""),
                             row.get("id") or None).markers


def details(prediction: Prediction) -> dict[str, str]:
    """What a sample's stored input shows about grounding and examples (the leaderboard's drill-down)."""
    out = {"unsupported": "; ".join(prediction.grounding.get("unsupported", []))}
    if prediction.analysis.labels:
        out["labels"] = "; ".join(f"{label} ({score:.2f})" for label, score in prediction.analysis.labels)
    if prediction.grounding.get("kit_added"):
        out["kit_added"] = " ".join(prediction.grounding["kit_added"])
    brand = prediction.analysis.brand
    if brand is not None:
        out["examples"] = " | ".join(t.id for t in brand.tweets)
        if brand.fallback:
            out["history_note"] = brand.note
    return out


def _has_marker(text: str, markers: list[str]) -> bool:
    voice = BrandVoice(hashtags=[m for m in markers if m.startswith("#")],
                       emojis=[m for m in markers if not m.startswith("#") and not any(c.isalnum() for c in m)],
                       signoffs=[m for m in markers if not m.startswith("#") and any(c.isalnum() for c in m)])
    return bool(voice.found_in(text))


def grounding_metrics(groundings: list[dict], predictions: list[str], references: list[str],
                      voices: list[list[str]] | None, fallbacks: list[bool] | None) -> dict[str, float]:
    """Unsupported details per tweet, coverage, fact use, voice share, fallback share."""
    out: dict[str, float] = {}
    if groundings:
        out["unsupported_per_tweet"] = sum(len(g.get("unsupported", [])) for g in groundings) / len(groundings)
        out["unsupported_share"] = sum(bool(g.get("unsupported")) for g in groundings) / len(groundings)
        out["coverage"] = sum(g.get("coverage", 1.0) for g in groundings) / len(groundings)
        with_facts = [g for g in groundings if g.get("salient")]
        if with_facts:
            out["fact_use_share"] = sum(g["coverage"] >= FACT_USE_COVERAGE for g in with_facts) / len(with_facts)
    if voices:
        voiced = [i for i, markers in enumerate(voices) if markers]
        if voiced:
            out["voice_share"] = sum(_has_marker(predictions[i], voices[i]) for i in voiced) / len(voiced)
            out["ref_voice_share"] = sum(_has_marker(references[i], voices[i]) for i in voiced) / len(voiced)
    if fallbacks:
        out["fallback_share"] = sum(fallbacks) / len(fallbacks)
    return out


def row_brand_voice(brand: BrandEval, item: Item) -> BrandVoice:
    """The row's brand's learned voice (hashtags, sign-offs, emoji) before the row."""
    if brand.index is None:
        return BrandVoice()
    row = item.row
    return brand.index.voice(row.get("username", ""), row.get("inferred company", ""), row.get("date", ""),
                             row.get("id") or None)


VOICE_KINDS = ("hashtags", "signoffs", "emojis")
NUMERIC_KINDS = frozenset({"number", "price", "percent", "date", "time"})
_LABEL_SCORE = re.compile(r"^(.*) \((\d+(?:\.\d+)?)\)$")


def _labels(stored: str) -> list[str]:
    """Label names back from :func:`details`' ``labels`` field (``espresso (0.94); cup (0.02)``)."""
    names = []
    for part in filter(None, (p.strip() for p in stored.split(";"))):
        match = _LABEL_SCORE.match(part)
        names.append(match.group(1) if match else part)
    return names


@dataclass
class RowQuality:
    """One tweet's substance, copy, voice and subject checks (what :func:`quality_metrics` averages)."""

    thin: bool
    copy_ratio: float
    voice_kinds: dict[str, bool]  # kind → the tweet carries one of the brand's markers of that kind
    wrong_subject: bool
    invented_number: bool


def row_quality(prediction: str, reference: str, media_text: str, labels: list[str], history: list[str],
                voice: BrandVoice, grounding: dict) -> RowQuality:
    """The checks for one row: ``media_text`` is the post's OCR + transcript, ``history`` the brand's earlier tweets."""
    found = set(voice.found_in(prediction))
    kinds = {kind: any(m in found for m in getattr(voice, kind)) for kind in VOICE_KINDS if getattr(voice, kind)}
    numbers = any(d.get("kind") in NUMERIC_KINDS and not d.get("supported", True) for d in grounding.get("details", []))
    return RowQuality(
        # The brand's sign-off is a marker, not substance: its words do not count as the tweet's own.
        thin=is_thin(prediction, " ".join([media_text, *voice.signoffs])),
        copy_ratio=near_copy(prediction, history, voice.signoffs)[0],
        voice_kinds=kinds,
        wrong_subject=bool(labels_named(prediction, labels[:1], f"{reference} {media_text}")),
        invented_number=numbers,
    )


def quality_metrics(rows: list[RowQuality]) -> dict[str, float]:
    """Shares over the rows: thin tweets, near copies, voice per marker kind (and over all kinds), subject errors,
    invented numbers. ``voice_marker_share`` counts each (row, kind the brand uses) pair once."""
    if not rows:
        return {}
    n = len(rows)
    out = {
        "thin_share": sum(r.thin for r in rows) / n,
        "near_copy_share": sum(r.copy_ratio >= NEAR_COPY_RATIO for r in rows) / n,
        "subject_error_share": sum(r.wrong_subject for r in rows) / n,
        "invented_number_share": sum(r.invented_number for r in rows) / n,
    }
    pairs = [(kind, hit) for r in rows for kind, hit in r.voice_kinds.items()]
    if pairs:
        out["voice_marker_share"] = sum(hit for _, hit in pairs) / len(pairs)
        for kind in VOICE_KINDS:
            hits = [hit for k, hit in pairs if k == kind]
            if hits:
                out[f"voice_{kind}_share"] = sum(hits) / len(hits)
    return out


def brand_quality(brand: BrandEval, items: list[Item], predictions: list[str], references: list[str],
                  details: list[dict[str, str]], groundings: list[dict]) -> dict[str, float]:
    """:func:`quality_metrics` for an evaluation's rows (each row against its brand's history before it)."""
    rows, ref_copies = [], 0
    for i, item in enumerate(items):
        row = item.row
        info = details[i] if i < len(details) else {}
        media_text = " ".join(filter(None, (info.get("ocr", ""), info.get("transcript", ""))))
        history = brand.index.earlier(row.get("username", ""), row.get("inferred company", ""), row.get("date", ""),
                                      row.get("id") or None) if brand.index is not None else []
        voice = row_brand_voice(brand, item)
        rows.append(row_quality(predictions[i], references[i], media_text, _labels(info.get("labels", "")),
                                history, voice, groundings[i] if i < len(groundings) else {}))
        ref_copies += near_copy(references[i], history, voice.signoffs)[0] >= NEAR_COPY_RATIO
    out = quality_metrics(rows)
    if rows:
        out["ref_near_copy_share"] = ref_copies / len(rows)  # the references' own share: what the data allows
    return out


SUBJECTS_FILE = "subjects.csv"  # beside a generated dump: ``id,subject`` (words that name what each photo shows)


def read_subjects(data: str | Path) -> dict[str, list[str]]:
    """The photo rows' subject words from ``subjects.csv`` beside the data file (``m2t synth``/brand_dump write it);
    empty when there is none."""
    import csv

    path = Path(data).parent / SUBJECTS_FILE
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = ((row.get("id"), (row.get("subject") or "").split()) for row in csv.DictReader(handle))
        return {row_id: words for row_id, words in rows if row_id and words}  # a file without words names nothing


def names_subject(text: str, words: list[str]) -> bool:
    """Whether ``text`` names one of the subject's words (a plural counts)."""
    found = set(own_words(text, ""))
    return any(w.lower() in found or f"{w.lower()}s" in found for w in words)


def subject_metrics(items: list[Item], predictions: list[str], details: list[dict[str, str]],
                    subjects: dict[str, list[str]]) -> dict[str, float]:
    """On the photo rows (those with subject words): the share of tweets and of captions that name the subject."""
    ids = [str(item.row.get("id")) for item in items]
    rows = [(i, subjects[row_id]) for i, row_id in enumerate(ids) if row_id in subjects]
    if not rows:
        return {}
    return {
        "photo_subject_share": sum(names_subject(predictions[i], words) for i, words in rows) / len(rows),
        "caption_subject_share": sum(names_subject(details[i].get("caption", "") if i < len(details) else "", words)
                                     for i, words in rows) / len(rows),
    }


def floor_metrics(predictions: list[str], references: list[str], seed: int = 0) -> dict[str, float]:
    """``raw_*``, ``floor_*`` and ``floor_raw_*`` for BLEU, BLEU-1..4, ROUGE-L and CIDEr-D (no bootstrap)."""
    if len(predictions) < 2:
        return {}
    raw = score("llm", predictions, references, 0, "raw")["metrics"]
    floor = shuffled_floor(predictions, references, seed, task="llm", bootstrap=0)["metrics"]
    floor_raw = shuffled_floor(predictions, references, seed, task="llm", bootstrap=0, placeholders="raw")["metrics"]
    out: dict[str, float] = {}
    for key in FLOOR_METRICS:
        out[f"raw_{key}"] = raw[key]
        out[f"floor_{key}"] = floor[key]
        out[f"floor_raw_{key}"] = floor_raw[key]
    return out
