"""Scoring a run: signatures, small-set warnings, the shuffled floor, and what lands in the store."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from core.__main__ import main
from core.errors import UserError
from core.eval.scoring import (
    SPEECH_METRICS,
    TEXT_METRICS,
    metric_warnings,
    record_run,
    score,
    shuffled_floor,
    signature_groups,
)
from core.eval.store import ResultsStore

CAPTIONS = [
    "a red circle on a white background",
    "a small blue square in the corner of the picture",
    "two green triangles next to each other on grey",
    "a yellow star above a black line",
    "an orange ring inside a purple square",
    "three white dots on a dark blue field",
    "a large pink heart in the middle of the image",
    "a brown arrow pointing to the left edge",
    "a striped red and white flag on a pole",
    "a grey cloud shape over a green hill",
    "a black cross on a bright yellow background",
    "a tiny red dot at the top of the frame",
]
PREDICTIONS = [
    "a red circle on a white background",
    "a blue square in the corner",
    "two green triangles on a grey background",
    "a yellow star over a black line",
    "an orange circle inside a purple square",
    "white dots on a blue field",
    "a pink heart in the middle",
    "an arrow pointing left",
    "a red and white flag",
    "a cloud over a green hill",
    "a black cross on yellow",
    "a red dot at the top",
]


def test_score_reports_metrics_signatures_and_warnings():
    scored = score("caption", PREDICTIONS, CAPTIONS, bootstrap=0)
    assert tuple(scored["metrics"]) == TEXT_METRICS
    assert scored["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert "placeholders:words|norm:none" in scored["signatures"]["bleu"]
    assert "tok:ptb" in scored["signatures"]["cider"]
    assert scored["warnings"] == []  # 12 distinct captions of 4+ words: nothing to warn about
    speech = score("asr", PREDICTIONS, CAPTIONS, bootstrap=0)
    assert tuple(speech["metrics"]) == SPEECH_METRICS and "norm:whisper-en" in speech["signature"]
    assert signature_groups(speech["signature"]) == [("WER %, CER %", speech["signatures"]["wer"])]


def test_placeholders_raw_is_recorded_in_the_signature():
    tweets = ["new shoes out now <hyperlink> thanks <mention> for the photos"] * 2
    refs = ["our new shoes are out now <hyperlink> thank you <mention>", "new shoes are out <hyperlink>"]
    words = score("llm", tweets, refs, bootstrap=0)
    raw = score("llm", tweets, refs, bootstrap=0, placeholders="raw")
    assert "placeholders:raw" in raw["signature"] and "placeholders:raw" not in words["signature"]
    assert raw["metrics"]["bleu"] != words["metrics"]["bleu"]


def test_one_sample_makes_cider_d_meaningless_and_says_so():
    scored = score("caption", PREDICTIONS[:1], CAPTIONS[:1], bootstrap=0)
    assert scored["metrics"]["cider"] == 0.0  # a perfect caption, yet IDF = log(1/1) = 0
    assert scored["metrics"]["bleu"] == pytest.approx(100.0)
    warnings = scored["warnings"]
    assert any(w.startswith("CIDEr-D is meaningless here (1 sample)") for w in warnings)
    assert any("only 1 sample:" in w for w in warnings)


def test_samples_sharing_their_references_make_cider_d_meaningless():
    warnings = metric_warnings("caption", PREDICTIONS, [CAPTIONS[0]] * len(PREDICTIONS))
    assert any("all 12 samples have the same references" in w for w in warnings)
    assert score("caption", PREDICTIONS, [CAPTIONS[0]] * len(PREDICTIONS), bootstrap=0)["metrics"]["cider"] == 0


def test_a_handful_of_samples_warns_about_idf_and_intervals():
    warnings = metric_warnings("caption", PREDICTIONS[:5], CAPTIONS[:5])
    assert any(w.startswith("CIDEr-D: IDF comes from only 5 samples") for w in warnings)
    assert any(w.startswith("only 5 samples:") for w in warnings)


def test_short_sentences_warn_about_bleu():
    short = [" ".join(c.split()[:3]) for c in CAPTIONS]
    warnings = metric_warnings("llm", short, CAPTIONS)
    assert [w for w in warnings if w.startswith("BLEU:")] == [
        "BLEU: 12 of 12 samples have a prediction or reference under 4 words, so there are few 4-grams and BLEU "
        "mostly measures smoothing; read chrF instead"
    ]
    assert not any(w.startswith("BLEU:") for w in metric_warnings("llm", PREDICTIONS, CAPTIONS))


def test_one_or_two_word_references_warn_about_wer():
    words = ["SALE", "OPEN LATE", "NEW", "BIG DEALS", "FREE", "TODAY ONLY", "HELLO", "WELCOME", "THANKS", "CAFE"]
    warnings = metric_warnings("ocr", words, words)
    assert any(w.startswith("WER: 10 of 10 references have under 3 words") for w in warnings)
    assert metric_warnings("asr", PREDICTIONS, CAPTIONS) == []


def test_metric_warnings_rejects_bad_input():
    with pytest.raises(UserError, match="lengths must match"):
        metric_warnings("caption", PREDICTIONS, CAPTIONS[:3])
    with pytest.raises(UserError, match="unknown task"):
        metric_warnings("poetry", PREDICTIONS, CAPTIONS)


def test_shuffled_floor_is_a_seeded_chance_level():
    floor = shuffled_floor(PREDICTIONS, CAPTIONS, seed=0, task="caption")
    assert set(floor) == {"metrics", "ci", "signature", "signatures", "warnings"}
    assert tuple(floor["metrics"]) == TEXT_METRICS
    real = score("caption", PREDICTIONS, CAPTIONS, bootstrap=0)["metrics"]
    for metric in ("bleu", "chrf", "rougeL", "rougeL_coco", "cider"):
        assert floor["metrics"][metric] < real[metric], metric
    assert shuffled_floor(PREDICTIONS, CAPTIONS, seed=0, task="caption") == floor  # seeded
    assert shuffled_floor(PREDICTIONS, CAPTIONS, seed=1, task="caption")["metrics"] != floor["metrics"]
    # Nothing keeps its own reference, even for two samples, so identical pairs score no 100.
    assert shuffled_floor(["a b c d e", "f g h i j"], ["a b c d e", "f g h i j"], task="llm")["metrics"]["bleu"] == 0
    speech = shuffled_floor(PREDICTIONS, CAPTIONS, task="asr")
    assert speech["metrics"]["wer"] > score("asr", PREDICTIONS, CAPTIONS, bootstrap=0)["metrics"]["wer"]


def test_shuffled_floor_needs_two_samples():
    with pytest.raises(UserError, match="at least 2 samples"):
        shuffled_floor(PREDICTIONS[:1], CAPTIONS[:1])
    with pytest.raises(UserError, match="lengths must match"):
        shuffled_floor(PREDICTIONS, CAPTIONS[:2])


def test_record_run_stores_signature_and_warnings(tmp_path):
    data = tmp_path / "captions.csv"
    pd.DataFrame({"path": [f"{i}.png" for i in range(3)], "caption": CAPTIONS[:3]}).to_csv(data, index=False)
    scored = score("caption", PREDICTIONS[:3], CAPTIONS[:3], bootstrap=0)
    run, _, db = record_run("caption", model="m", adapter=None, dataset=data, predictions=PREDICTIONS[:3],
                            references=CAPTIONS[:3], inputs=["{}"] * 3, scored=scored, db=tmp_path / "r.sqlite")
    (stored,) = ResultsStore(db).runs("caption")
    assert stored.signature == scored["signature"] and stored.warnings == scored["warnings"] == run.warnings
    assert any(w.startswith("CIDEr-D: IDF comes from only 3 samples") for w in stored.warnings)
    # A caller that scored elsewhere (training) and passes no warnings gets them computed.
    legacy = {k: scored[k] for k in ("metrics", "ci", "signature")}
    run2, _, _ = record_run("caption", model="m", adapter=None, dataset=data, predictions=PREDICTIONS[:3],
                            references=CAPTIONS[:3], inputs=["{}"] * 3, scored=legacy, db=db)
    assert run2.warnings == scored["warnings"]
    assert ResultsStore(db).runs_frame("caption")["warnings"].iloc[0] == "; ".join(scored["warnings"])


def test_a_store_written_before_warnings_existed_is_migrated(tmp_path):
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as conn:  # the schema as released, without the warnings column
        conn.execute(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, model TEXT NOT NULL, "
            "adapter TEXT, dataset TEXT, dataset_hash TEXT, n INTEGER NOT NULL, metrics TEXT NOT NULL, "
            "ci TEXT NOT NULL, signature TEXT, wall_time_s REAL, throughput REAL, hardware TEXT, "
            "created_at TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO runs (task, model, n, metrics, ci, signature, created_at) VALUES (?,?,?,?,?,?,?)",
            ("llm", "old-model", 2, json.dumps({"bleu": 12.0}), "{}", "nrefs:1|case:mixed", "2025-01-01T00:00:00"),
        )
    store = ResultsStore(db)
    (old,) = store.runs()
    assert old.model == "old-model" and old.warnings == [] and old.signature == "nrefs:1|case:mixed"
    assert signature_groups(old.signature) == [("BLEU", "nrefs:1|case:mixed")]
    ResultsStore(db)  # opening again is a no-op
    columns = [row[1] for row in sqlite3.connect(db).execute("PRAGMA table_info(runs)")]
    assert columns.count("warnings") == 1


def test_evaluate_prints_the_warnings_on_stderr(tmp_path, capsys):
    data = tmp_path / "captions.csv"
    pd.DataFrame({"path": ["a.png"], "caption": [CAPTIONS[0]]}).to_csv(data, index=False)
    predictions = tmp_path / "predictions.csv"
    pd.DataFrame({"path": ["a.png"], "prediction": [PREDICTIONS[0]]}).to_csv(predictions, index=False)
    code = main(["evaluate", "--task", "caption", "--data", str(data), "--predictions", str(predictions),
                 "--db", str(tmp_path / "r.sqlite"), "--bootstrap", "0"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "warning: CIDEr-D is meaningless here (1 sample)" in err
    assert "warning: only 1 sample:" in err
    assert "signature  BLEU: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp" in out
    assert "signature  CIDEr-D: port:pycocoevalcap-1.2|tok:ptb" in out
    assert "warning" not in out  # stdout stays the summary
