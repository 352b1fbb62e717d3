"""``core.devtools.phases`` and the two benches that measure in phase processes (history index, likes model),
run end to end on small generated dumps."""

from __future__ import annotations

import pytest

from core.devtools.phases import run_phase


def test_a_phase_returns_its_last_json_line() -> None:
    script = "import json, sys; print('warming up'); print(json.dumps({'args': sys.argv[1:]}))"
    assert run_phase(script, 3, "x") == {"args": ["3", "x"]}


def test_a_failing_phase_raises_with_its_stderr() -> None:
    with pytest.raises(RuntimeError, match=r"demo phase failed:(.|\n)*ZeroDivisionError"):
        run_phase("1 / 0", what="demo phase")


def test_the_history_index_bench_builds_loads_and_queries() -> None:
    from core.devtools.brand_bench import bench_history_index

    r = bench_history_index(rows=1_500, brands=15, n_queries=50)
    assert r["rows"] == 1_500 and r["queries"] == 50 and r["qps"] > 0
    assert r["build_peak_rss_mb"] > 0 and r["cached_load_s"] < r["build_s"], "the second phase loads from the cache"


def test_the_likes_bench_fits_then_predicts_from_the_cache() -> None:
    from core.devtools.likes_bench import bench_likes

    r = bench_likes(fit_rows=2_000, predict_rows=300, brands=20)
    assert r["predict_rows"] == 300 and r["cached"] is True, "the predict phase loads the fit phase's cache"
    assert r["cached_load_s"] < r["fit_s"] and r["rows_per_s"] > 0
    assert r["rmse_log1p"] < r["median_rmse_log1p"], "the generated dump has signal the model finds"
