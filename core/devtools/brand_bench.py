"""``m2t bench --history-index``: the history index at scale (build seconds, peak memory, queries per second).

Each phase runs in a fresh Python process so its peak RSS (``ru_maxrss``) is its own: reading and
checking the dump, building the BM25 index (no cache), loading it from the cache, and answering queries
the way a batch run asks them (an account, a poster's text, a date cut, top 3 within a token budget).
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
import json, random, resource, sys, time
from pathlib import Path
phase, dump, cache, n_queries = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
import bm25s, pandas, Stemmer  # imports are not the index's cost
from core.brand.history import read_history
from core.brand.retrieval import HistoryIndex
out = {}
start, cpu = time.perf_counter(), time.process_time()
history = read_history(dump)
out["read_s"], out["read_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
start, cpu = time.perf_counter(), time.process_time()
index = HistoryIndex.build(history, cache)
out["index_s"], out["index_cpu_s"] = time.perf_counter() - start, time.process_time() - cpu
out["cached"] = index.cached
if phase == "query":
    rng = random.Random(0)
    rows = [rng.randrange(len(history)) for _ in range(n_queries)]
    latencies = []
    cpu = time.process_time()
    for row in rows:
        words = history.content[row].split()
        media = " ".join(rng.sample(words, min(6, len(words)))).upper()
        t = time.perf_counter()
        index.examples(username=history.usernames[row], company=history.companies[row], media_text=media,
                       before=int(history.dates[row]), exclude_id=history.ids[row], k=3)
        latencies.append(time.perf_counter() - t)
    out["query_cpu_s"] = time.process_time() - cpu
    latencies.sort()
    out["queries"] = n_queries
    out["qps"] = n_queries / sum(latencies)
    out["qps_cpu"] = n_queries / out["query_cpu_s"]
    out["p50_ms"] = 1000 * latencies[len(latencies) // 2]
    out["p95_ms"] = 1000 * latencies[int(len(latencies) * 0.95)]
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _phase(name: str, dump: Path, cache: Path, n_queries: int) -> dict:
    return run_phase(_PHASE, name, dump, cache, n_queries, what=f"history index bench phase {name}")


def bench_history_index(rows: int = 300_000, brands: int = 2_000, n_queries: int = 1_000) -> dict:
    """Generate a ``rows``-tweet dump, then build (cold), load (cached) and query its index."""
    from core.devtools.synthetic import make_history_dump

    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "history.csv"
        start = time.perf_counter()
        make_history_dump(dump, rows, brands)
        generate_s = time.perf_counter() - start
        cache = Path(tmp) / "cache"
        build = _phase("build", dump, cache, 0)
        query = _phase("query", dump, cache, n_queries)
        index_mb = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) / 2**20
        dump_mb = dump.stat().st_size / 2**20
    return {"rows": rows, "brands": brands, "dump_mb": dump_mb, "generate_s": generate_s,
            "read_s": build["read_s"], "read_cpu_s": build["read_cpu_s"], "build_s": build["index_s"],
            "build_cpu_s": build["index_cpu_s"], "build_peak_rss_mb": build["peak_rss_mb"], "index_mb": index_mb,
            "cached_load_s": query["index_s"], "cached_load_cpu_s": query["index_cpu_s"],
            "query_peak_rss_mb": query["peak_rss_mb"], "queries": query["queries"], "qps": query["qps"],
            "qps_cpu": query["qps_cpu"], "p50_ms": query["p50_ms"], "p95_ms": query["p95_ms"]}


def table(r: dict) -> str:
    return "\n".join([
        f"history index, {r['rows']:,} tweets of {r['brands']:,} brands ({r['dump_mb']:.0f} MB CSV)",
        "  (wall seconds, and CPU seconds of the process: on a shared machine the CPU figure is the index's own)",
        f"  read + check dump: {r['read_s']:.1f} s wall, {r['read_cpu_s']:.1f} s CPU",
        f"  build (tokenise + stem + BM25, cold): {r['build_s']:.1f} s wall, {r['build_cpu_s']:.1f} s CPU, "
        f"peak RSS {r['build_peak_rss_mb']:.0f} MB, index on disk {r['index_mb']:.0f} MB",
        f"  load from cache (mmap): {r['cached_load_s']:.2f} s wall, {r['cached_load_cpu_s']:.2f} s CPU, "
        f"peak RSS while querying {r['query_peak_rss_mb']:.0f} MB",
        f"  queries: {r['qps']:.0f}/s wall ({r['qps_cpu']:.0f}/s CPU; p50 {r['p50_ms']:.1f} ms, p95 "
        f"{r['p95_ms']:.1f} ms; account + text + date cut, top 3)",
    ])


def run(args) -> int:
    """Entry of ``m2t bench --history-index``: writes ``--out`` like the model benchmarks."""
    from core.outputs import writable_file

    writable_file(args.out, "--out", make_parents=True)
    print(f"benchmarking the history index on {args.history_rows:,} generated tweets…", file=sys.stderr)
    results = {"history_index": bench_history_index(args.history_rows, args.history_brands)}
    results["machine"] = machine_description()
    out = Path(args.out)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2) if args.json else f"machine: {results['machine']}\n\n"
          + table(results["history_index"]))
    print(f"wrote {out}", file=sys.stderr)
    return 0
