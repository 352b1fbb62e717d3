"""The CTranslate2 engine: conversion cache, adapters, broken caches, and the real Gemma path (slow).

The fast tests convert a tiny random Llama built from a config (tests/tiny_models.py) into a
temporary cache; the slow ones use the session's default LLM, which runs on this engine.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import ModelUnavailableError, UserError
from core.registry import resolve
from core.stages.llm import STOP_STRINGS, GenerationConfig, clean_tweet, generate, generate_scored, load_llm
from core.stages.llm import ct2 as llm_ct2
from core.stages.prompt import TweetContext, build_prompt

MAX_TOKEN_CHARS = 32  # a generous bound on the characters of one Gemma token
TINY_PROMPTS = ["a photo of a red circle on", "summer sale on all running shoes", "our new coffee opens on monday"]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    from tests.tiny_models import tiny_causal_lm

    return tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "tiny-llama")


def _spec(model: Path, adapter: Path | None = None):
    return resolve("llm", str(model), adapter=str(adapter) if adapter else None, device="cpu", engine="ctranslate2")


def test_a_hub_style_model_converts_once_and_writes(cache, tiny_base):
    spec = _spec(tiny_base)
    llm = load_llm(spec)
    assert llm.engine == "ctranslate2" and llm.device == "cpu"
    folder = llm.runner.folder
    assert folder.parent == cache / "ct2" and folder.name.endswith("-int8") and llm_ct2.is_complete(folder)
    assert (folder / "tokenizer.json").is_file()  # self-contained: the tokenizer travels with the weights
    stats: dict = {}
    out = generate(llm, TINY_PROMPTS, GenerationConfig(max_new_tokens=6, batch_size=2), stats=stats)
    assert len(out) == 3 and all(len(c) == 1 and isinstance(c[0], str) for c in out)
    assert 0 < stats["new_tokens"] <= 3 * 6
    stamp = (folder / "model.bin").stat().st_mtime_ns
    load_llm(spec)
    assert (folder / "model.bin").stat().st_mtime_ns == stamp, "a complete conversion is reused"


def test_forced_tokens_candidates_and_scores(cache, tiny_base):
    llm = load_llm(_spec(tiny_base))
    stats: dict = {}
    generate(llm, TINY_PROMPTS[:2], GenerationConfig(max_new_tokens=7, min_new_tokens=7, batch_size=2), stats=stats)
    assert stats["new_tokens"] == 2 * 7  # the bench forces a length like transformers' min_new_tokens
    (cands,) = generate_scored(llm, TINY_PROMPTS[:1], GenerationConfig(max_new_tokens=8, num_candidates=3, seed=3))
    assert len(cands) == 3
    assert all(isinstance(text, str) and isinstance(score, float) and score <= 0 for text, score in cands)


def test_no_repeated_trigram_in_the_generated_text(cache, tiny_base):
    """A random tiny model loops at once; the ban keeps any 3-token run from appearing twice in new text."""
    llm = load_llm(_spec(tiny_base))
    cfg = GenerationConfig(max_new_tokens=24, min_new_tokens=24, no_repeat_ngram_size=3, repetition_penalty=1.0)
    runner = llm.runner
    tokens = runner.tokenizer.convert_ids_to_tokens(runner.tokenizer.encode(TINY_PROMPTS[1]))
    result = runner.generator.generate_batch(
        [tokens], include_prompt_in_result=False, max_length=24, min_length=24, no_repeat_ngram_size=3)[0]
    ids = result.sequences_ids[0]
    trigrams = [tuple(ids[i:i + 3]) for i in range(len(ids) - 2)]
    assert len(trigrams) == len(set(trigrams))
    assert generate(llm, TINY_PROMPTS[1:2], cfg)[0][0] is not None


def test_the_lazy_transformers_model_serves_training(cache, tiny_base):
    """Callers that need torch weights (LoRA training) get them from the same LLM object."""
    import torch

    llm = load_llm(_spec(tiny_base))
    assert isinstance(llm.model, torch.nn.Module)


def test_a_corrupt_or_partial_conversion_is_rebuilt(cache, tiny_base):
    spec = _spec(tiny_base)
    folder = load_llm(spec).runner.folder
    good = (folder / "model.bin").read_bytes()

    (folder / "model.bin").write_bytes(good[: len(good) // 2])  # truncated: the recorded size says so
    assert not llm_ct2.is_complete(folder)
    assert len(generate(load_llm(spec), TINY_PROMPTS[:1], GenerationConfig(max_new_tokens=3))) == 1
    assert (folder / "model.bin").read_bytes() == good

    (folder / "config.json").unlink()
    load_llm(spec)
    assert (folder / "config.json").is_file()

    (folder / "model.bin").write_bytes(b"\0" * len(good))  # right size, garbage inside: fails to load, rebuilt
    assert llm_ct2.is_complete(folder)
    load_llm(spec)
    assert (folder / "model.bin").read_bytes() == good


def test_an_unconvertible_model_is_one_line_naming_the_fallback(cache, tmp_path):
    from tests.tiny_models import tiny_vit_gpt2

    folder = tiny_vit_gpt2(tmp_path / "captioner")  # an encoder-decoder: not a causal LM
    with pytest.raises(ModelUnavailableError, match="--backend transformers") as info:
        load_llm(_spec(folder))
    assert "\n" not in str(info.value)
    assert not any(p.name.endswith(".tmp") for p in (cache / "ct2").iterdir()), "no half-written folder left"


def test_a_lora_adapter_is_merged_converted_and_cached_by_its_hash(cache, tiny_base, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_base),
                                LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # lora_B starts at zero, which would merge into the base weights unchanged
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 2.0)
    peft_model.save_pretrained(tmp_path / "adapter")

    tuned = load_llm(_spec(tiny_base, tmp_path / "adapter"))
    digest = llm_ct2.adapter_hash(tmp_path / "adapter")[:12]
    assert digest in tuned.runner.folder.name and llm_ct2.is_complete(tuned.runner.folder)
    base = load_llm(_spec(tiny_base))
    assert base.runner.folder != tuned.runner.folder
    cfg = GenerationConfig(max_new_tokens=8, min_new_tokens=8, repetition_penalty=1.0, no_repeat_ngram_size=0)
    assert generate(tuned, TINY_PROMPTS, cfg) != generate(base, TINY_PROMPTS, cfg), "the merge took effect"
    assert not list(cache.glob("ct2/.merge-*")), "the merged fp32 copy is not kept"

    with pytest.raises(UserError, match="adapter"):
        load_llm(_spec(tiny_base, tmp_path))  # a folder without adapter_config.json


def test_rows_are_batched_by_length_within_the_spread():
    lengths = [70, 60, 61, 75, 90, 62]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    chunks = llm_ct2._chunks(order, lengths, batch_size=2)
    assert chunks == [[1, 2], [5, 0], [3], [4]]
    assert all(max(lengths[i] for i in c) - min(lengths[i] for i in c) <= llm_ct2.MAX_SUFFIX_SPREAD for c in chunks)


# --------------------------------------------------------------------------- the real default LLM


def _contexts() -> list[TweetContext]:
    return [
        TweetContext("Starbucks", "starbucks", "2023-09-01 08:00", ocr_text="Pumpkin Spice is back"),
        TweetContext("Tesla", "tesla", "2023-03-01 18:00", likes=20000, caption="a photo of a sports car"),
        TweetContext("Adidas", "adidas", "2022-06-08 12:00", ocr_text="Run for the oceans"),
    ]


@pytest.fixture(scope="module")
def gemma(llm):
    if llm.engine != "ctranslate2":
        pytest.skip("the session's LLM runs on another engine (M2T_LLM_BACKEND)")
    return llm


@pytest.mark.slow
def test_gemma_stops_at_the_stop_strings_and_caches_the_few_shot_prefix(gemma):
    """A batch of real prompts: what holds for whatever Gemma writes (its words change with the CPU's int8 kernels)."""
    prompts = [build_prompt(c, gemma.prompt_style, gemma.tokenizer) for c in _contexts()]
    cfg = GenerationConfig(max_new_tokens=60, batch_size=3)
    raw = llm_ct2.generate(gemma, prompts, cfg, None, None, STOP_STRINGS)
    tweets = generate(gemma, prompts, cfg)
    # ``generate`` is the engine's raw text (the same call in one process: the same text), cleaned.
    assert tweets == [[clean_tweet(text) for text, _ in row] for row in raw]
    longest = max(len(s) for s in STOP_STRINGS)
    for ((text, _),), (tweet,) in zip(raw, tweets, strict=True):
        assert tweet and len(tweet) <= 280
        assert not any(s in tweet for s in STOP_STRINGS), tweet
        # A row that met a stop string ended there: at most the rest of that token follows it.
        body = text.lstrip()
        first = min((i for i in (body.find(s) for s in STOP_STRINGS) if i > 0), default=len(body))
        assert len(body) - first <= longest + MAX_TOKEN_CHARS, text
    # The few-shot part (everything before the post's own block) is one cached static prompt.
    tok = gemma.tokenizer
    static = prompts[0][: prompts[0].rfind(llm_ct2.BLOCK_SEPARATOR) + len(llm_ct2.BLOCK_SEPARATOR)]
    expected = tuple(tok.convert_ids_to_tokens(tok.encode(static))[:-1])
    assert expected in gemma.runner.prefixes and expected[0] == "<bos>" and len(expected) > 200


def _stop_taken_from(free: str) -> str:
    """A stop string taken from the second half of ``free``: two characters whose first occurrence in the stripped
    text is past its first character (the engines' rule), so a run that writes ``free`` must stop there."""
    body = free.lstrip()
    for k in range(len(body) // 2, len(body) - 1):
        if body.find(body[k:k + 2]) > 0:
            return body[k:k + 2]
    raise AssertionError(f"no stop string to take from {free!r}")


@pytest.mark.slow
def test_gemma_stops_right_after_the_first_stop_string(gemma):
    """Stopping, exactly, for whatever Gemma writes: the stop string is taken from its own text written without any,
    so the stopped text is that text up to the token that completes the stop string's first occurrence, and one
    token fewer would not hold it. Each prompt runs alone, so every run computes the same steps."""
    prompts = [build_prompt(c, gemma.prompt_style, gemma.tokenizer) for c in _contexts()[:2]]
    cfg = GenerationConfig(max_new_tokens=32, batch_size=1)
    for prompt in prompts:
        free = llm_ct2.generate(gemma, [prompt], cfg, None, None, ())[0][0][0]
        assert llm_ct2.generate(gemma, [prompt], cfg, None, None, ())[0][0][0] == free  # deterministic
        stop = _stop_taken_from(free)
        stats: dict = {}
        stopped = llm_ct2.generate(gemma, [prompt], cfg, None, stats, (stop,))[0][0][0]
        assert free.startswith(stopped), (free, stopped, stop)
        assert stopped.lstrip().find(stop) == free.lstrip().find(stop) > 0, (free, stopped, stop)
        written = stats["new_tokens"]
        if written > 1:
            shorter = llm_ct2.generate(gemma, [prompt], replace(cfg, max_new_tokens=written - 1), None, None, ())
            assert shorter[0][0][0].lstrip().find(stop) <= 0, (free, shorter, stop)


@pytest.mark.slow
def test_gemma_candidates_are_sampled_with_scores(gemma):
    prompt = build_prompt(_contexts()[0], gemma.prompt_style, gemma.tokenizer)
    (cands,) = generate_scored(gemma, [prompt], GenerationConfig(max_new_tokens=24, num_candidates=3, seed=1))
    # Three candidates, each with its mean log-probability. That samples differ is checked on the tiny model
    # (test_both_local_engines_score_candidates_the_same_way): Gemma may sample one likely tweet twice.
    assert len(cands) == 3
    assert all(isinstance(t, str) and len(t) <= 280 and isinstance(s, float) and s <= 0 for t, s in cands)


@pytest.mark.slow
def test_gemma_may_copy_the_prompt_but_not_repeat_itself(gemma):
    """no_repeat_ngram_size counts the generated text only, as on the transformers path.

    The one place a real model's words are asserted: continuing a pattern shown three times is a copy task with
    a wide margin (" D" after "A B C": log-probability -0.01, the next token -6.05 in fp32), not a near tie; with
    the prompt's trigrams banned the model could not write it."""
    prompt = "A B C D E F\nA B C D E F\nA B C D E F\nA B C"
    cfg = GenerationConfig(max_new_tokens=10, repetition_penalty=1.0, no_repeat_ngram_size=3)
    raw = llm_ct2.generate(gemma, [prompt], cfg, None, None, ())
    text = raw[0][0][0]
    assert text.startswith(" D E F"), text  # the prompt's trigrams may be continued
    ids = gemma.tokenizer.encode(text, add_special_tokens=False)
    trigrams = [tuple(ids[i:i + 3]) for i in range(len(ids) - 2)]
    assert len(trigrams) == len(set(trigrams))


def test_converted_marker_records_what_was_converted(cache, tiny_base):
    folder = load_llm(_spec(tiny_base)).runner.folder
    marker = json.loads((folder / llm_ct2.COMPLETE).read_text())
    assert marker["quantization"] == "int8" and marker["model_bin_bytes"] == (folder / "model.bin").stat().st_size


def test_both_local_engines_score_candidates_the_same_way(cache, tiny_base):
    """``generate_scored`` gives (tweet, mean log-prob per token) on transformers too; ``generate`` only text.

    Candidates are sampled: the random tiny model's next-token distribution is near uniform over its words, so
    three samples of six words (no end token before them) are distinct on any CPU but for a ~1e-8 chance."""
    cfg = GenerationConfig(max_new_tokens=6, min_new_tokens=6, num_candidates=3, seed=0)
    for engine in ("transformers", "ctranslate2"):
        llm = load_llm(resolve("llm", str(tiny_base), device="cpu", engine=engine))
        scored = generate_scored(llm, TINY_PROMPTS[:2], cfg)
        assert [len(c) for c in scored] == [3, 3], engine
        assert all(len({t for t, _ in c}) == 3 for c in scored), (engine, scored)
        assert all(isinstance(s, float) and s <= 0 for c in scored for _, s in c), engine
        plain = generate(llm, TINY_PROMPTS[:2], cfg)
        assert all(isinstance(t, str) for c in plain for t in c), engine


def test_end_tokens_are_the_vocabulary_s_and_worked_out_once(cache, tiny_base):
    llm = load_llm(_spec(tiny_base))
    runner = llm.runner
    vocab = runner.tokenizer.get_vocab()
    expected = sorted({t for t in (*llm_ct2.END_TOKENS, runner.tokenizer.eos_token) if t and t in vocab})
    assert runner.end_tokens() == expected and expected
    runner.tokenizer = None  # a second call must not touch the tokenizer (get_vocab costs 0.38 s on Gemma)
    assert runner.end_tokens() == expected
