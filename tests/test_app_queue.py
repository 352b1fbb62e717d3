"""The tweet page in the models' line (``core.model_queue``), driven through ``streamlit.testing.v1.AppTest``.

The test holds the only slot with a ticket of its own, so the page's visitor has to wait. What the page showed is
read where it shows it (``app.predict.show_place``, wrapped); the test then either closes the page the way
Streamlit does (``ScriptRunner.request_stop()``, what ``disconnect_session`` and a fast rerun call) or frees the
slot. Nothing is timed: each step waits on an ``Event`` set by the step before (``TIMEOUT_S`` only guards a hang).
"""

from __future__ import annotations

import threading

import pytest

from core import model_queue
from core.model_queue import TurnQueue
from tests.test_app_pages import SUBMIT, assert_no_exception, fill_tweet_form, new_app

TIMEOUT_S = 120  # a guard against a hang, never a measurement


class PageWatch:
    """Wraps ``app.predict.show_place``: every place text the page showed, and the page's script runner."""

    def __init__(self, monkeypatch) -> None:
        import app.predict

        self.texts: list[str] = []
        self.runner = None
        self.shown = threading.Event()
        original = app.predict.show_place

        def show_place(place, text: str) -> None:
            from streamlit.runtime.scriptrunner import get_script_run_ctx

            original(place, text)
            if self.runner is None:
                # The run's stop/rerun check is its ScriptRunner's _maybe_handle_execution_control_request.
                self.runner = get_script_run_ctx().yield_check.__self__
            self.texts.append(text)
            self.shown.set()

        monkeypatch.setattr(app.predict, "show_place", show_place)

    def then(self, action) -> threading.Thread:
        """Run ``action(self)`` in another thread once the page has shown its place (as another visitor would act)."""
        def run() -> None:
            if self.shown.wait(TIMEOUT_S):
                action(self)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


@pytest.fixture
def line(monkeypatch) -> TurnQueue:
    """A line of its own for this test, with one slot, as the server's (``model_queue.shared``) would have."""
    fresh = TurnQueue(1, clock=lambda: 0.0)  # a still clock: the estimate is exactly the recorded turns
    monkeypatch.setattr(model_queue, "_SHARED", fresh)
    return fresh


def test_a_waiting_visitor_sees_their_place_and_a_closed_page_leaves_the_line(line, monkeypatch):
    import app.predict
    from app import models

    started: list[object] = []
    monkeypatch.setattr(app.predict, "Pipeline", lambda *a, **k: started.append(a) or pytest.fail("models ran"))
    line.record(3.0)  # one earlier turn took 3 s
    serving, waiting = line.join(), line.join()  # two visitors before this one: one served, one waiting
    loads = dict(models.LOADS)
    at = fill_tweet_form(new_app())
    watch = PageWatch(monkeypatch)
    closer = watch.then(lambda w: w.runner.request_stop())  # the tab is closed while the visitor waits

    at.button(key=SUBMIT).click().run()
    closer.join(TIMEOUT_S)

    assert watch.texts and watch.texts[0] == "2 ahead of you, about 6 s"
    assert len(line) == 2 and serving.serving and waiting.ahead() == 1, "the gone visitor's place was freed"
    assert started == [] and dict(models.LOADS) == loads, "no prediction started for a page that is gone"
    assert_no_exception(at)


@pytest.mark.slow
def test_a_waiting_visitor_gets_the_turn_when_the_slot_frees_and_is_told_how_long_they_waited(line, monkeypatch):
    from app.predict import LAST_KEY

    serving = line.join()
    at = fill_tweet_form(new_app())  # no media: the LLM alone
    watch = PageWatch(monkeypatch)
    freer = watch.then(lambda w: serving.leave())  # the visitor ahead gets their tweet

    at.button(key=SUBMIT).click().run()
    freer.join(TIMEOUT_S)

    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert watch.texts[0] == "You are next, estimating the wait…"
    label = at.status[0].label
    assert label.startswith("Tweet ready in") and "s in line" in label, label
    assert any("Waited" in c.value and "1 ahead of you at first" in c.value for c in at.caption)
    assert at.session_state[LAST_KEY].prediction.tweet.strip()
    assert len(line) == 0 and line.typical() is not None, "the turn completed and was recorded for the estimate"
