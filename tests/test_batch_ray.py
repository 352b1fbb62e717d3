"""``m2t batch --engine ray`` on an embedded Ray: same rows as the local engine, resumable, nothing left running."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from core.errors import UserError

COLUMNS = ["id", "date", "likes", "content", "username", "media", "inferred company"]
MAX_NEW_TOKENS = 6
BATCH = 2  # 5 rows → blocks of 2, 2, 1: the interrupted run stops after the first


def _write(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def _ray_children() -> list:
    """This process's Ray processes still alive (raylet, GCS, workers): there must be none after a run."""
    import psutil

    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "ray" in " ".join(child.cmdline()).lower():
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


def _assert_ray_gone(timeout: float = 20.0) -> None:
    import psutil

    psutil.wait_procs(_ray_children(), timeout=timeout)
    assert not _ray_children(), [p.cmdline()[:2] for p in _ray_children()]


def test_actors_and_cpu_plan_leave_room_for_ray_tasks():
    from core.batch.ray_engine import RESERVED_CPUS, STAGES, parse_actors, plan_cpus, torch_threads

    assert parse_actors(None) == dict.fromkeys(STAGES, 1)
    assert parse_actors("3") == dict.fromkeys(STAGES, 3)
    assert parse_actors("ocr=2,llm=4") == {**dict.fromkeys(STAGES, 1), "ocr": 2, "llm": 4}
    for bad in ("0", "gpu=2", "ocr=", "ocr=0"):
        with pytest.raises(UserError, match="--actors"):
            parse_actors(bad)
    for total, node, actors in [(2, 2, parse_actors(None)), (2, 2, parse_actors("3")), (1, 1, parse_actors(None)),
                                (64, 16, parse_actors("ocr=4,llm=8"))]:
        plan = plan_cpus(total, node, actors)
        used = sum(plan[s] * actors[s] for s in STAGES)
        assert used <= total - RESERVED_CPUS + 1e-9 or total <= RESERVED_CPUS + 0.1, (total, plan)
        assert all(0 < plan[s] <= node for s in STAGES)
    big = plan_cpus(16, 16, parse_actors(None))
    assert torch_threads(big["llm"]) > torch_threads(big["caption"]) >= 1  # threads follow the CPUs given


def test_unreachable_cluster_is_one_line(tmp_path, free_port):
    pytest.importorskip("ray")
    from core.batch.ray_engine import run_batch_ray

    src = _write(tmp_path / "t.csv", [["1", "2023-06-01 10:00", "5", "", "nike", "", "Nike"]])
    import ray

    with pytest.raises(UserError, match=f"127.0.0.1:{free_port} is unreachable"):
        run_batch_ray(src, tmp_path / "out.csv", {}, address=f"127.0.0.1:{free_port}")
    # Refused by the address probe, before ray.init (which would retry for minutes and word it otherwise).
    assert not ray.is_initialized()


def test_cli_refuses_ray_flags_without_the_ray_engine(tmp_path):
    from core.__main__ import main

    src = _write(tmp_path / "t.csv", [["1", "2023-06-01 10:00", "5", "", "nike", "", "Nike"]])
    assert main(["batch", str(src), "--out", str(tmp_path / "o.csv"), "--actors", "2"]) != 0


@pytest.fixture(scope="module")
def dump(tmp_path_factory, poster_path, speech_path, free_port_module):
    """An image row, an audio row, a dead link, a text-only row and a duplicate id."""
    folder = tmp_path_factory.mktemp("raydump")
    (folder / "media").mkdir()
    (folder / "media" / "poster.png").write_bytes(poster_path.read_bytes())
    (folder / "media" / "speech.wav").write_bytes(speech_path.read_bytes())
    dead = f"http://127.0.0.1:{free_port_module}/x.png"
    rows = [
        ["1", "2023-06-01 10:00:00+00:00", "300", "", "nike", "[Photo(previewUrl='media/poster.png', "
         "fullUrl='media/poster.png')]", "Nike"],
        ["2", "2023-06-02 10:00:00+00:00", "40", "", "beantown", "media/speech.wav", "Bean Town Coffee"],
        ["3", "2023-06-03 10:00:00+00:00", "12", "", "acme", f"[Photo(previewUrl='{dead}', fullUrl='{dead}')]",
         "Acme"],
        ["4", "2023-06-04 10:00:00+00:00", "", "", "tea", "", "Tea Co"],
        ["1", "2023-06-05 10:00:00+00:00", "7", "", "nike", "", "Nike"],  # duplicate id: its own row
    ]
    return _write(folder / "tweets.csv", rows)


@pytest.fixture(scope="module")
def free_port_module() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def private_urls():
    """The dead link is on loopback, which the URL policy refuses unless opted in (as tests/conftest.py does)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("M2T_ALLOW_PRIVATE_URLS", "1")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def local_output(dump, pipeline, private_urls) -> pd.DataFrame:
    from core.batch import run_batch
    from core.stages.llm import GenerationConfig

    out = dump.parent / "local.csv"
    run_batch(dump, out, pipeline, GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, batch_size=BATCH))
    return pd.read_csv(out, dtype=str, keep_default_na=False)


def _ray(dump: Path, out: Path, pipeline, progress=None) -> pd.DataFrame:
    from core.batch.ray_engine import run_batch_ray
    from core.stages.llm import GenerationConfig

    return run_batch_ray(dump, out, pipeline.specs, GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, batch_size=BATCH),
                         progress, actors=1)


# What the models wrote or read: compared by what holds for any output, never word for word (see assert_same_rows).
MODEL_COLUMNS = ("generated", "caption", "ocr", "transcript", "unsupported", "coverage", "thin")


def assert_same_rows(ray: pd.DataFrame, local: pd.DataFrame) -> None:
    """Ray wrote the local engine's rows: the same rows in the same order with the same columns, every cell that
    no model wrote equal (ids, metadata, formula guards, errors), and each model stage ran on the same rows.

    The models' own words are not compared: Ray's actors run with other thread counts than this process, and a
    CPU math library may sum in another order with other threads (Intel MKL without ``MKL_CBWR``), so a near tie
    in a caption, a read or a greedy tweet may go the other way there."""
    assert list(ray.columns) == list(local.columns)
    other = [c for c in local.columns if c not in MODEL_COLUMNS]
    pd.testing.assert_frame_equal(ray[other], local[other])
    for column in ("generated", "caption", "ocr", "transcript", "coverage", "thin"):
        assert (ray[column] == "").tolist() == (local[column] == "").tolist(), column
    written = ray[ray["generated"] != ""]
    assert written["generated"].str.len().le(280).all() and set(written["thin"]) <= {"yes", "no"}
    assert written["coverage"].astype(float).between(0, 1).all()


class _Interrupt(Exception):
    """Raised from the progress callback right after the first block is written, as a Ctrl-C would."""


@pytest.mark.slow
def test_ray_engine_writes_the_local_rows_and_resumes_with_every_row_once(dump, pipeline, local_output):
    """One interrupted run and its rerun (Ray starts embedded twice): cheaper than a clean run besides them."""
    from core.batch.ray_engine import parts_dir

    out = dump.parent / "ray.csv"

    def stop_after_first_block(done: int, total: int) -> None:
        if done > 0:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        _ray(dump, out, pipeline, stop_after_first_block)
    _assert_ray_gone()
    assert len(pd.read_csv(out, dtype=str, keep_default_na=False)) == BATCH

    seen: list[tuple[int, int]] = []
    result = _ray(dump, out, pipeline, lambda done, total: seen.append((done, total)))
    _assert_ray_gone()
    assert seen[0] == (BATCH, 5)  # the finished block was not redone
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    # The local engine's rows, in the same order (formula guards too): each row exactly once.
    assert_same_rows(written, local_output)
    assert len(result) == 5 and list(result["id"]) == ["1", "2", "3", "4", "1"]
    assert "SUMMER" in result.loc[0, "ocr"] and "coffee" in result.loc[1, "transcript"].lower()
    assert "x.png" in result.loc[2, "error"] and result.loc[2, "generated"]  # dead link: noted, still a tweet
    assert result["generated"].str.len().gt(0).all()
    parts = sorted(parts_dir(out).glob("part-*.parquet"))
    assert len(parts) == 3  # blocks of 2, 2, 1
    mirrored = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(mirrored.astype(str), result.astype(str), check_dtype=False)

    before = out.read_bytes()
    again = _ray(dump, out, pipeline)  # finished: Ray is not even started, nothing changes
    assert len(again) == 5 and out.read_bytes() == before


def test_gpu_plan_gives_model_stages_a_share_and_media_none():
    from core.batch.ray_engine import STAGES, parse_actors, plan_gpus

    actors = parse_actors(None)
    assert plan_gpus(0, actors) == dict.fromkeys(STAGES, 0.0)  # a CPU-only cluster asks for none
    shared = plan_gpus(1, actors)  # one GPU, four model actors
    assert shared["media"] == 0 and all(shared[s] == 0.25 for s in ("caption", "ocr", "asr", "llm"))
    assert plan_gpus(8, actors)["llm"] == 1.0  # never more than a whole GPU per actor
    assert plan_gpus(2, actors, per_actor=0.5)["ocr"] == 0.5
    with pytest.raises(UserError, match="needs 4 GPUs; the cluster has 1"):
        plan_gpus(1, actors, per_actor=1)


def _ray_cli(*args: str, env: dict[str, str], timeout: float = 120):
    import subprocess
    import sys

    ray_bin = Path(sys.executable).with_name("ray")
    return subprocess.run([str(ray_bin), *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_batch_joins_a_token_authenticated_head_started_with_ray_start(dump, local_output, tmp_path, free_port,
                                                                       private_urls):
    """``ray start --head`` as a person runs it (Ray 2.59+ turns token auth on when a token exists): without the
    token the batch fails with one line naming what to set; with it the rows are the local engine's."""
    import os
    import secrets
    import subprocess
    import sys

    pytest.importorskip("ray")
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    base["M2T_CACHE_DIR"] = str(Path(os.environ.get("M2T_CACHE_DIR") or Path.home() / ".cache" / "media2tweet"))
    no_token_home = tmp_path / "home"
    no_token_home.mkdir()
    head_env = {**base, "RAY_AUTH_TOKEN_PATH": str(token)}
    started = _ray_cli("start", "--head", f"--port={free_port}", "--num-cpus=2", "--include-dashboard=false",
                       env=head_env)
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        assert "Token authentication is enabled" in started.stdout + started.stderr
        command = [sys.executable, "-m", "core", "batch", str(dump), "--engine", "ray", "--address",
                   f"127.0.0.1:{free_port}", "--max-new-tokens", str(MAX_NEW_TOKENS), "--batch-size", str(BATCH),
                   "--actors", "1"]
        refused = subprocess.run([*command, "--out", str(tmp_path / "refused.csv")], capture_output=True, text=True,
                                 env={**base, "HOME": str(no_token_home)}, timeout=300)
        assert refused.returncode == 2, refused.stderr[-2000:]
        error = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(error) == 1 and "RAY_AUTH_TOKEN" in error[0] and "Traceback" not in refused.stderr
        out = tmp_path / "ray.csv"
        joined = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True,
                                env={**base, "HOME": str(no_token_home), "RAY_AUTH_TOKEN_PATH": str(token),
                                     "M2T_ALLOW_PRIVATE_URLS": "1"}, timeout=600)
        assert joined.returncode == 0, joined.stderr[-3000:]
        assert_same_rows(pd.read_csv(out, dtype=str, keep_default_na=False), local_output)
    finally:
        _ray_cli("stop", "--force", env=head_env)
