"""Fold what the stages found and the tweet's metadata into one instruction prompt.

The fields follow the content-simulation task (DESIGN.md §4): a role line, an instruction to
weave the image's text into the tweet, then labelled fields. Engagement is stated in words
(a log-scale likes bucket) so one model can write for a target engagement. Base models get a
few-shot completion prompt (they loop without examples); instruct models get their chat template.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_FIELD_CHARS = 400  # long OCR/transcripts crowd out the examples in a small context
ROLE = (
    "You are the social media manager of {company}. Write one engaging, human-sounding tweet "
    "for the account @{username}."
)
# "write a sentence of your own around its words", not "weave its words into the tweet": with the latter Gemma-3-270m
# often answered with the poster's words alone, in capitals (see docs/brand-voice.md, "A prompt the model follows").
INSTRUCTION = (
    "Use the details below. If the image contains text, write a sentence of your own around its words. "
    "Keep it under 280 characters, use at most two emojis, and do not repeat the labels."
)
# Upper bounds (exclusive) of each bucket; likes in dumps are skewed (median ~73), so log-scale steps.
LIKES_BUCKETS = ((10, "very low"), (100, "low"), (1_000, "medium"), (10_000, "high"), (math.inf, "very high"))


@dataclass(frozen=True)
class TweetContext:
    company: str
    username: str
    date: str
    likes: int | None = None
    caption: str = ""
    ocr_text: str = ""
    transcript: str = ""
    # The brand's own earlier tweets (history retrieval) and its habits as one "Style:" line.
    brand_examples: tuple[str, ...] = ()
    style: str = ""


def likes_bucket(likes: int | float | None) -> str | None:
    if likes is None or (isinstance(likes, float) and math.isnan(likes)):
        return None
    for bound, name in LIKES_BUCKETS:
        if likes < bound:
            return name
    return LIKES_BUCKETS[-1][1]


def _clip(text: str) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= MAX_FIELD_CHARS else text[: MAX_FIELD_CHARS - 1].rstrip() + "…"


def fields_block(ctx: TweetContext) -> str:
    """Labelled fields; empty media fields are left out so the model does not echo "none"."""
    lines = []
    for label, value in (
        ("Image description", ctx.caption),
        ("Text in the image", ctx.ocr_text),
        ("Audio transcript", ctx.transcript),
    ):
        if _clip(value):
            lines.append(f"{label}: {_clip(value)}")
    lines += [f"Company: {ctx.company}", f"Username: @{ctx.username.lstrip('@')}", f"Date and time: {ctx.date}"]
    bucket = likes_bucket(ctx.likes)
    if bucket:
        lines.append(f"Engagement: this tweet gets {bucket} likes ({int(ctx.likes)})")
    return "\n".join(lines)


_PLACEHOLDERS = re.compile(r"\s*<\s*(?:hyperlink|mention)\s*>\s*", re.I)


def history_block(ctx: TweetContext) -> str:
    """The brand's earlier tweets as a list, framed as voice to copy (not facts), or "" without any."""
    if not ctx.brand_examples and not ctx.style:
        return ""
    lines = []
    if ctx.brand_examples:
        lines.append(f"Recent tweets by @{ctx.username.lstrip('@')} (copy their voice, not their facts):")
        # Without their <hyperlink>/<mention> placeholders: shown with them, Gemma-3-270m often answered with a
        # bare "<hyperlink>" (time split, 40 rows: ROUGE-L 43.5 -> 56.7, voice 48 -> 73 %, fact use 53 -> 75 %).
        lines += [f"- {_clip(_PLACEHOLDERS.sub(' ', t))}" for t in ctx.brand_examples]
    if ctx.style:
        lines.append(f"Style: {ctx.style}")
    return "\n".join(lines)


def target_block(ctx: TweetContext) -> str:
    """The post's own fields, after its brand's voice: the facts come last, nearest the tweet."""
    history = history_block(ctx)
    return f"{history}\n\n{fields_block(ctx)}" if history else fields_block(ctx)


def instruction(ctx: TweetContext) -> str:
    role = ROLE.format(company=ctx.company, username=ctx.username.lstrip("@"))
    return f"{role} {INSTRUCTION}\n\n{target_block(ctx)}"


# Hand-written examples in the dump's own style (placeholders included), used when the caller has none.
DEFAULT_EXAMPLES: tuple[tuple[TweetContext, str], ...] = (
    (
        TweetContext(
            company="Blue Bottle Coffee",
            username="bluebottleroast",
            date="2021-05-14 09:30",
            likes=240,
            caption="a photo of an espresso",
            ocr_text="NEW Cold Brew Tonic",
        ),
        "Meet our NEW Cold Brew Tonic ☕✨ bright, bubbly and ready for sunny mornings. Find it in cafés "
        "today <hyperlink>",
    ),
    (
        TweetContext(
            company="Volvo Cars",
            username="volvocars",
            date="2022-11-02 17:05",
            likes=1800,
            caption="a photo of a sports car",
            ocr_text="EX90 Safety first",
        ),
        "Safety first, always. The fully electric EX90 is built to protect what matters most. Take a closer "
        "look with <mention> <hyperlink>",
    ),
    (  # a photo whose subject the captioner was unsure of (the caption gate): a sentence that names no subject
        TweetContext(
            company="Harbor Books",
            username="harborbooks",
            date="2022-03-10 16:00",
            likes=90,
            caption="a photo",
        ),
        "Rainy afternoons were made for a good book and a warm corner. Come and find yours this weekend. "
        "Happy reading! 📚",
    ),
)


FEW_SHOT_ROLE = "Tweets written by brands' social media managers: engaging, human-sounding, one tweet per brief."


def few_shot_prompt(ctx: TweetContext, examples: tuple[tuple[TweetContext, str], ...] = DEFAULT_EXAMPLES) -> str:
    """A completion prompt: the instruction once, examples, then the target's fields with ``Tweet:`` left open.

    Stating the instruction once rather than per example cut the prompt from ~490 to ~310 tokens
    (a faster prefill on CPU) with tweets of the same quality from Gemma-3-270m.
    """
    blocks = [f"{fields_block(ex)}\nTweet: {tweet}" for ex, tweet in examples]
    blocks.append(f"{target_block(ctx)}\nTweet:")  # the static prefix above stays the same for every post
    return f"{FEW_SHOT_ROLE} {INSTRUCTION}\n\n" + "\n\n###\n\n".join(blocks)


def chat_prompt(ctx: TweetContext, tokenizer) -> str:
    """The model's own chat template, so instruct models see the format they were tuned on."""
    messages = [{"role": "user", "content": instruction(ctx) + "\n\nReply with the tweet only."}]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{messages[0]['content']}\nTweet:"


def build_prompt(
    ctx: TweetContext,
    style: str = "few-shot",
    tokenizer=None,
    examples: tuple[tuple[TweetContext, str], ...] | None = None,
) -> str:
    if style == "chat":
        return chat_prompt(ctx, tokenizer)
    if style == "zero-shot":
        return f"{instruction(ctx)}\nTweet:"
    return few_shot_prompt(ctx, DEFAULT_EXAMPLES if examples is None else examples)
