"""``batch``/``predict``/``evaluate`` with ``--history``: bad dumps fail in a second; a real run uses the brand."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.batch import run_batch
from core.brand.retrieval import HistoryIndex
from core.devtools.synthetic import make_tweet_set
from core.stages.llm import GenerationConfig

ROOT = Path(__file__).resolve().parents[1]
HEADER = "id,date,likes,content,username,media,inferred company\n"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hist")
    (d / "data.csv").write_text(HEADER + "1,2023-05-01 10:00,5,hello,acme,,Acme\n")
    (d / "nocontent.csv").write_text("id,date,username\n1,2023-01-01,acme\n")
    (d / "empty.csv").write_text("")
    (d / "baddates.csv").write_text(HEADER + "1,2023-01-01,1,hi,acme,,Acme\n2,the other day,1,yo,acme,,Acme\n")
    return d


@pytest.mark.parametrize(("command", "name", "message"), [
    ("batch", "nocontent.csv", "missing column(s) content"),
    ("batch", "empty.csv", "the file is empty"),
    ("batch", "baddates.csv", "dates are blank or unreadable"),
    ("predict", "baddates.csv", "dates are blank or unreadable"),
    ("evaluate", "nocontent.csv", "missing column(s) content"),
])
def test_a_bad_history_is_one_line_before_any_model_loads(files, name, message, command):
    args = {"batch": ("batch", str(files / "data.csv"), "--out", str(files / "out.csv")),
            "predict": ("predict", "--company", "Acme", "--username", "acme", "--date", "2023-05-01"),
            "evaluate": ("evaluate", "--task", "llm", "--data", str(files / "data.csv"), "--db",
                         str(files / "runs.sqlite"))}[command]
    proc = run_cli(*args, "--history", str(files / name))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "loading" not in proc.stderr  # no model was loaded
    assert not (files / "out.csv").exists()


def test_a_bad_split_is_one_line(files):
    proc = run_cli("evaluate", "--task", "llm", "--data", str(files / "baddates.csv"), "--split", "time",
                   "--db", str(files / "runs.sqlite"))
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "row 2" in errors[0], proc.stderr


@pytest.mark.slow
def test_batch_with_history_writes_examples_and_grounding(pipeline, tmp_path):
    train, test = make_tweet_set(tmp_path / "dump", n_train=60, n_test=3, seed=4)
    index = HistoryIndex.from_path(train, cache_root=tmp_path / "cache")
    out = tmp_path / "out.csv"
    result = run_batch(test, out, pipeline, GenerationConfig(max_new_tokens=32, batch_size=3), history=index)
    assert list(result.columns)[-7:] == ["unsupported", "coverage", "thin", "examples", "history_note", "near_copy",
                                         "kit_added"]
    saved = pd.read_csv(out, dtype=str, keep_default_na=False)
    history = pd.read_csv(train, dtype=str, keep_default_na=False).set_index("id")
    for _, row in saved.iterrows():
        assert row["generated"] and 0 <= float(row["coverage"]) <= 1
        used = row["examples"].split(" | ")
        assert 1 <= len(used) <= 3
        for example in used:  # the account's own earlier tweets (others' when it has none), never a later one
            assert (history.loc[example, "username"] == row["username"]) == (not row["history_note"])
            assert pd.Timestamp(history.loc[example, "date"]) < pd.Timestamp(row["date"])
    assert not saved["history_note"].all(), "with 60 history rows of 7 brands most rows have their own"
