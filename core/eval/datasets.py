"""Labelled evaluation sets: which columns each task reads, and predictions made elsewhere.

Data files are read and checked before any model loads, so a bad file fails in a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import UserError
from core.registry import LEGACY_TASKS
from core.tables import read_table, read_tweet_dump

if TYPE_CHECKING:
    import pandas as pd

PREDICTION_COLUMNS = ("prediction", "generated")  # ours, and `m2t batch` output


@dataclass(frozen=True)
class TaskSpec:
    """How one evaluation task reads its data and which model stage answers it."""

    stage: str  # registry task whose model runs: llm, captioning, ocr, asr
    reference: str  # column holding the reference text
    keys: tuple[str, ...]  # columns naming an item (first present wins); predictions files join on it
    family: str  # "text" (BLEU & co.) or "speech" (WER/CER)
    sample_metric: str  # what SampleRecord.score holds for this task


TASKS: dict[str, TaskSpec] = {
    "llm": TaskSpec("llm", "content", ("id",), "text", "bleu"),
    "caption": TaskSpec("caption", "caption", ("path", "url"), "text", "bleu"),
    "ocr": TaskSpec("ocr", "text", ("path",), "speech", "cer"),
    "asr": TaskSpec("asr", "text", ("audio",), "speech", "wer"),
}


def normalize_task(task: str) -> str:
    """An evaluation task by its stage name (``llm``); the old names (``tweet``, ``captioning``) still work."""
    task = LEGACY_TASKS.get(task, task)
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return task


@dataclass
class Item:
    """One labelled row: where its input is, what the answer is, and the raw row (tweets need it)."""

    position: int  # row number in the data file (0-based, header excluded)
    key: str  # value of the task's key column, or the row number when there is none
    source: str  # media location (tweets: the dump's media field)
    reference: str
    row: dict[str, str] = field(default_factory=dict)


@dataclass
class Dataset:
    """The rows to score, where relative media paths start, and what was left out."""

    path: Path
    items: list[Item]
    key_column: str | None
    base_dir: Path
    total_rows: int  # rows in the file: an aligned predictions file must have as many
    limited: bool = False  # --limit cut the rows, so a shorter aligned predictions file is fine
    dropped: int = 0  # rows without a reference (nothing to score against)


def _read_data_frame(task: str, path: Path) -> pd.DataFrame:
    """The data file with the columns its task needs, or a UserError naming what is missing."""
    spec = TASKS[task]
    frame = read_tweet_dump(path) if task == "llm" else read_table(path)
    missing = [spec.reference] if spec.reference not in frame.columns else []
    if task != "llm" and not any(k in frame.columns for k in spec.keys):
        missing.insert(0, " or ".join(spec.keys))
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; {task} data needs {_expected_columns(task)}"
        )
    return frame


def _expected_columns(task: str) -> str:
    return {
        "llm": "a tweet dump (id, date, likes, content, username, media, inferred company)",
        "caption": "path or url, and caption",
        "ocr": "path and text",
        "asr": "audio and text",
    }[task]


def _key_column(task: str, frame: pd.DataFrame) -> str | None:
    return next((k for k in TASKS[task].keys if k in frame.columns), None)


def load_dataset(task: str, path: str | Path, limit: int | None = None) -> Dataset:
    """The first ``limit`` rows that have a reference; rows with a blank reference cannot be scored."""
    task = normalize_task(task)
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    path = Path(path)
    frame = _read_data_frame(task, path)
    key = _key_column(task, frame)
    spec = TASKS[task]
    has_reference = frame[spec.reference].str.strip() != ""
    usable = frame[has_reference]
    if usable.empty:
        raise UserError(f"{path}: every `{spec.reference}` is empty; there is nothing to score against")
    if limit is not None:
        usable = usable.head(limit)
    source_column = "media" if task == "llm" else key
    items = [
        Item(
            position=int(position),
            key=row[key] if key else str(position),
            source=row.get(source_column, "") if source_column else "",
            reference=row[spec.reference],
            row=dict(row),
        )
        for position, row in zip(usable.index, usable.to_dict("records"), strict=True)
    ]
    return Dataset(
        path,
        items,
        key,
        path.resolve().parent,
        total_rows=len(frame),
        limited=limit is not None and len(usable) < int(has_reference.sum()),
        dropped=int((~has_reference).sum()),
    )


# --------------------------------------------------------------------------- external predictions


def read_predictions(path: str | Path, data: Dataset) -> list[str]:
    """Predictions for ``data.items`` from a file made elsewhere.

    Joined on the data's key column (``id``/``path``/``url``/``audio``) when both files have it,
    so order does not matter; otherwise row *i* of the file answers data row *i*.
    """
    path = Path(path)
    frame = read_table(path)
    column = next((c for c in PREDICTION_COLUMNS if c in frame.columns), None)
    if column is None:
        raise UserError(f"{path}: no `prediction` column (found: {', '.join(frame.columns)})")
    key = data.key_column
    if key and key in frame.columns:
        return _join_predictions(path, frame, column, key, data.items)
    needed = max(item.position for item in data.items) + 1
    if len(frame) < needed or (len(frame) != data.total_rows and not data.limited):
        raise UserError(
            f"{path}: {len(frame)} predictions for {data.total_rows} data rows; without a "
            f"`{key or 'key'}` column to join on, predictions must align with the data row for row"
        )
    return [frame[column].iloc[item.position] for item in data.items]


def _join_predictions(path: Path, frame: pd.DataFrame, column: str, key: str, items: list[Item]) -> list[str]:
    duplicated = frame[key][frame[key].duplicated()]
    if not duplicated.empty:
        raise UserError(f"{path}: `{key}` {duplicated.iloc[0]!r} appears more than once; which prediction counts?")
    answers = dict(zip(frame[key], frame[column], strict=True))
    missing = [item.key for item in items if item.key not in answers]
    if missing:
        raise UserError(
            f"{path}: no prediction for {len(missing)} of {len(items)} data rows (first: {key}={missing[0]!r})"
        )
    return [answers[item.key] for item in items]
