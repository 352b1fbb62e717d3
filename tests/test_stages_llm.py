import pytest

from core.errors import UserError
from core.registry import resolve
from core.stages.llm import MAX_TWEET_CHARS, STOP_STRINGS, GenerationConfig, clean_tweet, generate, load_llm
from core.stages.prompt import TweetContext, build_prompt


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (' "Big news today!" ', "Big news today!"),
        ("Tweet: Fresh bagels daily 🥯\n\n###\n\nCompany: X", "Fresh bagels daily 🥯"),
        ("Sale now on #Sale #sale #Shoes # #", "Sale now on #Sale #Shoes"),
        ("Visit <hyperlink> with <mention>", "Visit <hyperlink> with <mention>"),
        ("Shop now <hyper link> via < Mention >", "Shop now <hyperlink> via <mention>"),
        ("Free coffee for everyone! <hyp", "Free coffee for everyone!"),  # a placeholder begun, never finished
        ("Free coffee for everyone! <", "Free coffee for everyone!"),
        ("Prices < 5 dollars", "Prices < 5 dollars"),
    ],
)
def test_clean_tweet(raw, expected):
    assert clean_tweet(raw) == expected


def test_clean_tweet_strips_an_echoed_prompt_and_caps_length():
    prompt = "Company: Nike\nTweet:"
    assert clean_tweet(prompt + " Run faster.", prompt) == "Run faster."
    long = clean_tweet("word " * 100)
    assert len(long) <= 280 and long.endswith("…")


def _prompts(style="few-shot", tokenizer=None):
    contexts = [
        TweetContext("Starbucks", "starbucks", "2023-09-01 08:00", ocr_text="Pumpkin Spice is back"),
        TweetContext("Tesla", "tesla", "2023-03-01 18:00", likes=20000, caption="a photo of a sports car"),
        TweetContext("Adidas", "adidas", "2022-06-08 12:00", ocr_text="Run for the oceans"),
    ]
    return [build_prompt(c, style, tokenizer) for c in contexts]


def assert_cleaned(tweet: str) -> None:
    """What holds for any text a real LLM writes once ``generate`` has cleaned it."""
    assert len(tweet) <= MAX_TWEET_CHARS and clean_tweet(tweet) == tweet, tweet
    assert not any(s in tweet for s in STOP_STRINGS), tweet  # "\nCompany:", "###", …: no prompt leaks through


@pytest.mark.slow
def test_default_llm_writes_tweets_in_a_batch(llm):
    """The real LLM: a cleaned tweet per prompt, in the prompts' order. Its words are not pinned (they change with
    the CPU's int8 kernels), nor compared with the same prompt in another batch: CTranslate2 on Intel MKL rounds
    attention differently with the padding (OpenNMT/CTranslate2#693), so a near tie may go the other way."""
    cfg = GenerationConfig(max_new_tokens=24, batch_size=3)
    prompts = _prompts()
    batched = generate(llm, prompts, cfg)
    assert len(batched) == 3
    for (tweet,) in batched:
        assert tweet
        assert_cleaned(tweet)
    # The same rows asked in the reverse order: the same tweets (one process, the same batches), reversed.
    assert generate(llm, prompts[::-1], cfg) == batched[::-1]


@pytest.mark.slow
def test_candidates_are_sampled(llm):
    """Three cleaned candidates. That samples differ is checked on the tiny random models
    (tests/test_stages_llm_ct2.py), whose near-uniform next-token distribution makes equal samples all but
    impossible on any CPU; a real model may well sample one likely tweet three times."""
    (cands,) = generate(llm, _prompts()[:1], GenerationConfig(max_new_tokens=16, num_candidates=3, seed=1))
    assert len(cands) == 3
    for tweet in cands:
        assert_cleaned(tweet)


def test_hub_causal_lm_with_lora_adapter(tmp_path):
    """The hub path for any causal LM id/folder, plus a LoRA adapter, on a tiny local model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tests.tiny_models import tiny_causal_lm

    template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}[assistant]"
    base = tiny_causal_lm(tmp_path / "tiny-llama", chat_template=template)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=4, target_modules=["q_proj"]))
    peft_model.save_pretrained(tmp_path / "adapter")

    llm = load_llm(resolve("llm", str(base), adapter=str(tmp_path / "adapter"), device="cpu"))
    assert llm.prompt_style == "chat"
    prompts = _prompts("chat", llm.tokenizer)
    assert prompts[0].startswith("[user]")
    out = generate(llm, prompts, GenerationConfig(max_new_tokens=5, batch_size=2))
    assert len(out) == 3 and all(isinstance(c[0], str) for c in out)

    with pytest.raises(UserError, match="adapter"):
        load_llm(resolve("llm", str(base), adapter=str(tmp_path), device="cpu"))


def test_no_repeat_ngrams_counts_the_generated_text_only():
    import torch

    from core.stages.llm.hf import _NoRepeatNewNGrams

    proc = _NoRepeatNewNGrams(3, prompt_length=3)
    # The prompt (5, 6, 7) may be copied; within the new text, "1 2" was followed by 3 once, so 3 is banned.
    ids = torch.tensor([[5, 6, 7, 1, 2, 3, 1, 2], [5, 6, 7, 9, 5, 6, 7, 4]])
    scores = proc(ids, torch.zeros(2, 10))
    assert scores[0, 3] == -float("inf") and torch.isfinite(scores[0, [0, 1, 2, 4, 7]]).all()
    assert torch.isfinite(scores[1]).all()  # "5 6 7" repeats the prompt, not the new text: nothing banned
