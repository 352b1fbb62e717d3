"""The WER normaliser must erase differences a listener would not count as errors, and equal the reference.

The reference is the ``whisper-normalizer`` package (pinned with the test dependencies), called live
here on transcripts full of "...", lone symbols, numbers and British spellings.
"""

from __future__ import annotations

import pytest
from whisper_normalizer.english import EnglishTextNormalizer

from core.errors import UserError
from core.eval.normalizer import (
    PLACEHOLDER_WORDS,
    SPEECH_NORMALIZERS,
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


def test_placeholders_are_dropped_as_whisper_drops_bracketed_words():
    assert normalize("Visit <hyperlink> now, <Mention>!") == "visit now"


def test_the_words_variant_keeps_placeholders_as_single_tokens():
    out = normalize("Visit <hyperlink> now, <Mention>!", "whisper-words")
    assert out.split() == ["visit", "<hyperlink>", "now", "<mention>"]


def test_other_bracketed_annotations_are_dropped():
    assert normalize("[music] hello (laughs) there") == "hello there"


@pytest.mark.parametrize("variant", SPEECH_NORMALIZERS)
def test_normalize_is_idempotent(variant):
    for text in ["Hello, World!", "It's 3.5 percent of twenty five", "see <hyperlink> now", "Wait... what?"]:
        once = normalize(text, variant)
        assert normalize(once, variant) == once


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


def test_an_unknown_variant_is_one_line():
    with pytest.raises(UserError, match="normalizer must be one of whisper, whisper-words, got 'words'"):
        normalize("hello", "words")  # type: ignore[arg-type]


def test_symbol_tokens_stay_as_whisper_keeps_them():
    # The "." left from a lone "..." and a lone currency sign are tokens for Whisper's normaliser.
    assert normalize("...") == "."
    assert normalize('I said, "..."') == "i said ."
    assert normalize("we paid 25 ¢") == "we paid 25 ¢"
    assert normalize("Wait... what?") == "wait what"


def test_the_words_variant_drops_symbol_tokens():
    assert normalize("...", "whisper-words") == ""
    assert normalize('I said, "..."', "whisper-words") == "i said"
    assert normalize("we paid 25 ¢", "whisper-words") == "we paid 25"


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


# Transcripts where a normaliser can go wrong: "...", lone symbols, numbers, British spellings,
# contractions and fillers, brackets, diacritics, odd spacing.
TRANSCRIPTS = [
    # "..." and other runs of periods
    "...",
    "Wait...",
    "Wait... what?",
    "The answer is... 42",
    "And so... on and... on",
    "I said, \"...\"",
    "wait.... no",
    "Well . . . okay",
    "x ... y",
    "Hmm... 1990s.",
    "The 1st... and the 2nd",
    "It was 9:30... or 10?",
    "So... twenty five... no, thirty",
    "…and then it rained…",
    # lone symbols
    "£",
    "€ $ ¢",
    "It fell 10 % today",
    "Costs $ and cents",
    "Just $, really",
    "Price: £ 12",
    "we paid 25 ¢",
    "So -- anyway",
    "& so on",
    "A - B / C",
    "#hashtag @someone",
    "50 %",
    "That is 20%.",
    "100% sure",
    "He scored 3 . 5",
    "* * *",
    "He said . and left",
    # numbers
    "I paid twenty five dollars.",
    "I paid $25",
    "It costs $ 5",
    "one of them",
    "one and a half",
    "two and a half million",
    "half a million people",
    "nineteen ninety nine",
    "the 1990s",
    "the nineteen nineties",
    "three point one four",
    "oh seven oh one",
    "double seven triple two",
    "twenty first of june",
    "We've analysed 1,250 samples; 3.5% were contaminated.",
    "one thousand two hundred fifty samples three point five percent",
    "seven per cent",
    "She paid £25.50 for the programme, didn't she?",
    "twenty five pounds fifty",
    "two dollars and seven cents",
    "It was 9:30 p.m.",
    "item #1",
    "version 2.0.1 is out",
    # British spellings
    "The council optimised the neighbourhood's bus routes in 2023.",
    "Our catalogues show every colour, from grey to turquoise.",
    "Mr. Smith travelled 42 kilometres on his favourite tyres.",
    "The theatre's centre stage was refurbished.",
    "I'd recognise that flavour anywhere!",
    "The organisation's labour costs rose by 7 per cent.",
    "Colour-coded catalogues were optimised for defence.",
    "Aeroplanes, aluminium and jewellery.",
    "The programme's behaviour was analysed.",
    # contractions, fillers, brackets
    "Um, the jewellery was, uh, stolen.",
    "I won't go, you can't stay, let's see",
    "kinda sorta dunno cause",
    "We're gonna wanna do it, y'all",
    "[music] hello (laughs) there",
    "see <hyperlink> now <mention>",
    "Dr. Jones and Mrs. Brown met St. John",
    "Naïve café résumé",
    "  lots   of\tspace \n here ",
    "",
]


@pytest.fixture(scope="module")
def reference() -> EnglishTextNormalizer:
    return EnglishTextNormalizer()


@pytest.mark.parametrize("text", TRANSCRIPTS)
def test_default_equals_the_reference_package_live(reference, text):
    # jiwer strips and collapses spaces before counting, so the reference's trailing spaces are no token.
    assert normalize(text) == " ".join(reference(text).split())


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
