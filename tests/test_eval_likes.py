"""``m2t evaluate --task likes`` on real generated dumps: both splits, both baselines, the store, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.__main__ import main
from core.devtools.likes_data import make_likes_dump
from core.errors import UserError
from core.eval.likes import evaluate_likes, references, scores
from core.eval.store import ResultsStore


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval_likes")
    return {"signal": make_likes_dump(folder / "signal.csv", 3000, 30, seed=21),
            "flat": make_likes_dump(folder / "flat.csv", 3000, 30, signal=False, seed=22),
            "folder": folder}


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("M2T_RESULTS_DB", str(tmp_path / "results.sqlite"))
    return tmp_path


def test_time_split_with_signal_beats_both_baselines_with_intervals(dumps, env):
    ev = evaluate_likes(dumps["signal"], split="time", bootstrap=300)
    m, ci = ev.run.metrics, ev.run.ci
    assert ev.run.task == "likes" and ev.run.n == 600 and m["history_rows"] == 2400
    assert m["rmse_log1p"] < 0.7 * m["median_rmse_log1p"]
    assert ci["rmse_gain"][0] > 0.2  # the gain's whole interval is well above zero
    assert m["high_low_acc"] > 0.74 and ci["high_low_acc"][0] > m["always_high_acc"]
    assert m["median_high_low_acc"] + m["always_high_acc"] == pytest.approx(1.0)
    assert 0.72 < m["coverage"] < 0.88 and ci["coverage"][0] < m["coverage"] < ci["coverage"][1]
    assert m["unseen_share"] == 0.0
    stored = ResultsStore(env / "results.sqlite").runs("likes")
    assert [r.id for r in stored] == [ev.run.id] and stored[0].ci["rmse_log1p"] == ci["rmse_log1p"]
    samples = ResultsStore(env / "results.sqlite").samples(ev.run.id)
    assert len(samples) == 600 and "[" in samples[0].prediction and samples[0].reference.isdigit()
    assert '"media_type"' in samples[0].input


def test_time_split_without_signal_is_no_worse_than_the_median(dumps, env):
    ev = evaluate_likes(dumps["flat"], split="time", bootstrap=200)
    m = ev.run.metrics
    assert m["rmse_log1p"] <= 1.01 * m["median_rmse_log1p"]
    assert ev.run.ci["rmse_gain"][0] < 0 < ev.run.ci["rmse_gain"][1] + 1e-9  # no gain either way beyond chance
    assert "words" not in ev.run.model


def test_brand_split_predicts_unseen_accounts_from_the_pooled_model(dumps, env):
    ev = evaluate_likes(dumps["signal"], split="brand", bootstrap=100)
    m = ev.run.metrics
    assert m["unseen_share"] == 1.0
    assert m["rmse_log1p"] < m["median_rmse_log1p"]
    assert m["high_low_acc"] > 0.6  # within each account: words, media and clock still rank its tweets
    assert "absent from the history" in ev.fallback_note
    assert any("absent from the history" in w for w in ev.run.warnings)


def test_a_separate_history_alone_and_joined_to_a_split(dumps, env):
    frame = pd.read_csv(dumps["signal"], dtype=str, keep_default_na=False)
    order = pd.to_datetime(frame["date"]).argsort()
    history, data = dumps["folder"] / "h.csv", dumps["folder"] / "d.csv"
    frame.iloc[order[:2000]].to_csv(history, index=False)
    frame.iloc[order[2000:]].to_csv(data, index=False)
    alone = evaluate_likes(data, history=history, bootstrap=0)
    assert alone.run.n == 1000 and alone.run.metrics["history_rows"] == 2000 and alone.run.ci == {}
    assert alone.protocol == f"history {history}"
    joined = evaluate_likes(data, history=history, split="time", bootstrap=0)
    # The split's history side (800 earlier rows of d.csv) plus all 2,000 of h.csv, which are all earlier.
    assert joined.run.n == 200 and joined.run.metrics["history_rows"] == 2800
    assert "2000 of 2000 rows: before the test period" in joined.protocol


def test_unusable_test_likes_are_skipped_and_counted(dumps, env, tmp_path):
    frame = pd.read_csv(dumps["signal"], dtype=str, keep_default_na=False)
    latest = pd.to_datetime(frame["date"]).sort_values().index[-5:]  # test rows of the time split
    frame.loc[latest, "likes"] = "n/a"
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    ev = evaluate_likes(data, split="time", bootstrap=0)
    assert ev.skipped == 5 and ev.run.n == 595


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "needs --history"),
    ({"split": "time", "cutoff": None, "history": "{folder}/missing.csv"}, "no such file"),
    ({"split": "brand", "cutoff": "2023-01-01"}, "--cutoff needs --split time"),
    ({"split": "random"}, "--split must be one of"),
])
def test_bad_protocols_are_one_clear_error(dumps, env, kwargs, message):
    kwargs = {k: v.format(folder=dumps["folder"]) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises(UserError, match=message):
        evaluate_likes(dumps["signal"], **kwargs)


def test_data_without_likes_or_without_usable_likes_is_one_clear_error(env, tmp_path):
    rows = [{"id": i, "date": f"2023-01-{i + 1:02d}", "content": "x", "username": "a", "inferred company": "a"}
            for i in range(10)]
    pd.DataFrame(rows).to_csv(tmp_path / "nolikes.csv", index=False)
    with pytest.raises(UserError, match="no `likes` column"):
        evaluate_likes(tmp_path / "nolikes.csv", split="time")
    pd.DataFrame([{**r, "likes": "many"} for r in rows]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(UserError, match="no usable row"):  # the history side has none either
        evaluate_likes(tmp_path / "bad.csv", split="time")


def test_scores_of_a_perfect_prediction_and_the_within_account_reference():
    y = np.log1p(np.array([10.0, 100.0, 1000.0, 50.0]))
    base = np.log1p(np.array([60.0] * 4))
    m, ci = scores(y, y, y - 0.1, y + 0.1, base, bootstrap=50)
    assert m["rmse_log1p"] == 0 and m["high_low_acc"] == 1 and m["coverage"] == 1
    assert m["always_high_acc"] == 0.5 and m["median_high_low_acc"] == 0.5 and set(ci) == set(m)
    from core.brand.likes import LikesRows

    rows = LikesRows(["a"] * 4, np.array(["x", "x", "y", "y"], dtype=object), np.array([""] * 4, dtype=object),
                     np.zeros(4), np.zeros(4, np.int8), np.expm1(y))
    ref_y, ref_pred = references(rows, y, y + 5, base, np.array([0, 0, -1, -1]))
    assert ref_y[:2].tolist() == base[:2].tolist() and ref_y[2] == ref_y[3] == np.median(y[2:])
    assert ref_pred[2] == np.median(y[2:] + 5)


def test_the_cli_prints_the_table_and_refuses_flags_that_do_not_apply(dumps, env, capsys):
    assert main(["evaluate", "--task", "likes", "--data", str(dumps["signal"]), "--split", "time",
                 "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "baseline: brand median" in out and "high/low accuracy" in out and "coverage (aim 80%)" in out
    assert main(["evaluate", "--task", "likes", "--data", str(dumps["signal"]), "--split", "time",
                 "--model", "gemma-3-270m"]) == 2
    assert "error: --model does not apply to --task likes" in capsys.readouterr().err
    assert main(["evaluate", "--task", "likes", "--data", str(dumps["signal"]), "--split", "time", "--json",
                 "--bootstrap", "0"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["run"]["task"] == "likes"
