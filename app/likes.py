"""Predicted likes on the Tweet prediction page: the brand history's likes model, fitted once per dump.

The model is learned from the same history dump that gives the prompt its examples (:mod:`core.brand.likes`;
a dump without likes gives examples and a note instead), and the page shows each candidate's predicted likes
with its 80 % interval beside the account's median. With "Rank by predicted likes" the candidate with the most
comes first among those that pass the grounding check (the same rule as ``m2t predict --rank likes``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.batch.likes import history_likes_model, spread_note, with_likes
from core.brand.likes import COVERAGE, LikesModel, LikesPrediction
from core.pipeline import Prediction, PredictRequest

RANK_KEY = "tweet.rank_likes"


@st.cache_resource(show_spinner="Learning likes from the brand history…", max_entries=8)
def _model(path: str, size: int, mtime: float) -> tuple[LikesModel | None, str]:
    """One model per dump version (size and mtime in the key: a replaced file is learned again)."""
    return history_likes_model(path)


def likes_for(request: PredictRequest, prediction: Prediction, rank: bool) -> tuple[Prediction, list[LikesPrediction],
                                                                                     str]:
    """The prediction (re-ranked when ``rank``), each candidate's predicted likes, and a note ("" or why off)."""
    if request.history is None:
        return prediction, [], ""
    path = Path(request.history.history.path)
    stat = path.stat()
    model, note = _model(str(path), stat.st_size, stat.st_mtime)
    if model is None:
        return prediction, [], note
    (prediction,), (likes,) = with_likes(model, [prediction], [request], "likes" if rank else "grounding")
    note = "; ".join(filter(None, (note, spread_note(model, likes))))
    if likes and likes[0].source != "account":
        note = "; ".join(filter(None, (note, f"@{request.username} is not in the history: likes come from "
                                       + ("its company's account" if likes[0].source == "company"
                                          else "the model of all accounts"))))
    return prediction, likes, note


def likes_caption(p: LikesPrediction) -> str:
    """The line under a candidate: predicted likes, interval, and the account's median for comparison."""
    median = f" · the account's median: {p.brand_median:,.0f}" if p.brand_median is not None else ""
    return (f":material/favorite: **{p.likes:,} predicted likes** ({COVERAGE:.0%} interval {p.low:,}–{p.high:,})"
            f"{median}")
