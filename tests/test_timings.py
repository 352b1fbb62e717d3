"""``core.timings``: the labels of a cold command's load rows say what runs each model."""

from __future__ import annotations

from types import SimpleNamespace

from core.timings import load_label


def test_a_load_row_names_the_model_and_what_runs_it() -> None:
    assert load_label("caption", "efficientnet-lite0", SimpleNamespace(runtime="onnx")) == \
        "caption (efficientnet-lite0, onnx)"
    assert load_label("llm", "gemma-3-270m", SimpleNamespace(engine="ctranslate2")) == "llm (gemma-3-270m, ctranslate2)"
    assert load_label("asr", "whisper-base", object(), "faster-whisper") == "asr (whisper-base, faster-whisper)"
    assert load_label("asr", "whisper-base", object()) == "asr (whisper-base)"
