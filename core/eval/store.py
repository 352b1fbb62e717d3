"""Persistent store of evaluation runs (SQLite, stdlib only).

Benchmarks, training scripts and the app's leaderboard write here, sometimes at the
same time, and the numbers must outlive the process.  So: WAL journal (readers never
block the writer), a generous busy timeout (writers queue instead of failing), one
``BEGIN IMMEDIATE`` transaction per run (a run and its samples appear together or not
at all) and a fresh connection per call (safe from any thread, e.g. Streamlit's).

A store that cannot be used (not a database, damaged, locked for longer than the busy timeout,
on a read-only disk) is one :class:`StoreError` line, never an SQLite traceback: commands call
:func:`check_store` before any model loads, and a run whose recording still fails is saved as JSON
beside the store (:func:`save_unrecorded`), so scores computed for minutes are never lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import UserError
from core.outputs import writable_file

T = TypeVar("T")

if TYPE_CHECKING:
    import pandas as pd

BUSY_TIMEOUT_S = 60.0
_OUR_RUN_COLUMNS = {"task", "model", "n", "metrics", "ci", "created_at"}
_OUR_BUGS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)


class StoreError(UserError):
    """The results store cannot be read or written; ``saved_to`` is where an unrecorded run went."""

    def __init__(self, message: str, saved_to: Path | None = None) -> None:
        super().__init__(message)
        self.saved_to = saved_to


def busy_timeout_s() -> float:
    """How long a writer waits for another one's lock: ``M2T_DB_TIMEOUT_S``, default 60 s."""
    raw = os.environ.get("M2T_DB_TIMEOUT_S", "").strip()
    try:
        return max(0.0, float(raw)) if raw else BUSY_TIMEOUT_S
    except ValueError:
        raise UserError(f"M2T_DB_TIMEOUT_S must be a number of seconds, not {raw!r}") from None


def _problem(path: Path, exc: BaseException) -> str:
    """One line for what SQLite (or the OS) said about ``path``, with what to do about it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    if "locked" in text or "busy" in text:
        return (f"results store {path} is locked by another process ({busy_timeout_s():.0f} s waited); "
                "try again when it is done, or pass --db OTHER.sqlite")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return (f"results store {path} is not a usable SQLite database ({text}); move it aside or pass "
                "--db OTHER.sqlite")
    return f"results store {path}: {text}"


def check_store(path: str | Path | None = None) -> Path:
    """The store's path once it is known to be writable and, if it exists, a healthy Media2Tweet store.

    Run before any model loads: a garbage file, a damaged or foreign database, a lock held longer than
    the busy timeout, or a folder that cannot be written is one :class:`StoreError` line, in a second.
    Nothing is created here.
    """
    path = Path(path).expanduser() if path is not None else default_store_path()
    try:
        writable_file(path, "results store", make_parents=True)
    except UserError as exc:
        raise StoreError(str(exc)) from None
    if not path.exists() or path.stat().st_size == 0:
        return path
    timeout = busy_timeout_s()
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            conn.execute("PRAGMA schema_version").fetchone()  # reads the header: garbage fails here
            verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if verdict != "ok":
                raise StoreError(f"results store {path} is damaged ({verdict}); move it aside or pass "
                                 "--db OTHER.sqlite")
            columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
            if columns and not _OUR_RUN_COLUMNS <= columns:
                raise StoreError(f"results store {path} has a 'runs' table that is not Media2Tweet's; "
                                 "pass --db OTHER.sqlite")
            conn.execute("BEGIN IMMEDIATE")  # the write lock can be had (waits up to the busy timeout)
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(_problem(path, exc)) from None
    return path


def save_unrecorded(db_path: Path, payload: dict[str, Any]) -> Path | None:
    """Write a run that could not be recorded as JSON: beside the store, else here, else the temp folder."""
    import tempfile

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"{db_path.stem or 'results'}.unrecorded-{stamp}-{os.getpid()}.json"
    text = json.dumps(payload, indent=1, ensure_ascii=False, default=str)
    for folder in (db_path.parent, Path.cwd(), Path(tempfile.gettempdir())):
        target = folder / name
        try:
            target.write_text(text)
        except OSError:
            continue
        return target
    return None

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    adapter TEXT,
    dataset TEXT,
    dataset_hash TEXT,
    n INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    ci TEXT NOT NULL,
    signature TEXT,
    warnings TEXT,
    wall_time_s REAL,
    throughput REAL,
    hardware TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_task ON runs(task);
CREATE TABLE IF NOT EXISTS samples (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    input TEXT,
    prediction TEXT,
    reference TEXT,
    score REAL,
    PRIMARY KEY (run_id, idx)
);
"""

_RUN_COLUMNS = (
    "id, task, model, adapter, dataset, dataset_hash, n, metrics, ci, signature, warnings, "
    "wall_time_s, throughput, hardware, created_at"
)
# Columns added after the first release: (name, type).  Older files get them on open.
_ADDED_RUN_COLUMNS = (("warnings", "TEXT"),)


@dataclass
class RunRecord:
    """One evaluation run.  ``id``, ``hardware`` and ``created_at`` are filled on record."""

    task: str
    model: str
    n: int
    metrics: dict[str, float]
    ci: dict[str, list[float]] = field(default_factory=dict)
    adapter: str | None = None
    dataset: str | None = None
    dataset_hash: str | None = None
    signature: str | None = None
    warnings: list[str] = field(default_factory=list)  # why some metrics mean little (small set, short texts)
    wall_time_s: float | None = None
    throughput: float | None = None
    hardware: str | None = None
    created_at: str | None = None
    id: int | None = None


@dataclass
class SampleRecord:
    """One scored sample of a run, for drill-down (``score`` is the per-sample metric)."""

    idx: int
    input: str
    prediction: str
    reference: str
    score: float | None = None


def default_store_path() -> Path:
    """``$M2T_RESULTS_DB`` or ``~/.cache/media2tweet/results.sqlite``."""
    env = os.environ.get("M2T_RESULTS_DB")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "media2tweet" / "results.sqlite"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def hardware_description() -> str:
    """E.g. ``"AMD EPYC 7B13, 2 cores; GPU: NVIDIA H100"`` so timings can be compared fairly.

    The GPU is looked up only if torch is importable (it is optional for this module).
    """
    parts = [f"{_cpu_model()}, {os.cpu_count()} cores"]
    try:
        import torch

        if torch.cuda.is_available():
            parts.append(
                "GPU: " + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            )
    except ImportError:
        pass
    return "; ".join(parts)


def machine_description() -> str:
    """The hardware plus the Python version: the line every benchmark result carries."""
    return f"{hardware_description()}; Python {platform.python_version()}"


def file_hash(path: str | Path, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, streamed, to tell which exact dataset a run scored."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (persistent), retrying while another process does the same.

    The switch needs exclusive access and SQLite answers "database is locked" at once,
    without consulting the busy timeout, when two new connections race to make it.
    """
    deadline = time.monotonic() + busy_timeout_s()
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _while_busy(action: Callable[[], T]) -> T:
    """``action()``, tried again while SQLite answers "locked" or "busy", until the busy timeout.

    SQLite's busy handler already waits inside most statements, but not in every case. One is documented for WAL
    files (sqlite.org/wal.html, "Sometimes Queries Return SQLITE_BUSY In WAL Mode"): while the last connection to
    the file closes, it holds an exclusive lock to clean up the WAL, and a connection that starts a transaction
    meanwhile is told "locked" at once. Writers that open a connection per run, as evaluations do, meet that case
    whenever one of them closes. A handler that already waited out the timeout leaves no time, so the wait stays
    one busy timeout in all.
    """
    deadline = time.monotonic() + busy_timeout_s()
    delay = 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(delay)  # backing off from another process's lock
            delay = min(delay * 2, 0.2)


def _run_from_row(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        task=row["task"],
        model=row["model"],
        adapter=row["adapter"],
        dataset=row["dataset"],
        dataset_hash=row["dataset_hash"],
        n=row["n"],
        metrics=json.loads(row["metrics"]),
        ci=json.loads(row["ci"]),
        signature=row["signature"],
        warnings=json.loads(row["warnings"]) if row["warnings"] else [],
        wall_time_s=row["wall_time_s"],
        throughput=row["throughput"],
        hardware=row["hardware"],
        created_at=row["created_at"],
    )


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a store written by an older version up to date (inside the caller's write transaction,
    so two processes opening an old file at once cannot both add a column)."""
    present = {row["name"] for row in conn.execute("PRAGMA table_info(runs)")}
    for name, kind in _ADDED_RUN_COLUMNS:
        if name not in present:
            conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")


class ResultsStore:
    """Runs and their samples in one SQLite file; safe for concurrent processes."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(_problem(self.path, exc)) from None
        with self._connect() as conn:
            _enable_wal(conn)
            with self._transaction(conn):
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                _add_missing_columns(conn)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection whose SQLite errors (here or in the caller's block) leave as one :class:`StoreError`."""
        timeout = busy_timeout_s()
        try:
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(_problem(self.path, exc)) from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        except _OUR_BUGS:
            raise  # a duplicate key or a bad statement is a bug in the caller, not a problem with the file
        except sqlite3.Error as exc:
            raise StoreError(_problem(self.path, exc)) from None
        finally:
            conn.close()

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        # IMMEDIATE takes the write lock up front, so two writers queue on the busy
        # timeout instead of deadlocking on a read->write lock upgrade.
        _while_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def record_run(self, run: RunRecord, samples: list[SampleRecord] | None = None) -> int:
        """Store a run and its samples atomically; return the new run id (also set on ``run``).

        If the store refuses (locked past the busy timeout, damaged, disk full), the run and its samples
        are saved as JSON (:func:`save_unrecorded`) and the :class:`StoreError` says where.
        """
        try:
            return self._insert_run(run, samples)
        except StoreError as exc:
            payload = {"db": str(self.path), "run": asdict(run), "samples": [asdict(s) for s in samples or []]}
            saved = save_unrecorded(self.path, payload)
            where = f"its scores are saved in {saved}" if saved else "and no folder could take a JSON copy"
            raise StoreError(f"{exc}; the run was not recorded, {where}", saved_to=saved) from None

    def _insert_run(self, run: RunRecord, samples: list[SampleRecord] | None = None) -> int:
        run.hardware = run.hardware or hardware_description()
        run.created_at = run.created_at or datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as conn, self._transaction(conn):
            cur = conn.execute(
                "INSERT INTO runs (task, model, adapter, dataset, dataset_hash, n, metrics, ci, signature, "
                "warnings, wall_time_s, throughput, hardware, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.task,
                    run.model,
                    run.adapter,
                    run.dataset,
                    run.dataset_hash,
                    int(run.n),
                    json.dumps(run.metrics, sort_keys=True),
                    json.dumps(run.ci, sort_keys=True),
                    run.signature,
                    json.dumps(list(run.warnings)),
                    run.wall_time_s,
                    run.throughput,
                    run.hardware,
                    run.created_at,
                ),
            )
            run_id = int(cur.lastrowid or 0)
            conn.executemany(
                "INSERT INTO samples (run_id, idx, input, prediction, reference, score) VALUES (?,?,?,?,?,?)",
                [(run_id, s.idx, s.input, s.prediction, s.reference, s.score) for s in samples or []],
            )
        run.id = run_id
        return run_id

    def runs(self, task: str | None = None) -> list[RunRecord]:
        """All runs (of one task if given), oldest first."""
        query = f"SELECT {_RUN_COLUMNS} FROM runs"
        params: tuple[Any, ...] = ()
        if task is not None:
            query += " WHERE task = ?"
            params = (task,)
        with self._connect() as conn:
            return [_run_from_row(row) for row in conn.execute(query + " ORDER BY id", params)]

    def run(self, run_id: int) -> RunRecord | None:
        """One run by id, or None."""
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run_from_row(row) if row else None

    def samples(self, run_id: int) -> list[SampleRecord]:
        """The samples of one run, in index order."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT idx, input, prediction, reference, score FROM samples WHERE run_id = ? ORDER BY idx",
                (run_id,),
            ).fetchall()
        return [SampleRecord(**dict(row)) for row in rows]

    def delete_run(self, run_id: int) -> None:
        """Remove a run and its samples."""
        with self._connect() as conn, self._transaction(conn):
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def runs_frame(self, task: str | None = None) -> pd.DataFrame:
        """Runs as a DataFrame, one column per metric (for leaderboards and plots)."""
        import pandas as pd

        rows = []
        for run in self.runs(task):
            row: dict[str, Any] = {
                "id": run.id,
                "task": run.task,
                "model": run.model,
                "adapter": run.adapter,
                "dataset": run.dataset,
                "dataset_hash": run.dataset_hash,
                "n": run.n,
                "signature": run.signature,
                "warnings": "; ".join(run.warnings),
                "wall_time_s": run.wall_time_s,
                "throughput": run.throughput,
                "hardware": run.hardware,
                "created_at": run.created_at,
            }
            row.update(run.metrics)
            rows.append(row)
        return pd.DataFrame(rows)
