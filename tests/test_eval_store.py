"""Runs survive restarts and concurrent writers, and read back exactly as recorded."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import sqlite3
from pathlib import Path

import pytest

from core.eval.store import (
    ResultsStore,
    RunRecord,
    SampleRecord,
    default_store_path,
    file_hash,
    hardware_description,
)


def _run(task: str = "llm", model: str = "gemma", **extra) -> RunRecord:
    fields = dict(
        task=task,
        model=model,
        n=2,
        metrics={"bleu": 12.5, "rougeL": 30.25},
        ci={"bleu": [10.0, 15.0]},
        adapter="lora-1",
        dataset="test.csv",
        dataset_hash="abc123",
        signature="nrefs:1|case:mixed",
        wall_time_s=3.5,
        throughput=0.57,
    )
    fields.update(extra)
    return RunRecord(**fields)


def _samples(k: int = 2) -> list[SampleRecord]:
    return [
        SampleRecord(idx=i, input=f"in {i}", prediction=f"pred {i}", reference=f"ref {i}", score=i / 2)
        for i in range(k)
    ]


def test_record_and_read_back(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    run = _run()
    run_id = store.record_run(run, _samples(3))
    assert run.id == run_id
    assert run.hardware and run.created_at

    (back,) = store.runs()
    assert back == run  # every field, including filled-in hardware/created_at/id
    assert store.run(run_id) == run
    assert store.samples(run_id) == _samples(3)
    assert store.run(run_id + 1) is None


def test_filter_by_task_and_frame(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.record_run(_run(task="llm", model="a"), [])
    store.record_run(_run(task="asr", model="b", metrics={"wer": 7.0}), [])
    store.record_run(_run(task="llm", model="c"), [])
    assert [r.model for r in store.runs("llm")] == ["a", "c"]
    assert [r.model for r in store.runs("asr")] == ["b"]
    assert len(store.runs()) == 3

    frame = store.runs_frame("llm")
    assert list(frame["model"]) == ["a", "c"]
    assert list(frame["bleu"]) == [12.5, 12.5]
    assert "wer" not in frame.columns
    assert store.runs_frame("nothing").empty


def test_survives_reopening(tmp_path):
    path = tmp_path / "nested" / "r.sqlite"
    run_id = ResultsStore(path).record_run(_run(), _samples())
    reopened = ResultsStore(path)
    assert [r.id for r in reopened.runs()] == [run_id]
    assert len(reopened.samples(run_id)) == 2
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_failed_write_leaves_nothing(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    duplicate = _samples(2) + [SampleRecord(idx=0, input="x", prediction="y", reference="z")]
    with pytest.raises(sqlite3.IntegrityError):
        store.record_run(_run(), duplicate)
    assert store.runs() == []


def test_delete_run_removes_samples(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    keep = store.record_run(_run(model="keep"), _samples())
    drop = store.record_run(_run(model="drop"), _samples())
    store.delete_run(drop)
    assert [r.id for r in store.runs()] == [keep]
    assert store.samples(drop) == []
    assert len(store.samples(keep)) == 2


def _writer(path: str, worker: int, count: int, start) -> None:
    start.wait(timeout=60)  # both processes create the schema and write at the same moment
    store = ResultsStore(path)
    for i in range(count):
        store.record_run(_run(model=f"w{worker}-{i}", hardware="test box"), _samples(3))


def test_concurrent_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(path, w, 50, start)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]

    store = ResultsStore(path)
    runs = store.runs()
    assert len(runs) == 100
    assert sorted(r.model for r in runs) == sorted(f"w{w}-{i}" for w in range(2) for i in range(50))
    assert len({r.id for r in runs}) == 100
    assert all(len(store.samples(r.id)) == 3 for r in runs)


def test_file_hash_is_sha256(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_hash(path) == hashlib.sha256(data).hexdigest()


def test_hardware_description_names_cores():
    desc = hardware_description()
    assert f"{os.cpu_count()} cores" in desc


def test_default_store_path(monkeypatch, tmp_path):
    monkeypatch.setenv("M2T_RESULTS_DB", str(tmp_path / "x.sqlite"))
    assert default_store_path() == tmp_path / "x.sqlite"
    monkeypatch.delenv("M2T_RESULTS_DB")
    assert default_store_path() == Path.home() / ".cache" / "media2tweet" / "results.sqlite"


# --------------------------------------------------------------------------- unusable stores (issue 12/15)

import json  # noqa: E402
import threading  # noqa: E402

from core.errors import UserError  # noqa: E402
from core.eval.store import StoreError, check_store, save_unrecorded  # noqa: E402


def _garbage(path: Path) -> Path:
    path.write_bytes(os.urandom(8192))
    return path



class _Locked:
    """Another connection holding an exclusive lock on the store (as a stuck writer would)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    def __enter__(self) -> _Locked:
        self.conn.execute("BEGIN EXCLUSIVE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def test_check_store_accepts_a_new_or_healthy_store_and_creates_nothing(tmp_path):
    assert check_store(tmp_path / "new" / "r.sqlite") == tmp_path / "new" / "r.sqlite"
    assert not (tmp_path / "new").exists()
    ResultsStore(tmp_path / "r.sqlite").record_run(_run(), _samples())
    assert check_store(tmp_path / "r.sqlite") == tmp_path / "r.sqlite"


def test_a_garbage_store_is_one_line_before_anything_runs(tmp_path):
    path = _garbage(tmp_path / "r.sqlite")
    before = path.read_bytes()
    for attempt in (lambda: check_store(path), lambda: ResultsStore(path), lambda: ResultsStore(path).runs()):
        with pytest.raises(StoreError) as caught:
            attempt()
        assert str(caught.value).splitlines() == [
            f"results store {path} is not a usable SQLite database (file is not a database); move it aside or pass "
            "--db OTHER.sqlite"]
    assert path.read_bytes() == before  # nothing was written over the user's file


def test_a_store_that_is_not_ours_or_a_folder_is_refused(tmp_path):
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE runs (x INTEGER)")
    with pytest.raises(StoreError, match="has a 'runs' table that is not Media2Tweet's"):
        check_store(foreign)
    with pytest.raises(UserError, match="is a folder"):
        check_store(tmp_path)


def test_a_locked_store_is_refused_up_front(tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    ResultsStore(path)
    monkeypatch.setenv("M2T_DB_TIMEOUT_S", "0.5")
    with _Locked(path), pytest.raises(StoreError, match="is locked by another process"):
        check_store(path)
    assert check_store(path) == path  # and fine again once the lock is gone


def test_a_run_that_cannot_be_written_is_saved_as_json_beside_the_store(tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    store = ResultsStore(path)
    monkeypatch.setenv("M2T_DB_TIMEOUT_S", "0.5")
    run, samples = _run(), _samples(3)
    with _Locked(path), pytest.raises(StoreError) as caught:
        store.record_run(run, samples)
    message = str(caught.value)
    assert "\n" not in message and "is locked" in message and "the run was not recorded" in message
    saved = caught.value.saved_to
    assert saved is not None and saved.parent == tmp_path and str(saved) in message
    data = json.loads(saved.read_text())
    assert data["run"]["metrics"] == run.metrics and data["run"]["model"] == "gemma"
    assert [s["prediction"] for s in data["samples"]] == ["pred 0", "pred 1", "pred 2"]
    assert store.runs() == []


def test_unrecorded_runs_go_to_the_current_folder_when_the_stores_folder_is_unwritable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saved = save_unrecorded(Path("/proc/results.sqlite"), {"metrics": {"bleu": 1.0}})
    assert saved is not None and saved.parent == tmp_path
    assert json.loads(saved.read_text()) == {"metrics": {"bleu": 1.0}}


def test_a_lock_released_within_the_busy_timeout_is_waited_for(tmp_path, monkeypatch):
    path = tmp_path / "r.sqlite"
    store = ResultsStore(path)
    monkeypatch.setenv("M2T_DB_TIMEOUT_S", "30")
    lock = _Locked(path).__enter__()
    releaser = threading.Timer(0.5, lock.__exit__, args=(None, None, None))
    releaser.start()
    try:
        assert store.record_run(_run(), _samples()) == 1
    finally:
        releaser.join()


def test_a_transaction_start_told_locked_at_once_is_tried_again_within_the_busy_timeout(monkeypatch):
    """SQLite answers "locked" without waiting while another process's last connection cleans up its WAL: the
    start of a write is tried again (here an action that is refused twice), other errors are not."""
    from core.eval.store import _while_busy

    answers = [sqlite3.OperationalError("database is locked"), sqlite3.OperationalError("database is busy"), 7]

    def action():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert _while_busy(action) == 7 and answers == []
    calls = []
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        _while_busy(lambda: calls.append(1) or (_ for _ in ()).throw(sqlite3.OperationalError("no such table: x")))
    assert calls == [1], "a bug is not retried"
    monkeypatch.setenv("M2T_DB_TIMEOUT_S", "0")
    calls.clear()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _while_busy(lambda: calls.append(1) or (_ for _ in ()).throw(sqlite3.OperationalError("database is locked")))
    assert len(calls) <= 2, "with no busy timeout left the lock is reported, not waited for"
