"""Load each model once per server process, whatever page, session or start-up preload asks for it.

The cache itself is :mod:`core.model_cache`, not ``st.cache_resource``: ``m2t serve`` starts loading the
default models when the server starts (:mod:`core.preload`, from the start-up hook in
``streamlit_server.py``), before any visitor's script run exists, and ``st.cache_resource`` can only be
filled from inside one. The pages read through the same cache, so the model the preload loaded is the
object a page gets, and a page that asks for a model still loading waits for that load (and says so)
instead of loading a second copy. The cache's key holds every field that changes which weights end up
where (model, backend, adapter, device, dtype, 4-bit, and for the LLM its engine, server URL and served
model name). ``LOADS`` counts real loads (cache misses) so tests can check that pages reuse the models.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from core import model_cache, preload
from core.registry import ModelSpec

SpecKey = model_cache.Key
TASK_NAMES = {"caption": "caption", "ocr": "OCR", "asr": "speech recognition", "llm": "tweet writer (LLM)"}
PRELOAD_POLL_S = 1.0  # how often the "still loading" notice refreshes

LOADS = model_cache.LOADS  # real loads per spec, for tests and the sidebar
spec_key = model_cache.key


def is_loaded(spec: ModelSpec) -> bool:
    return model_cache.is_loaded(spec)


def _waiting_line(spec: ModelSpec) -> str:
    """What a visitor reads while ``spec`` loads: a wait for a load in progress, or a first load."""
    name = TASK_NAMES.get(spec.task, spec.task)
    slot = model_cache.slot(spec)
    if slot is not None and not slot.done.is_set():
        since = "since the server started" if slot.by == "preload" else "for another visitor"
        return (f"Waiting for the {name} model **{spec.model}**: loading {since} "
                f"({time.monotonic() - slot.started:.0f} s ago)…")
    return f"Loading the {name} model **{spec.model}** (first use only)…"


def get_model(spec: ModelSpec, notify: Callable[[str], None] | None = None) -> object:
    """The model for ``spec``; when it is not loaded yet, ``notify`` hears which one is loading and when it is in."""
    running = preload.current()
    if running is not None:
        running.visitor.set()
    if model_cache.is_loaded(spec):
        return model_cache.get(spec)
    start = time.perf_counter()
    if notify is not None:
        notify(_waiting_line(spec))
    model = model_cache.get(spec, by="request")
    if notify is not None:
        notify(f"**{spec.model}** ready after {time.perf_counter() - start:.1f} s")
    return model


def make_loader(notify: Callable[[str], None] | None = None) -> Callable[[ModelSpec], object]:
    """A ``Pipeline(loader=…)`` that goes through the process-wide cache."""
    return lambda spec: get_model(spec, notify)


def load_with_status(spec: ModelSpec) -> object:
    """``get_model`` that shows an ``st.status`` while a model loads (or is awaited) for the first time."""
    if is_loaded(spec):
        return get_model(spec)
    name = TASK_NAMES.get(spec.task, spec.task)
    status = st.status(_waiting_line(spec).replace("**", ""), expanded=False)
    try:
        with status:
            start = time.perf_counter()
            model = get_model(spec)
    except BaseException:
        status.update(label=f"Could not load the {name} model {spec.model}", state="error")
        raise
    status.update(label=f"The {name} model {spec.model} is ready ({time.perf_counter() - start:.1f} s)",
                  state="complete")
    return model


def loaded_models() -> list[SpecKey]:
    return model_cache.loaded()


def free_models() -> None:
    """Drop every cached model (their memory is freed once no page holds them)."""
    model_cache.clear()


def preload_notice() -> None:
    """While the server's start-up preload runs, say so at the top of the page, refreshed every second;
    once it is done, one full rerun removes the notice (and its timer) for good.

    The notice lives in a container that is drawn on every run, empty or not: were it simply left out, every
    element below would move up one place when the models became ready, and Streamlit would draw the form anew,
    dropping what an early visitor had typed or uploaded but not yet submitted."""
    slot = st.container()
    running = preload.current()
    if running is not None and running.running:
        with slot:
            _preload_status()


@st.fragment(run_every=PRELOAD_POLL_S)
def _preload_status() -> None:
    running = preload.current()
    if running is None or not running.running:
        st.rerun()
    pending = running.pending()
    if running.warming:
        what = "loaded; running one warm-up prediction so yours starts at full speed"
        if pending:
            what += f" (then {', '.join(TASK_NAMES.get(s.task, s.task) for s in pending)})"
    elif pending:
        names = ", ".join(f"{TASK_NAMES.get(s.task, s.task)} ({s.model})" for s in pending)
        what = f"still loading: {names}"
    else:
        what = "loaded"
    st.info(f"The server started {running.elapsed():.0f} s ago and its models are {what}. A prediction you start "
            "now waits for them and then runs as usual.", icon=":material/hourglass_top:")
