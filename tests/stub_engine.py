"""A stub LLM engine at the engine seam (``core.stages.llm.base.ENGINES``): the test writes the candidates.

Tests of the logic around the LLM (second look, copy filter, ranking, brand kit) build their situation with
this engine instead of pinning what a real model writes, which changes with the CPU's int8 kernels. It is a
module satisfying :class:`core.stages.llm.base.Engine` like the real ones; :func:`stub_llm` registers it
under ``ENGINES["stub"]`` for one test (``monkeypatch``) and returns an :class:`LLM` whose ``runner`` is the
:class:`Script` the test wrote. Only the LLM is stubbed: the other stages run their real models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.registry import ModelSpec
from core.stages.llm import ENGINES, LLM, GenerationConfig

NAME = "stub"
# What a base model writes after its tweet: the engines return raw text, generate_scored cleans it.
RAW_TAIL = "\n\n###\n\nImage description: the next block"


@dataclass
class Script:
    """What the stub writes: ``greedy`` for a greedy call, the first ``num_candidates`` of ``sampled`` for a
    sampling call (with ``logprobs`` alike), for every prompt; every call is recorded in ``calls``."""

    greedy: str
    sampled: list[str] = field(default_factory=list)
    greedy_logprob: float = -0.5
    logprobs: list[float] = field(default_factory=list)
    calls: list[tuple[list[str], GenerationConfig]] = field(default_factory=list)

    def sampling_calls(self) -> list[GenerationConfig]:
        return [cfg for _, cfg in self.calls if cfg.do_sample or cfg.num_candidates > 1]


def load(spec: ModelSpec) -> LLM:
    raise AssertionError("the stub engine is built by tests.stub_engine.stub_llm, never loaded from a spec")


def generate(llm: LLM, prompts: list[str], cfg: GenerationConfig, progress: Callable[[int, int], None] | None,
             stats: dict | None, stop_strings: tuple[str, ...], *, scores: bool = False):
    script: Script = llm.runner
    script.calls.append((list(prompts), cfg))
    n = max(1, cfg.num_candidates)
    if cfg.do_sample or n > 1:
        if len(script.sampled) < n:
            raise AssertionError(f"the script has {len(script.sampled)} sampled candidates, {n} were asked for")
        logprobs = script.logprobs or [-1.0] * len(script.sampled)
        row = [(" " + text + RAW_TAIL, lp) for text, lp in zip(script.sampled[:n], logprobs[:n], strict=True)]
    else:
        row = [(" " + script.greedy + RAW_TAIL, script.greedy_logprob)]
    if progress:
        progress(len(prompts), len(prompts))
    return [[(text, lp if scores else None) for text, lp in row] for _ in prompts]


def stub_llm(monkeypatch, spec: ModelSpec, script: Script) -> LLM:
    """An LLM on the stub engine for ``spec`` (its prompt style and name), writing what ``script`` says."""
    monkeypatch.setitem(ENGINES, NAME, __name__)
    return LLM(spec=spec, model=None, tokenizer=None, device="cpu", engine=NAME, runner=script)
