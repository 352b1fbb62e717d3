"""Pages in the models' line (``app.line`` over ``core.model_queue``), driven through ``streamlit.testing.v1.AppTest``.

The test holds the only slot with a ticket of its own, so the page's visitor has to wait. What the page showed is
read where it shows it (``app.line.show_place``, wrapped); the test then either closes the page the way
Streamlit does (``ScriptRunner.request_stop()``, what ``disconnect_session`` and a fast rerun call) or frees the
slot. Nothing is timed: each step waits on an ``Event`` set by the step before (``TIMEOUT_S`` only guards a hang).
"""

from __future__ import annotations

import threading

import pytest

from core import model_queue
from core.model_queue import TurnQueue
from tests.test_app_pages import SUBMIT, assert_no_exception, fill_tweet_form, new_app, png_bytes

TIMEOUT_S = 120  # a guard against a hang, never a measurement


class PageWatch:
    """Wraps ``app.line.show_place``: every place text the page showed, and the page's script runner."""

    def __init__(self, monkeypatch) -> None:
        import app.line

        self.texts: list[str] = []
        self.runner = None
        self.shown = threading.Event()
        original = app.line.show_place

        def show_place(place, text: str) -> None:
            from streamlit.runtime.scriptrunner import get_script_run_ctx

            original(place, text)
            if self.runner is None:
                # The run's stop/rerun check is its ScriptRunner's _maybe_handle_execution_control_request.
                self.runner = get_script_run_ctx().yield_check.__self__
            self.texts.append(text)
            self.shown.set()

        monkeypatch.setattr(app.line, "show_place", show_place)

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


def test_the_captioning_page_takes_one_turn_per_file_after_the_visitor_ahead(line, monkeypatch, poster_path):
    from PIL import Image

    serving = line.join()  # a tweet visitor holds the slot
    at = new_app().switch_page("app_pages/captioning.py").run()
    at.file_uploader(key="captioning.files").set_value([
        ("poster.png", poster_path.read_bytes(), "image/png"),
        ("red.png", png_bytes(Image.new("RGB", (96, 96), "red")), "image/png"),
    ])
    at.run()
    watch = PageWatch(monkeypatch)
    freer = watch.then(lambda w: serving.leave())

    at.button(key="captioning.run").click().run()
    freer.join(TIMEOUT_S)

    assert_no_exception(at)
    assert watch.texts[0] == "You are next, estimating the wait…", "the file waited behind the tweet"
    assert [r["file"] for r in at.session_state["captioning.results"]] == ["poster.png", "red.png"]
    assert line.typical("caption") is not None and line.typical() is None, "caption turns, recorded as such"
    assert len(line) == 0


def test_a_batch_fetches_its_media_before_its_turn_and_a_page_closed_while_waiting_writes_no_row(
        line, monkeypatch, media_server):
    import app.batch
    from core.pipeline import Pipeline

    base, _ = media_server
    fetched: list[str] = []
    read = app.batch.load_media

    def load_media(source, **kwargs):  # a spy: the real reader runs
        fetched.append(str(source))
        return read(source, **kwargs)

    monkeypatch.setattr(app.batch, "load_media", load_media)
    monkeypatch.setattr(Pipeline, "predict_many", lambda *a, **k: pytest.fail("a row was predicted"))
    line.record(3.0, "batch")
    serving = line.join()
    at = new_app()
    at.file_uploader(key="batch.file").upload(
        "dump.csv", f"id,date,likes,username,media,inferred company\n1,2023-05-07 18:30,40,beantown,{base}/poster.png,"
                    "Bean Town\n".encode(), "text/csv")
    at.run()
    watch = PageWatch(monkeypatch)
    fetched_while_waiting: list[str] = []
    closer = watch.then(lambda w: (fetched_while_waiting.extend(fetched), w.runner.request_stop()))

    at.button(key="batch.run").click().run()
    closer.join(TIMEOUT_S)

    assert watch.texts[0] == "You are next, estimating the wait…", "a tweet turn ahead, and no tweet timed yet"
    assert fetched_while_waiting == [f"{base}/poster.png"], "the row's media was fetched before the turn"
    assert "batch.result" not in at.session_state
    assert len(line) == 1 and serving.serving, "the batch's place was given up"
