"""Predicted likes for generated tweets: each candidate of a prediction gets one, and ``--rank likes`` puts the
candidate with the most predicted likes first among those that pass the grounding check.

The model is the history dump's likes model (:mod:`core.brand.likes`, cached per dump); a history without likes
(or without a usable row) still gives examples, and predicted likes are then off with one note saying why.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.brand.likes import (
    COVERAGE,
    CV_FRACTION,
    MIN_CV_ROWS,
    LikesModel,
    LikesPrediction,
    load_or_fit,
    media_type,
    tweet_rows,
)
from core.errors import UserError

if TYPE_CHECKING:
    from core.pipeline import Prediction, PredictRequest

LIKES_OUTPUT_COLUMNS = ("predicted_likes", "likes_low", "likes_high")
RANKS = ("grounding", "likes")
_DECODED_KINDS = {"image": "photo", "gif": "gif", "video": "video", "audio": "video"}


def history_likes_model(path: str | Path) -> tuple[LikesModel | None, str]:
    """The likes model of a ``--history`` dump and a note ("" when there is nothing to say)."""
    try:
        model = load_or_fit(path)
    except UserError as exc:
        return None, f"predicted likes are off: {exc}"
    return model, model.note


def media_kind(media: Any) -> str:
    """``none``/``photo``/``video``/``gif`` of a request's media: a dump field, path or URL, or decoded media."""
    if media is None or isinstance(media, bytes):
        return "none" if media is None else "photo"
    if isinstance(media, str | Path):
        return media_type(str(media))
    kind = getattr(media, "kind", "")
    if kind == "mixed":
        return media_type(str(getattr(media, "source", ""))) if str(getattr(media, "source", "")).startswith("[") \
            else "photo"
    return _DECODED_KINDS.get(kind, "none")


def candidate_likes(model: LikesModel, prediction: Prediction, request: PredictRequest) -> list[LikesPrediction]:
    """Predicted likes of each candidate, in the prediction's order."""
    rows = tweet_rows(prediction.candidates, username=str(request.username), company=str(request.company),
                      date=str(request.date), media_kind=media_kind(request.media))
    return model.predict_rows(rows)


def passes_grounding(report: dict) -> bool:
    """A candidate the grounding check lets through: no unsupported detail, not a near copy of an earlier tweet."""
    return not report.get("unsupported") and not report.get("copy_of")


def rank_by_likes(prediction: Prediction, likes: list[LikesPrediction]) -> tuple[Prediction, list[LikesPrediction]]:
    """The candidate with the most predicted likes first, among those passing the grounding check (all of them
    when none passes); the others keep their order. Ties keep the grounding order."""
    reports = prediction.groundings
    allowed = [i for i in range(len(likes)) if i >= len(reports) or passes_grounding(reports[i])] or \
        list(range(len(likes)))
    if not allowed:
        return prediction, likes
    best = max(allowed, key=lambda i: (likes[i].likes, -i))
    if best == 0:
        return prediction, likes
    order = [best, *(i for i in range(len(likes)) if i != best)]
    candidates = [prediction.candidates[i] for i in order]
    groundings = [reports[i] for i in order] if len(reports) == len(likes) else reports
    return replace(prediction, tweet=candidates[0], candidates=candidates, groundings=groundings), \
        [likes[i] for i in order]


def with_likes(model: LikesModel, predictions: list[Prediction], requests: list[PredictRequest],
               rank: str = "grounding") -> tuple[list[Prediction], list[list[LikesPrediction]]]:
    """Each prediction with its candidates' predicted likes (re-ranked when ``rank`` is ``likes``)."""
    if rank not in RANKS:
        raise UserError(f"--rank must be one of {', '.join(RANKS)}, got {rank!r}")
    out_predictions, out_likes = [], []
    for prediction, request in zip(predictions, requests, strict=True):
        likes = candidate_likes(model, prediction, request) if prediction.candidates and prediction.tweet else []
        if rank == "likes" and likes:
            prediction, likes = rank_by_likes(prediction, likes)
        out_predictions.append(prediction)
        out_likes.append(likes)
    return out_predictions, out_likes


def likes_cells(likes: list[LikesPrediction]) -> dict[str, str]:
    """The output columns for a row: its chosen tweet's predicted likes and interval ("" without a tweet)."""
    if not likes:
        return dict.fromkeys(LIKES_OUTPUT_COLUMNS, "")
    first = likes[0]
    return {"predicted_likes": str(first.likes), "likes_low": str(first.low), "likes_high": str(first.high)}


def rows_for_words() -> int:
    """Earlier tweets the likes model needs before it may weigh a tweet's words: its check (the latest
    ``CV_FRACTION``) and the rows it fits on must each hold ``MIN_CV_ROWS``."""
    return math.ceil(MIN_CV_ROWS / min(CV_FRACTION, 1 - CV_FRACTION))


def spread_note(model: LikesModel, likes: list[LikesPrediction]) -> str:
    """What the candidates' predicted likes say about choosing between them: their difference, or why there is
    none (the model predicts from the account alone when its history could not show that words matter)."""
    if len(likes) < 2:
        return ""
    counts = [p.likes for p in likes]
    if max(counts) != min(counts):
        best = max(range(len(counts)), key=lambda i: (counts[i], -i))
        return (f"predicted likes differ between drafts: {min(counts)}-{max(counts)}; "
                f"draft {best + 1} is predicted the most")
    if not model.choice.text:
        need = rows_for_words()
        more = f"about {need} earlier tweets (it has {model.rows})" if model.rows < need else \
            f"its {model.rows} earlier tweets did not show that words change likes"
        basis = model.choice.describe().split(";")[0]
        return (f"predicted likes cannot tell these drafts apart: the model predicts {basis} for every draft; "
                f"to weigh a draft's words it needs {more}")
    return "predicted likes are the same for every draft: their words make no difference the model learned"


def describe(p: LikesPrediction) -> str:
    """One line for a person: the count, the interval and the account's median."""
    median = f"; the account's median {p.brand_median:.0f}" if p.brand_median is not None else \
        "; the account is not in the history (pooled model)"
    return f"predicted likes {p.likes} ({COVERAGE:.0%} interval {p.low}-{p.high}{median})"
