"""The multi-brand dump: distinct learnable voices, posters and photos, notices only in the history."""

import csv

from core.brand.voice import learn_voice
from core.devtools.brand_dump import make_brand_dump
from core.devtools.synthetic import TWEET_COLUMNS


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_dump_has_the_tweet_format_learnable_voices_photos_and_is_deterministic(tmp_path):
    paths = make_brand_dump(tmp_path / "a", n_brands=6, n_history=36, n_test=6, seed=3)
    history, test, everything = (_rows(paths[k]) for k in ("history", "test", "all"))
    assert len(history) == 36 and len(test) == 6 and len(everything) == 42
    assert list(history[0]) == list(TWEET_COLUMNS)
    assert max(r["date"] for r in history) < min(r["date"] for r in test)  # history comes first
    accounts = {r["username"] for r in history}
    assert len(accounts) == 6
    voices = {a: learn_voice([r["content"] for r in history if r["username"] == a]) for a in accounts}
    assert all(v.hashtags and v.signoffs for v in voices.values())
    assert len({v.hashtags[0] for v in voices.values()}) == 6  # each brand its own hashtag
    for row in everything:
        image = row["media"].split("'")[1]
        assert (tmp_path / "a" / image).is_file()
    assert _rows(paths["subjects"])  # some posts are photos with a known subject
    again = make_brand_dump(tmp_path / "b", n_brands=6, n_history=36, n_test=6, seed=3)
    assert again["all"].read_bytes() == paths["all"].read_bytes()
