"""``m2t likes DATA --history H --out OUT`` as a person runs it: the output's shape, resuming, every bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.__main__ import main
from core.devtools.likes_data import make_likes_dump
from core.likes_command import LIKES_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("likes_cli")
    dump = pd.read_csv(make_likes_dump(folder / "all.csv", 1500, 12, seed=31), dtype=str, keep_default_na=False)
    order = pd.to_datetime(dump["date"]).argsort()
    dump.iloc[order[:1200]].to_csv(folder / "history.csv", index=False)
    data = dump.iloc[order[1200:]].drop(columns=["likes"]).reset_index(drop=True)
    data.loc[0, "content"] = "=HYPERLINK(\"http://x\")"  # a formula a spreadsheet would run
    data.loc[1, "username"], data.loc[1, "inferred company"] = "BrandNew", "brand new"
    data.loc[2, "date"] = "sometime"
    data.loc[3, "id"] = data.loc[4, "id"]  # a duplicate id: both rows are kept, each predicted once
    data.to_csv(folder / "data.csv", index=False)
    return folder


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def _out(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_every_row_gets_predicted_likes_in_order_formula_safe(files, cache, capsys):
    out = cache / "out.csv"
    assert main(["likes", str(files / "data.csv"), "--history", str(files / "history.csv"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote 300 rows" in captured.out
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert any("1 row(s) of 1 account(s) absent from the history (brandnew)" in n for n in notes)
    assert any("1 row(s) have a blank or unreadable date" in n for n in notes)
    data, result = _out(files / "data.csv"), _out(out)
    assert list(result.columns) == [*data.columns, *LIKES_COLUMNS]
    assert result["id"].tolist() == data["id"].tolist()
    assert result.loc[0, "content"] == "'=HYPERLINK(\"http://x\")"
    likes = result["predicted_likes"].astype(int)
    assert (result["likes_low"].astype(int) <= likes).all() and (likes <= result["likes_high"].astype(int)).all()
    assert result.loc[1, "likes_source"].startswith("pooled") and result.loc[1, "brand_median_likes"] == ""
    assert (result.loc[4:, "likes_source"] == "account").all()


def test_a_rerun_resumes_and_adds_nothing_twice(files, cache, capsys):
    out = cache / "out.csv"
    args = ["likes", str(files / "data.csv"), "--history", str(files / "history.csv"), "--out", str(out)]
    assert main([*args, "--limit", "120"]) == 0
    capsys.readouterr()
    assert len(_out(out)) == 120
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "wrote 300 rows" in captured.out and "(180 predicted now, 120 already there)" in captured.out
    assert "loaded from the cache" in captured.err
    first = _out(out)
    assert first["id"].tolist() == _out(files / "data.csv")["id"].tolist()
    assert main(args) == 0
    assert "(0 predicted now, 300 already there)" in capsys.readouterr().out
    assert _out(out).equals(first)


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("history", "out", "message"), [
    ("id,date,content,username\n1,2023-01-01,hi,a\n", "o.csv", "missing column(s) likes"),
    ("id,date,likes,content,username\n1,2023-01-01,lots,hi,a\n2,2023-01-02,,yo,a\n", "o.csv", "no usable row"),
    ("", "o.csv", "the file is empty"),
    (None, "data", "is the input file"),
    (None, "hist", "is the history file"),
    (None, "foreign", "not an m2t likes output"),
    (None, "missing/o.csv", "does not exist"),
])
def test_bad_input_is_one_clear_line_before_any_fitting(files, cache, capsys, history, out, message):
    hist = _write(cache / "h.csv", history) if history is not None else str(files / "history.csv")
    targets = {"data": str(files / "data.csv"), "hist": hist,
               "foreign": _write(cache / "foreign.csv", "id,generated\n1,hello\n")}
    target = targets.get(out, str(cache / out))
    assert main(["likes", str(files / "data.csv"), "--history", hist, "--out", target]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], errors
    assert not (cache / "cache" / "likes").exists()  # nothing was fitted


def test_non_numeric_history_likes_are_skipped_and_counted(files, cache, capsys):
    history = _out(files / "history.csv")
    history.loc[:9, "likes"] = "many"
    history.to_csv(cache / "h.csv", index=False)
    assert main(["likes", str(files / "data.csv"), "--history", str(cache / "h.csv"), "--out",
                 str(cache / "o.csv")]) == 0
    err = capsys.readouterr().err
    assert "skipped 10 with likes that are not a number >= 0; learned from 1190 of 1200 rows" in err


def test_a_subprocess_run_fails_without_a_traceback(files, cache):
    proc = subprocess.run([sys.executable, "-m", "core", "likes", str(files / "data.csv"), "--history",
                           str(files / "data.csv"), "--out", str(cache / "o.csv")], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error:" in proc.stderr and "likes" in proc.stderr
