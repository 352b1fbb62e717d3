"""``app.models``: pages read the process-wide cache the start-up preload fills, and say what is still loading."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from app import models
from core import model_cache, preload
from core.pipeline import load_model
from core.registry import resolve
from tests.conftest import POSTER_TEXT

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
SUBMIT = "FormSubmitter:tweet.form-Predict tweet"


@pytest.fixture
def no_preload_yet(monkeypatch):
    monkeypatch.setattr(preload, "_CURRENT", None)


def new_app(timeout: float = 300):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    at.session_state["cfg.max_new_tokens"] = 24
    return at.run()


def infos(at) -> list[str]:
    return [str(i.value) for i in at.info]


def test_a_visitor_who_arrives_during_the_preload_is_told_what_is_still_loading(no_preload_yet) -> None:
    running = preload.Preload(specs=preload.default_specs())  # started, nothing loaded yet
    preload._CURRENT = running
    at = new_app()
    assert not at.exception, [e.value for e in at.exception]
    notice = next(text for text in infos(at) if "still loading" in text)
    assert "tweet writer (LLM) (gemma-3-270m)" in notice and "OCR (easyocr-en)" in notice
    running.seconds.update(caption=0.1, ocr=1.0, llm=2.0)
    running.warming = True  # only where a model is slower on its first call (preload.needs_warm_up)
    at.run()
    assert any("warm-up prediction" in text and "(then speech" in text for text in infos(at))
    running.done.set()
    at.run()
    assert not any("server started" in text for text in infos(at)), "no notice once the models are ready"


@pytest.mark.slow
def test_the_waiting_line_names_the_model_a_preload_is_loading() -> None:
    spec = replace(resolve("caption", device="cpu"), dtype="float32 app test")
    gate = threading.Event()
    loader = threading.Thread(target=model_cache.get, args=(spec,),
                              kwargs={"by": "preload", "loader": lambda s: (gate.wait(120), load_model(s))[1]})
    loader.start()
    while model_cache.slot(spec) is None:
        loader.join(timeout=0.01)
    heard: list[str] = []
    waiter = threading.Thread(target=models.get_model, args=(spec, heard.append))
    waiter.start()
    waiter.join(timeout=0.5)
    gate.set()
    loader.join(timeout=300)
    waiter.join(timeout=300)
    assert heard[0].startswith("Waiting for the caption model **efficientnet-lite0**: loading since the server")
    assert "ready after" in heard[1]
    assert model_cache.LOADS[model_cache.key(spec)] == 1


@pytest.mark.slow
def test_the_tweet_page_uses_the_models_the_preload_loaded(no_preload_yet, poster_path) -> None:
    specs = preload.default_specs()
    started = preload.start(specs, log=lambda line: None)
    assert started.done.wait(timeout=900)
    assert not started.errors
    assert (started.warm_s is not None) is preload.needs_warm_up(
        {task: model_cache.get(spec) for task, spec in specs.items() if task != "asr"})
    preloaded = {task: model_cache.get(spec) for task, spec in specs.items()}
    loads = dict(models.LOADS)
    assert all(loads[model_cache.key(spec)] == 1 for spec in specs.values()), "each model loaded once"

    at = new_app()
    assert not any("server started" in text for text in infos(at))
    at.text_input(key="tweet.company").input("Acme Shoes")
    at.text_input(key="tweet.username").input("acmeshoes")
    at.file_uploader(key="tweet.upload").upload("poster.png", poster_path.read_bytes(), "image/png")
    at.button(key=SUBMIT).click().run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.status[0].label.startswith("Tweet ready")
    assert POSTER_TEXT.split()[0] in at.session_state["tweet.last"].prediction.analysis.ocr
    assert dict(models.LOADS) == loads, "the page loaded no model of its own"
    assert all(model_cache.get(spec) is preloaded[task] for task, spec in specs.items()), "the same objects"


@pytest.mark.slow
def test_a_page_asking_for_a_model_tells_the_preload_a_visitor_is_here(no_preload_yet) -> None:
    running = preload.Preload(specs={})
    preload._CURRENT = running
    assert not running.visitor.is_set()
    models.get_model(replace(resolve("caption", device="cpu"), dtype="float32 app test"))
    assert running.visitor.is_set(), "a warm-up not yet started is skipped"


def _place_of_the_title(at) -> int:
    """Where the page's title sits among the main area's top-level elements."""
    for index, child in at.main.children.items():
        if any(getattr(node, "value", None) == "Tweet prediction" for node in _walk(child)):
            return index
    raise AssertionError("no title on the page")


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def test_the_page_keeps_its_places_when_the_preload_notice_goes(no_preload_yet) -> None:
    """An early visitor's half-filled form survives the models becoming ready: no element below the notice moves
    (a moved form is drawn anew, and its unsubmitted fields and upload with it)."""
    running = preload.Preload(specs=preload.default_specs())
    preload._CURRENT = running
    at = new_app()
    assert any("still loading" in text for text in infos(at))
    during = _place_of_the_title(at)
    running.done.set()
    at.run()
    assert not any("still loading" in text for text in infos(at))
    assert _place_of_the_title(at) == during
