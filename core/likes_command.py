"""``m2t likes DATA --history HISTORY --out OUT``: predicted likes for every row of a tweet dump.

The likes model (:mod:`core.brand.likes`) is learned from the history dump (cached per dump's bytes) and
predicts each row's likes from its text, media type, account, hour, weekday and date, with an interval that
aims at 80 % coverage. The output follows the batch rules: every input column kept, in order, plus
``predicted_likes, likes_low, likes_high, brand_median_likes, likes_source``; formula-safe cells; written
atomically every :data:`CHUNK` rows, and a rerun adds only the rows not yet in it (matched by id and
occurrence, like ``m2t batch``). Every input is checked before the model is fitted.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core.console import emit, positive_int, say
from core.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from core.brand.likes import LikesModel

LIKES_COLUMNS = ("predicted_likes", "likes_low", "likes_high", "brand_median_likes", "likes_source")
CHUNK = 50_000
SOURCES = {"account": "account", "company": "company's account", "global": "pooled model (account not in the history)"}


def read_likes_output(out_path: Path) -> pd.DataFrame | None:
    """A previous ``m2t likes`` output as written (formula guards removed), or None when there is none yet."""
    from core.batch.io import read_output

    return read_output(out_path, "predicted_likes", "an m2t likes output")


def check_likes_output(out_path: Path, in_path: Path, history_path: Path) -> None:
    """``--out`` is writable, is neither input, and is empty or an earlier likes output (one line each)."""
    from core.outputs import writable_file

    writable_file(out_path, "--out")
    for path, what in ((in_path, "the input file"), (history_path, "the history file")):
        try:
            same = out_path.exists() and path.exists() and out_path.resolve() == path.resolve()
        except OSError:
            same = False
        if same:
            raise UserError(f"--out {out_path} is {what}; results go to a new file so the inputs stay as they are")
    read_likes_output(out_path)


def likes_columns(model: LikesModel, frame: pd.DataFrame) -> dict[str, list[str]]:
    """The likes columns for ``frame``'s rows (as strings, as the CSV holds them)."""
    out: dict[str, list[str]] = {c: [] for c in LIKES_COLUMNS}
    for p in model.predict_rows(frame):
        out["predicted_likes"].append(str(p.likes))
        out["likes_low"].append(str(p.low))
        out["likes_high"].append(str(p.high))
        out["brand_median_likes"].append("" if p.brand_median is None else f"{p.brand_median:.0f}")
        out["likes_source"].append(SOURCES[p.source])
    return out


def predict_file(in_path: Path, out_path: Path, model: LikesModel, limit: int | None = None) -> tuple[int, int]:
    """Write predicted likes for every row of ``in_path`` not yet in ``out_path``; returns (rows, new rows)."""
    import pandas as pd

    from core.batch import read_tweet_csv, row_keys, write_atomic

    frame = read_tweet_csv(in_path)
    if limit:
        frame = frame.head(limit)
    done = read_likes_output(out_path)
    if done is None:
        done = pd.DataFrame(columns=[*frame.columns, *LIKES_COLUMNS])
    done_keys = set(row_keys(done)) if "id" in frame.columns and "id" in done.columns else \
        {str(i) for i in range(len(done))}
    todo = [i for i, key in enumerate(row_keys(frame)) if key not in done_keys]
    parts = [done]
    for start in range(0, len(todo), CHUNK):
        rows = frame.iloc[todo[start:start + CHUNK]].copy()
        for column, values in likes_columns(model, rows).items():
            rows[column] = values
        parts.append(rows)
        write_atomic(_in_input_order(pd.concat(parts, ignore_index=True), frame), out_path)
    if not todo and not out_path.exists():
        write_atomic(done, out_path)
    return len(frame), len(todo)


def _in_input_order(result: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in the input's order (finished rows first came from the earlier run, new ones after)."""
    from core.batch import row_keys

    if "id" not in frame.columns or "id" not in result.columns:
        return result
    position = {key: i for i, key in enumerate(row_keys(frame))}
    keys = row_keys(result)
    order = sorted(range(len(result)), key=lambda i: position.get(keys[i], len(position) + i))
    return result.iloc[order].reset_index(drop=True)


def run_likes(args: argparse.Namespace) -> int:
    """Entry point of ``m2t likes``."""
    import time

    import numpy as np

    from core.batch import read_tweet_csv
    from core.brand.likes import COVERAGE, load_or_fit, read_likes_history, rows_from_frame

    in_path, out_path, history_path = Path(args.data), Path(args.out), Path(args.history)
    # Everything a person can get wrong fails here, before the model is fitted.
    frame = read_tweet_csv(in_path)
    check_likes_output(out_path, in_path, history_path)
    history = read_likes_history(history_path)
    if history.note():
        say(f"note: {history.note()}")
    start = time.perf_counter()
    model = load_or_fit(history)
    fit_s = time.perf_counter() - start
    say(f"{model.describe()} ({'loaded from the cache' if model.cached else f'fitted in {fit_s:.1f} s'})")
    rows = rows_from_frame(frame.head(args.limit) if args.limit else frame)
    fallback = model.fallback_note(rows)
    if fallback:
        say(f"note: {fallback}")
    undated = int((~np.isfinite(rows.years)).sum())
    if undated:
        say(f"note: {undated} row(s) have a blank or unreadable date: predicted at the history's last date, "
            "without hour or weekday")
    total, new = predict_file(in_path, out_path, model, args.limit)
    summary = {"out": str(out_path), "rows": total, "new_rows": new, "model": model.describe(),
               "coverage_aim": COVERAGE, "fit_s": fit_s, "cached_model": model.cached,
               "history_note": history.note(), "fallback_note": fallback}
    emit(summary, args.json, f"wrote {total} rows to {out_path} ({new} predicted now, {total - new} already there); "
         f"likes_low..likes_high aims to hold {COVERAGE:.0%} of real likes")
    return 0


def configure_likes(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Predict each row's likes, learned from a history dump's tweets and likes: the tweet's words, its media "
        "type (read from the media field, never downloaded), the account, hour, weekday and the account's trend. "
        "Adds predicted_likes, likes_low, likes_high (an interval aiming at 80% coverage), brand_median_likes "
        "and likes_source to the input's columns. Written every 50,000 rows; rerun to resume. The model is "
        "cached per history file. See docs/engagement.md.")
    p.add_argument("data", help="tweet dump CSV: date, username, inferred company (and id, content, media; "
                                "likes is ignored)")
    p.add_argument("--history", required=True,
                   help="tweet dump with likes to learn from (id, date, likes, content, username, media, "
                        "inferred company)")
    p.add_argument("--out", required=True, help="output CSV, in an existing folder (a rerun resumes from it)")
    p.add_argument("--limit", type=positive_int, help="only the first N rows")
