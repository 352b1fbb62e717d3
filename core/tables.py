"""One reader per table format: CSV, Excel and Parquet files (or a folder of CSV/Parquet parts) as strings.

Every way a table can be unusable (missing, empty, unreadable, lacking columns) becomes one
:class:`UserError` naming the file, so commands fail before any model loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

TWEET_COLUMNS = ("id", "date", "likes", "content", "username", "media", "inferred company")
TWEET_REQUIRED = ("date", "username", "inferred company")
PART_SUFFIXES = (".csv", ".parquet")


def _read_one(path: Path) -> pd.DataFrame:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".xlsx", ".xls"):
        return pd.read_excel(path, dtype=str)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def table_parts(path: Path) -> list[Path]:
    """The files behind ``path``: itself, or a folder's CSV/Parquet parts in name order."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_dir():
        return [path]
    parts = sorted(p for p in path.iterdir() if p.suffix.lower() in PART_SUFFIXES and not p.name.startswith("."))
    if not parts:
        raise UserError(f"{path}: a folder with no .csv or .parquet parts")
    return parts


def read_table(path: str | Path, required: Sequence[str] = (), what: str = "") -> pd.DataFrame:
    """The table at ``path`` with every cell a string ("" for blanks), rows numbered from 0."""
    import pandas as pd

    path = Path(path)
    frames = []
    for part in table_parts(path):
        try:
            frames.append(_read_one(part))
        except pd.errors.EmptyDataError:
            raise UserError(f"{part}: the file is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, ImportError) as exc:
            raise UserError(f"{part}: not a readable CSV, Excel or Parquet file ({str(exc).splitlines()[0]})") from None
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        need = what or ", ".join(required)
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; {need}")
    if frame.empty:
        raise UserError(f"{path}: the file has a header but no rows")
    return frame.reset_index(drop=True).fillna("").astype(str)


def read_tweet_dump(path: str | Path, required: Sequence[str] = TWEET_REQUIRED) -> pd.DataFrame:
    """A tweet dump (``id, date, likes, content, username, media, inferred company``)."""
    return read_table(path, required,
                      what=f"a tweet dump needs {', '.join(required)} (and optionally id, likes, media, content)")


# --------------------------------------------------------------------------- formula-safe CSV (OWASP CSV injection)

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _needs_guard(text: str) -> bool:
    """True for a cell a spreadsheet would run as a formula, also behind quotes we would strip on reading."""
    stripped = text.lstrip("'")
    return bool(stripped) and stripped[0] in FORMULA_TRIGGERS


def guard_cell(value: object) -> object:
    """``'`` before a cell that starts with ``= + - @``, tab or CR (OWASP's CSV-injection advice).

    Cells that already start with quotes before such a character get one more, so :func:`unguard_cell`
    gives every cell back exactly: the guard is the only change, and it is reversible.
    """
    if isinstance(value, str) and _needs_guard(value):
        return "'" + value
    return value


def unguard_cell(value: object) -> object:
    """The cell as it was before :func:`guard_cell` (for reading our own CSVs back, e.g. to resume)."""
    if isinstance(value, str) and value.startswith("'") and _needs_guard(value):
        return value[1:]
    return value


def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell (and column name) guarded, for a CSV people open in Excel."""
    out = frame.copy()
    out.columns = [guard_cell(str(c)) for c in out.columns]
    for column in out.columns:
        out[column] = out[column].map(guard_cell)  # non-text cells (numbers) pass through unchanged
    return out


def formula_unsafe(frame: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`formula_safe`."""
    out = frame.copy()
    out.columns = [unguard_cell(str(c)) for c in out.columns]
    for column in out.columns:
        out[column] = out[column].map(unguard_cell)
    return out


def formula_safe_csv_text(text: str) -> str:
    """A CSV document with every cell guarded; for CSV text built elsewhere (e.g. by a page)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.reader(io.StringIO(text)):
        writer.writerow([guard_cell(cell) for cell in row])
    return out.getvalue()
