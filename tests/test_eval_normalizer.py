"""The WER normaliser must erase differences a listener would not count as errors."""

from __future__ import annotations

import pytest

from core.eval.normalizer import (
    PLACEHOLDER_WORDS,
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
