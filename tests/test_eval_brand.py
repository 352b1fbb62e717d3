"""The evaluation protocol's extra figures with the real scorers: floors, raw placeholders, voice, grounding."""

from pathlib import Path

import pytest

from core.errors import UserError
from core.eval.brand import FLOOR_METRICS, floor_metrics, grounding_metrics, prepare
from core.eval.datasets import load_dataset

REFS = [f"Moon Lamp number {i} is {10 + i}% off this friday. Ad astra. #ToTheStars <hyperlink>" for i in range(12)]


def test_floors_sit_below_matching_predictions_and_raw_variants_exist():
    metrics = floor_metrics(list(REFS), list(REFS))
    assert {f"{p}{k}" for p in ("raw_", "floor_", "floor_raw_") for k in FLOOR_METRICS} == set(metrics)
    assert metrics["floor_rougeL"] < metrics["raw_rougeL"]
    assert metrics["floor_cider"] < metrics["raw_cider"]
    assert floor_metrics(REFS[:1], REFS[:1]) == {}  # one row has no other row's reference to swap in


def test_grounding_voice_and_fallback_shares():
    groundings = [{"unsupported": ["1969"], "coverage": 1.0, "salient": ["moon"]},
                  {"unsupported": [], "coverage": 0.0, "salient": ["moon", "lamp"]},
                  {"unsupported": [], "coverage": 1.0, "salient": []}]
    predictions = ["Moon lamp! #ToTheStars", "New things", "ad astra."]
    references = ["x #ToTheStars", "y", "z"]
    voices = [["#ToTheStars", "Ad astra."], ["#ToTheStars"], []]
    out = grounding_metrics(groundings, predictions, references, voices, [False, False, True])
    assert out["unsupported_per_tweet"] == pytest.approx(1 / 3) and out["unsupported_share"] == pytest.approx(1 / 3)
    assert out["fact_use_share"] == 0.5  # of the two rows whose inputs had salient words
    assert out["voice_share"] == 0.5 and out["ref_voice_share"] == 0.5  # rows whose brand has markers
    assert out["fallback_share"] == pytest.approx(1 / 3)


def _dump(tmp_path: Path) -> Path:
    lines = ["id,date,likes,content,username,media,inferred company"]
    lines += [f"{i},2023-01-{i + 1:02d} 10:00,5,tweet {i} #Acme,acme{i % 3},,Acme {i % 3}" for i in range(15)]
    path = tmp_path / "dump.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_time_split_scores_the_latest_rows_with_the_rest_as_history(tmp_path):
    path = _dump(tmp_path)
    data, brand = prepare(load_dataset("llm", path), split="time", k=2)
    assert [item.key for item in data.items] == ["12", "13", "14"]
    assert len(brand.index.history) == 12 and brand.k == 2 and "time >= 2023-01-13" in brand.describe()
    data, _ = prepare(load_dataset("llm", path), split="time", limit=2)
    assert len(data.items) == 2 and data.limited


def test_brand_split_and_bad_combinations(tmp_path):
    path = _dump(tmp_path)
    data, brand = prepare(load_dataset("llm", path), split="brand", seed=0)
    held = {item.row["username"] for item in data.items}
    assert len(held) == 1 and not held & set(brand.index.history.usernames)
    with pytest.raises(UserError, match="drop --history"):
        prepare(load_dataset("llm", path), split="time", history=path)
    with pytest.raises(UserError, match="--cutoff needs --split time"):
        prepare(load_dataset("llm", path), cutoff="2023-01-05")
    with pytest.raises(UserError, match="0 or more"):
        prepare(load_dataset("llm", path), split="time", k=-1)


def test_quality_metrics_count_thin_copies_voice_per_kind_subjects_and_numbers():
    from core.brand.voice import BrandVoice
    from core.eval.brand import quality_metrics, row_quality

    voice = BrandVoice(hashtags=["#ShelfLife"], signoffs=["Happy reading!"], emojis=["📚"])
    history = ["The online shop is paused for stocktake until Monday. Happy reading! #ShelfLife"]
    poster = "AUTHOR TALK THURSDAY 6PM"
    rows = [
        # A sentence around the poster, with the hashtag and sign-off: 2 of 3 marker kinds.
        row_quality("Join us Thursday at 6pm for an author talk with tea. Happy reading! #ShelfLife", "ref", poster,
                    [], history, voice, {}),
        # The poster's words and the hashtag: thin; one kind of three.
        row_quality("AUTHOR TALK THURSDAY 6PM #ShelfLife", "ref", poster, [], history, voice, {}),
        # An old notice re-posted: a near copy.
        row_quality("The online shop is paused for stocktake until monday 📚", "ref", "", [], history, voice, {}),
        # The classifier's weak guess as the subject, with an invented price.
        row_quality("Our bobsled team is ready, tickets only $12 today", "Say hello to an astronaut on a spacewalk",
                    "", ["bobsled", "football helmet"], history, voice,
                    {"details": [{"kind": "price", "text": "$12", "supported": False}]}),
    ]
    out = quality_metrics(rows)
    assert out["thin_share"] == 0.25 and out["near_copy_share"] == 0.25
    assert out["subject_error_share"] == 0.25 and out["invented_number_share"] == 0.25
    assert out["voice_hashtags_share"] == 0.5 and out["voice_signoffs_share"] == 0.25
    assert out["voice_emojis_share"] == 0.25 and out["voice_marker_share"] == pytest.approx(4 / 12)
    assert quality_metrics([]) == {}


def test_photo_rows_count_tweets_and_captions_that_name_their_subject(tmp_path: Path):
    from core.eval.brand import read_subjects, subject_metrics
    from core.eval.datasets import Item

    (tmp_path / "subjects.csv").write_text("id,subject\n1,cat kitten tabby\n2,motorcycle motorbike bike\n")
    subjects = read_subjects(tmp_path / "test.csv")
    assert subjects == {"1": ["cat", "kitten", "tabby"], "2": ["motorcycle", "motorbike", "bike"]}
    items = [Item(i, str(i), "", "", {"id": str(i)}) for i in (1, 2, 3)]  # row 3 is a poster: not counted
    tweets = ["Our shop cats are back!", "Ride out with us this weekend", "Sale now on"]
    details = [{"caption": "a photo of a cat"}, {"caption": "a photo"}, {"caption": "a photo of a web site"}]
    assert subject_metrics(items, tweets, details, subjects) == {"photo_subject_share": 0.5,
                                                                 "caption_subject_share": 0.5}
    assert subject_metrics(items, tweets, details, {}) == {}
    assert read_subjects(tmp_path / "elsewhere" / "test.csv") == {}
