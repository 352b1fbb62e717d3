"""The challenge's evaluation protocol around ``m2t evaluate --task llm``: splits, history, extra metrics.

``--split brand|time`` turns one dump into a test set and a history (the rest); ``--history CSV`` gives
a separate history. Every run with either records, beside the usual corpus scores:

* ``raw_*``: the same metrics with ``<hyperlink>``/``<mention>`` scored as the text stands (no placeholder words);
* ``floor_*`` / ``floor_raw_*``: the same predictions against permuted references, the chance floor of each score;
* ``unsupported_per_tweet``, ``unsupported_share``, ``coverage``, ``fact_use_share``: the grounding check;
* ``voice_share`` (and ``ref_voice_share``, its ceiling): tweets carrying their brand's habits, learned from history;
* ``fallback_share``: rows whose brand had no earlier tweet (examples came from other brands).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.brand.history import History, dump_digest, history_from_frame, read_history
from core.brand.retrieval import HistoryIndex
from core.brand.split import Split, split_dump
from core.errors import UserError

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

    @property
    def active(self) -> bool:
        return self.index is not None

    def describe(self) -> str:
        if self.index is None:
            return ""
        where = f"split {self.split.kind} ({self.split.info})" if self.split else f"history {self.index.history.path}"
        return f"{where}; {len(self.index.history)} history tweets; {self.k} examples per row"


def prepare(
    dataset: Dataset,
    *,
    history: str | Path | None = None,
    split: str | None = None,
    cutoff: str | None = None,
    seed: int = 0,
    k: int = 3,
    limit: int | None = None,
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
        return dataset, BrandEval(k=k)
    if split is not None:
        from core.tables import read_tweet_dump

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
    return dataset, BrandEval(HistoryIndex.build(hist), k, chosen)


def configure(request: PredictRequest, item: Item, brand: BrandEval) -> PredictRequest:
    """Give one row's request its history: never the row itself (by id), never a later tweet (by date)."""
    if brand.index is not None:
        request.history = brand.index
        request.history_k = brand.k
        request.row_id = item.row.get("id") or None
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
    brand = prediction.analysis.brand
    if brand is not None:
        out["examples"] = " | ".join(t.id for t in brand.tweets)
        if brand.fallback:
            out["history_note"] = brand.note
    return out


def _has_marker(text: str, markers: list[str]) -> bool:
    from core.brand.voice import BrandVoice

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


def floor_metrics(predictions: list[str], references: list[str], seed: int = 0) -> dict[str, float]:
    """``raw_*``, ``floor_*`` and ``floor_raw_*`` for BLEU, BLEU-1..4, ROUGE-L and CIDEr-D (no bootstrap)."""
    from core.eval.scoring import score, shuffled_floor

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
