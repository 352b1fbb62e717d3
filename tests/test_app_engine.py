"""The sidebar's LLM backend choice reaches the spec, and the model cache tells engines apart."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from app import models
from app.settings import SETTINGS_KEY, Settings


def _sidebar() -> None:
    from app.settings import render_sidebar

    render_sidebar()


def test_the_sidebar_chooses_the_engine_and_the_server(monkeypatch):
    for name in ("M2T_LLM_BACKEND", "M2T_LLM_URL", "M2T_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_function(_sidebar, default_timeout=30).run()
    assert at.session_state[SETTINGS_KEY].spec("llm").engine == "ctranslate2"
    assert not [w for w in at.sidebar.text_input if w.key == "cfg.llm_url"], "no URL field unless a server is used"
    at.sidebar.selectbox(key="cfg.engine").set_value("transformers").run()
    assert at.session_state[SETTINGS_KEY].spec("llm").engine == "transformers"
    at.sidebar.selectbox(key="cfg.engine").set_value("openai").run()
    at.sidebar.text_input(key="cfg.llm_url").set_value("http://127.0.0.1:8080/v1").run()
    spec = at.session_state[SETTINGS_KEY].spec("llm")
    assert (spec.engine, spec.url) == ("openai", "http://127.0.0.1:8080/v1")
    assert not at.exception


def test_cache_keys_differ_per_engine_and_server(monkeypatch):
    for name in ("M2T_LLM_BACKEND", "M2T_LLM_URL"):
        monkeypatch.delenv(name, raising=False)
    keys = {models.spec_key(Settings(engine=e, llm_url=u).spec("llm"))
            for e, u in (("", ""), ("transformers", ""), ("openai", "http://a:1/v1"), ("openai", "http://b:1/v1"))}
    assert len(keys) == 4
    assert models.spec_key(Settings().spec("llm")) == models.spec_key(Settings(engine="ctranslate2").spec("llm"))
