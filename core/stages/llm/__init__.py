"""The tweet writer: engine-free settings and cleaning (``base``), one module per engine (``ct2``, ``hf``,
``openai_api``), and the tokenizer that spares the CTranslate2 path a transformers import.
"""

from core.stages.llm.base import (
    ENGINES,
    LLM,
    MAX_TWEET_CHARS,
    STOP_STRINGS,
    Engine,
    GenerationConfig,
    Scored,
    clean_tweet,
    engine,
    generate,
    generate_scored,
    load_llm,
)

__all__ = [
    "ENGINES",
    "LLM",
    "MAX_TWEET_CHARS",
    "STOP_STRINGS",
    "Engine",
    "GenerationConfig",
    "Scored",
    "clean_tweet",
    "engine",
    "generate",
    "generate_scored",
    "load_llm",
]
