"""One copy of each model per process, whoever asks first: a page, the server's preload, a CLI thread.

Why here and not in ``st.cache_resource``: ``m2t serve`` starts loading the default models when the
server starts, before any visitor's script run exists, and a command line starts loads in threads
while the media decodes. Both need a cache that lives outside Streamlit's runtime; the pages read
through this one (``app/models.py``), so a model the preload loaded is the very object a page gets.

A caller that asks for a model another thread is loading waits for that load instead of starting a
second copy (one slot per key, filled once). A failed load is reported to everyone waiting on it and
then forgotten, so the next request tries again.

The key is every field that changes which weights end up where (model, backend, adapter, device,
dtype, 4-bit, and for the LLM its engine, server URL and served model name): leaving the device out
would make switching device silently reuse the model on the old one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from core.registry import ModelSpec

Key = tuple[str, str, str, str | None, str, str, bool, str, str | None, str | None]
Loader = Callable[[ModelSpec], object]


@dataclass
class Slot:
    """One model's place in the cache: filled once; ``done`` is set when the load ended either way."""

    spec: ModelSpec
    by: str  # who started the load: "preload", "request", ...
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    model: object = None
    error: BaseException | None = None
    seconds: float | None = None


_SLOTS: dict[Key, Slot] = {}
_LOCK = threading.Lock()
LOADS: Counter[Key] = Counter()  # real loads per key (cache misses), for tests and the app's sidebar


def key(spec: ModelSpec) -> Key:
    return (spec.task, spec.model, spec.backend, spec.adapter, spec.device, spec.dtype, spec.load_in_4bit,
            spec.engine, spec.url, spec.served_model)


def _default_loader(spec: ModelSpec) -> object:
    from core.pipeline import load_model  # the stage modules (and torch) only when a model really loads

    return load_model(spec)


def get(spec: ModelSpec, *, by: str = "request", loader: Loader | None = None) -> object:
    """The model for ``spec``: cached, or loaded now (by this thread, or awaited from the one loading it)."""
    k = key(spec)
    with _LOCK:
        slot = _SLOTS.get(k)
        owner = slot is None
        if owner:
            slot = _SLOTS[k] = Slot(spec=spec, by=by)
    assert slot is not None
    if not owner:
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.model
    try:
        slot.model = (loader or _default_loader)(spec)
    except BaseException as exc:
        slot.error = exc
        with _LOCK:
            _SLOTS.pop(k, None)  # the next request tries again
        raise
    else:
        with _LOCK:
            LOADS[k] += 1
    finally:
        slot.seconds = time.monotonic() - slot.started
        slot.done.set()
    return slot.model


def slot(spec: ModelSpec) -> Slot | None:
    """The slot for ``spec`` if a load has started (``done`` unset: still loading)."""
    with _LOCK:
        return _SLOTS.get(key(spec))


def is_loaded(spec: ModelSpec) -> bool:
    found = slot(spec)
    return found is not None and found.done.is_set() and found.error is None


def loading() -> list[Slot]:
    """Loads in progress now, oldest first."""
    with _LOCK:
        return sorted((s for s in _SLOTS.values() if not s.done.is_set()), key=lambda s: s.started)


def loaded() -> list[Key]:
    with _LOCK:
        return sorted((k for k, s in _SLOTS.items() if s.done.is_set() and s.error is None), key=str)


def clear() -> None:
    """Forget every loaded model (memory is freed once no caller holds one); loads in progress finish."""
    with _LOCK:
        for k in [k for k, s in _SLOTS.items() if s.done.is_set()]:
            del _SLOTS[k]
