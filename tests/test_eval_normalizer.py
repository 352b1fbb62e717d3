"""The WER normaliser must erase differences a listener would not count as errors."""

from __future__ import annotations

import pytest

from core.eval.normalizer import (
    PLACEHOLDER_WORDS,
    SPELLING_TABLE,
    british_to_american,
    normalize,
    normalize_tweet,
    placeholders_to_words,
    words_to_placeholders,
)


def test_case_and_punctuation_vanish():
    assert normalize("Hello, World!") == normalize("hello world") == "hello world"


@pytest.mark.parametrize("spoken", ["twenty-five", "twenty five", "Twenty Five", "25"])
def test_numbers_are_spelled_one_way(spoken):
    assert normalize(spoken) == normalize("25")


def test_number_words_inside_sentence():
    assert normalize("I paid twenty five dollars.") == normalize("I paid $25")


def test_contractions_and_british_spelling():
    assert normalize("I won't go") == normalize("I will not go")
    assert normalize("The colour of the centre") == normalize("the color of the center")


def test_whitespace_collapsed_and_stripped():
    out = normalize("  lots   of\tspace \n here ")
    assert out == "lots of space here"
    assert "  " not in out


def test_placeholders_survive_as_single_tokens():
    out = normalize("Visit <hyperlink> now, <Mention>!")
    assert out.split() == ["visit", "<hyperlink>", "now", "<mention>"]


def test_other_bracketed_annotations_are_dropped():
    assert normalize("[music] hello (laughs) there") == "hello there"


def test_normalize_is_idempotent():
    for text in ["Hello, World!", "It's 3.5 percent of twenty five", "see <hyperlink> now"]:
        once = normalize(text)
        assert normalize(once) == once


def test_normalize_tweet_keeps_punctuation_and_placeholders():
    text = "Big   SALE today!<hyperlink>  thanks < Mention >"
    assert normalize_tweet(text) == "big sale today! <hyperlink> thanks <mention>"


def test_placeholder_word_roundtrip():
    text = "go <hyperlink> with <mention>"
    mapped = placeholders_to_words(text)
    assert "<" not in mapped
    assert set(PLACEHOLDER_WORDS.values()) <= set(mapped.split())
    assert " ".join(words_to_placeholders(mapped).split()) == text


def test_non_string_rejected():
    with pytest.raises(TypeError):
        normalize(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        normalize_tweet(3)  # type: ignore[arg-type]


def test_stray_punctuation_leaves_no_token():
    assert normalize("...") == ""
    assert normalize("Wait... what?") == "wait what"


# whisper-normalizer 0.1.15's EnglishTextNormalizer (its bundled english.json, byte-identical to
# openai-whisper 20250625's) on these inputs: (input, its output).
WHISPER_NORMALIZER = [
    (
        "The council optimised the neighbourhood's bus routes in 2023.",
        "the council optimized the neighborhood is bus routes in 2023",
    ),
    (
        "Our catalogues show every colour, from grey to turquoise.",
        "our catalogs show every color from gray to turquoise",
    ),
    ("She paid £25.50 for the programme, didn't she?", "she paid £25.50 for the program did not she"),
    ("We've analysed 1,250 samples; 3.5% were contaminated.", "we have analyzed 1250 samples 3.5% were contaminated"),
    (
        "Mr. Smith travelled 42 kilometres on his favourite tyres.",
        "mister smith traveled 42 kilometers on his favorite tires",
    ),
    ("Um, the jewellery was, uh, stolen at 9:30 p.m.", "the jewelry was stolen at 9 30 p m"),
    ("Colour-coded catalogues were optimised for defence.", "color coded catalogs were optimized for defense"),
    ("she paid twenty five pounds fifty for the program did she", "she paid £25 50 for the program did she"),
]


@pytest.mark.parametrize(("text", "expected"), WHISPER_NORMALIZER)
def test_equals_the_whisper_normalizer_package(text, expected):
    assert normalize(text) == expected


def test_full_whisper_spelling_table_ships_with_its_licence():
    table = british_to_american()
    assert len(table) == 1739  # openai-whisper's normalizers/english.json
    assert table["optimised"] == "optimized" and table["neighbourhood"] == "neighborhood"
    assert table["catalogues"] == "catalogs"
    assert british_to_american() is table  # read once
    notice = (SPELLING_TABLE.parent / "LICENSE-whisper.txt").read_text(encoding="utf-8")
    assert "MIT License" in notice and "Copyright (c) 2022 OpenAI" in notice and "english.json" in notice


@pytest.mark.parametrize(
    ("british", "american"),
    [
        ("optimised", "optimized"),
        ("neighbourhood", "neighborhood"),
        ("catalogues", "catalogs"),
        ("aeroplanes", "airplanes"),
    ],
)
def test_british_spellings_are_not_word_errors(british, american):
    # With the old 44-word table these four counted as ASR errors.
    assert normalize(f"the {british} here") == normalize(f"the {american} here")
