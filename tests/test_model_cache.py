"""``core.model_cache``: one copy per model, whoever asks first; a waiter gets the loader's object; failures retry."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from core import model_cache
from core.errors import UserError
from core.pipeline import load_model
from core.registry import resolve


def own_spec(task: str = "caption", **changes):
    """A spec with a key no other test uses (dtype float32 on the CPU), so this file's counts are its own."""
    return replace(resolve(task, device="cpu", dtype="float32"), **changes)


def test_the_key_holds_every_field_that_decides_the_weights() -> None:
    spec = own_spec()
    assert model_cache.key(spec) != model_cache.key(replace(spec, device="cuda"))
    assert model_cache.key(spec) != model_cache.key(replace(spec, adapter="lora"))
    assert model_cache.key(spec) == model_cache.key(replace(spec))


@pytest.mark.slow
def test_a_model_loads_once_and_every_caller_gets_the_same_object() -> None:
    spec = own_spec()
    first = model_cache.get(spec)
    assert model_cache.get(spec) is first
    assert model_cache.is_loaded(spec)
    assert model_cache.LOADS[model_cache.key(spec)] == 1


@pytest.mark.slow
def test_a_caller_waits_for_the_load_in_progress_instead_of_loading_a_copy() -> None:
    spec = own_spec(dtype="fp32")  # another key: this test's load is its own
    gate = threading.Event()
    got: dict[str, object] = {}

    def held_load(s):  # the real loader, held until the second caller has come in
        gate.wait(timeout=120)
        return load_model(s)

    first = threading.Thread(target=lambda: got.setdefault("first", model_cache.get(spec, by="first",
                                                                                     loader=held_load)))
    first.start()
    while model_cache.slot(spec) is None:  # the first caller owns the slot before its load starts
        first.join(timeout=0.01)
    assert model_cache.loading() and not model_cache.is_loaded(spec)
    second = threading.Thread(target=lambda: got.setdefault("second", model_cache.get(spec, by="second")))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive(), "the second caller waits for the first one's load"
    gate.set()
    first.join(timeout=300)
    second.join(timeout=300)
    assert got["first"] is got["second"]
    assert model_cache.slot(spec).by == "first"
    assert model_cache.LOADS[model_cache.key(spec)] == 1


def test_a_failed_load_is_raised_and_forgotten_so_the_next_call_tries_again(tmp_path) -> None:
    spec = own_spec(model=str(tmp_path / "no-such-model"), backend="vision-encoder-decoder")
    for _ in range(2):
        with pytest.raises(UserError, match="no-such-model"):
            model_cache.get(spec)
        assert model_cache.slot(spec) is None
    assert model_cache.LOADS[model_cache.key(spec)] == 0
