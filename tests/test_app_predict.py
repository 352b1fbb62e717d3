"""``app.predict.StageBoard``: what the status box shows for each event the pipeline reports."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _board(events: list[tuple[str, str]]) -> None:
    import streamlit as st

    from app.predict import StageBoard

    with st.status("Predicting…", expanded=True) as status:
        board = StageBoard(status)
        for stage, event in events:
            board(stage, event)


def test_the_second_look_shows_in_the_writing_line_and_the_label():
    at = AppTest.from_function(_board, args=([("llm", "start"), ("llm", "second look")],), default_timeout=30).run()
    assert not at.exception
    assert at.status[0].label == "Writing the tweet: a second look…"
    assert any("a second look (the first draft missed a check)" in m.value for m in at.markdown)


def test_each_stage_has_one_line_and_an_unknown_event_changes_nothing():
    at = AppTest.from_function(_board, args=([("caption", "start"), ("caption", "done"), ("ocr", "skipped"),
                                              ("llm", "something new")],), default_timeout=30).run()
    lines = [m.value for m in at.markdown]
    assert len(lines) == 5, lines
    assert lines[1].startswith(":material/check_circle: Captioning (") and "nothing to do" in lines[2]
    assert lines[4] == ":material/radio_button_unchecked: Writing the tweet"
