"""The Predict page's predicted likes: each candidate's likes and interval beside the account's median."""

from __future__ import annotations

import pytest

from app.likes import RANK_KEY, likes_caption
from core.brand.likes import LikesPrediction
from core.devtools.likes_data import make_likes_dump
from tests.test_app_pages import SUBMIT, assert_no_exception, fill_tweet_form, new_app, texts


def test_the_caption_names_the_interval_and_the_median():
    shown = likes_caption(LikesPrediction(likes=1234, low=300, high=5000, brand_median=800.0, source="account"))
    assert "1,234 predicted likes" in shown and "80% interval 300–5,000" in shown and "median: 800" in shown
    unseen = likes_caption(LikesPrediction(likes=70, low=5, high=900, brand_median=None, source="global"))
    assert "median" not in unseen


@pytest.mark.slow
def test_a_history_with_likes_shows_predicted_likes_under_each_candidate(tmp_path, monkeypatch):
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path / "cache"))
    dump = make_likes_dump(tmp_path / "brand.csv", 600, 4, seed=51)
    account = dump.read_text().splitlines()[1].split(",")[4]
    at = new_app()
    fill_tweet_form(at, company="acme", username=account, likes=None)
    at.file_uploader(key="tweet.brand_upload").upload("brand.csv", dump.read_bytes(), "text/csv")
    at.checkbox(key=RANK_KEY).check()
    at.button(key=SUBMIT).click().run()
    assert_no_exception(at)
    result = at.session_state["tweet.last"]
    assert len(result.likes) == len(result.prediction.candidates) >= 1
    first = result.likes[0]
    assert first.source == "account" and first.low <= first.likes <= first.high
    assert f"{first.likes:,} predicted likes" in texts(at) and "the account's median" in texts(at)
