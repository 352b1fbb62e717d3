"""Read and check a brand-history dump (a tweet dump with ``content``) before any model loads.

Examples from a brand's own earlier tweets are what teach a small model its voice, and "never a
tweet dated after the post" is what keeps an evaluation honest, so every row needs its text and a
date that parses. A dump that cannot give both fails here with one line naming the file, in a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import UserError
from core.tables import read_table, table_parts

if TYPE_CHECKING:
    import pandas as pd

HISTORY_REQUIRED = ("content", "date")
ACCOUNT_COLUMNS = ("username", "inferred company")


def dump_digest(path: str | Path) -> str:
    """SHA-256 of the dump's bytes (of each part in order for a folder): the index cache key."""
    digest = hashlib.sha256()
    for part in table_parts(Path(path)):
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def account_key(value: object) -> str:
    """``@OrbitLab`` and ``orbitlab `` are the same account."""
    return " ".join(str(value or "").strip().lstrip("@").lower().split())


def parse_dates(values: pd.Series, where: str) -> np.ndarray:
    """Dates as UTC nanoseconds; any blank or unreadable one is an error naming the first (row numbers from 1)."""
    import pandas as pd

    values = values.str.strip()
    try:  # ISO dates (what dumps hold) parse vectorised; anything else element by element
        stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        stamps = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    bad = stamps.isna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise UserError(f"{where}: {int(bad.sum())} of {len(values)} dates are blank or unreadable "
                        f"(first: row {first + 1}, {values.iloc[first]!r}); history needs a date on every tweet")
    return stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)


def parse_date(value: str | None) -> int | None:
    """One date as UTC nanoseconds, or None when it is blank or unreadable (then no date filter applies)."""
    import pandas as pd

    if value is None or not str(value).strip():
        return None
    try:
        stamp = pd.Timestamp(str(value).strip())
    except (ValueError, TypeError):
        return None
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(np.datetime64(stamp.tz_localize(None).to_datetime64(), "ns").astype(np.int64))


@dataclass
class History:
    """A checked history dump: one row per tweet with text, ordered as in the file."""

    path: Path
    digest: str
    content: list[str]
    usernames: np.ndarray  # account keys (object array of str)
    companies: np.ndarray
    dates: np.ndarray  # int64 UTC ns
    likes: np.ndarray  # float64, NaN where unknown
    ids: list[str]

    def __len__(self) -> int:
        return len(self.content)


def history_from_frame(frame: pd.DataFrame, path: Path, digest: str) -> History:
    """A :class:`History` from a dump already read as strings (rows with blank ``content`` are dropped)."""
    import pandas as pd

    where = str(path)
    missing = [c for c in HISTORY_REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(f"{where}: missing column(s) {', '.join(missing)}; a history dump needs content and date "
                        "(and username or inferred company)")
    if not any(c in frame.columns for c in ACCOUNT_COLUMNS):
        raise UserError(f"{where}: no username or inferred company column; history examples are chosen by account")
    frame = frame[frame["content"].str.strip() != ""]
    if frame.empty:
        raise UserError(f"{where}: every `content` is empty; a history dump needs the tweets' text")
    dates = parse_dates(frame["date"], where)
    likes = pd.to_numeric(frame["likes"].str.replace(",", ""), errors="coerce").to_numpy(dtype=float) \
        if "likes" in frame.columns else np.full(len(frame), np.nan)
    blank = np.array([""] * len(frame), dtype=object)
    return History(
        path=path,
        digest=digest,
        content=[" ".join(t.split()) for t in frame["content"]],
        usernames=np.array([account_key(v) for v in frame["username"]], dtype=object)
        if "username" in frame.columns else blank,
        companies=np.array([account_key(v) for v in frame["inferred company"]], dtype=object)
        if "inferred company" in frame.columns else blank,
        dates=dates,
        likes=likes,
        ids=list(frame["id"]) if "id" in frame.columns else [f"row{i}" for i in frame.index],
    )


def read_history(path: str | Path) -> History:
    """The dump at ``path``, checked: ``content`` and readable ``date`` on every row, an account column."""
    path = Path(path)
    frame = read_table(path, HISTORY_REQUIRED, what="a history dump needs content and date (a tweet dump: id, date, "
                       "likes, content, username, media, inferred company)")
    return history_from_frame(frame, path, dump_digest(path))
