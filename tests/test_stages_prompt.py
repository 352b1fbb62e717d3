from core.stages.prompt import DEFAULT_EXAMPLES, TweetContext, build_prompt, fields_block, likes_bucket

CTX = TweetContext(
    company="Nike", username="@nike", date="2023-06-01 10:00", likes=350,
    caption="a photo of a running shoe", ocr_text="SUMMER SALE\n50% OFF", transcript="",
)


def test_likes_buckets_are_log_scale():
    assert [likes_bucket(v) for v in (0, 9, 10, 99, 100, 5000, 20000)] == [
        "very low", "very low", "low", "low", "medium", "high", "very high",
    ]
    assert likes_bucket(None) is None and likes_bucket(float("nan")) is None


def test_fields_are_labelled_and_empty_ones_left_out():
    block = fields_block(CTX)
    assert "Image description: a photo of a running shoe" in block
    assert "Text in the image: SUMMER SALE 50% OFF" in block  # newlines folded
    assert "Audio transcript" not in block
    assert "Username: @nike" in block and "@@" not in block
    assert "Engagement: this tweet gets medium likes (350)" in block
    assert "Engagement" not in fields_block(TweetContext("Nike", "nike", "2023"))


def test_few_shot_prompt_ends_open_after_the_examples():
    prompt = build_prompt(CTX, "few-shot")
    assert prompt.endswith("Tweet:")
    assert prompt.count("Tweet:") == len(DEFAULT_EXAMPLES) + 1
    assert prompt.index(DEFAULT_EXAMPLES[0][1]) < prompt.index("Company: Nike")
    assert "write a sentence of your own around its words" in prompt


def test_long_ocr_is_clipped():
    long = TweetContext("A", "a", "2023", ocr_text="word " * 500)
    assert len(fields_block(long)) < 600


def test_chat_style_uses_the_tokenizer_template(tmp_path):
    from tests.tiny_models import word_tokenizer

    tok = word_tokenizer({"unk_token": "<unk>", "eos_token": "</s>"})
    tok.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"
    prompt = build_prompt(CTX, "chat", tok)
    assert prompt.startswith("<|user|>") and prompt.endswith("<|assistant|>")
    assert "Company: Nike" in prompt


def test_brand_examples_come_after_the_static_prefix_just_before_the_target():
    from dataclasses import replace

    plain = build_prompt(CTX, "few-shot")
    with_history = build_prompt(replace(CTX, brand_examples=("Just do it. #Nike", "Run on. #Nike"),
                                        style="hashtag #Nike"), "few-shot")
    prefix = plain[: plain.index("Image description: a photo of a running shoe")]
    assert with_history.startswith(prefix)  # the cacheable prefix (role, instruction, examples) is unchanged
    block = with_history[len(prefix):]
    assert block.startswith("Recent tweets by @nike (copy their voice, not their facts):\n- Just do it. #Nike\n")
    assert block.index("Style: hashtag #Nike") < block.index("Text in the image: SUMMER SALE")
    assert with_history.endswith("Tweet:") and with_history.count("Tweet:") == plain.count("Tweet:")
    assert "Recent tweets by" in build_prompt(replace(CTX, brand_examples=("a",)), "zero-shot")
    # Placeholders are dropped from the examples (shown, the small model answered with a bare "<hyperlink>").
    shown = build_prompt(replace(CTX, brand_examples=("<mention> Run on. #Nike <hyperlink>",)), "few-shot")
    assert "- Run on. #Nike\n" in shown
