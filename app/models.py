"""Load each model once per server process, whatever page or session asks for it.

``st.cache_resource`` is keyed on every field that changes which weights end up where (model,
backend, adapter, device, dtype, 4-bit, and for the LLM its engine, server URL and served model
name): a device passed as an ``_``-prefixed argument would be
left out of the key, and switching device would silently reuse the model on the old one.
``LOADS`` counts real loads (cache misses) so tests can check that a second prediction reuses
the models.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import streamlit as st

from core.pipeline import load_model
from core.registry import ModelSpec

SpecKey = tuple[str, str, str, str | None, str, str, bool, str, str | None, str | None]
TASK_NAMES = {"caption": "caption", "ocr": "OCR", "asr": "speech recognition", "llm": "tweet writer (LLM)"}

LOADS: Counter[SpecKey] = Counter()  # real loads per spec, for tests and the sidebar
_RESIDENT: set[SpecKey] = set()  # specs whose model sits in the cache now
_LOCK = threading.Lock()


def spec_key(spec: ModelSpec) -> SpecKey:
    return (spec.task, spec.model, spec.backend, spec.adapter, spec.device, spec.dtype, spec.load_in_4bit,
            spec.engine, spec.url, spec.served_model)


@st.cache_resource(show_spinner=False)
def _cached_load(
    task: str,
    model: str,
    backend: str,
    adapter: str | None,
    device: str,
    dtype: str,
    load_in_4bit: bool,
    engine: str,
    url: str | None,
    served_model: str | None,
    _spec: ModelSpec,  # carries the alias table only; every field that matters is in the key above
) -> object:
    loaded = load_model(_spec)
    with _LOCK:
        LOADS[(task, model, backend, adapter, device, dtype, load_in_4bit, engine, url, served_model)] += 1
    return loaded


def is_loaded(spec: ModelSpec) -> bool:
    return spec_key(spec) in _RESIDENT


def get_model(spec: ModelSpec, notify: Callable[[str], None] | None = None) -> object:
    """The model for ``spec``; on first use ``notify`` hears that a (slow) load is happening."""
    first = not is_loaded(spec)
    start = time.perf_counter()
    if first and notify is not None:
        notify(f"Loading the {TASK_NAMES.get(spec.task, spec.task)} model **{spec.model}** (first use only)…")
    model = _cached_load(*spec_key(spec), _spec=spec)
    with _LOCK:
        _RESIDENT.add(spec_key(spec))
    if first and notify is not None:
        notify(f"Loaded **{spec.model}** in {time.perf_counter() - start:.1f} s")
    return model


def make_loader(notify: Callable[[str], None] | None = None) -> Callable[[ModelSpec], object]:
    """A ``Pipeline(loader=…)`` that goes through the process-wide cache."""
    return lambda spec: get_model(spec, notify)


def load_with_status(spec: ModelSpec) -> object:
    """``get_model`` that shows an ``st.status`` while a model loads for the first time."""
    if is_loaded(spec):
        return get_model(spec)
    name = TASK_NAMES.get(spec.task, spec.task)
    status = st.status(f"Loading the {name} model {spec.model} (first use only)…", expanded=False)
    try:
        with status:
            start = time.perf_counter()
            model = get_model(spec)
    except BaseException:
        status.update(label=f"Could not load the {name} model {spec.model}", state="error")
        raise
    status.update(label=f"Loaded the {name} model {spec.model} in {time.perf_counter() - start:.1f} s",
                  state="complete")
    return model


def loaded_models() -> list[SpecKey]:
    with _LOCK:
        return sorted(_RESIDENT, key=str)


def free_models() -> None:
    """Drop every cached model (their memory is freed once no page holds them)."""
    _cached_load.clear()
    with _LOCK:
        _RESIDENT.clear()
