import json

import pytest

from core.errors import UserError
from core.registry import TASKS, aliases, resolve


def test_offline_profile_is_the_default(monkeypatch):
    monkeypatch.delenv("M2T_PROFILE", raising=False)
    specs = {task: resolve(task) for task in TASKS}
    assert {t: s.model for t, s in specs.items()} == {
        "caption": "efficientnet-lite0", "ocr": "easyocr-en", "asr": "whisper-base", "llm": "gemma-3-270m",
    }
    assert specs["llm"].backend == "gguf" and specs["llm"].prompt_style == "few-shot"
    assert specs["llm"].engine == "ctranslate2" and specs["caption"].engine == ""


def test_the_llm_engine_is_chosen_by_flag_env_or_url(monkeypatch):
    for name in ("M2T_LLM_BACKEND", "M2T_LLM_URL", "M2T_LLM_SERVED_MODEL", "M2T_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    assert resolve("llm", "smollm2-135m").engine == "ctranslate2"  # every offline alias
    assert resolve("llm", "some-org/some-model").engine == "transformers"  # hub models train and quantise there
    assert resolve("llm", load_in_4bit=True).engine == "transformers"
    assert resolve("llm", engine="transformers").engine == "transformers"
    monkeypatch.setenv("M2T_LLM_BACKEND", "transformers")
    assert resolve("llm").engine == "transformers"
    assert resolve("llm", engine="ctranslate2").engine == "ctranslate2"  # the flag beats the env var
    monkeypatch.delenv("M2T_LLM_BACKEND")
    spec = resolve("llm", url="http://127.0.0.1:8080/v1", served_model="gemma")
    assert (spec.engine, spec.url, spec.served_model) == ("openai", "http://127.0.0.1:8080/v1", "gemma")
    assert resolve("llm", served_model="gemma").served_model is None  # only a server has served names
    # Hashable and part of equality: caches keyed on the spec tell engines apart.
    assert len({resolve("llm"), resolve("llm", engine="transformers"), spec}) == 3


def test_engine_mistakes_are_user_errors(monkeypatch):
    monkeypatch.delenv("M2T_LLM_URL", raising=False)
    monkeypatch.setenv("M2T_LLM_BACKEND", "onnx")
    with pytest.raises(UserError, match="unknown LLM backend 'onnx'"):
        resolve("llm")
    monkeypatch.delenv("M2T_LLM_BACKEND")
    with pytest.raises(UserError, match="--llm-url"):
        resolve("llm", engine="openai")
    with pytest.raises(UserError, match="--4bit"):
        resolve("llm", engine="ctranslate2", load_in_4bit=True)


def test_hub_profile_and_overrides(monkeypatch):
    monkeypatch.setenv("M2T_PROFILE", "hub")
    assert resolve("caption").backend == "blip"
    assert resolve("asr").backend == "transformers-whisper"
    monkeypatch.setenv("M2T_LLM_MODEL", "smollm2-135m")
    assert resolve("llm").model == "smollm2-135m"  # env var beats the profile
    assert resolve("llm", "qwen2.5-0.5b").model == "qwen2.5-0.5b"  # the caller (CLI flag) beats the env var
    assert resolve("llm", "qwen2.5-0.5b").prompt_style == "chat"


def test_backend_is_inferred_from_a_local_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "blip-2"}))
    assert resolve("caption", str(tmp_path)).backend == "blip2"
    (tmp_path / "model.bin").write_bytes(b"")
    assert resolve("asr", str(tmp_path)).backend == "faster-whisper"
    assert resolve("llm", "some-org/some-model").backend == "transformers"


def test_mistakes_are_user_errors():
    with pytest.raises(UserError, match="unknown profile"):
        resolve("llm", profile="cloud")
    with pytest.raises(UserError, match="is a asr model"):
        resolve("llm", "whisper-base")
    with pytest.raises(UserError, match="unknown task"):
        resolve("translation")


def test_every_alias_names_a_licence_and_a_task():
    for name, alias in aliases().items():
        assert alias.task in TASKS, name
        assert alias.licence, name
