"""``evaluate``: real offline models on generated sets, runs read back from a private store.

Model runs go through :func:`core.eval.command.evaluate` in-process with the session's pipeline
(each model loads once); the CLI is spawned only twice, for what only a real process shows:
exit codes, stdout JSON and the absence of tracebacks.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core.errors import UserError
from core.eval.command import EvalConfig, evaluate, run_evaluate
from core.eval.scoring import SAMPLE_METRIC, SPEECH_METRICS, TEXT_METRICS, sample_scores
from core.eval.store import ResultsStore, file_hash
from core.stages.llm import GenerationConfig

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_COLUMN = {"llm": "content", "caption": "caption", "ocr": "text", "asr": "text"}


@pytest.fixture(autouse=True)
def _private_default_store(tmp_path, monkeypatch):
    """Whatever a test forgets to point elsewhere must never land in the user's results store."""
    monkeypatch.setenv("M2T_RESULTS_DB", str(tmp_path / "default.sqlite"))


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    """Small sets made by the same script that writes data/generated/."""
    spec = importlib.util.spec_from_file_location("make_eval_sets", ROOT / "scripts" / "make_eval_sets.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path_factory.mktemp("sets")
    script.make_sets(out, ocr=3, asr=2, caption=3, tweets_train=1, tweets_test=3)
    return {
        "ocr": out / "ocr" / "ocr.csv",
        "asr": out / "asr" / "asr.csv",
        "caption": out / "caption" / "captions.csv",
        "llm": out / "tweets" / "test.csv",
    }


def _references(path: Path, task: str, limit: int | None = None) -> list[str]:
    column = pd.read_csv(path, dtype=str, keep_default_na=False)[REFERENCE_COLUMN[task]]
    return column.head(limit).tolist() if limit else column.tolist()


# --------------------------------------------------------------------------- real models


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "limit", "keys"),
    [
        ("ocr", 3, (*SPEECH_METRICS, "media_errors")),
        ("asr", 2, (*SPEECH_METRICS, "rtfx", "media_errors")),
        ("caption", 3, (*TEXT_METRICS, "media_errors")),
        ("llm", 2, (*TEXT_METRICS, "media_errors")),
    ],
)
def test_a_real_model_run_is_scored_and_recorded(task, limit, keys, sets, pipeline, tmp_path):
    db = tmp_path / "runs.sqlite"
    cfg = EvalConfig(task, sets[task], limit=limit, generation=GenerationConfig(max_new_tokens=8), db=db,
                     bootstrap=200, progress=False)
    result = evaluate(cfg, pipeline=pipeline)
    store = ResultsStore(db)
    (run,) = store.runs(task)
    assert run.id == result.run.id and run.n == limit
    assert set(run.metrics) == set(keys) and run.metrics["media_errors"] == 0
    assert run.model == result.run.model != "external" and run.dataset_hash == file_hash(sets[task])
    assert run.wall_time_s > 0 and run.throughput > 0 and run.hardware and run.created_at
    assert set(run.ci) >= {"bleu" if task in ("llm", "caption") else "wer"}

    samples = store.samples(run.id)
    predictions = [s.prediction for s in samples]
    references = _references(sets[task], task, limit)
    assert [s.idx for s in samples] == list(range(limit))
    assert [s.reference for s in samples] == references
    assert all(predictions), predictions
    assert [s.score for s in samples] == pytest.approx(sample_scores(task, predictions, references))
    assert all("error" not in json.loads(s.input) for s in samples)

    if task in ("llm", "caption"):
        assert run.signature.startswith("nrefs:1|") and "tok:13a" in run.signature
    if task == "ocr":  # rendered text in legible fonts: EasyOCR reads it nearly perfectly
        assert run.metrics["cer"] < 10, predictions
    if task == "asr":
        assert run.metrics["wer"] < 40 and run.metrics["rtfx"] > 0, predictions
    if task == "llm":
        assert json.loads(samples[0].input)["inferred company"] and "ocr" in json.loads(samples[0].input)


@pytest.mark.slow
def test_a_row_whose_media_fails_is_still_scored(sets, pipeline, tmp_path):
    good = pd.read_csv(sets["ocr"], dtype=str).iloc[0]
    speech = next(sets["asr"].parent.rglob("*.wav"))
    data = tmp_path / "ocr.csv"
    pd.DataFrame(
        {
            "path": [str(sets["ocr"].parent / good["path"]), "images/missing.png", str(speech)],
            "text": [good["text"], "lost poster", "spoken words"],
        }
    ).to_csv(data, index=False)
    cfg = EvalConfig("ocr", data, db=tmp_path / "runs.sqlite", bootstrap=0, progress=False)
    result = evaluate(cfg, pipeline=pipeline)
    assert result.run.n == 3 and result.run.metrics["media_errors"] == 2
    ok, missing, audio = ResultsStore(tmp_path / "runs.sqlite").samples(result.run.id)
    assert ok.prediction and ok.score < 10 and "error" not in json.loads(ok.input)
    assert missing.prediction == "" and missing.score == 100 and "no such file" in json.loads(missing.input)["error"]
    assert audio.prediction == "" and "has no image" in json.loads(audio.input)["error"]


# --------------------------------------------------------------------------- scoring predictions made elsewhere


def test_tweet_predictions_joined_on_id_in_any_order_score_bleu_100(sets, tmp_path):
    data = pd.read_csv(sets["llm"], dtype=str, keep_default_na=False)
    batch_output = data.assign(generated=data["content"]).iloc[::-1]  # `m2t batch` output, reversed
    predictions = tmp_path / "out.csv"
    batch_output.to_csv(predictions, index=False)
    result = evaluate(EvalConfig("llm", sets["llm"], predictions=predictions, db=tmp_path / "r.sqlite", progress=False))
    run = result.run
    assert run.model == "external" and run.n == len(data) and run.wall_time_s is None
    assert run.metrics["bleu"] == pytest.approx(100) and run.metrics["chrf"] == pytest.approx(100)
    assert run.metrics["rougeL"] == pytest.approx(100) and run.ci["bleu"] == pytest.approx([100, 100])
    samples = ResultsStore(tmp_path / "r.sqlite").samples(run.id)
    assert [s.prediction for s in samples] == data["content"].tolist()
    assert all(s.score == pytest.approx(100) for s in samples) and SAMPLE_METRIC["llm"] == "bleu"


@pytest.mark.parametrize(("task", "metric", "perfect"), [("caption", "bleu", 100), ("ocr", "wer", 0)])
def test_aligned_predictions_equal_to_references_score_perfectly(task, metric, perfect, sets, tmp_path):
    predictions = tmp_path / "predictions.csv"
    pd.DataFrame({"prediction": _references(sets[task], task)}).to_csv(predictions, index=False)
    result = evaluate(EvalConfig(task, sets[task], model="my-model", predictions=predictions, db=tmp_path / "r.sqlite"))
    assert result.run.model == "my-model" and result.run.metrics[metric] == pytest.approx(perfect)
    assert ResultsStore(tmp_path / "r.sqlite").run(result.run.id).metrics[metric] == pytest.approx(perfect)


def test_a_short_aligned_predictions_file_is_fine_with_a_limit(sets, tmp_path):
    predictions = tmp_path / "predictions.csv"
    pd.DataFrame({"prediction": _references(sets["ocr"], "ocr", 2)}).to_csv(predictions, index=False)
    result = evaluate(EvalConfig("ocr", sets["ocr"], predictions=predictions, limit=2, db=tmp_path / "r.sqlite"))
    assert result.run.n == 2 and result.run.metrics["cer"] == 0
    with pytest.raises(UserError, match="2 predictions for 3 data rows"):
        evaluate(EvalConfig("ocr", sets["ocr"], predictions=predictions, db=tmp_path / "r.sqlite"))


def test_cli_scores_asr_predictions_as_json(sets, tmp_path):
    data = pd.read_csv(sets["asr"], dtype=str)
    predictions = tmp_path / "predictions.csv"
    data[["audio", "text"]].rename(columns={"text": "prediction"}).iloc[::-1].to_csv(predictions, index=False)
    db = tmp_path / "cli.sqlite"
    proc = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--task", "asr", "--data", str(sets["asr"]),
         "--predictions", str(predictions), "--db", str(db), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["run"]["metrics"]["wer"] == 0 and out["run"]["model"] == "external" and out["db"] == str(db)
    (run,) = ResultsStore(db).runs("asr")
    assert run.id == out["run"]["id"] and run.n == len(data)


# --------------------------------------------------------------------------- bad input


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    ("task", "data", "message"),
    [
        ("ocr", None, "no such file"),
        ("ocr", "", "the file is empty"),
        ("ocr", b"\xff\xfe\x00\x01garbage\x00\xff", "not a readable CSV"),
        ("ocr", "path,text\n", "header but no rows"),
        ("ocr", "file,label\na.png,hello\n", "missing column(s) path, text"),
        ("asr", "audio,transcript\na.wav,hi\n", "missing column(s) text"),
        ("caption", "image,caption\na.png,a cat\n", "missing column(s) path or url"),
        ("llm", "id,date,likes,username,media,inferred company\n1,2020-01-01,3,u,,c\n", "missing column(s) content"),
        ("llm", "id,content\n1,hello\n", "missing column(s) date"),
        ("ocr", "path,text\na.png,\nb.png,  \n", "nothing to score against"),
        ("speech", "audio,text\na.wav,hi\n", "unknown task"),
    ],
)
def test_bad_data_is_a_clear_user_error(task, data, message, tmp_path):
    path = tmp_path / "data.csv"
    if data is not None:
        _write(path, data)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(EvalConfig(task, path, predictions=tmp_path / "unused.csv", db=tmp_path / "r.sqlite"))
    assert not (tmp_path / "r.sqlite").exists()


@pytest.mark.parametrize(
    ("predictions", "message"),
    [
        ("path,guess\na.png,x\n", "no `prediction` column"),
        ("prediction\nx\n", "1 predictions for 3 data rows"),
        ("path,prediction\na.png,x\nb.png,y\n", "no prediction for 1 of 3 data rows"),
        ("path,prediction\na.png,x\na.png,y\nb.png,y\nc.png,z\n", "appears more than once"),
    ],
)
def test_bad_predictions_files_are_clear_user_errors(predictions, message, tmp_path):
    data = _write(tmp_path / "data.csv", "path,text\na.png,one\nb.png,two\nc.png,three\n")
    with pytest.raises(UserError, match=message):
        evaluate(EvalConfig("ocr", data, predictions=_write(tmp_path / "p.csv", predictions), db=tmp_path / "r.sqlite"))


def test_an_adapter_for_a_model_that_takes_none_is_refused_before_loading(tmp_path):
    data = _write(tmp_path / "data.csv", "path,text\na.png,one\n")
    with pytest.raises(UserError, match="--adapter applies to the tweet task"):
        evaluate(EvalConfig("ocr", data, adapter=str(tmp_path), db=tmp_path / "r.sqlite"))


def test_cli_bad_data_exits_2_with_one_line_and_no_traceback(tmp_path):
    data = _write(tmp_path / "nocols.csv", "file,label\na.png,hello\n")
    proc = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--task", "ocr", "--data", str(data), "--db", str(tmp_path / "r")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"error: {data}: missing column(s) path, text; ocr data needs path "
                                                "and text"]
    assert not (tmp_path / "r").exists()


def test_the_cli_registers_evaluate_with_its_flags():
    from core.__main__ import build_parser

    args = build_parser().parse_args(
        ["evaluate", "--task", "llm", "--data", "t.csv", "--limit", "2", "--max-new-tokens", "8", "--json"]
    )
    assert args.run is run_evaluate and args.limit == 2 and args.max_new_tokens == 8 and args.json
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--task", "ocr", "--data", "x.csv", "--limit", "0"])


def test_generated_sets_land_in_a_gitignored_folder():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "data/generated/ocr/ocr.csv"], cwd=ROOT, check=False)
    assert ignored.returncode == 0


# --------------------------------------------------------------------------- unusable results store (issue 12/15)


def test_a_garbage_store_fails_before_scoring_and_is_left_as_it_was(sets, tmp_path):
    from core.eval.store import StoreError

    db = tmp_path / "r.sqlite"
    db.write_bytes(b"\xde\xad\xbe\xef garbage " * 500)
    before = db.read_bytes()
    predictions = tmp_path / "p.csv"
    pd.read_csv(sets["ocr"], dtype=str)[["path", "text"]].rename(columns={"text": "prediction"}).to_csv(
        predictions, index=False)
    with pytest.raises(StoreError, match="is not a usable SQLite database"):
        evaluate(EvalConfig("ocr", sets["ocr"], predictions=predictions, db=db))
    assert db.read_bytes() == before and not list(tmp_path.glob("*.json"))


def test_a_store_locked_after_the_check_keeps_the_scores_in_a_json_file(sets, tmp_path, monkeypatch):
    """The lock is taken while ``evaluate`` waits for its predictions (a FIFO: the writer's open returns only
    once evaluate has passed the store check and opened the file), so scoring finishes and recording fails."""
    import os
    import sqlite3
    import threading

    from core.eval.store import StoreError

    monkeypatch.setenv("M2T_DB_TIMEOUT_S", "0.5")
    db = tmp_path / "r.sqlite"
    ResultsStore(db)
    fifo = tmp_path / "predictions.csv"
    os.mkfifo(fifo)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            evaluate(EvalConfig("ocr", sets["ocr"], predictions=fifo, db=db, bootstrap=10))
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    rows = pd.read_csv(sets["ocr"], dtype=str)[["path", "text"]].rename(columns={"text": "prediction"})
    with open(fifo, "w") as writer:  # blocks until evaluate opens the predictions: the store check is behind it
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        rows.to_csv(writer, index=False)
    worker.join(timeout=120)
    holder.execute("ROLLBACK")
    holder.close()
    error = outcome.get("error")
    assert isinstance(error, StoreError), outcome
    message = str(error)
    assert "\n" not in message and "is locked" in message and f"saved in {error.saved_to}" in message
    saved = json.loads(error.saved_to.read_text())
    assert saved["run"]["metrics"]["wer"] == 0 and len(saved["samples"]) == len(rows)
    assert ResultsStore(db).runs() == []


def test_cli_with_a_locked_store_is_one_line_and_exit_2(sets, tmp_path):
    import os
    import sqlite3

    db = tmp_path / "r.sqlite"
    ResultsStore(db)
    predictions = tmp_path / "p.csv"
    pd.read_csv(sets["asr"], dtype=str)[["audio", "text"]].rename(columns={"text": "prediction"}).to_csv(
        predictions, index=False)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "core", "evaluate", "--task", "asr", "--data", str(sets["asr"]),
             "--predictions", str(predictions), "--db", str(db)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "M2T_DB_TIMEOUT_S": "1"},
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"error: results store {db} is locked by another process (1 s waited); try again when it is done, or pass "
        "--db OTHER.sqlite"]
