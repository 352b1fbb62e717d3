"""``m2t batch --engine ray``: the same batch, spread over a Ray cluster (or an embedded one) with Ray Data.

Why it is built this way:

* **Same rows, same answers as the local engine.** The driver reads the dump with the local engine's reader
  and keys rows the same way (``id#occurrence``), so resuming, duplicate ids and formula-safe cells follow
  :mod:`core.batch.io` exactly. Reading is not the cost (a 300,000-row dump reads in seconds on one core); media,
  OCR, ASR and the LLM are, and those run on the cluster. Ray's own CSV reader would infer types (dates,
  numbers, ``NA``) and could not number duplicate ids, which needs the whole file in order.
* **One block = one local chunk.** The rows still to do are handed to Ray as blocks of ``--batch-size`` rows,
  in the order the local engine would take them, and every stage maps whole blocks. The LLM therefore sees the
  very batches the local engine would (left padding changes nothing then), so greedy output is identical row for
  row, and ``preserve_order`` makes the output file the one the local engine would write.
* **A class per stage on its own actor pool** (media → caption → OCR → ASR → prompt + LLM): each actor loads its
  model once through :mod:`core.pipeline`'s loaders and runs the pipeline's own stage code, so new model
  backends (e.g. an OpenAI-compatible server behind the LLM spec) work unchanged. ``--actors`` sizes the pools.
* **CPUs are budgeted, never all taken.** Fixed actor pools reserve their CPUs up front; if they took every CPU,
  Ray Data's own tasks could never be scheduled and the run would hang silently (reproduced on 2 cores). Actors
  share ``CPUs - RESERVED_CPUS`` by stage weight, and torch gets ``max(1, int(num_cpus))`` threads explicitly,
  because Ray sets ``OMP_NUM_THREADS`` to the actor's (rounded down) CPUs only when it is unset.
* **Resumable.** The driver appends each finished block to ``--out`` in one write and mirrors it as a Parquet
  part in ``OUT.parts/``; a killed run loses only the blocks in flight, and a rerun skips every row already in
  ``--out``.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.batch.io import (
    OUTPUT_COLUMNS,
    confinement_error,
    load_done,
    plan_rows,
    result_columns,
    row_request,
    write_atomic,
)
from core.errors import UserError, first_line
from core.pipeline import Analysis, Pipeline
from core.stages.llm import GenerationConfig
from core.tables import formula_safe

if TYPE_CHECKING:  # torch loads in the actors; the driver never needs it
    from core.pipeline import Analysis, Pipeline
    from core.registry import ModelSpec
STAGES = ("media", "caption", "ocr", "asr", "llm")
# Relative CPU need per actor (measured on 2 cores: caption ~23 ms/image, OCR 0.5-2.6 s/image, ASR RTF ~0.1,
# the LLM the slowest); with 16 CPUs the LLM actor gets ~5 torch threads and OCR ~4.
STAGE_WEIGHTS = {"media": 1, "caption": 1, "ocr": 3, "asr": 2, "llm": 4}
RESERVED_CPUS = 0.5  # left free for Ray Data's own tasks, so nothing waits for a CPU that never frees up
POS = "__m2t_pos"  # the row's position in the input: names Parquet parts
STATE = "__m2t_state"  # pickled _RowState travelling from stage to stage
FORWARDED_ENV = ("M2T_", "HF_", "TRANSFORMERS_", "TOKENIZERS_")  # settings the actors must see as the driver does

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- stages (run inside Ray actors)


@dataclass
class _RowState:
    """What the stages learned about one row so far."""

    refused: str | None  # why the row's media was not read (outside the media root), noted in ``error``
    analysis: Analysis | None
    fatal: str | None = None  # a UserError that makes the local engine drop the row's analysis


def _set_threads(threads: int) -> None:
    """Pin torch (and CTranslate2, which reads OMP_NUM_THREADS when a model loads) to this actor's CPUs."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this worker process (a reused worker): the first value stays
        pass


class _Stage:
    """One actor of a stage: a pipeline that loads only this stage's model, once, before the first batch."""

    task = ""

    def __init__(self, specs: dict[str, ModelSpec], base_dir: str, threads: int) -> None:
        _set_threads(threads)

        self.base_dir = Path(base_dir)
        self.pipeline = self._make_pipeline(Pipeline, specs)
        if self.task in ("caption", "ocr", "asr", "llm"):
            self.pipeline.model(self.task)

    def _make_pipeline(self, cls: type[Pipeline], specs: dict[str, ModelSpec]) -> Pipeline:
        return cls(specs)

    def _request(self, row: pd.Series, state: _RowState):
        request = row_request(row, self.base_dir)
        if state.refused:
            request.media = None  # as the local engine: predicted from its metadata alone
        return request

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        states = [pickle.loads(blob) for blob in batch[STATE]]
        for state in states:
            self.run(state)
        out = batch.copy()
        out[STATE] = [pickle.dumps(s) for s in states]
        return out

    def run(self, state: _RowState) -> None:
        raise NotImplementedError


class MediaStage(_Stage):
    """Fetch and decode each row's media (Pipeline.load_request_media), after the local engine's confinement check."""

    task = "media"

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        blobs = []
        for _, row in batch.iterrows():
            request = row_request(row, self.base_dir)
            state = _RowState(refused=confinement_error(str(request.media or ""), self.base_dir), analysis=None)
            if state.refused:
                request.media = None
            media, errors = self.pipeline.load_request_media(request)
            # As Pipeline.prepare + analyse: load errors first, then the media's own non-fatal ones.
            state.analysis = Analysis(media=media, errors=[*errors, *(media.errors if media is not None else [])])
            blobs.append(pickle.dumps(state))
        out = batch.copy()
        out[STATE] = blobs
        return out


class _AnalysisStage(_Stage):
    """Caption, OCR or ASR on the row's media, by the pipeline's own ``run_stage`` (as ``Pipeline.analyse``)."""

    def run(self, state: _RowState) -> None:
        analysis = state.analysis
        if state.fatal or analysis is None or analysis.media is None:
            return
        try:
            self.pipeline.run_stage(self.task, analysis.media, analysis)
        except UserError as exc:  # the local engine drops such a row's analysis and notes only this
            state.fatal = str(exc)
        if self.task == "asr":
            analysis.media = None  # decoded frames are not needed past the last media stage: keep blocks small


class CaptionStage(_AnalysisStage):
    task = "caption"


class OcrStage(_AnalysisStage):
    task = "ocr"


class AsrStage(_AnalysisStage):
    task = "asr"


@cache
def _analysed_pipeline() -> type[Pipeline]:
    class AnalysedPipeline(Pipeline):
        """A pipeline whose media work the earlier actors did: ``prepare`` only builds the prompt.

        Everything after that (bad rows, batched generation, choosing among candidates) is
        ``Pipeline.predict_many`` itself, so the LLM stage cannot drift from the local engine.
        """

        ready: dict[int, Analysis | UserError]

        def prepare(self, request, on_stage=None):
            found = self.ready.pop(id(request))
            if isinstance(found, UserError):
                raise found
            return self.build_prompt(request, found), found

    return AnalysedPipeline


class LlmStage(_Stage):
    """Prompt + generation for a block of rows, through Pipeline.predict_many; writes the output columns."""

    task = "llm"

    def __init__(self, specs: dict[str, ModelSpec], base_dir: str, threads: int, cfg: GenerationConfig) -> None:
        self.cfg = cfg
        super().__init__(specs, base_dir, threads)

    def _make_pipeline(self, cls: type[Pipeline], specs: dict[str, ModelSpec]) -> Pipeline:
        pipeline = _analysed_pipeline()(specs)
        pipeline.ready = {}
        return pipeline

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        states = [pickle.loads(blob) for blob in batch[STATE]]
        requests = []
        for (_, row), state in zip(batch.iterrows(), states, strict=True):
            request = self._request(row, state)
            self.pipeline.ready[id(request)] = UserError(state.fatal) if state.fatal else state.analysis
            requests.append(request)
        try:
            predictions = self.pipeline.predict_many(requests, self.cfg)
        finally:
            self.pipeline.ready.clear()
        columns = [result_columns(p) for p in predictions]
        for values, state in zip(columns, states, strict=True):  # as core.batch.local.run_batch notes a refused path
            if state.refused:
                values["error"] = "; ".join(filter(None, (state.refused, values["error"])))
        out = batch.drop(columns=[STATE])
        for column in OUTPUT_COLUMNS:
            out[column] = [values[column] for values in columns]
        return out


STAGE_CLASSES: dict[str, type[_Stage]] = {
    "media": MediaStage, "caption": CaptionStage, "ocr": OcrStage, "asr": AsrStage, "llm": LlmStage,
}


# --------------------------------------------------------------------------- planning (pure, testable without Ray)


def parse_actors(text: str | int | None) -> dict[str, int]:
    """``--actors``: one count for every stage (``2``) or per stage (``ocr=2,llm=3``; the rest stay 1)."""
    counts = dict.fromkeys(STAGES, 1)
    if text is None:
        return counts
    text = str(text).strip()
    if text.isdigit():
        if int(text) < 1:
            raise UserError(f"--actors {text}: must be at least 1")
        return dict.fromkeys(STAGES, int(text))
    for item in text.split(","):
        stage, _, number = item.partition("=")
        stage = stage.strip()
        if stage not in counts or not number.strip().isdigit() or int(number) < 1:
            raise UserError(f"--actors {text!r}: give a number, or stage=N pairs with stages {', '.join(STAGES)}")
        counts[stage] = int(number)
    return counts


def plan_cpus(total_cpus: float, node_cpus: float, actors: dict[str, int]) -> dict[str, float]:
    """CPUs per actor of each stage: the cluster's CPUs less RESERVED_CPUS, shared by stage weight.

    Every actor fits on one node, and the pools together never take the reserved share, so Ray Data's
    own tasks always find a CPU (all CPUs reserved by actors = a silent hang).
    """
    budget = max(total_cpus - RESERVED_CPUS, 0.1)
    weight = sum(STAGE_WEIGHTS[s] * actors[s] for s in STAGES)
    cap = node_cpus - RESERVED_CPUS if node_cpus - RESERVED_CPUS >= 0.1 else node_cpus
    return {stage: max(0.01, int(min(budget * STAGE_WEIGHTS[stage] / weight, cap) * 100) / 100) for stage in STAGES}


MODEL_STAGES = ("caption", "ocr", "asr", "llm")


def plan_gpus(cluster_gpus: float, actors: dict[str, int], per_actor: float | None = None) -> dict[str, float]:
    """GPUs per actor of each stage: ``per_actor`` for every model stage when given (``--gpus-per-actor``),
    else the cluster's GPUs shared evenly by the model stages' actors (at most one each; Ray accepts fractions,
    so four model actors on one GPU get 0.25 each), none on a CPU-only cluster. The media stage never takes one.
    """
    if per_actor is not None and per_actor < 0:
        raise UserError(f"--gpus-per-actor {per_actor:g}: must be 0 or more")
    n_model_actors = sum(actors[s] for s in MODEL_STAGES)
    if per_actor is None:
        per_actor = min(1.0, int(cluster_gpus / n_model_actors * 100) / 100) if cluster_gpus > 0 else 0.0
    elif per_actor * n_model_actors > cluster_gpus + 1e-9:
        raise UserError(f"--gpus-per-actor {per_actor:g} × {n_model_actors} model actors needs "
                        f"{per_actor * n_model_actors:g} GPUs; the cluster has {cluster_gpus:g}")
    return {stage: (per_actor if stage in MODEL_STAGES else 0.0) for stage in STAGES}


def torch_threads(num_cpus: float) -> int:
    return max(1, int(num_cpus))


def parts_dir(out_path: Path) -> Path:
    """Where the Parquet parts go: ``generated.csv`` → ``generated.parts/``."""
    return out_path.with_name(f"{out_path.stem}.parts")


# --------------------------------------------------------------------------- driver


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError("--engine ray needs Ray Data: pip install 'ray[data]==2.60.0' "
                        "(or use --engine local)") from None
    return ray


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}


def _check_reachable(address: str) -> None:
    """Fail in seconds on a cluster that is not there: ``ray.init`` itself retries for minutes."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r}: expected HOST:PORT of the head node (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as exc:
        raise UserError(f"Ray cluster at {address} is unreachable ({first_line(exc)}); start it with "
                        f"'ray start --head' or drop --address to run on this machine") from None


AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENVS = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
DEFAULT_TOKEN = Path("~/.ray/auth_token")  # where `ray get-auth-token --generate` and embedded runs keep it


def local_token() -> str | None:
    """Where a Ray auth token is available to this process (an env var's name or the file), or None."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return "RAY_AUTH_TOKEN_PATH" if Path(path).expanduser().is_file() else None
    return str(DEFAULT_TOKEN) if DEFAULT_TOKEN.expanduser().is_file() else None


def prepare_auth(target: str) -> str | None:
    """Send the local token when joining ``target``, unless the person chose a mode; returns the token's source.

    Ray 2.59+ starts a head node with token authentication whenever a token exists on it (``~/.ray/auth_token``,
    which any embedded ``ray.init()`` writes), but a client joining an explicit address never turns it on by
    itself and then fails with a bare "Failed to connect". Sending a token to a cluster without authentication
    is harmless (measured with Ray 2.60), so a token found here is always offered.
    """
    if target in ("auto", "local") or os.environ.get(AUTH_MODE_ENV):
        return None
    source = local_token()
    if source is not None:
        os.environ[AUTH_MODE_ENV] = "token"  # read when Ray's config initialises, so set before ray is imported
        if "ray._raylet" in sys.modules:  # imported already (a second run in one process): refresh it as Ray does
            from ray._raylet import Config

            Config.initialize("")
    return source


def _auth_hint(target: str, source: str | None) -> str:
    if os.environ.get(AUTH_MODE_ENV, "").lower() == "disabled":
        return ""
    if source is None and os.environ.get(AUTH_MODE_ENV, "").lower() != "token":
        return (f". If the cluster uses token authentication (Ray starts a head node with it when ~/.ray/auth_token "
                f"exists there), make its token available here: RAY_AUTH_TOKEN=<token> or RAY_AUTH_TOKEN_PATH=<file> "
                f"or copy it to {DEFAULT_TOKEN} (`ray get-auth-token` on the head prints it)")
    return (f". The token from {source or 'RAY_AUTH_TOKEN'} was sent; if the cluster at {target} uses another token, "
            "set RAY_AUTH_TOKEN to the head's (`ray get-auth-token` there)")


def _connect(ray, target: str | None, source: str | None) -> bool:
    """Join ``target``, or start Ray embedded; True when this call started it (and must stop it).

    ``source`` is where the token sent comes from (:func:`prepare_auth`, called before ray is imported)."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True,
                              "runtime_env": {"env_vars": _forwarded_env()}}
    if not target:
        kwargs.update(include_dashboard=False, object_store_memory=1 << 30)  # a laptop: 1 GiB, spills beyond
    try:
        ray.init(address=target, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {target}" if target else "an embedded Ray"
        hint = _auth_hint(target, source) if target else ""
        raise UserError(f"cannot start or join {where}: {first_line(exc)}{hint}") from None
    return True


def _cluster_cpus(ray) -> tuple[float, float]:
    """Total CPUs, and the most any single node has (an actor cannot span nodes)."""
    total = float(ray.cluster_resources().get("CPU", 0))
    nodes = [float(n.get("Resources", {}).get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    if total <= 0:
        raise UserError("the Ray cluster has no CPUs")
    return total, max(nodes, default=total)


def _dataset(ray, rows: pd.DataFrame, specs: dict[str, ModelSpec], cfg: GenerationConfig, base_dir: Path,
             actors: dict[str, int], chunk: int, gpus_per_actor: float | None = None):
    from ray.data import ActorPoolStrategy, DataContext

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True  # duplicate ids are keyed by occurrence: write in input order
    ctx.target_max_block_size = None  # never split a block: a block is the LLM batch the local engine would run
    ctx.enable_progress_bars = False  # our own bar counts rows written
    ctx.enable_operator_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.issue_detectors_config.detectors = []  # its "set memory=" hints repeat every 30 s; model sizes are known
    logging.getLogger("ray.data").setLevel(logging.WARNING)

    total, node = _cluster_cpus(ray)
    cpus = plan_cpus(total, node, actors)
    gpus = plan_gpus(float(ray.cluster_resources().get("GPU", 0)), actors, gpus_per_actor)
    env = {"env_vars": _forwarded_env()}
    blocks = [rows.iloc[i:i + chunk].reset_index(drop=True) for i in range(0, len(rows), chunk)]
    ds = ray.data.from_pandas(blocks)
    for stage in STAGES:
        kwargs: dict[str, Any] = {"specs": specs, "base_dir": str(base_dir), "threads": torch_threads(cpus[stage])}
        if stage == "llm":
            kwargs["cfg"] = cfg
        ds = ds.map_batches(STAGE_CLASSES[stage], fn_constructor_kwargs=kwargs, batch_size=None,
                            batch_format="pandas", compute=ActorPoolStrategy(size=actors[stage]),
                            num_cpus=cpus[stage], runtime_env=env, **({"num_gpus": gpus[stage]} if gpus[stage] else {}))
    return ds, cpus


def _append(out_path: Path, rows: pd.DataFrame, columns: list[str]) -> None:
    """Append rows to the output CSV in one write, header first on a new file (formula-safe, as local)."""
    header = not out_path.exists() or out_path.stat().st_size == 0
    text = formula_safe(rows.reindex(columns=columns, fill_value="")).to_csv(index=False, header=header)
    fd = os.open(out_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_part(folder: Path, rows: pd.DataFrame, columns: list[str], first_pos: int) -> None:
    """One Parquet part per block, named by the input position of its first row (a redo overwrites it)."""
    folder.mkdir(exist_ok=True)
    target = folder / f"part-{first_pos:09d}.parquet"
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    rows.reindex(columns=columns, fill_value="").to_parquet(tmp, index=False)
    tmp.replace(target)


def _drop_stale_parts(folder: Path, n_rows: int, todo: set[int]) -> None:
    """Parts written by a run killed before the rows reached the CSV: their rows will be redone."""
    if not folder.is_dir():
        return
    for part in folder.glob("part-*.parquet"):
        try:
            pos = int(part.stem.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pos >= n_rows or pos in todo:
            part.unlink(missing_ok=True)


def _user_error(exc: BaseException) -> UserError | None:
    """The UserError an actor raised (e.g. a model that cannot load), which reaches the driver wrapped."""
    seen = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, UserError):
            return UserError(str(cause))
        seen.add(id(cause))
        cause = getattr(cause, "cause", None) or cause.__cause__
    return None


def run_batch_ray(
    in_path: Path,
    out_path: Path,
    specs: dict[str, ModelSpec],
    cfg: GenerationConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    limit: int | None = None,
    *,
    media_root: Path | None = None,
    address: str | None = None,
    actors: str | int | dict[str, int] | None = None,
    on_start: Callable[[dict[str, float]], None] | None = None,
    gpus_per_actor: float | None = None,
) -> pd.DataFrame:
    """Like :func:`core.batch.local.run_batch`, on Ray: returns the full output table (unguarded).

    ``address`` (or ``RAY_ADDRESS``) joins a running cluster; without either, Ray starts embedded here and is
    shut down at the end. A token-authenticated cluster is joined with the local token (:func:`prepare_auth`).
    ``on_start`` receives the CPUs given to each stage's actors. Model stages take GPUs when the cluster has
    them (:func:`plan_gpus`; ``gpus_per_actor`` fixes the share).
    """
    cfg = cfg or GenerationConfig()
    counts = actors if isinstance(actors, dict) else parse_actors(actors)
    frame, base_dir, done, todo = plan_rows(in_path, out_path, limit, media_root)
    columns = list(done.columns)  # an existing output keeps its column order; rows are appended to it
    for column in [*frame.columns, *OUTPUT_COLUMNS]:
        if column not in columns:
            raise UserError(f"{out_path} has no {column!r} column, so rows cannot be added to it; choose another --out")
    parts = parts_dir(out_path)
    _drop_stale_parts(parts, len(frame), set(todo))
    finished = len(frame) - len(todo)
    if progress:
        progress(finished, len(frame))
    if not todo:
        write_atomic(done, out_path)
        return done

    rows = frame.iloc[todo].copy()
    rows[POS] = todo
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target:
        _check_reachable(target)
    token_source = prepare_auth(target) if target else None  # before ray is imported: it reads the mode then
    ray = _import_ray()
    started = _connect(ray, target, token_source)
    batches = None
    try:
        ds, cpus = _dataset(ray, rows, specs, cfg, base_dir, counts, max(1, cfg.batch_size), gpus_per_actor)
        if on_start:
            on_start(cpus)
        batches = ds.iter_batches(batch_size=None, batch_format="pandas", prefetch_batches=1)
        try:
            for batch in batches:
                first = int(batch[POS].iloc[0])
                out = batch.drop(columns=[POS])
                _write_part(parts, out, columns, first)
                _append(out_path, out, columns)
                finished += len(out)
                if progress:
                    progress(finished, len(frame))
        except ray.exceptions.RayError as exc:
            reason = _user_error(exc)
            if reason is None:
                raise  # a bug, not the person's input: keep the traceback
            raise reason from None
    finally:
        if batches is not None and hasattr(batches, "close"):
            batches.close()
        if started:
            ray.shutdown()
    result = load_done(out_path, frame)
    return result


def describe_plan(cpus: dict[str, float], actors: dict[str, int]) -> str:
    """One line for the person: what each stage got."""
    return "ray actors: " + ", ".join(
        f"{s} {actors[s]}×{cpus[s]:g} CPU ({torch_threads(cpus[s])} thread{'s' * (torch_threads(cpus[s]) > 1)})"
        for s in STAGES)


