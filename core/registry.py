"""Model registry: resolve (profile, task, overrides) into a concrete ``ModelSpec``.

One TOML file (``core/models.toml``) holds the profiles; environment variables and CLI
flags override it per task, so the app, the CLI, training and benchmarks agree on what
"the captioner" or "the LLM" means.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from core.errors import UserError

TASKS = ("caption", "ocr", "asr", "llm")
LEGACY_TASKS = {"captioning": "caption", "tweet": "llm", "transcription": "asr", "generation": "llm"}
# The fixed set of loaders per task: a mistyped backend in models.toml is an error, not a silent hub load.
BACKENDS: dict[str, tuple[str, ...]] = {
    "caption": ("efficientnet", "blip", "blip2", "vision-encoder-decoder"),
    "ocr": ("easyocr",),
    "asr": ("faster-whisper", "transformers-whisper"),
    "llm": ("gguf", "transformers"),
}
PROMPT_STYLES = ("few-shot", "chat")
REGISTRY_FILE = Path(__file__).with_name("models.toml")


@dataclass(frozen=True)
class Alias:
    """One ``[aliases.NAME]`` table of models.toml: where packaged weights live and how to load them."""

    name: str
    task: str
    backend: str
    package: str
    licence: str
    parts: tuple[str, ...] = ()
    prompt_style: str = ""

    @classmethod
    def from_table(cls, name: str, table: dict) -> Alias:
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = sorted(set(table) - known)
        missing = sorted({"task", "backend", "package", "licence"} - set(table))
        where = f"{REGISTRY_FILE.name}: alias {name!r}"
        if unknown or missing:
            raise UserError(f"{where}: " + "; ".join(
                ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing key(s) {', '.join(missing)}"] if missing else [])))
        task = LEGACY_TASKS.get(table["task"], table["task"])
        if task not in TASKS:
            raise UserError(f"{where}: unknown task {table['task']!r}; tasks are {', '.join(TASKS)}")
        if table["backend"] not in BACKENDS[task]:
            raise UserError(f"{where}: unknown {task} backend {table['backend']!r}; "
                            f"choose one of {', '.join(BACKENDS[task])}")
        style = table.get("prompt_style", "chat" if task == "llm" else "")
        if task == "llm" and style not in PROMPT_STYLES:
            raise UserError(f"{where}: prompt_style must be one of {', '.join(PROMPT_STYLES)}")
        return cls(name=name, task=task, backend=table["backend"], package=table["package"],
                   licence=table["licence"], parts=tuple(table.get("parts", ())), prompt_style=style)


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
    alias: Alias | None = field(default=None, compare=False, hash=False)

    @property
    def is_offline_alias(self) -> bool:
        return self.alias is not None

    @property
    def prompt_style(self) -> str:
        """``few-shot`` for base models, ``chat`` for instruct models with a chat template."""
        if self.alias is not None and self.alias.prompt_style:
            return self.alias.prompt_style
        return "chat" if self.task == "llm" else ""


@lru_cache(maxsize=1)
def load_registry(path: Path = REGISTRY_FILE) -> dict:
    """The parsed models.toml, checked: profiles name every task, aliases are typed."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    typed = {name: Alias.from_table(name, table) for name, table in raw.get("aliases", {}).items()}
    for profile, table in raw.get("profiles", {}).items():
        missing = [t for t in TASKS if t not in table]
        if missing or set(table) - set(TASKS):
            raise UserError(f"{path.name}: profile {profile!r} must name exactly the tasks {', '.join(TASKS)}")
    if raw.get("default_profile") not in raw.get("profiles", {}):
        raise UserError(f"{path.name}: default_profile {raw.get('default_profile')!r} is not a profile")
    return {**raw, "aliases": typed}


def normalize_task(task: str) -> str:
    """The one stage name for ``task`` (old names such as ``captioning`` or ``tweet`` still work)."""
    task = LEGACY_TASKS.get(task, task)
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; tasks are {', '.join(TASKS)}")
    return task


def profiles() -> list[str]:
    return sorted(load_registry()["profiles"])


def aliases(task: str | None = None) -> dict[str, Alias]:
    """Offline aliases, optionally only those serving ``task``."""
    all_aliases: dict[str, Alias] = load_registry()["aliases"]
    return {k: v for k, v in all_aliases.items() if task is None or v.task == task}


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
    if task == "caption":
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
    task = normalize_task(task)
    env_names = [f"M2T_{task.upper()}_MODEL"] + [f"M2T_{old.upper()}_MODEL" for old, new in LEGACY_TASKS.items()
                                                   if new == task]
    from_env = next((os.environ[n] for n in env_names if os.environ.get(n)), None)
    name = model or from_env or load_registry()["profiles"][current_profile(profile)][task]
    alias = aliases().get(name)
    if alias is not None and alias.task != task:
        raise UserError(f"model {name!r} is a {alias.task} model, not a {task} model")
    backend = alias.backend if alias else _infer_backend(task, name)
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
        alias=alias,
    )


def with_device(spec: ModelSpec, device: str) -> ModelSpec:
    return replace(spec, device=device)


def cache_dir() -> Path:
    """Where converted models live (GGUF → safetensors, reassembled Whisper)."""
    root = os.environ.get("M2T_CACHE_DIR") or Path.home() / ".cache" / "media2tweet"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
