"""The likes model on real generated dumps (no mocks): what it reads, what it must show, its cache, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.brand.likes import (
    COVERAGE,
    LikesModel,
    fit,
    history_from_frame,
    load_or_fit,
    media_type,
    parse_likes,
    read_likes_history,
    rows_from_frame,
)
from core.devtools.likes_data import make_likes_dump
from core.errors import UserError


def _time_split(path):
    """The earliest 80 % of a dump as history, the latest 20 % as test rows (as `--split time` does)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    dates = pd.to_datetime(frame["date"])
    cut = dates.quantile(0.8)
    return frame[dates < cut].reset_index(drop=True), frame[dates >= cut].reset_index(drop=True)


def _scores(model: LikesModel, history: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    """RMSE of log1p for the model and the account-median baseline, high/low accuracy, interval coverage."""
    rows = rows_from_frame(test)
    y = np.log1p(rows.likes)
    hist_y = np.log1p(parse_likes(history["likes"].tolist()))
    medians = pd.Series(hist_y).groupby(rows_from_frame(history).accounts).median()
    base = np.array([medians.get(a, np.median(hist_y)) for a in rows.accounts])
    pred = model.predict_log(rows)
    predictions = model.predict_rows(rows)
    low = np.array([p.low for p in predictions])
    high = np.array([p.high for p in predictions])
    return {"rmse": float(np.sqrt(np.mean((y - pred) ** 2))), "median_rmse": float(np.sqrt(np.mean((y - base) ** 2))),
            "accuracy": float(np.mean((pred > base) == (y > base))), "always_high": float(np.mean(y > base)),
            "coverage": float(np.mean((rows.likes >= low) & (rows.likes <= high)))}


@pytest.fixture(scope="module")
def signal(tmp_path_factory):
    path = make_likes_dump(tmp_path_factory.mktemp("signal") / "signal.csv", 3000, 30, seed=1)
    history, test = _time_split(path)
    return fit(history_from_frame(history, path, "signal")), history, test


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    path = make_likes_dump(tmp_path_factory.mktemp("flat") / "flat.csv", 3000, 30, signal=False, seed=2)
    history, test = _time_split(path)
    return fit(history_from_frame(history, path, "flat")), history, test


# --------------------------------------------------------------------------- what it must show


def test_on_likes_with_signal_it_beats_the_account_median_by_far(signal):
    model, history, test = signal
    s = _scores(model, history, test)
    assert model.choice.text and model.choice.base == "line", model.describe()
    assert s["rmse"] < 0.7 * s["median_rmse"], s
    assert s["accuracy"] > 0.74 and s["accuracy"] > s["always_high"] + 0.05, s
    assert abs(s["coverage"] - COVERAGE) < 0.08, s


def test_on_likes_without_signal_it_is_no_worse_than_the_account_median(flat):
    model, history, test = flat
    s = _scores(model, history, test)
    assert not model.choice.text, model.describe()  # the words, media and clock carry nothing here
    assert model.choice.base in ("median", "level"), model.describe()
    assert s["rmse"] <= 1.01 * s["median_rmse"], s
    assert abs(s["coverage"] - COVERAGE) < 0.08, s


def test_few_tweets_per_account_and_no_signal_stays_at_the_median(tmp_path):
    path = make_likes_dump(tmp_path / "thin.csv", 600, 150, signal=False, seed=4)
    history, test = _time_split(path)
    model = fit(history_from_frame(history, path, "thin"))
    s = _scores(model, history, test)
    assert not model.choice.text and model.choice.base != "line", model.describe()
    assert s["rmse"] <= 1.01 * s["median_rmse"], s


def test_a_tiny_history_is_the_median_model(tmp_path):
    path = make_likes_dump(tmp_path / "tiny.csv", 40, 3, seed=5)
    model = load_or_fit(path, tmp_path / "cache")
    assert model.choice.base == "median" and not model.choice.text
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    predictions = model.predict_rows(frame)
    medians = np.expm1(pd.Series(np.log1p(parse_likes(frame["likes"].tolist()))).groupby(
        rows_from_frame(frame).accounts).median())
    for p, account in zip(predictions, rows_from_frame(frame).accounts, strict=True):
        assert p.likes == round(medians[account]) and p.source == "account"


# --------------------------------------------------------------------------- predictions, fallbacks, cache


def test_every_prediction_is_a_count_inside_its_interval_beside_the_account_median(signal):
    model, _, test = signal
    for p in model.predict_rows(test.head(50)):
        assert isinstance(p.likes, int) and 0 <= p.low <= p.likes <= p.high
        assert p.brand_median is not None and p.source == "account"


def test_an_absent_account_falls_back_and_says_so_once(signal):
    model, _, test = signal
    rows = test.head(4).copy()
    rows.loc[0, "username"], rows.loc[0, "inferred company"] = "NobodyHere", "nobody inc"
    rows.loc[1, "username"] = "RenamedAccount"  # its company is known: that company's account stands in
    predictions = model.predict_rows(rows)
    assert [p.source for p in predictions] == ["global", "company", "account", "account"]
    assert predictions[0].brand_median is None and predictions[1].brand_median is not None
    note = model.fallback_note(rows_from_frame(rows))
    assert "nobodyhere" in note and "renamedaccount" in note and "\n" not in note
    assert model.fallback_note(rows_from_frame(test.head(4))) == ""


def test_media_trend_and_words_move_the_prediction_as_the_rules_do(signal):
    model, _, test = signal
    row = test.iloc[[0]].copy()
    account = row["username"].iloc[0]
    later = row.copy()
    later["date"] = "2024-06-01 18:00:00"
    video = row.copy()
    video["media"] = "[Video(thumbnailUrl='t.jpg', variants=[VideoVariant(contentType='video/mp4', url='v.mp4', " \
                     "bitrate=1)])]"
    none = row.copy()
    none["media"] = ""
    giveaway = row.copy()
    giveaway["content"] = "giveaway win free " + row["content"].iloc[0]
    outage = row.copy()
    outage["content"] = "sorry outage delay " + row["content"].iloc[0]
    log = {name: float(model.predict_log(rows_from_frame(frame))[0])
           for name, frame in (("video", video), ("none", none), ("giveaway", giveaway), ("outage", outage))}
    assert log["video"] - log["none"] > 0.3, account
    assert log["giveaway"] - log["outage"] > 2.0


def test_the_fit_is_cached_per_dump_and_a_damaged_cache_is_refitted(tmp_path):
    path = make_likes_dump(tmp_path / "h.csv", 800, 8, seed=6)
    cache = tmp_path / "cache"
    first = load_or_fit(path, cache)
    second = load_or_fit(path, cache)
    assert not first.cached and second.cached
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).head(30)
    assert [p.to_dict() for p in first.predict_rows(frame)] == [p.to_dict() for p in second.predict_rows(frame)]
    (folder,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    (folder / "arrays.npz").write_bytes(b"not an npz")
    third = load_or_fit(path, cache)
    assert not third.cached
    assert [p.likes for p in third.predict_rows(frame)] == [p.likes for p in first.predict_rows(frame)]
    make_likes_dump(path, 800, 8, seed=7)  # other bytes: another entry
    assert not load_or_fit(path, cache).cached


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize(("cell", "kind"), [
    ("[Photo(previewUrl='https://x/a?name=small', fullUrl='https://x/a?name=large')]", "photo"),
    ("[Video(thumbnailUrl='t.jpg', variants=[VideoVariant(contentType='video/mp4', url='v.mp4', bitrate=1)])]",
     "video"),
    ("[Gif(thumbnailUrl='t.jpg', variants=[VideoVariant(contentType='video/mp4', url='g.mp4', bitrate=0)])]", "gif"),
    ("[Photo(previewUrl='a', fullUrl='a'), Video(thumbnailUrl='t', variants=[])]", "video"),
    ("", "none"), ("nan", "none"), ("[Photo(previewUrl=", "none"), ("clips/a.MP4", "video"), ("x.gif", "gif"),
    ("https://host/p.jpg?x=1", "photo"), ("[Poll(options=['a'])]", "none"),
])
def test_the_media_type_is_read_from_the_field_without_fetching(cell, kind):
    assert media_type(cell) == kind


ODD_FIELDS = [
    "[Photo(previewUrl='', fullUrl='')]", "[Photo(previewUrl='  ', fullUrl=' ')]",
    "[Photo(previewUrl=\"a\\\"b\", fullUrl='x')]", "[Photo(previewUrl='a\\nb', fullUrl='c')]",
    "[Video(thumbnailUrl='t', variants=[VideoVariant(contentType='video/mp4', url='u', bitrate='fast')])]",
    "[Video(thumbnailUrl='t', variants=[VideoVariant(contentType='video/mp4', url='u', bitrate=1e5)])]",
    "[Video(thumbnailUrl='', variants=[])]", "[Photo(previewUrl=u'x', fullUrl=b'y')]",
    "[Photo(previewUrl='x' 'y', fullUrl='z')]", "[Photo(previewUrl=f'x', fullUrl='')]",
    "[Photo(previewUrl='a', fullUrl=123)]", "[Photo(previewUrl='''x''', fullUrl='y')]",
    "[Photo(previewUrl='https://x/y?a=1,Video(b=2)', fullUrl='z')]", "[Photo(previewUrl=-1, fullUrl='a')]",
    "[Photo(previewUrl='a' fullUrl='b')]", "[Photo(previewUrl='a', fullUrl='b')] trailing",
    "[Poll(options=['a', 'b']), Photo(previewUrl='1', fullUrl='2')]", "[" * 20 + "]" * 20,
    "[Photo(previewUrl=datetime.datetime(2023, 1, 1), fullUrl='x')]", "[Photo(previewUrl=0x10, fullUrl='a')]",
]


def test_the_fast_media_reading_agrees_with_the_parser_on_every_field(tmp_path):
    """media_type parses one skeleton per shape of field (URLs and numbers blanked): the same answer as parsing
    each whole field, on generated fields and on odd ones."""
    from core.media.dump_field import parse_media_field

    def by_parser(text: str) -> str:
        kinds = {item.kind for item in parse_media_field(text)}
        return next((k for k in ("video", "gif", "photo") if k in kinds), "none")

    dump = pd.read_csv(make_likes_dump(tmp_path / "d.csv", 400, 5, seed=8), dtype=str, keep_default_na=False)
    fields = [f for f in dump["media"] if f] + ODD_FIELDS
    assert [media_type(f) for f in fields] == [by_parser(f) for f in fields]


def test_likes_parse_with_thousands_commas_and_refuse_the_rest():
    parsed = parse_likes(["1,234", "7", " 12 ", "abc", "", "-3", "inf", "2.5"])
    assert parsed[:3].tolist() == [1234, 7, 12] and parsed[-1] == 2.5
    assert np.isnan(parsed[3:7]).all()


def _write(path, rows: list[dict]) -> str:
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def _row(i: int, likes: object = 10, date: str = "2023-01-01 10:00:00", **extra) -> dict:
    return {"id": i, "date": date, "likes": likes, "content": f"post {i}", "username": "acme", "media": "",
            "inferred company": "acme", **extra}


def test_a_history_without_likes_is_one_clear_error(tmp_path):
    path = tmp_path / "h.csv"
    pd.DataFrame([{k: v for k, v in _row(1).items() if k != "likes"}]).to_csv(path, index=False)
    with pytest.raises(UserError, match="missing column.*likes") as info:
        read_likes_history(path)
    assert "\n" not in str(info.value)


def test_a_history_without_a_usable_row_is_one_clear_error(tmp_path):
    path = _write(tmp_path / "h.csv", [_row(1, "many"), _row(2, ""), _row(3, "-1"), _row(4, 5, date="someday")])
    with pytest.raises(UserError, match="no usable row: 3 of 4 rows have likes that are not a number >= 0, 1 more"):
        read_likes_history(path)
    with pytest.raises(UserError, match="no `date` column"):
        history_from_frame(pd.DataFrame({"likes": ["1"], "username": ["a"]}), tmp_path / "x.csv", "x")
    with pytest.raises(UserError, match="no username or inferred company"):
        history_from_frame(pd.DataFrame({"likes": ["1"], "date": ["2023-01-01"]}), tmp_path / "x.csv", "x")


def test_unusable_likes_and_dates_are_skipped_and_counted(tmp_path):
    rows = [_row(i, 10 + i) for i in range(20)] + [_row(90, "n/a"), _row(91, "lots"), _row(92, 5, date="never")]
    history = read_likes_history(_write(tmp_path / "h.csv", rows))
    assert len(history.rows) == 20 and history.bad_likes == 2 and history.bad_dates == 1
    assert "skipped 2 with likes that are not a number >= 0 and 1 with a blank or unreadable date; learned from " \
           "20 of 23 rows" in history.note()
    model = load_or_fit(history, tmp_path / "cache")
    assert model.note == history.note()
