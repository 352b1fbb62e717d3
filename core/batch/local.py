"""``m2t batch`` on this machine: tweet-dump CSV in, generated tweets out, resumable, a bad row never stops it.

Rows are planned, checked and written by :mod:`core.batch.io` (the rules the Ray engine shares); this module
only runs the chunks through the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from core.batch.io import (
    HISTORY_COLUMNS,
    OUTPUT_COLUMNS,
    confinement_error,
    plan_rows,
    result_columns,
    row_request,
    write_atomic,
)
from core.batch.likes import LIKES_OUTPUT_COLUMNS, likes_cells, with_likes
from core.stages.llm import GenerationConfig

if TYPE_CHECKING:
    from core.brand.likes import LikesModel
    from core.brand.retrieval import HistoryIndex
    from core.pipeline import Pipeline


def run_batch(
    in_path: Path,
    out_path: Path,
    pipeline: Pipeline,
    cfg: GenerationConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    limit: int | None = None,
    *,
    media_root: Path | None = None,
    history: HistoryIndex | None = None,
    history_k: int = 3,
    allow_local: bool = True,
    likes_model: LikesModel | None = None,
    rank: str = "grounding",
    brand_kit: bool = True,
) -> pd.DataFrame:
    """Predict a tweet for every row not yet in ``out_path``; returns the full output table (unguarded).

    With ``likes_model``, ``predicted_likes``/``likes_low``/``likes_high`` give the chosen tweet's predicted likes;
    ``rank`` ``likes`` chooses the candidate with the most among those that pass the grounding check.

    Local media must stay inside ``media_root`` (default: the CSV's folder); a row whose media would
    leave it is predicted from its metadata alone, with the reason in its ``error`` column.
    With ``history``, each prompt shows up to ``history_k`` of the brand's earlier tweets (never the row
    itself, matched by id, and never one dated after it); ``examples`` lists their ids. ``brand_kit`` False
    leaves each tweet as the model wrote it (no sign-off, hashtag or emoji added; ``kit_added`` says what was).
    """
    cfg = cfg or GenerationConfig()
    frame, base_dir, done, todo = plan_rows(in_path, out_path, limit, media_root)
    rows = [done]
    finished = len(frame) - len(todo)
    if progress:
        progress(finished, len(frame))
    chunk = max(1, cfg.batch_size)
    for start in range(0, len(todo), chunk):
        idx = todo[start:start + chunk]
        requests = [row_request(frame.iloc[i], base_dir) for i in idx]
        if history is not None:
            for request, i in zip(requests, idx, strict=True):
                request.history, request.history_k = history, history_k
                request.row_id = str(frame.iloc[i].get("id", "")) or None
                request.brand_kit = brand_kit
        # Local paths stay inside the CSV's folder; with ``allow_local=False`` (a visitor's upload in the app)
        # the pipeline itself refuses every non-URL cell, with a message that tells nothing about the server.
        refused = [confinement_error(str(r.media or ""), base_dir) if allow_local else None for r in requests]
        for request, reason in zip(requests, refused, strict=True):
            if reason:
                request.media = None  # the row is still predicted, from its metadata
        predictions = pipeline.predict_many(requests, cfg)
        row_likes: list[list] = [[] for _ in predictions]
        if likes_model is not None:
            predictions, row_likes = with_likes(likes_model, predictions, requests, rank)
        out = frame.iloc[idx].copy()
        columns = [result_columns(p) for p in predictions]
        if likes_model is not None:
            for values, found in zip(columns, row_likes, strict=True):
                values.update(likes_cells(found))
        for values, reason in zip(columns, refused, strict=True):
            if reason:
                values["error"] = "; ".join(filter(None, (reason, values["error"])))
        extra = (*(HISTORY_COLUMNS if history is not None else ()),
                 *(LIKES_OUTPUT_COLUMNS if likes_model is not None else ()))
        for column in (*OUTPUT_COLUMNS, *extra):
            out[column] = [values.get(column, "") for values in columns]
        rows.append(out)
        write_atomic(pd.concat(rows, ignore_index=True), out_path)
        finished += len(idx)
        if progress:
            progress(finished, len(frame))
    result = pd.concat(rows, ignore_index=True)
    if not todo:
        write_atomic(result, out_path)
    return result
