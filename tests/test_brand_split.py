"""The challenge's two test sets from one dump: held-out accounts, and a later period."""

import numpy as np
import pandas as pd
import pytest

from core.brand.split import split_dump
from core.errors import UserError


def _frame(n=20):
    return pd.DataFrame({
        "id": [str(i) for i in range(n)],
        "date": [f"2023-01-{i + 1:02d} 10:00:00" for i in range(n)],
        "username": [f"brand{i % 5}" for i in range(n)],
        "content": [f"tweet {i}" for i in range(n)],
    })


def test_time_split_holds_out_the_latest_fifth_or_a_cutoff():
    split = split_dump(_frame(), "time")
    assert split.test.sum() == 4 and split.test[-4:].all() and split.info == "time >= 2023-01-17 10:00"
    split = split_dump(_frame(), "time", cutoff="2023-01-11")
    assert split.test.sum() == 10 and not split.test[:10].any()


def test_brand_split_holds_out_whole_accounts_seeded():
    frame = _frame()
    split = split_dump(frame, "brand", seed=1)
    held = set(frame["username"][split.test])
    assert len(held) == 1 and not held & set(frame["username"][~split.test])
    assert np.array_equal(split.test, split_dump(frame, "brand", seed=1).test)
    assert split.key("abc") != split_dump(frame, "time").key("abc")


@pytest.mark.parametrize(
    ("kind", "cutoff", "message"),
    [
        ("time", "2030-01-01", "no test rows"),
        ("time", "2000-01-01", "no history rows"),
        ("time", "someday", "not a date"),
        ("brand", "2023-01-01", "--split time only"),
        ("month", None, "must be one of"),
    ],
)
def test_bad_splits_are_one_line(kind, cutoff, message):
    with pytest.raises(UserError, match=message):
        split_dump(_frame(), kind, cutoff=cutoff)


def test_unreadable_dates_fail():
    frame = _frame()
    frame.loc[3, "date"] = "yesterday"
    with pytest.raises(UserError, match="row 4"):
        split_dump(frame, "time")
