"""Predicted likes beside generated tweets: each candidate's likes, ``--rank likes``, batch's likes columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from core.__main__ import main
from core.batch.likes import (
    LIKES_OUTPUT_COLUMNS,
    candidate_likes,
    history_likes_model,
    likes_cells,
    media_kind,
    passes_grounding,
    rank_by_likes,
    with_likes,
)
from core.brand.likes import load_or_fit
from core.devtools.likes_data import make_likes_dump
from core.errors import UserError
from core.media.decode import Media
from core.pipeline import Analysis, Prediction, PredictRequest

GOOD = "Giveaway! Win a free Moon Lamp this weekend, everyone"
BAD = "Sorry for the outage and the delay this week, everyone"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch_likes")
    return load_or_fit(make_likes_dump(folder / "h.csv", 2000, 10, seed=41), folder / "cache")


@pytest.fixture(scope="module")
def account(model) -> str:
    return model.lines.keys[0]


def _prediction(candidates: list[str], unsupported: list[list[str]]) -> Prediction:
    reports = [{"unsupported": u, "coverage": 1.0, "copy_of": ""} for u in unsupported]
    return Prediction(tweet=candidates[0], candidates=candidates, prompt="", analysis=Analysis(), groundings=reports)


def _request(account: str, media=None) -> PredictRequest:
    return PredictRequest(company="", username=account, date="2023-11-04 18:00", media=media)


def test_each_candidate_gets_predicted_likes_that_follow_its_words(model, account):
    likes = candidate_likes(model, _prediction([BAD, GOOD], [[], []]), _request(account))
    assert len(likes) == 2 and likes[1].likes > likes[0].likes
    assert all(p.source == "account" and p.low <= p.likes <= p.high for p in likes)


def test_rank_likes_puts_the_most_liked_candidate_that_passes_grounding_first(model, account):
    prediction = _prediction([BAD, GOOD], [[], []])
    ranked, likes = with_likes(model, [prediction], [_request(account)], "likes")
    assert ranked[0].tweet == GOOD and ranked[0].candidates == [GOOD, BAD]
    assert likes[0][0].likes > likes[0][1].likes
    assert ranked[0].groundings[0] is prediction.groundings[1]  # each report moves with its candidate
    kept, _ = with_likes(model, [prediction], [_request(account)], "grounding")
    assert kept[0].tweet == BAD  # the default keeps the grounding order
    # A candidate with an unsupported detail is not chosen, however many likes it would get.
    flagged = _prediction([BAD, GOOD], [[], ["Moon Lamp"]])
    assert with_likes(model, [flagged], [_request(account)], "likes")[0][0].tweet == BAD
    # When none passes, the most liked of all is chosen.
    neither = _prediction([BAD, GOOD], [["x"], ["y"]])
    assert with_likes(model, [neither], [_request(account)], "likes")[0][0].tweet == GOOD
    with pytest.raises(UserError, match="--rank must be one of"):
        with_likes(model, [prediction], [_request(account)], "loudest")


def test_rank_by_likes_ties_keep_the_grounding_order(model, account):
    prediction = _prediction([GOOD, GOOD], [[], []])
    likes = candidate_likes(model, prediction, _request(account))
    assert rank_by_likes(prediction, likes)[0] is prediction
    assert passes_grounding({"unsupported": [], "copy_of": ""})
    assert not passes_grounding({"unsupported": [], "copy_of": "an old tweet"})


def test_the_media_kind_comes_from_whatever_the_request_holds():
    assert media_kind(None) == "none"
    assert media_kind("[Video(thumbnailUrl='t', variants=[])]") == "video"
    assert media_kind(Path("poster.PNG")) == "photo"
    assert media_kind(Media(kind="image", source="x.png")) == "photo"
    assert media_kind(Media(kind="gif", source="x.gif")) == "gif"
    assert media_kind(Media(kind="audio", source="x.wav")) == "video"


def test_batch_cells_and_a_history_without_likes(model, account, tmp_path):
    likes = candidate_likes(model, _prediction([GOOD], [[]]), _request(account))
    cells = likes_cells(likes)
    assert set(cells) == set(LIKES_OUTPUT_COLUMNS) and int(cells["likes_low"]) <= int(cells["predicted_likes"])
    assert likes_cells([]) == dict.fromkeys(LIKES_OUTPUT_COLUMNS, "")
    (tmp_path / "h.csv").write_text("id,date,content,username\n1,2023-01-01,hello,acme\n")
    found, note = history_likes_model(tmp_path / "h.csv")
    assert found is None and note.startswith("predicted likes are off:") and "likes" in note


def test_rank_likes_without_a_history_with_likes_is_one_clear_line(tmp_path, capsys):
    args = ["predict", "--company", "Acme", "--username", "acme", "--date", "2023-05-01", "--rank", "likes"]
    assert main(args) == 2
    assert "error: --rank likes needs --history" in capsys.readouterr().err
    (tmp_path / "h.csv").write_text("id,date,content,username,inferred company\n1,2023-01-01,hello,acme,Acme\n")
    assert main([*args, "--history", str(tmp_path / "h.csv")]) == 2
    err = capsys.readouterr().err
    assert "error: --rank likes needs a --history dump with likes" in err and "loading" not in err


@pytest.mark.slow
def test_batch_with_history_writes_predicted_likes(pipeline, tmp_path):
    from core.batch import run_batch
    from core.brand.retrieval import HistoryIndex
    from core.devtools.synthetic import make_tweet_set
    from core.stages.llm import GenerationConfig

    train, test = make_tweet_set(tmp_path / "dump", n_train=60, n_test=2, seed=5)
    index = HistoryIndex.from_path(train, cache_root=tmp_path / "cache")
    likes_model = load_or_fit(train, tmp_path / "cache")
    out = tmp_path / "out.csv"
    run_batch(test, out, pipeline, GenerationConfig(max_new_tokens=24, batch_size=2, num_candidates=2),
              history=index, likes_model=likes_model, rank="likes")
    saved = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(saved.columns)[-3:] == list(LIKES_OUTPUT_COLUMNS)
    for _, row in saved.iterrows():
        assert row["generated"]
        assert int(row["likes_low"]) <= int(row["predicted_likes"]) <= int(row["likes_high"])


def test_the_note_shows_how_far_the_drafts_differ(model, account):
    from core.batch.likes import spread_note

    likes = candidate_likes(model, _prediction([BAD, GOOD], [[], []]), _request(account))
    note = spread_note(model, likes)
    assert note.startswith("predicted likes differ between drafts") and "draft 2 is predicted the most" in note
    assert spread_note(model, likes[:1]) == ""  # one draft: nothing to choose between


def test_a_thin_history_says_it_cannot_tell_drafts_apart_and_how_much_it_needs(tmp_path, account):
    from core.batch.likes import rows_for_words, spread_note

    thin = load_or_fit(make_likes_dump(tmp_path / "thin.csv", 40, 4, seed=3), tmp_path / "cache")
    assert not thin.choice.text  # too few rows to check whether words matter: the account's median
    likes = candidate_likes(thin, _prediction([BAD, GOOD], [[], []]), _request(thin.lines.keys[0]))
    assert likes[0].likes == likes[1].likes
    note = spread_note(thin, likes)
    assert "cannot tell these drafts apart" in note and f"about {rows_for_words()} earlier tweets" in note
    assert f"(it has {thin.rows})" in note
