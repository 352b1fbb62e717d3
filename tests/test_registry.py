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
