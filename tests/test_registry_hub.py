"""Every alias and every profile in ``core/models.toml`` is a test case (as litgpt's test_config_hub)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from core.errors import UserError
from core.registry import BACKENDS, ENGINES, REGISTRY_FILE, TASKS, aliases, load_registry, profiles, resolve


@pytest.mark.parametrize("name", sorted(aliases()))
def test_alias_resolves_to_a_known_backend_and_an_installed_package(name: str) -> None:
    alias = aliases()[name]
    spec = resolve(alias.task, name)
    assert spec.alias is alias and spec.backend == alias.backend
    assert alias.backend in BACKENDS[alias.task]
    assert alias.licence
    for package in (alias.package, *alias.parts):
        assert importlib.util.find_spec(package) is not None, f"{name}: package {package} is not installed"
    if alias.task == "llm":
        assert spec.prompt_style in ("few-shot", "chat")
        assert spec.engine in ENGINES and spec.engine == (alias.engine or "transformers")
    else:
        assert spec.engine == "" and not alias.engine


@pytest.mark.parametrize("profile", profiles())
@pytest.mark.parametrize("task", TASKS)
def test_every_profile_names_a_model_for_every_task(profile: str, task: str) -> None:
    spec = resolve(task, profile=profile)
    assert spec.task == task and spec.model
    assert spec.backend in BACKENDS[task]


def _registry_with(tmp_path: Path, old: str, new: str) -> Path:
    text = REGISTRY_FILE.read_text()
    assert old in text
    path = tmp_path / "models.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('backend = "efficientnet"', 'backend = "efficentnet"', "unknown caption backend 'efficentnet'"),
        ('task = "ocr"', 'task = "ocrr"', "unknown task 'ocrr'"),
        ('licence = "Apache-2.0"', 'license = "Apache-2.0"', "unknown key(s) license"),
        ('prompt_style = "few-shot"', 'prompt_style = "fewshot"', "prompt_style must be one of"),
        ('llm = "gemma-3-270m"', 'lm = "gemma-3-270m"', "must name exactly the tasks"),
        ('engine = "ctranslate2"', 'engine = "ct2"', "engine applies to llm aliases and must be one of"),
    ],
)
def test_a_mistyped_registry_is_a_clear_error(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_registry.__wrapped__(_registry_with(tmp_path, old, new))


def test_old_task_names_still_resolve(monkeypatch) -> None:
    monkeypatch.delenv("M2T_CAPTION_MODEL", raising=False)
    monkeypatch.setenv("M2T_CAPTIONING_MODEL", "Salesforce/blip-image-captioning-large")
    spec = resolve("captioning")
    assert spec.task == "caption" and spec.backend == "blip"
