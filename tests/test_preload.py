"""``core.preload``: the start-up preload loads into the shared cache once; prefetch lanes; the off switch."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core import model_cache, preload
from core.registry import TASKS, resolve


@pytest.fixture
def no_preload_yet(monkeypatch):
    """This process's preload slot, empty for the test and restored after it."""
    monkeypatch.setattr(preload, "_CURRENT", None)


def test_the_llm_loads_in_a_lane_of_its_own_and_the_media_models_in_use_order() -> None:
    specs = [resolve(task) for task in reversed(TASKS)]
    assert [[s.task for s in lane] for lane in preload.lanes(specs)] == [["llm"], ["caption", "ocr", "asr"]]
    assert [[s.task for s in lane] for lane in preload.lanes(specs[1:2])] == [["asr"]]


@pytest.mark.parametrize(("value", "on"), [("", True), ("1", True), ("0", False), ("off", False), ("No", False)])
def test_m2t_preload_turns_it_off(value: str, on: bool) -> None:
    assert preload.enabled({preload.PRELOAD_ENV: value}) is on


@pytest.mark.slow
def test_start_loads_into_the_shared_cache_once_per_process(no_preload_yet) -> None:
    spec = replace(resolve("caption", device="cpu"), dtype="float32 preload test")  # a key of this test's own
    lines: list[str] = []
    started = preload.start({"caption": spec}, log=lines.append, warm=False)
    assert preload.start({"caption": spec}, log=lines.append) is started, "a second start is the first one"
    assert started.done.wait(timeout=300)
    assert started.seconds.keys() == {"caption"} and not started.errors and not started.pending()
    assert model_cache.is_loaded(spec)
    model = model_cache.get(spec)
    assert model_cache.get(spec) is model and model_cache.LOADS[model_cache.key(spec)] == 1
    assert lines[0].startswith("preload: loading caption") and lines[-1].startswith("Models ready: 1 of 1 loaded")
    assert sum("preload: loading" in line for line in lines) == 1


@pytest.mark.slow
def test_a_model_that_fails_is_reported_and_the_others_still_load(no_preload_yet, tmp_path) -> None:
    bad = resolve("caption", str(tmp_path / "missing"), device="cpu")
    good = replace(resolve("asr", "whisper-tiny.en", device="cpu"), dtype="float32 preload test")
    lines: list[str] = []
    started = preload.start({"caption": bad, "asr": good}, log=lines.append)
    assert started.done.wait(timeout=300)
    assert "asr" in started.seconds and "caption" in started.errors, "a failure does not stop its lane"
    assert started.warm_s is None, "no warm-up prediction with a model missing"
    assert any("caption model" in line and "failed to load" in line for line in lines)
    assert lines[-1].startswith("Models ready: 1 of 2 loaded with errors")


@pytest.mark.slow
def test_no_warm_up_once_a_visitor_is_already_predicting(no_preload_yet) -> None:
    spec = replace(resolve("caption", device="cpu"), dtype="float32 preload test 3")  # a real load, not cached
    lines: list[str] = []
    started = preload.start({"caption": spec}, log=lines.append)
    started.visitor.set()  # what app.models does when a visitor's prediction asks for a model
    assert started.done.wait(timeout=300)
    assert started.warm_s is None
    assert any("no warm-up prediction" in line for line in lines)
    assert model_cache.is_loaded(spec)


@pytest.mark.slow
def test_only_a_model_slower_on_its_first_call_asks_for_a_warm_up(monkeypatch) -> None:
    """The offline profile after ``m2t prepare`` (ONNX Runtime caption and OCR, CTranslate2 LLM) needs none; the
    same captioner on torch (``M2T_CAPTION_ONNX=0``) does."""
    from core.stages.caption import onnx_model as caption_onnx

    specs = {task: resolve(task, device="cpu") for task in ("caption", "ocr", "llm")}
    models = {task: model_cache.get(spec) for task, spec in specs.items()}
    assert models["caption"].runtime == "onnx" and models["ocr"].runtime == "onnx", "m2t prepare made the exports"
    assert not preload.needs_warm_up(models)
    monkeypatch.setenv(caption_onnx.ONNX_ENV, "0")
    on_torch = model_cache.get(replace(specs["caption"], dtype="float32 torch warm-up test"))
    assert on_torch.runtime == "torch" and preload.needs_warm_up({**models, "caption": on_torch})
