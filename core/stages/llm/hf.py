"""The ``transformers`` engine for the tweet LLM: fp32/fp16 torch weights, hub models, 4-bit, LoRA adapters.

It is the engine training uses (torch weights a LoRA can attach to) and the one hub models run on by
default. Generation runs ``cfg.batch_size`` prompts at a time, left-padded, with the stop strings and
an n-gram ban that only looks at the generated text, so its tweets compare with the other engines'.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from core.devices import pick_device, pick_dtype
from core.errors import ModelUnavailableError, UserError, first_line
from core.model_files import convert_gguf
from core.registry import ModelSpec
from core.stages.llm import LLM, STOP_STRINGS, GenerationConfig, Scored


def load(spec: ModelSpec) -> LLM:
    """The model (adapter merged) on ``spec.device``, wrapped as an :class:`LLM`."""
    device = pick_device(spec.device)
    model, tokenizer = load_weights(spec, device)
    return LLM(spec=spec, model=model, tokenizer=tokenizer, device=device)


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


def load_weights(spec: ModelSpec, device: str):
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


def generate(
    llm: LLM,
    prompts: list[str],
    cfg: GenerationConfig,
    progress: Callable[[int, int], None] | None = None,
    stats: dict | None = None,
    stop_strings: tuple[str, ...] = STOP_STRINGS,
    *,
    scores: bool = False,
) -> Scored:
    """Raw candidates, ``cfg.batch_size`` prompts per ``model.generate`` call (stop strings: ``STOP_STRINGS``)."""
    torch.manual_seed(cfg.seed)
    raw: Scored = []
    for start in range(0, len(prompts), max(1, cfg.batch_size)):
        raw.extend(_generate_batch(llm, prompts[start:start + cfg.batch_size], cfg, stats, scores))
        if progress:
            progress(len(raw), len(prompts))
    return raw
