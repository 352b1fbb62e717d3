"""What candidates cost: warm image→tweet for one greedy tweet, the default second look, and N sampled candidates.

``python -m core.devtools.candidates_bench [--n 2 3] [--repeats 3] [--out bench/candidates.json]``

The CTranslate2 engine writes all of a prompt's sampled candidates in one call (``num_hypotheses``): they share
the prompt's prefill and decode as one batch, so N candidates cost less than N tweets one after another. The
default writes one greedy tweet and samples more only when that tweet fails the checks (the "second look").
Two cases: the bench poster without history (what ``m2t bench`` times) and a brand-history post whose greedy
tweet is a stale copy. Settings run interleaved round by round (a busy
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


BENCH_POSTER = "GRAND OPENING this Saturday 10am free coffee for everyone"  # core.devtools.bench's poster


def _settings(ns: Sequence[int], max_new_tokens: int) -> dict:
    from core.stages.llm import GenerationConfig

    out = {"greedy, no second look": GenerationConfig(max_new_tokens=max_new_tokens, second_look=0),
           "default (second look)": GenerationConfig(max_new_tokens=max_new_tokens)}
    out.update({f"{n} sampled": GenerationConfig(max_new_tokens=max_new_tokens, num_candidates=n) for n in ns if n > 1})
    return out


def bench_candidates(ns: Sequence[int] = (2, 3), repeats: int = 3, max_new_tokens: int = 60) -> dict:
    """Median warm ``predict`` wall and CPU seconds per setting, for the bench poster without history and for a
    brand-history post; ratios against one greedy candidate without a second look (the old default)."""
    from core.brand.history import read_history
    from core.brand.retrieval import HistoryIndex
    from core.pipeline import Pipeline, PredictRequest

    pipeline = Pipeline(profile="offline")
    settings = _settings(ns, max_new_tokens)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench_poster, poster = Path(tmp) / "bench.png", Path(tmp) / "poster.png"
        render_text_image(BENCH_POSTER, size=(800, 450)).save(bench_poster)
        render_text_image(POSTER, size=(800, 450), font_size=52).save(poster)
        history_csv = Path(tmp) / "history.csv"
        history_csv.write_text(HISTORY)
        index = HistoryIndex.build(read_history(history_csv), Path(tmp) / "cache")
        cases = {
            "no history": PredictRequest("Bean Town", "beantown", "2023-05-06 09:00", likes=250,
                                         media=str(bench_poster)),
            "history": PredictRequest("Shelf Life", "shelflife", "2023-06-01 10:00", likes=60, media=str(poster),
                                      history=index),
        }
        for case, request in cases.items():
            for cfg in settings.values():
                pipeline.predict(request, cfg)  # warm-up: models, the engine's static prefix, buffers
            runs: dict[str, list[tuple[float, float, int]]] = {name: [] for name in settings}
            tweets: dict[str, str] = {}
            for _ in range(repeats):
                for name, cfg in settings.items():
                    start, cpu = time.perf_counter(), time.process_time()
                    prediction = pipeline.predict(request, cfg)
                    runs[name].append((time.perf_counter() - start, time.process_time() - cpu,
                                       len(prediction.candidates)))
                    tweets[name] = prediction.tweet
            rows = {}
            for name in settings:
                rows[name] = {"wall_s": statistics.median(w for w, _, _ in runs[name]),
                              "cpu_s": statistics.median(c for _, c, _ in runs[name]),
                              "candidates": [n for _, _, n in runs[name]], "runs": runs[name], "tweet": tweets[name]}
            base = rows["greedy, no second look"]
            for row in rows.values():
                row["wall_ratio"] = row["wall_s"] / base["wall_s"]
                row["cpu_ratio"] = row["cpu_s"] / base["cpu_s"]
            out[case] = rows
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.devtools.candidates_bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[2, 3], help="sampled-candidate settings to time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    results = bench_candidates(args.n, args.repeats)
    for case, rows in results.items():
        print(f"{case}: {'setting':<24}{'wall s':>8}{'×':>6}{'CPU s':>8}{'×':>6}  candidates")
        for name, r in rows.items():
            print(f"{'':<{len(case) + 2}}{name:<24}{r['wall_s']:>8.2f}{r['wall_ratio']:>6.2f}{r['cpu_s']:>8.2f}"
                  f"{r['cpu_ratio']:>6.2f}  {r['candidates']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
