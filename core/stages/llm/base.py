"""The tweet LLM stage, engine-free: generation settings, stop strings, tweet cleaning, and the engine table.

Three engines write tweets (``spec.engine``): ``ctranslate2`` (int8, the offline default:
:mod:`core.stages.llm.ct2`), ``transformers`` (training, hub models, 4-bit: :mod:`core.stages.llm.hf`)
and ``openai`` (any OpenAI-compatible server: :mod:`core.stages.llm.openai_api`). Every engine gets the same
prompts, stop strings and :func:`clean_tweet`, so their tweets compare.

This module imports neither torch nor transformers: callers that only need a :class:`GenerationConfig`
(the CLI, batch planning, the app's settings) stay light, and each engine module imports this one,
never the other way round. ``ENGINES`` names each engine's module; it is imported when a model of that
engine is loaded (the same dispatch-table pattern as ``core.__main__.COMMANDS``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from core.devices import pick_device
from core.errors import UserError
from core.registry import ModelSpec

MAX_TWEET_CHARS = 280
# Where a base model starts the next few-shot block or echoes a label, the tweet has ended.
STOP_STRINGS = ("###", "\n\n", "\nImage description:", "\nCompany:", "\nTweet:", "<end_of_turn>", "<|im_end|>")

Scored = list[list[tuple[str, float | None]]]  # per prompt: (text, mean log-probability per token or None)


@dataclass
class GenerationConfig:
    max_new_tokens: int = 60
    min_new_tokens: int = 0  # benchmarks set it to max_new_tokens so every run writes the same number of tokens
    num_candidates: int = 1  # > 1 implies sampling: greedy decoding would return n copies
    # With one greedy candidate: sampled candidates written only for a tweet that fails the pipeline's checks
    # (near copy, thin, unsupported detail, facts left out), then ranked with it. 0: never (one call, as before).
    second_look: int = 3
    # The tweet opens with the media's own text (a poster's words) and the model continues it: the post's facts
    # stay in every candidate, at no extra decoding (core.stages.opening; measured in docs/brand-voice.md).
    facts_first: bool = True
    do_sample: bool = False
    temperature: float = 0.8
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 3
    batch_size: int = 8
    seed: int = 0


class Engine(Protocol):
    """What an engine module provides (a module satisfies this structurally, as ``ENGINES`` uses it)."""

    def load(self, spec: ModelSpec) -> LLM:
        """The model for ``spec``, ready to generate."""

    def generate(self, llm: LLM, prompts: list[str], cfg: GenerationConfig,
                 progress: Callable[[int, int], None] | None, stats: dict | None,
                 stop_strings: tuple[str, ...], *, scores: bool = False) -> Scored:
        """Raw (uncleaned) candidates per prompt, each with its mean log-probability when ``scores``."""


ENGINES: dict[str, str] = {
    "transformers": "core.stages.llm.hf",
    "ctranslate2": "core.stages.llm.ct2",
    "openai": "core.stages.llm.openai_api",
}


def engine(name: str) -> Engine:
    """The engine module called ``name`` (empty: transformers), imported on first use."""
    try:
        module = ENGINES[name or "transformers"]
    except KeyError:
        raise UserError(f"unknown LLM engine {name!r}; choose one of {', '.join(ENGINES)}") from None
    return importlib.import_module(module)  # type: ignore[return-value]


class LLM:
    """A loaded LLM: its spec, tokenizer and device, and what runs it (``engine``).

    ``model`` is the transformers module (``torch.nn.Module``). With another engine it loads on first
    access (e.g. for LoRA training, which needs torch weights), so callers that train keep working unchanged.
    ``runner`` holds the engine's own object: a CTranslate2 runner or a server client (None for transformers).
    """

    def __init__(self, spec: ModelSpec, model: Any | None, tokenizer: Any, device: str,
                 engine: str = "transformers", runner: Any | None = None) -> None:
        self.spec = spec
        self._model = model
        self.tokenizer = tokenizer
        self.device = device
        self.engine = engine
        self.runner: Any | None = runner

    def __repr__(self) -> str:
        return f"LLM(model={self.spec.model!r}, engine={self.engine!r}, device={self.device!r})"

    @property
    def model(self) -> Any:
        if self._model is None:
            spec = replace(self.spec, engine="transformers", url=None, served_model=None)
            device = self.device if self.engine == "transformers" else pick_device(spec.device)
            self._model = engine("transformers").load_weights(spec, device)[0]  # type: ignore[attr-defined]
        return self._model

    @model.setter
    def model(self, value: Any) -> None:
        self._model = value

    @property
    def prompt_style(self) -> str:
        if self.spec.adapter and (Path(self.spec.adapter) / "prompt_style.txt").is_file():
            return (Path(self.spec.adapter) / "prompt_style.txt").read_text().strip()
        if self.spec.is_offline_alias:
            return self.spec.prompt_style
        if self.tokenizer is None:  # a server's model with no local tokenizer: a completion prompt
            return "few-shot"
        return "chat" if getattr(self.tokenizer, "chat_template", None) else "few-shot"


def load_llm(spec: ModelSpec) -> LLM:
    """The LLM for ``spec`` on its engine (``spec.engine``; empty means transformers)."""
    return engine(spec.engine).load(spec)


_LABEL = re.compile(r"^\s*(tweet|answer|response)\s*:\s*", re.IGNORECASE)
# Models split the dump's placeholders into pieces ("<hyper link>"); references keep them whole.
_PLACEHOLDERS = ((re.compile(r"<\s*hyper\s*-?\s*link\s*>", re.I), "<hyperlink>"),
                 (re.compile(r"<\s*men\s*tion\s*>", re.I), "<mention>"))
_QUOTES = "\"'“”‘’«»"
# A placeholder the model had only begun when it stopped ("… for everyone! <hyp"): never a word of the tweet.
_UNFINISHED_TAG = re.compile(r"\s*<[A-Za-z_|]*$")


def _dedupe_hashtags(text: str) -> str:
    """Small models repeat hashtags (``#Sale #Sale #Sale``) and trail lone ``#``: keep each tag once."""
    seen: set[str] = set()
    words = []
    for word in text.split(" "):
        if word.startswith("#"):
            tag = word.rstrip(".,!?").lower()
            if tag in ("#", "") or tag in seen:
                continue
            seen.add(tag)
        words.append(word)
    return " ".join(words).strip()


def clean_tweet(text: str, prompt: str = "") -> str:
    """One tweet of at most 280 characters: no echoed prompt, no labels, no surrounding quotes."""
    if prompt and text.startswith(prompt):
        text = text[len(prompt):]
    text = text.lstrip()
    cut = min((i for i in (text.find(s) for s in STOP_STRINGS) if i > 0), default=len(text))
    text = _LABEL.sub("", text[:cut])
    text = _UNFINISHED_TAG.sub("", " ".join(text.split()))
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    text = text.strip(_QUOTES + " ") if text.count('"') == 1 else text
    for pattern, token in _PLACEHOLDERS:
        text = pattern.sub(token, text)
    text = _dedupe_hashtags(text)
    if len(text) > MAX_TWEET_CHARS:
        clipped = text[: MAX_TWEET_CHARS - 1]
        space = clipped.rfind(" ")
        text = (clipped[:space] if space > MAX_TWEET_CHARS // 2 else clipped).rstrip(" ,;:-") + "…"
    return text


def generate_scored(
    llm: LLM,
    prompts: list[str],
    cfg: GenerationConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    stats: dict | None = None,
    *,
    scores: bool = True,
    openings: Sequence[str] | None = None,
) -> Scored:
    """Candidates for each prompt as ``(tweet, mean log-probability per generated token)``, best engine-side.

    The log-probability is the model's own (after repetition penalty and the n-gram ban, before
    temperature), averaged over the tokens written up to the stop, so a caller can rank candidates
    or break ties by likelihood; it is ``None`` where the engine gives none (a server without
    ``logprobs``) or ``scores`` is False. Tweets are cleaned (``clean_tweet``) as ``generate`` returns them.
    ``openings`` (per prompt): words the prompt already ends with, as the tweet's start
    (``core.stages.opening``); each candidate is that start followed by what the model wrote.
    """
    cfg = cfg or GenerationConfig()
    raw = engine(llm.engine).generate(llm, prompts, cfg, progress, stats, STOP_STRINGS, scores=scores)
    starts = list(openings) if openings is not None else [""] * len(prompts)
    return [[(clean_tweet(start + text if start else text), logprob) for text, logprob in row]
            for start, row in zip(starts, raw, strict=True)]


def generate(
    llm: LLM,
    prompts: list[str],
    cfg: GenerationConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    stats: dict | None = None,
) -> list[list[str]]:
    """Candidates for each prompt, generated ``cfg.batch_size`` prompts at a time on the LLM's engine.

    ``stats``, when given, accumulates ``new_tokens``: the tokens generated before cleaning.
    """
    rows = generate_scored(llm, prompts, cfg, progress, stats, scores=False)
    return [[text for text, _ in row] for row in rows]
