"""The bench's report: what the README quotes must come from the recorded numbers."""

from core.devtools.bench import engines_table
from core.devtools.results import merge_results


def _engine(tok_one: float, tok_batch: float, tweet_s: float, image_s: float) -> dict:
    return {"one_at_a_time_tok_s": tok_one, "batched_tok_s": tok_batch, "tweet_s": tweet_s,
            "predict_image_warm_s": image_s}


def test_engines_table_shows_each_engine_and_the_ratios():
    engines = {
        "model": "gemma-3-270m",
        "transformers": _engine(5.2, 13.0, 7.73, 5.57),
        "ctranslate2": _engine(14.1, 37.5, 1.89, 3.20),
        "ratios": {"one_at_a_time_tok_s": 14.1 / 5.2, "batched_tok_s": 37.5 / 13.0,
                   "tweet_one_at_a_time": 7.73 / 1.89, "predict_image_warm": 5.57 / 3.20},
        "load_avg_before": [0.4, 0, 0], "load_avg_after": [1.9, 0, 0],
    }
    table = engines_table(engines)
    assert "gemma-3-270m" in table
    assert "2.71x" in table and "2.88x" in table and "4.09x" in table and "1.74x" in table
    assert "1.89 s" in table and "3.20 s" in table
    assert "0.4 / 1.9" in table


def test_merge_results_keeps_the_other_parts(tmp_path):
    path = tmp_path / "bench" / "results.json"
    merge_results(path, {"machine": "a", "engines": {"x": 1}})
    merge_results(path, {"machine": "b", "batch": {"y": 2}})
    import json

    data = json.loads(path.read_text())
    assert data["engines"] == {"x": 1} and data["batch"] == {"y": 2} and data["machine"] == "b"
