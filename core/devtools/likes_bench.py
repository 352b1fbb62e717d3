"""``m2t bench --likes``: the likes model at scale (fit seconds, peak memory, predicted rows per second).

One generated dump (:mod:`core.devtools.likes_data`, with signal) of ``fit_rows + predict_rows`` tweets is split
by date: the earliest ``fit_rows`` are the history, the latest ``predict_rows`` are predicted, as a later period
would be. Each phase runs in a fresh Python process so its peak RSS (``ru_maxrss``) is its own: reading and
checking the history and fitting the model (no cache), then loading the cached model and predicting every row
of the later period through the same function ``m2t likes`` uses. The later rows' real likes also give the
RMSE of ``log(1 + likes)`` beside the account-median baseline, so the speed comes with its accuracy.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from core.devtools.phases import run_phase
from core.eval.store import machine_description

_PHASE = r"""
import json, resource, sys, time
from pathlib import Path
phase, history, data, cache = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
import numpy, pandas, scipy.sparse, sklearn.linear_model, sklearn.feature_extraction.text  # imports are not the cost
from core.brand.likes import load_or_fit, read_likes_history, rows_from_frame
from core.batch import read_tweet_csv
out = {}
start, cpu = time.perf_counter(), time.process_time()
hist = read_likes_history(history)
out["read_s"], out["read_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
start, cpu = time.perf_counter(), time.process_time()
model = load_or_fit(hist, cache)
out["fit_s"], out["fit_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
out["cached"], out["model"], out["history_rows"] = model.cached, model.describe(), len(hist.rows)
if phase == "predict":
    frame = read_tweet_csv(data)
    start, cpu = time.perf_counter(), time.process_time()
    rows = rows_from_frame(frame)
    predictions = model.predict_rows(rows)
    out["predict_s"], out["predict_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
    out["rows"] = len(predictions)
    y = numpy.log1p(rows.likes)
    pred = numpy.log1p([p.likes for p in predictions])
    brand, _ = model.brand_index(rows)
    base = numpy.where(brand >= 0, model.medians[numpy.maximum(brand, 0)], model.global_median)
    out["rmse_log1p"] = float(numpy.sqrt(numpy.mean((y - pred) ** 2)))
    out["median_rmse_log1p"] = float(numpy.sqrt(numpy.mean((y - base) ** 2)))
    out["coverage"] = float(numpy.mean([(p.low <= l <= p.high) for p, l in zip(predictions, rows.likes)]))
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _phase(name: str, history: Path, data: Path, cache: Path) -> dict:
    return run_phase(_PHASE, name, history, data, cache, what=f"likes bench phase {name}")


def bench_likes(fit_rows: int = 300_000, predict_rows: int = 100_000, brands: int = 2_000) -> dict:
    """Generate, split by date, fit (cold), then load the cached model and predict the later rows."""
    import pandas as pd

    from core.devtools.likes_data import make_likes_dump

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        dump = make_likes_dump(folder / "all.csv", fit_rows + predict_rows, brands, seed=0)
        frame = pd.read_csv(dump, dtype=str, keep_default_na=False)
        order = pd.to_datetime(frame["date"]).argsort().to_numpy()
        history, data = folder / "history.csv", folder / "data.csv"
        frame.iloc[order[:fit_rows]].to_csv(history, index=False)
        frame.iloc[order[fit_rows:]].to_csv(data, index=False)
        del frame
        generate_s = time.perf_counter() - start
        cache = folder / "cache"
        fit = _phase("fit", history, data, cache)
        predict = _phase("predict", history, data, cache)
        history_mb = history.stat().st_size / 2**20
    return {
        "fit_rows": fit["history_rows"], "predict_rows": predict["rows"], "brands": brands,
        "history_mb": history_mb, "generate_s": generate_s, "model": fit["model"],
        "read_s": fit["read_s"], "read_cpu_s": fit["read_cpu_s"], "fit_s": fit["fit_s"], "fit_cpu_s": fit["fit_cpu_s"],
        "fit_peak_rss_mb": fit["peak_rss_mb"], "cached_load_s": predict["fit_s"], "cached": predict["cached"],
        "predict_s": predict["predict_s"], "predict_cpu_s": predict["predict_cpu_s"],
        "rows_per_s": predict["rows"] / predict["predict_s"], "predict_peak_rss_mb": predict["peak_rss_mb"],
        "rmse_log1p": predict["rmse_log1p"], "median_rmse_log1p": predict["median_rmse_log1p"],
        "coverage": predict["coverage"],
    }


def table(r: dict) -> str:
    return "\n".join([
        f"likes model, fit on {r['fit_rows']:,} generated tweets of {r['brands']:,} brands "
        f"({r['history_mb']:.0f} MB CSV), predict the next {r['predict_rows']:,}",
        "  (wall seconds, and CPU seconds of the process: on a shared machine the CPU figure is the model's own)",
        f"  read + check history: {r['read_s']:.1f} s wall, {r['read_cpu_s']:.1f} s CPU",
        f"  fit (choose on the latest 20 %, refit on all, cold): {r['fit_s']:.1f} s wall, {r['fit_cpu_s']:.1f} s CPU, "
        f"peak RSS {r['fit_peak_rss_mb']:.0f} MB",
        f"  model: {r['model']}",
        f"  load from cache: {r['cached_load_s']:.2f} s",
        f"  predict {r['predict_rows']:,} rows: {r['predict_s']:.1f} s wall ({r['rows_per_s']:,.0f} rows/s), "
        f"{r['predict_cpu_s']:.1f} s CPU, peak RSS {r['predict_peak_rss_mb']:.0f} MB",
        f"  on those rows: RMSE log(1+likes) {r['rmse_log1p']:.3f} (account median {r['median_rmse_log1p']:.3f}), "
        f"interval coverage {r['coverage']:.1%}",
    ])


def run(args) -> int:
    """Entry of ``m2t bench --likes``: merges ``likes`` into ``--out`` like the other bench parts."""
    from core.devtools.results import merge_results
    from core.outputs import writable_file

    writable_file(args.out, "--out", make_parents=True)
    print(f"benchmarking the likes model: fit {args.likes_rows:,} rows, predict {args.likes_predict_rows:,}…",
          file=sys.stderr)
    result = bench_likes(args.likes_rows, args.likes_predict_rows, args.likes_brands)
    result["machine"] = machine_description()
    out = merge_results(args.out, {"likes": result})
    print(json.dumps(result, indent=2) if args.json else f"machine: {result['machine']}\n\n" + table(result))
    print(f"wrote {out}", file=sys.stderr)
    return 0
