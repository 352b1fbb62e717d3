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
    # gguf: weights from a packaged GGUF file (converted once); the others name an engine as well.
    "llm": ("gguf", "transformers", "ctranslate2", "openai"),
}
# What runs an LLM, apart from where its weights come from: CTranslate2 int8 (fast on CPU, the offline
# default), transformers (training, hub models, 4-bit) or any OpenAI-compatible server (--llm-url).
ENGINES = ("ctranslate2", "transformers", "openai")
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
    engine: str = ""  # llm only: the engine used unless --backend / M2T_LLM_BACKEND says otherwise

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
        engine = table.get("engine", "")
        if engine and (task != "llm" or engine not in ENGINES):
            raise UserError(f"{where}: engine applies to llm aliases and must be one of {', '.join(ENGINES)}")
        return cls(name=name, task=task, backend=table["backend"], package=table["package"],
                   licence=table["licence"], parts=tuple(table.get("parts", ())), prompt_style=style, engine=engine)


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
    engine: str = ""  # llm: ctranslate2 | transformers | openai ("" for the other tasks)
    url: str | None = None  # openai engine: the server's base URL, e.g. http://127.0.0.1:8080/v1
    served_model: str | None = None  # openai engine: the model name the server knows (default: asked from it)

    @property
    def label(self) -> str:
        """The model as results should name it: the engine is part of what was measured."""
        if not self.engine:
            return self.model
        return f"{self.model} [{self.engine}" + (f" {self.served_model}" if self.served_model else "") + "]"

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


def default_engine(alias: Alias | None, backend: str, url: str | None, load_in_4bit: bool = False) -> str:
    """The engine when nobody chose one: a server if a URL is set, else the alias's engine, else transformers.

    Hub models and local folders keep transformers (what training and 4-bit loading need); an alias
    whose backend names an engine uses that engine.
    """
    if url:
        return "openai"
    if load_in_4bit:
        return "transformers"
    if alias is not None and alias.engine:
        return alias.engine
    return backend if backend in ENGINES else "transformers"


def resolve_engine(
    task: str,
    engine: str | None,
    url: str | None,
    alias: Alias | None,
    backend: str,
    load_in_4bit: bool = False,
) -> tuple[str, str | None]:
    """(engine, server URL) for an LLM: the caller's choice, then ``M2T_LLM_BACKEND`` / ``M2T_LLM_URL``."""
    if task != "llm":
        return "", None
    url = (url or os.environ.get("M2T_LLM_URL") or "").strip() or None
    engine = (engine or os.environ.get("M2T_LLM_BACKEND") or "").strip() or None
    if engine is None:
        return default_engine(alias, backend, url, load_in_4bit), url
    if engine not in ENGINES:
        raise UserError(f"unknown LLM backend {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "openai" and not url:
        raise UserError("--backend openai needs the server's address: --llm-url http://HOST:PORT/v1 "
                        "(or M2T_LLM_URL)")
    if engine != "transformers" and load_in_4bit:
        raise UserError("--4bit loads through transformers; drop --4bit or use --backend transformers")
    return engine, url if engine == "openai" else None


def resolve(
    task: str,
    model: str | None = None,
    *,
    profile: str | None = None,
    adapter: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    load_in_4bit: bool = False,
    engine: str | None = None,
    url: str | None = None,
    served_model: str | None = None,
) -> ModelSpec:
    """The spec for ``task``: CLI/caller values win over env vars, which win over the profile.

    For the LLM, ``engine``/``url``/``served_model`` (``--backend``, ``--llm-url``, ``--llm-model``;
    ``M2T_LLM_BACKEND``, ``M2T_LLM_URL``, ``M2T_LLM_SERVED_MODEL``) choose what runs it.
    """
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
    engine, url = resolve_engine(task, engine, url, alias, backend, load_in_4bit)
    if engine == "openai":
        served_model = (served_model or os.environ.get("M2T_LLM_SERVED_MODEL") or "").strip() or None
    else:
        served_model = None
    return ModelSpec(
        task=task,
        model=name,
        backend=backend,
        adapter=adapter,
        device=device or os.environ.get("M2T_DEVICE", "auto"),
        dtype=dtype or os.environ.get("M2T_DTYPE", "auto"),
        load_in_4bit=load_in_4bit,
        alias=alias,
        engine=engine,
        url=url,
        served_model=served_model,
    )


def with_device(spec: ModelSpec, device: str) -> ModelSpec:
    return replace(spec, device=device)


def cache_dir() -> Path:
    """Where converted models live (GGUF → safetensors, reassembled Whisper)."""
    root = os.environ.get("M2T_CACHE_DIR") or Path.home() / ".cache" / "media2tweet"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
