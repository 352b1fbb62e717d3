"""What more candidates cost: warm image→tweet and LLM seconds for 1 (greedy) to N (sampled) candidates.

``python -m core.devtools.candidates_bench [--n 1 2 3 4] [--repeats 3] [--out bench/candidates.json]``

The CTranslate2 engine writes all of a prompt's sampled candidates in one call (``num_hypotheses``): they share
the prompt's prefill and decode as one batch, so N candidates cost far less than N tweets one after another.
Each setting runs on the same poster and the same brand-history prompt, interleaved round by round (a busy
shared machine slows every setting alike), and the median of ``--repeats`` rounds is reported, in wall seconds and
in the process's CPU seconds (on a busy shared machine the CPU figure and its ratio are the stable ones).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from core.devtools.synthetic import render_text_image

POSTER = "AUTHOR TALK THURSDAY 6PM\nSIGNED FIRST EDITIONS 20% OFF"
HISTORY = (
    "id,date,likes,content,username,media,inferred company\n"
    "1,2023-05-01 10:00:00,40,Our poetry shelf just got bigger: come and browse this weekend. 📚 Happy reading! "
    "#ShelfLife,shelflife,,shelf life\n"
    "2,2023-05-08 10:00:00,55,Story time is back on Saturday at 11: bring the little ones. 📚 Happy reading! "
    "#ShelfLife,shelflife,,shelf life\n"
    "3,2023-05-15 10:00:00,70,The online shop is paused for stocktake until Monday. Happy reading! #ShelfLife,"
    "shelflife,,shelf life\n"
)


def bench_candidates(ns: Sequence[int] = (1, 2, 3, 4), repeats: int = 3, max_new_tokens: int = 60) -> dict:
    """Median warm ``predict`` seconds and LLM seconds per setting (n = 1 greedy, n > 1 sampled in one call)."""
    from core.brand.history import read_history
    from core.brand.retrieval import HistoryIndex
    from core.pipeline import Pipeline, PredictRequest
    from core.stages.llm import GenerationConfig

    pipeline = Pipeline(profile="offline")
    with tempfile.TemporaryDirectory() as tmp:
        poster = Path(tmp) / "poster.png"
        render_text_image(POSTER, size=(800, 450), font_size=52).save(poster)
        history_csv = Path(tmp) / "history.csv"
        history_csv.write_text(HISTORY)
        index = HistoryIndex.build(read_history(history_csv), Path(tmp) / "cache")
        request = PredictRequest("Shelf Life", "shelflife", "2023-06-01 10:00", likes=60, media=str(poster),
                                 history=index)
        configs = {n: GenerationConfig(max_new_tokens=max_new_tokens, num_candidates=n) for n in ns}
        for cfg in configs.values():
            pipeline.predict(request, cfg)  # warm-up: models, the engine's static prefix, buffers
        runs: dict[int, list[tuple[float, float, float]]] = {n: [] for n in ns}
        examples: dict[int, list[str]] = {}
        for _ in range(repeats):
            for n, cfg in configs.items():
                start, cpu = time.perf_counter(), time.process_time()
                prediction = pipeline.predict(request, cfg)
                runs[n].append((time.perf_counter() - start, prediction.analysis.timings.get("llm", 0.0),
                                time.process_time() - cpu))
                examples[n] = prediction.candidates
    out = {}
    for n in ns:
        total = statistics.median(t for t, _, _ in runs[n])
        llm = statistics.median(t for _, t, _ in runs[n])
        cpu = statistics.median(c for _, _, c in runs[n])
        out[str(n)] = {"predict_warm_s": total, "llm_s": llm, "cpu_s": cpu, "runs": runs[n], "candidates": examples[n]}
    base, base_cpu = out[str(ns[0])]["llm_s"], out[str(ns[0])]["cpu_s"]
    for n in ns:
        out[str(n)]["llm_ratio"] = out[str(n)]["llm_s"] / base if base else None
        out[str(n)]["cpu_ratio"] = out[str(n)]["cpu_s"] / base_cpu if base_cpu else None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.devtools.candidates_bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    results = bench_candidates(args.n, args.repeats)
    print(f"{'candidates':<12}{'warm image→tweet':>18}{'LLM s':>9}{'LLM ×':>8}{'CPU s':>9}{'CPU ×':>8}")
    for n, r in results.items():
        print(f"{n:<12}{r['predict_warm_s']:>16.2f} s{r['llm_s']:>8.2f}{r['llm_ratio']:>8.2f}"
              f"{r['cpu_s']:>9.2f}{r['cpu_ratio']:>8.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
