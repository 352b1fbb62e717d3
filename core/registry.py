"""Model registry: resolve (profile, task, overrides) into a concrete ``ModelSpec``.

One TOML file (``core/models.toml``) holds the profiles; environment variables and CLI
flags override it per task, so the app, the CLI, training and benchmarks agree on what
"the captioner" or "the LLM" means.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from core.errors import UserError

TASKS = ("captioning", "ocr", "asr", "llm")
REGISTRY_FILE = Path(__file__).with_name("models.toml")


@dataclass(frozen=True)
class ModelSpec:
    """Everything a loader needs; hashable so caches can key on it."""

    task: str
    model: str
    backend: str
    adapter: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    load_in_4bit: bool = False
    alias: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_offline_alias(self) -> bool:
        return bool(self.alias)

    @property
    def prompt_style(self) -> str:
        """``few-shot`` for base models, ``chat`` for instruct models with a chat template."""
        return self.alias.get("prompt_style", "chat" if self.task == "llm" else "")


@lru_cache(maxsize=1)
def load_registry(path: Path = REGISTRY_FILE) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def profiles() -> list[str]:
    return sorted(load_registry()["profiles"])


def aliases(task: str | None = None) -> dict[str, dict]:
    """Offline aliases, optionally only those serving ``task``."""
    all_aliases = load_registry()["aliases"]
    return {k: v for k, v in all_aliases.items() if task is None or v["task"] == task}


def current_profile(profile: str | None = None) -> str:
    name = profile or os.environ.get("M2T_PROFILE") or load_registry()["default_profile"]
    if name not in load_registry()["profiles"]:
        raise UserError(f"unknown profile {name!r}; choose one of {', '.join(profiles())}")
    return name


def _infer_backend(task: str, model: str) -> str:
    """Backend for a hub id or local folder, read from its config where it has one."""
    folder = Path(model)
    config = folder / "config.json"
    model_type = ""
    if config.is_file():
        try:
            model_type = json.loads(config.read_text()).get("model_type", "")
        except (OSError, json.JSONDecodeError):
            model_type = ""
    lowered = model.lower()
    if task == "captioning":
        if model_type == "vision-encoder-decoder":
            return "vision-encoder-decoder"
        if model_type == "blip-2" or "blip2" in lowered or "blip-2" in lowered:
            return "blip2"
        if model_type == "blip" or "blip" in lowered:
            return "blip"
        return "vision-encoder-decoder"
    if task == "asr":
        if (folder / "model.bin").is_file():
            return "faster-whisper"
        return "transformers-whisper"
    if task == "llm":
        return "transformers"
    if task == "ocr":
        return "easyocr"
    raise UserError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")


def resolve(
    task: str,
    model: str | None = None,
    *,
    profile: str | None = None,
    adapter: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    load_in_4bit: bool = False,
) -> ModelSpec:
    """The spec for ``task``: CLI/caller values win over env vars, which win over the profile."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    env = task.upper()
    name = model or os.environ.get(f"M2T_{env}_MODEL") or load_registry()["profiles"][current_profile(profile)][task]
    alias = aliases().get(name)
    if alias is not None and alias["task"] != task:
        raise UserError(f"model {name!r} is a {alias['task']} model, not a {task} model")
    backend = alias["backend"] if alias else _infer_backend(task, name)
    if task == "llm":
        adapter = adapter or os.environ.get("M2T_LLM_ADAPTER") or None
    return ModelSpec(
        task=task,
        model=name,
        backend=backend,
        adapter=adapter,
        device=device or os.environ.get("M2T_DEVICE", "auto"),
        dtype=dtype or os.environ.get("M2T_DTYPE", "auto"),
        load_in_4bit=load_in_4bit,
        alias=dict(alias or {}),
    )


def with_device(spec: ModelSpec, device: str) -> ModelSpec:
    return replace(spec, device=device)


def cache_dir() -> Path:
    """Where converted models live (GGUF → safetensors, reassembled Whisper)."""
    root = os.environ.get("M2T_CACHE_DIR") or Path.home() / ".cache" / "media2tweet"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
