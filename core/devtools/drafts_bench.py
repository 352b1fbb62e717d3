"""What a draft costs: ``m2t bench --drafts DIR`` on a generated brand dump's later posts, with their history.

The issue's measure: the default draft (facts-first opening, the checks, a second look only where the first tweet
fails them) against *one greedy tweet* (no opening, no second look) on the same poster rows, in one process. Photo
rows (the dump's ``subjects.csv`` lists them) are timed too and reported apart: they carry no text to open with.
Each row's media is analysed and its prompt built once; then each setting writes and chooses the row's tweet, the
settings interleaved row by row so that a busy machine slows both alike. Reported: the summed seconds per setting
(wall and the process's CPU), their ratio, how many rows took the second look, and for reference what
``--candidates 3`` costs. A dump comes from ``python -m core.devtools.brand_dump DIR --seed S``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

SETTINGS = ("one greedy tweet", "default draft", "3 sampled candidates")


def _configs(max_new_tokens: int) -> dict[str, Any]:
    from core.stages.llm import GenerationConfig

    default = GenerationConfig(max_new_tokens=max_new_tokens)
    return {
        "one greedy tweet": replace(default, second_look=0, facts_first=False),
        "default draft": default,
        "3 sampled candidates": replace(default, num_candidates=3),
    }


def _requests(folder: Path, limit: int | None) -> list[tuple[Any, str]]:
    """Each test row's request with its history, and its kind: "photo" (listed in subjects.csv) or "poster"."""
    from core.batch.io import row_request
    from core.brand.history import read_history
    from core.brand.retrieval import HistoryIndex
    from core.eval.brand import read_subjects
    from core.tables import read_tweet_dump

    index = HistoryIndex.build(read_history(folder / "history.csv"))
    photos = read_subjects(folder / "test.csv")
    frame = read_tweet_dump(folder / "test.csv")
    requests = []
    for _, row in frame.head(limit).iterrows() if limit else frame.iterrows():
        request = row_request(row.to_dict(), folder)
        request.history, request.row_id = index, str(row["id"])
        requests.append((request, "photo" if str(row["id"]) in photos else "poster"))
    return requests


def _summary(wall: dict[str, float], cpu: dict[str, float], rows: int, second_looks: int) -> dict:
    base = "one greedy tweet"
    return {
        "rows": rows,
        "wall_s": {k: round(v, 2) for k, v in wall.items()},
        "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "wall_ratio": {k: round(v / wall[base], 3) if wall[base] else None for k, v in wall.items()},
        "cpu_ratio": {k: round(v / cpu[base], 3) if cpu[base] else None for k, v in cpu.items()},
        "second_looks": second_looks,
    }


def bench_drafts(pipeline: Any, folder: Path, max_new_tokens: int = 60, limit: int | None = None,
                 progress: Any = None) -> dict:
    """Seconds per setting over the dump's rows (see the module's note)."""
    from core.pipeline import choose, with_opening

    configs = _configs(max_new_tokens)
    kinds = ("poster", "photo")
    wall = {kind: dict.fromkeys(configs, 0.0) for kind in kinds}
    cpu = {kind: dict.fromkeys(configs, 0.0) for kind in kinds}
    rows = dict.fromkeys(kinds, 0)
    second_looks = dict.fromkeys(kinds, 0)
    requests = _requests(folder, limit)
    for n, (request, kind) in enumerate(requests, 1):
        prompt, analysis = pipeline.prepare(request)
        rows[kind] += 1
        for name, cfg in configs.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            final = with_opening(prompt, analysis, cfg)
            scored = pipeline._write([final], [request], [analysis], cfg)[0]
            choose([t for t, _ in scored], request, analysis, [lp for _, lp in scored])
            wall[kind][name] += time.perf_counter() - start_wall
            cpu[kind][name] += time.process_time() - start_cpu
            if name == "default draft" and len(scored) > 1:
                second_looks[kind] += 1
        if progress:
            progress(n, len(requests))
    out = {"data": str(folder), "max_new_tokens": max_new_tokens}
    for kind in kinds:
        if rows[kind]:
            out[kind] = _summary(wall[kind], cpu[kind], rows[kind], second_looks[kind])
    return out


def drafts_table(result: dict) -> str:
    rows = [f"drafts on {result['data']} (with history), one process, the settings interleaved by row"]
    for kind in ("poster", "photo"):
        if kind not in result:
            continue
        part = result[kind]
        rows += ["", f"{kind} rows: {part['rows']}", f"{'setting':<24}{'wall s':>9}{'x':>7}{'cpu s':>9}{'x':>7}"]
        for name in SETTINGS:
            rows.append(f"{name:<24}{part['wall_s'][name]:>9.1f}{part['wall_ratio'][name]:>7.2f}"
                        f"{part['cpu_s'][name]:>9.1f}{part['cpu_ratio'][name]:>7.2f}")
        rows.append(f"second look taken on {part['second_looks']} of {part['rows']} {kind} rows")
    return "\n".join(rows)
