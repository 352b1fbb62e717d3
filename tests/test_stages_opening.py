"""``core.stages.opening``: the tweet's first words from the media's text."""

from __future__ import annotations

import pytest

from core.stages.opening import MAX_WORDS, calm, facts_opening


@pytest.mark.parametrize(("ocr", "opening"), [
    ("HOME GAME\nSATURDAY 3PM", "Home game Saturday 3pm,"),  # one block over two lines, weekday kept capital
    ("NEW HOME KIT OUT NOW", "New home kit out now,"),
    ("GRAND OPENING this\nSaturday 10am free coffee for\neveryone",
     "Grand opening this Saturday 10am free coffee for everyone,"),
    ("MEGA SALE\nOffer valid until June 30", "Mega sale: Offer valid until June 30,"),  # a new block after a colon
    ("Cosy Cat Bed\nBUY ONE GET ONE FREE", "Cosy Cat Bed: Buy one get one free,"),
    ("Fresh Bagels Daily", "Fresh Bagels Daily,"),  # mixed case is the brand's own: left as it is
    ("OPEN TODAY!", "Open today!"),  # a line that ends its sentence: no comma
])
def test_the_opening_is_the_posters_text_without_shouting_left_open(ocr: str, opening: str) -> None:
    assert facts_opening(ocr) == opening


def test_no_text_or_a_stray_mark_opens_nothing() -> None:
    assert facts_opening("") == ""
    assert facts_opening("I\n.") == ""


def test_fine_print_is_cut_at_the_word_limit() -> None:
    ocr = "SUMMER SALE\n" + " ".join(f"word{i}" for i in range(40))
    assert len(facts_opening(ocr).split()) == MAX_WORDS and facts_opening(ocr).endswith(",")


def test_calm_keeps_a_line_that_does_not_shout() -> None:
    assert calm("Visit NASA today") == "Visit NASA today"
    assert calm("VISIT US ON FRIDAY", first=False) == "visit us on Friday"


def test_only_text_read_clearly_opens_a_tweet() -> None:
    from core.stages.opening import read_clearly

    assert read_clearly([("CHAI LATTE $5 OFF", 0.91), ("SATURDAY", 0.96)])
    assert read_clearly([("GRAND OPENING this", 0.59), ("Saturday 10am free coffee for", 0.85)])
    assert not read_clearly([("noitstnsmp9z b9z6d-n", 0.32), ("279X16M1", 0.6), ("9nimigtgb", 0.26)])
    assert not read_clearly([])
