"""Write tweets with a causal LM: load (offline GGUF or hub), generate in batches, clean up.

Three engines sit behind ``load_llm``/``generate`` (``spec.engine``): ``ctranslate2`` (int8, the
offline default: ``core.stages.llm_ct2``), ``transformers`` (this module: training, hub models,
4-bit) and ``openai`` (any OpenAI-compatible server: ``core.stages.llm_openai``). Every engine gets
the same prompts, stop strings and ``clean_tweet``, so their tweets compare.

GGUF files load through transformers by dequantising to fp32, which takes 17–70 s; we do it
once and keep a safetensors copy in the cache (reload in seconds); the CTranslate2 conversion starts
from that copy. transformers marks a GGUF-loaded model as quantised, which makes ``save_pretrained``
and ``Trainer`` refuse it even though its layers are plain fp32 Linear; clearing the quantiser marks
fixes both.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from core.devices import pick_device, pick_dtype
from core.errors import ModelUnavailableError, UserError, first_line
from core.model_files import gguf_file
from core.registry import ModelSpec, cache_dir

MAX_TWEET_CHARS = 280
# Where a base model starts the next few-shot block or echoes a label, the tweet has ended.
STOP_STRINGS = ("###", "\n\n", "\nImage description:", "\nCompany:", "\nTweet:", "<end_of_turn>", "<|im_end|>")


@dataclass
class GenerationConfig:
    max_new_tokens: int = 60
    min_new_tokens: int = 0  # benchmarks set it to max_new_tokens so every run writes the same number of tokens
    num_candidates: int = 1  # > 1 implies sampling: greedy decoding would return n copies
    do_sample: bool = False
    temperature: float = 0.8
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    no_repeat_ngram_size: int = 3
    batch_size: int = 8
    seed: int = 0


class LLM:
    """A loaded LLM: its spec, tokenizer and device, and what runs it (``engine``).

    ``model`` is the transformers module. With another engine it loads on first access (e.g. for
    LoRA training, which needs torch weights), so callers that train keep working unchanged.
    ``runner`` holds the engine's own object (a CTranslate2 generator, a server client).
    """

    def __init__(self, spec: ModelSpec, model: torch.nn.Module | None, tokenizer: object, device: str,
                 engine: str = "transformers", runner: object | None = None) -> None:
        self.spec = spec
        self._model = model
        self.tokenizer = tokenizer
        self.device = device
        self.engine = engine
        self.runner = runner

    def __repr__(self) -> str:
        return f"LLM(model={self.spec.model!r}, engine={self.engine!r}, device={self.device!r})"

    @property
    def model(self) -> torch.nn.Module:
        if self._model is None:
            from dataclasses import replace

            spec = replace(self.spec, engine="transformers", url=None, served_model=None)
            device = self.device if self.engine == "transformers" else pick_device(spec.device)
            self._model = _load_transformers(spec, device)[0]
        return self._model

    @model.setter
    def model(self, value: torch.nn.Module) -> None:
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


def strip_quantization_marks(model: torch.nn.Module) -> torch.nn.Module:
    """Let save_pretrained/Trainer accept a dequantised GGUF model (its weights are plain fp32)."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        if hasattr(model, attr):
            try:
                delattr(model, attr)
            except AttributeError:
                pass
    return model


def converted_dir(spec: ModelSpec) -> Path:
    return cache_dir() / "hf" / spec.model


def convert_gguf(spec: ModelSpec) -> Path:
    """The safetensors copy of an offline GGUF model, converting it on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = converted_dir(spec)
    if (target / ".complete").exists():
        return target
    source = gguf_file(spec)
    print(f"converting {spec.model} from GGUF to safetensors (once, ~1 min)…", file=sys.stderr, flush=True)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    strip_quantization_marks(model)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / ".complete").write_text(source.name)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _load_model(spec: ModelSpec, device: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = str(convert_gguf(spec)) if spec.backend == "gguf" else spec.model
    kwargs: dict = {"dtype": pick_dtype(device, spec.dtype)}
    if spec.load_in_4bit:
        if not device.startswith("cuda"):
            raise UserError("4-bit loading needs a CUDA GPU; drop --4bit on this machine")
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=kwargs["dtype"]
        )
        kwargs["device_map"] = {"": device}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, token=os.environ.get("HF_TOKEN"))
        model = AutoModelForCausalLM.from_pretrained(folder, token=os.environ.get("HF_TOKEN"), **kwargs)
    except OSError as exc:
        raise ModelUnavailableError(
            f"LLM {spec.model!r} cannot be loaded: {first_line(exc)}. Offline, pick one of the "
            "offline profile's LLMs (gemma-3-270m, qwen2.5-0.5b, smollm2-135m); gated hub models need HF_TOKEN."
        ) from None
    if not spec.load_in_4bit:
        model.to(device)
    return model, tokenizer


def load_llm(spec: ModelSpec) -> LLM:
    """The LLM for ``spec`` on its engine (``spec.engine``; empty means transformers)."""
    if spec.engine == "ctranslate2":
        from core.stages import llm_ct2

        runner, device = llm_ct2.load(spec)
        return LLM(spec=spec, model=None, tokenizer=runner.tokenizer, device=device, engine="ctranslate2",
                   runner=runner)
    if spec.engine == "openai":
        from core.stages import llm_openai

        client = llm_openai.connect(spec)
        return LLM(spec=spec, model=None, tokenizer=client.tokenizer, device="server", engine="openai",
                   runner=client)
    device = pick_device(spec.device)
    model, tokenizer = _load_transformers(spec, device)
    return LLM(spec=spec, model=model, tokenizer=tokenizer, device=device)


def _load_transformers(spec: ModelSpec, device: str):
    """The transformers model (adapter merged) and its tokenizer, ready for batched generation."""
    model, tokenizer = _load_model(spec, device)
    if spec.adapter:
        from peft import PeftModel

        if not (Path(spec.adapter) / "adapter_config.json").is_file():
            raise UserError(f"{spec.adapter}: not a LoRA adapter folder (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, spec.adapter)
        if not spec.load_in_4bit:
            model = model.merge_and_unload()  # merged weights generate as fast as the base model
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"  # batched generation continues every prompt from its last token
    model.eval()
    return model, tokenizer


_LABEL = re.compile(r"^\s*(tweet|answer|response)\s*:\s*", re.IGNORECASE)
# Models split the dump's placeholders into pieces ("<hyper link>"); references keep them whole.
_PLACEHOLDERS = ((re.compile(r"<\s*hyper\s*-?\s*link\s*>", re.I), "<hyperlink>"),
                 (re.compile(r"<\s*men\s*tion\s*>", re.I), "<mention>"))
_QUOTES = "\"'“”‘’«»"


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
    text = " ".join(text.split())
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


class _StopOnStrings(StoppingCriteria):
    """Stop each sequence once its new text contains a stop string.

    transformers' own ``stop_strings`` needs a tokenizer whose vocabulary it can map back to
    strings with a prefix trick, which fails on word-level tokenizers; decoding is cheap here.
    """

    def __init__(self, tokenizer, prompt_length: int, min_new_tokens: int = 0) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.min_new_tokens = min_new_tokens

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        if input_ids.shape[1] - self.prompt_length < self.min_new_tokens:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=False)
        done = [any(t.lstrip().find(stop) > 0 for stop in STOP_STRINGS) for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class _NoRepeatNewNGrams(LogitsProcessor):
    """Ban n-grams repeated within the *generated* text only.

    transformers' ``no_repeat_ngram_size`` also counts the prompt, so a model asked to weave the
    image's text into the tweet could never copy a 3-token run from it ("50% OFF" came out as "5% off").
    """

    def __init__(self, n: int, prompt_length: int) -> None:
        self.n = n
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for i, row in enumerate(input_ids[:, self.prompt_length:].tolist()):
            if len(row) < self.n - 1:
                continue
            prefix = tuple(row[len(row) - self.n + 1:])
            starts = range(len(row) - self.n + 1)
            banned = [row[j + self.n - 1] for j in starts if tuple(row[j:j + self.n - 1]) == prefix]
            if banned:
                scores[i, banned] = -float("inf")
        return scores


def _generate_batch(
    llm: LLM, prompts: list[str], cfg: GenerationConfig, stats: dict | None, scores: bool = False
) -> list[list[tuple[str, float | None]]]:
    tok = llm.tokenizer
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=llm.prompt_style != "chat")
    enc = {k: v.to(llm.device) for k, v in enc.items()}
    n = max(1, cfg.num_candidates)
    sample = cfg.do_sample or n > 1
    kwargs = dict(
        max_new_tokens=cfg.max_new_tokens,
        do_sample=sample,
        num_return_sequences=n,
        repetition_penalty=cfg.repetition_penalty,
        pad_token_id=tok.pad_token_id,
        min_new_tokens=cfg.min_new_tokens or None,
        stopping_criteria=StoppingCriteriaList([_StopOnStrings(tok, enc["input_ids"].shape[1], cfg.min_new_tokens)]),
    )
    if sample:
        kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p)
    if cfg.no_repeat_ngram_size:
        kwargs["logits_processor"] = LogitsProcessorList(
            [_NoRepeatNewNGrams(cfg.no_repeat_ngram_size, enc["input_ids"].shape[1])]
        )
    if scores:  # keeps one vocabulary-sized row per step and sequence: only when a caller ranks by it
        kwargs.update(output_scores=True, return_dict_in_generate=True)
    model = llm.model
    with torch.inference_mode():
        out = model.generate(**enc, **kwargs)
    sequences = out.sequences if scores else out
    new_tokens = sequences[:, enc["input_ids"].shape[1]:]
    written = new_tokens != tok.pad_token_id
    if stats is not None:  # tokens actually written (padding after a sequence ended is not work done)
        stats["new_tokens"] = stats.get("new_tokens", 0) + int(written.sum())
    logprobs: list[float | None] = [None] * len(new_tokens)
    if scores:
        steps = model.compute_transition_scores(sequences, out.scores, normalize_logits=True)
        steps = torch.where(written[:, : steps.shape[1]], steps, torch.zeros_like(steps))
        counts = written.sum(dim=1).clamp(min=1)
        logprobs = (steps.sum(dim=1) / counts).tolist()
    texts = tok.batch_decode(new_tokens, skip_special_tokens=True)
    pairs = list(zip(texts, logprobs, strict=True))
    return [pairs[i * n:(i + 1) * n] for i in range(len(prompts))]


def generate_scored(
    llm: LLM,
    prompts: list[str],
    cfg: GenerationConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    stats: dict | None = None,
    *,
    scores: bool = True,
) -> list[list[tuple[str, float | None]]]:
    """Candidates for each prompt as ``(tweet, mean log-probability per generated token)``, best engine-side.

    The log-probability is the model's own (after repetition penalty and the n-gram ban, before
    temperature), averaged over the tokens written up to the stop, so a caller can rank candidates
    or break ties by likelihood; it is ``None`` where the engine gives none (a server without
    ``logprobs``) or ``scores`` is False. Tweets are cleaned (``clean_tweet``) as ``generate`` returns them.
    """
    cfg = cfg or GenerationConfig()
    if llm.engine == "ctranslate2":
        from core.stages import llm_ct2

        raw = llm_ct2.generate(llm, prompts, cfg, progress, stats, STOP_STRINGS, scores=scores)
    elif llm.engine == "openai":
        from core.stages import llm_openai

        raw = llm_openai.generate(llm, prompts, cfg, progress, stats, STOP_STRINGS, scores=scores)
    else:
        torch.manual_seed(cfg.seed)
        raw = []
        for start in range(0, len(prompts), max(1, cfg.batch_size)):
            raw.extend(_generate_batch(llm, prompts[start:start + cfg.batch_size], cfg, stats, scores))
            if progress:
                progress(len(raw), len(prompts))
    return [[(clean_tweet(text), logprob) for text, logprob in row] for row in raw]


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
