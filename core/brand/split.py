"""The content-simulation challenge's two test sets, made from one dump: unseen brands, and a later period.

``brand``: a seeded 20 % of the accounts are held out (their rows are the test set, the other accounts are
the history, so every test row falls back to the nearest other brands). ``time``: rows dated on or after a
cutoff (default: the date that leaves the latest 20 % of rows) are the test set; the earlier rows are the
history. Either way no test row is ever in the history, and retrieval still takes only earlier tweets.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.brand.history import account_key, parse_date, parse_dates
from core.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("brand", "time")
TEST_FRACTION = 0.2


@dataclass
class Split:
    """Which rows of the dump are test rows, and what defined them (recorded with the run)."""

    test: np.ndarray  # bool mask over the dump's rows
    kind: str
    info: str  # e.g. "time >= 2023-03-14 10:00" or "held-out accounts: a, b"

    def key(self, digest: str) -> str:
        """Cache key of the history side: the dump's bytes plus how it was split."""
        return hashlib.sha256(f"{digest}|{self.kind}|{self.info}".encode()).hexdigest()


def _accounts(frame: pd.DataFrame) -> list[str]:
    column = "username" if "username" in frame.columns else "inferred company"
    return [account_key(v) for v in frame[column]]


def split_dump(frame: pd.DataFrame, kind: str, *, cutoff: str | None = None, seed: int = 0,
               where: str = "data") -> Split:
    """Test rows vs history rows of ``frame`` (a tweet dump as strings)."""
    if kind not in SPLITS:
        raise UserError(f"--split must be one of {', '.join(SPLITS)}, got {kind!r}")
    if "date" not in frame.columns:
        raise UserError(f"{where}: --split needs a date column")
    if kind == "time":
        dates = parse_dates(frame["date"], where)
        if cutoff is not None:
            cut = parse_date(cutoff)
            if cut is None:
                raise UserError(f"--cutoff {cutoff!r} is not a date (e.g. 2023-06-01 or '2023-06-01 12:00')")
        else:
            cut = int(np.sort(dates)[int(len(dates) * (1 - TEST_FRACTION))]) if len(dates) else 0
        test = dates >= cut
        info = "time >= " + str(np.datetime64(cut, "ns").astype("datetime64[m]")).replace("T", " ")
    else:
        if cutoff is not None:
            raise UserError("--cutoff applies to --split time only")
        accounts = _accounts(frame)
        names = sorted({a for a in accounts if a})
        random.Random(seed).shuffle(names)
        held = set(names[: max(1, round(len(names) * TEST_FRACTION))]) if len(names) > 1 else set()
        test = np.array([a in held for a in accounts], dtype=bool)
        info = "held-out accounts: " + ", ".join(sorted(held))
    if not test.any():
        raise UserError(f"{where}: --split {kind} leaves no test rows ({info})")
    if test.all():
        raise UserError(f"{where}: --split {kind} leaves no history rows ({info})")
    return Split(test, kind, info)
