"""Tweet-dump CSV in, generated tweets out: resumable, and a bad row never stops the run.

Results are written after every chunk by replacing the output file atomically, so an interrupted
run loses at most the chunk in flight and a rerun picks up where it stopped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.errors import UserError
from core.pipeline import Pipeline, Prediction, PredictRequest
from core.stages.llm import GenerationConfig
from core.tables import TWEET_REQUIRED, read_tweet_dump

REQUIRED_COLUMNS = TWEET_REQUIRED
OUTPUT_COLUMNS = ("generated", "caption", "ocr", "transcript", "error")


def read_tweet_csv(path: Path) -> pd.DataFrame:
    """A tweet dump as strings, with a clear message for what cannot be used."""
    return read_tweet_dump(path, REQUIRED_COLUMNS)


def parse_likes(value) -> int | None:
    try:
        number = float(str(value).replace(",", ""))
    except ValueError:
        return None
    return None if math.isnan(number) else int(number)


def row_request(row: pd.Series, base_dir: Path) -> PredictRequest:
    media = str(row.get("media", "") or "").strip()
    return PredictRequest(
        company=row["inferred company"],
        username=row["username"],
        date=row["date"],
        likes=parse_likes(row.get("likes", "")),
        media=media or None,
        base_dir=base_dir,
    )


def result_columns(prediction: Prediction) -> dict[str, str]:
    a = prediction.analysis
    return {
        "generated": prediction.tweet,
        "caption": a.caption,
        "ocr": " ".join(a.ocr.split()),
        "transcript": a.transcript,
        "error": "; ".join(a.errors),
    }


def _row_keys(frame: pd.DataFrame) -> list[str]:
    if "id" in frame.columns and frame["id"].astype(str).is_unique:
        return frame["id"].astype(str).tolist()
    return [str(i) for i in range(len(frame))]


def _load_done(out_path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    if not out_path.exists():
        return pd.DataFrame(columns=[*frame.columns, *OUTPUT_COLUMNS])
    try:
        done = pd.read_csv(out_path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=[*frame.columns, *OUTPUT_COLUMNS])
    if "generated" not in done.columns:
        raise UserError(f"{out_path} exists and is not a Media2Tweet output; choose another --out")
    return done


def _write_atomic(frame: pd.DataFrame, out_path: Path) -> None:
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(out_path)


def run_batch(
    in_path: Path,
    out_path: Path,
    pipeline: Pipeline,
    cfg: GenerationConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Predict a tweet for every row not yet in ``out_path``; returns the full output table."""
    cfg = cfg or GenerationConfig()
    frame = read_tweet_csv(in_path)
    if limit:
        frame = frame.head(limit)
    keys = _row_keys(frame)
    base_dir = in_path.resolve().parent
    done = _load_done(out_path, frame)
    done_keys = set(_row_keys(done)) if "id" in frame.columns and "id" in done.columns else {
        str(i) for i in range(len(done))
    }
    todo = [i for i, key in enumerate(keys) if key not in done_keys]
    rows = [done]
    finished = len(frame) - len(todo)
    if progress:
        progress(finished, len(frame))
    chunk = max(1, cfg.batch_size)
    for start in range(0, len(todo), chunk):
        idx = todo[start:start + chunk]
        requests = [row_request(frame.iloc[i], base_dir) for i in idx]
        predictions = pipeline.predict_many(requests, cfg)
        out = frame.iloc[idx].copy()
        for column in OUTPUT_COLUMNS:
            out[column] = [result_columns(p)[column] for p in predictions]
        rows.append(out)
        _write_atomic(pd.concat(rows, ignore_index=True), out_path)
        finished += len(idx)
        if progress:
            progress(finished, len(frame))
    result = pd.concat(rows, ignore_index=True)
    if not todo:
        _write_atomic(result, out_path)
    return result
