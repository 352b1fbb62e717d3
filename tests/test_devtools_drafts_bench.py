"""``core.devtools.drafts_bench``: the default draft against one greedy tweet on a generated brand dump's rows.

The LLM is the stub engine (tests/stub_engine.py): what is checked is the bench's bookkeeping (each setting on
every row, the second looks counted, ratios against the greedy setting), not a speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.devtools.brand_dump import make_brand_dump
from core.devtools.drafts_bench import SETTINGS, bench_drafts, drafts_table
from tests.stub_engine import Script, stub_llm


@pytest.mark.slow
def test_every_setting_runs_on_every_row_and_second_looks_are_counted(pipeline, monkeypatch, tmp_path: Path):
    from core.pipeline import Pipeline

    make_brand_dump(tmp_path, n_brands=2, n_history=10, n_test=3, seed=5)
    script = Script(greedy="ok", sampled=["a sentence of its own about the post", "another sentence about it",
                                          "a third sentence for the post"])  # "ok" is no tweet: a second look
    llm = stub_llm(monkeypatch, pipeline.specs["llm"], script)
    stub = Pipeline(dict(pipeline.specs), loader=lambda spec: llm if spec.task == "llm" else pipeline.model(spec.task))
    result = bench_drafts(stub, tmp_path, max_new_tokens=20)  # the 3 later posts
    parts = [result[kind] for kind in ("poster", "photo") if kind in result]
    assert sum(part["rows"] for part in parts) == 3 and all(part["second_looks"] == part["rows"] for part in parts)
    for part in parts:
        assert set(part["wall_s"]) == set(SETTINGS) and part["cpu_ratio"]["one greedy tweet"] == 1.0
    # per row: greedy (1 call), default (greedy + second look: 2 calls), 3 sampled (1 call)
    assert len(script.calls) == 3 * 4
    greedy_calls = [cfg for _, cfg in script.calls[::4]]
    assert all(not cfg.facts_first and cfg.second_look == 0 for cfg in greedy_calls)
    for part in parts:
        assert f"second look taken on {part['rows']} of {part['rows']}" in drafts_table(result)
