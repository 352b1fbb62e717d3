"""Examples from a brand's history with a real bm25s index: same account first, nearest text, never later."""

import pytest

from core.brand.history import read_history
from core.brand.retrieval import HistoryIndex

ROWS = [
    # id, date, likes, content, username, company
    ("1", "2023-01-01 09:00", 50, "Moon Lamp from Orbit Lab: 20% off. Ad astra. #ToTheStars", "OrbitLab", "orbit lab"),
    ("2", "2023-02-01 09:00", 5000, "The Star Map is here! Ad astra. #ToTheStars", "OrbitLab", "orbit lab"),
    ("3", "2023-03-01 09:00", 60, "Nova Rocket Kit launch, this weekend. Ad astra. #ToTheStars", "OrbitLab",
     "orbit lab"),
    ("4", "2023-04-01 09:00", 70, "Moon Lamp back in stock. Ad astra. #ToTheStars", "OrbitLab", "orbit lab"),
    ("5", "2023-01-15 09:00", 40, "Caramel Latte, 30% off this friday. Stay cozy. #NorthwindMornings",
     "NorthwindCoffee", "northwind coffee"),
    ("6", "2023-02-15 09:00", 40, "Cold Brew is back. Stay cozy. #NorthwindMornings", "NorthwindCoffee",
     "northwind coffee"),
]


@pytest.fixture
def dump(tmp_path):
    lines = ["id,date,likes,content,username,media,inferred company"]
    lines += [f'{i},{d},{lk},"{c}",{u},,{co}' for i, d, lk, c, u, co in ROWS]
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def index(dump, tmp_path):
    return HistoryIndex.from_path(dump, cache_root=tmp_path / "cache")


def test_same_account_nearest_by_media_text_first(index):
    found = index.examples(username="@orbitlab", company="Orbit Lab", media_text="MOON LAMP 20% OFF",
                           before="2023-06-01", k=2)
    assert not found.fallback and [t.id for t in found.tweets] == ["1", "4"]
    assert all(t.same_account for t in found.tweets) and found.tweets[0].score >= found.tweets[1].score > 0
    assert "4 earlier tweets" in found.note
    assert found.voice.hashtags == ["#ToTheStars"] and found.voice.signoffs == ["Ad astra."]


def test_never_itself_never_later(index):
    found = index.examples(username="orbitlab", media_text="Moon Lamp", before="2023-04-01 09:00",
                           exclude_id="1", k=5)
    ids = [t.id for t in found.tweets]
    assert "1" not in ids and "4" not in ids and set(ids) == {"2", "3"}


def test_without_media_text_the_latest_come_first_and_likes_break_ties(index):
    found = index.examples(username="orbitlab", before="2023-06-01", k=3)
    assert [t.id for t in found.tweets] == ["4", "3", "2"]  # no text, no target likes: the latest
    found = index.examples(username="orbitlab", before="2023-06-01", likes=60, k=3)
    assert [t.id for t in found.tweets] == ["4", "3", "1"]  # the "low" likes bucket before recency
    found = index.examples(username="orbitlab", before="2023-06-01", likes=4000, k=1)
    assert [t.id for t in found.tweets] == ["2"]  # the tweet in the target's likes bucket


def test_token_budget_limits_the_examples(index):
    found = index.examples(username="orbitlab", before="2023-06-01", k=5, token_budget=20)
    assert len(found.tweets) == 1
    found = index.examples(username="orbitlab", before="2023-06-01", k=5, token_budget=1000,
                           count_tokens=lambda text: len(text.split()))
    assert len(found.tweets) == 4


def test_a_brand_without_history_falls_back_and_says_so(index):
    found = index.examples(username="newbrand", company="New Brand", media_text="cold brew coffee",
                           before="2023-06-01", k=2)
    assert found.fallback and "no earlier tweet" in found.note and "northwindcoffee" in found.note
    assert found.tweets[0].id == "6" and not found.tweets[0].same_account and found.voice.markers == []
    early = index.examples(username="orbitlab", before="2022-01-01")
    assert early.fallback and not early.tweets and "no history tweet" in early.note


def test_k_zero_is_no_examples(index):
    assert index.examples(username="orbitlab", k=0).tweets == []


def test_the_index_is_cached_by_the_dump_bytes(dump, tmp_path):
    cache = tmp_path / "cache2"
    first = HistoryIndex.from_path(dump, cache_root=cache)
    second = HistoryIndex.from_path(dump, cache_root=cache)
    assert not first.cached and second.cached
    assert (cache / f"{read_history(dump).digest}-v1" / ".complete").is_file()
    query = {"username": "orbitlab", "media_text": "rocket kit", "before": "2023-06-01"}
    assert [t.id for t in first.examples(**query).tweets] == [t.id for t in second.examples(**query).tweets]
    dump.write_text(dump.read_text().replace("Cold Brew", "Iced Tea"))
    assert not HistoryIndex.from_path(dump, cache_root=cache).cached  # new bytes, new index


def test_voice_learned_before_a_date(index):
    assert index.voice("orbitlab", before="2023-06-01").hashtags == ["#ToTheStars"]
    assert index.voice("orbitlab", before="2023-01-02").markers == []  # one tweet is no habit
