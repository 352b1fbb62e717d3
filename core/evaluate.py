"""``python -m core evaluate``: run a model over a labelled set, score it, record the run.

Four tasks, each scored the way its literature does (see ``docs/evaluation.md``):

* ``tweet``   tweet-dump CSV, reference ``content``      -> BLEU, ROUGE-L, chrF, CIDEr-D (:func:`text_scores`)
* ``caption`` CSV/parquet ``path`` or ``url`` + ``caption`` -> same text metrics
* ``ocr``     CSV ``path,text``                          -> WER/CER (:func:`speech_scores`)
* ``asr``     CSV ``audio,text``                         -> WER/CER, plus RTFx

Every run lands in the SQLite :class:`ResultsStore` with its per-sample predictions, so the
leaderboard can compare models and drill into single samples.  ``--predictions FILE`` scores
outputs made elsewhere (another machine, another project) through exactly the same code.

Only the standard library and light ``core`` modules are imported at module level: the CLI
imports this file to register its sub-command, and ``python -m core --help`` must stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import MediaError, UserError
from core.results_store import ResultsStore, RunRecord, SampleRecord, default_store_path, file_hash

if TYPE_CHECKING:
    import pandas as pd

    from core.generation import GenerationConfig
    from core.pipeline import Pipeline

EXTERNAL_MODEL = "external"
PREDICTION_COLUMNS = ("prediction", "generated")  # ours, and `python -m core batch` output
INPUT_CHARS = 500  # cap on each field of a sample's stored input (a media field can be kilobytes)


@dataclass(frozen=True)
class TaskSpec:
    """How one evaluation task reads its data and which model stage answers it."""

    stage: str  # registry task whose model runs: llm, captioning, ocr, asr
    reference: str  # column holding the reference text
    keys: tuple[str, ...]  # columns naming an item (first present wins); predictions files join on it
    family: str  # "text" (BLEU & co.) or "speech" (WER/CER)
    sample_metric: str  # what SampleRecord.score holds for this task


TASKS: dict[str, TaskSpec] = {
    "tweet": TaskSpec("llm", "content", ("id",), "text", "bleu"),
    "caption": TaskSpec("captioning", "caption", ("path", "url"), "text", "bleu"),
    "ocr": TaskSpec("ocr", "text", ("path",), "speech", "cer"),
    "asr": TaskSpec("asr", "text", ("audio",), "speech", "wer"),
}
# What SampleRecord.score means per task, for the leaderboard's drill-down: sentence BLEU for text
# (as training/evaluation.py records it, so a task's column means one thing whoever wrote the run),
# CER % for OCR (short phrases: one wrong letter should not cost a whole word), WER % for ASR.
SAMPLE_METRIC = {task: spec.sample_metric for task, spec in TASKS.items()}
TEXT_METRICS = ("bleu", "bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "chrf", "cider")
SPEECH_METRICS = ("wer", "cer")
LABELS = {
    "bleu": "BLEU",
    "bleu1": "BLEU-1 precision",
    "bleu2": "BLEU-2 precision",
    "bleu3": "BLEU-3 precision",
    "bleu4": "BLEU-4 precision",
    "rougeL": "ROUGE-L F",
    "chrf": "chrF",
    "cider": "CIDEr-D",
    "wer": "WER %",
    "cer": "CER %",
    "rtfx": "RTFx",
    "media_errors": "media errors",
}


# --------------------------------------------------------------------------- data


@dataclass
class Item:
    """One labelled row: where its input is, what the answer is, and the raw row (tweets need it)."""

    position: int  # row number in the data file (0-based, header excluded)
    key: str  # value of the task's key column, or the row number when there is none
    source: str  # media location (tweets: the dump's media field)
    reference: str
    row: dict[str, str] = field(default_factory=dict)


@dataclass
class Dataset:
    """The rows to score, where relative media paths start, and what was left out."""

    path: Path
    items: list[Item]
    key_column: str | None
    base_dir: Path
    total_rows: int  # rows in the file: an aligned predictions file must have as many
    limited: bool = False  # --limit cut the rows, so a shorter aligned predictions file is fine
    dropped: int = 0  # rows without a reference (nothing to score against)


def _read_table(path: Path) -> pd.DataFrame:
    """CSV (or parquet) as strings; every way it can be unusable becomes one clear UserError."""
    import pandas as pd

    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a data file")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable CSV or parquet file ({str(exc).splitlines()[0]})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise UserError(f"{path}: the file has a header but no rows")
    return frame.reset_index(drop=True).fillna("").astype(str)  # positions align predictions row for row


def _read_data_frame(task: str, path: Path) -> pd.DataFrame:
    """The data file with the columns its task needs, or a UserError naming what is missing."""
    spec = TASKS[task]
    if task == "tweet":
        from core.batch import read_tweet_csv

        frame = read_tweet_csv(path)
    else:
        frame = _read_table(path)
    missing = [spec.reference] if spec.reference not in frame.columns else []
    if task != "tweet" and not any(k in frame.columns for k in spec.keys):
        missing.insert(0, " or ".join(spec.keys))
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)}; {task} data needs {_expected_columns(task)}"
        )
    return frame


def _expected_columns(task: str) -> str:
    return {
        "tweet": "a tweet dump (id, date, likes, content, username, media, inferred company)",
        "caption": "path or url, and caption",
        "ocr": "path and text",
        "asr": "audio and text",
    }[task]


def _key_column(task: str, frame: pd.DataFrame) -> str | None:
    return next((k for k in TASKS[task].keys if k in frame.columns), None)


def load_dataset(task: str, path: str | Path, limit: int | None = None) -> Dataset:
    """The first ``limit`` rows that have a reference; rows with a blank reference cannot be scored."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    path = Path(path)
    frame = _read_data_frame(task, path)
    key = _key_column(task, frame)
    spec = TASKS[task]
    has_reference = frame[spec.reference].str.strip() != ""
    usable = frame[has_reference]
    if usable.empty:
        raise UserError(f"{path}: every `{spec.reference}` is empty; there is nothing to score against")
    if limit is not None:
        usable = usable.head(limit)
    source_column = "media" if task == "tweet" else key
    items = [
        Item(
            position=int(position),
            key=row[key] if key else str(position),
            source=row.get(source_column, "") if source_column else "",
            reference=row[spec.reference],
            row=dict(row),
        )
        for position, row in zip(usable.index, usable.to_dict("records"), strict=True)
    ]
    return Dataset(
        path,
        items,
        key,
        path.resolve().parent,
        total_rows=len(frame),
        limited=limit is not None and len(usable) < int(has_reference.sum()),
        dropped=int((~has_reference).sum()),
    )


# --------------------------------------------------------------------------- external predictions


def read_predictions(path: str | Path, data: Dataset) -> list[str]:
    """Predictions for ``data.items`` from a file made elsewhere.

    Joined on the data's key column (``id``/``path``/``url``/``audio``) when both files have it,
    so order does not matter; otherwise row *i* of the file answers data row *i*.
    """
    path = Path(path)
    frame = _read_table(path)
    column = next((c for c in PREDICTION_COLUMNS if c in frame.columns), None)
    if column is None:
        raise UserError(f"{path}: no `prediction` column (found: {', '.join(frame.columns)})")
    key = data.key_column
    if key and key in frame.columns:
        return _join_predictions(path, frame, column, key, data.items)
    needed = max(item.position for item in data.items) + 1
    if len(frame) < needed or (len(frame) != data.total_rows and not data.limited):
        raise UserError(
            f"{path}: {len(frame)} predictions for {data.total_rows} data rows; without a "
            f"`{key or 'key'}` column to join on, predictions must align with the data row for row"
        )
    return [frame[column].iloc[item.position] for item in data.items]


def _join_predictions(path: Path, frame: pd.DataFrame, column: str, key: str, items: list[Item]) -> list[str]:
    duplicated = frame[key][frame[key].duplicated()]
    if not duplicated.empty:
        raise UserError(f"{path}: `{key}` {duplicated.iloc[0]!r} appears more than once; which prediction counts?")
    answers = dict(zip(frame[key], frame[column], strict=True))
    missing = [item.key for item in items if item.key not in answers]
    if missing:
        raise UserError(
            f"{path}: no prediction for {len(missing)} of {len(items)} data rows (first: {key}={missing[0]!r})"
        )
    return [answers[item.key] for item in items]


# --------------------------------------------------------------------------- running a model


@dataclass
class Outcome:
    """A model's answer for one item, with what went wrong and what it saw on the way."""

    prediction: str
    error: str = ""
    details: dict[str, str] = field(default_factory=dict)
    audio_s: float = 0.0  # asr: seconds of audio transcribed
    process_s: float = 0.0  # asr: seconds spent transcribing it


def build_pipeline(
    task: str,
    *,
    model: str | None = None,
    adapter: str | None = None,
    profile: str | None = None,
    device: str | None = None,
) -> Pipeline:
    """A pipeline whose model for ``task`` is ``model``; the other stages come from the profile.

    The CLI's ``--model`` names the model under test only: a tweet run with ``--model smollm2-135m``
    still captions and reads its posters with the profile's captioner and OCR.
    """
    from core.pipeline import Pipeline
    from core.registry import TASKS as STAGES
    from core.registry import resolve

    stage = TASKS[task].stage
    if adapter and stage != "llm":
        raise UserError("--adapter applies to the tweet task's LLM; pass a fine-tuned model folder with --model")
    specs = {
        name: resolve(
            name,
            model if name == stage else None,
            profile=profile,
            adapter=adapter if name == stage else None,
            device=device,
        )
        for name in STAGES
    }
    return Pipeline(specs, profile=profile)


def _images(media: Any, source: str) -> list[Any]:
    if not media.images:
        raise MediaError(f"{source}: has no image (it is {media.kind})")
    return media.images


def _predict_ocr(pipeline: Pipeline, item: Item, base_dir: Path) -> Outcome:
    from core.media import load_media
    from core.ocr import read_images

    media = load_media(item.source, base_dir=base_dir)
    found = read_images(pipeline.model("ocr"), _images(media, item.source))
    return Outcome(" ".join(found.text.split()))


def _predict_caption(pipeline: Pipeline, item: Item, base_dir: Path) -> Outcome:
    from core.captioning import caption_images
    from core.media import load_media

    media = load_media(item.source, base_dir=base_dir)
    caption = caption_images(pipeline.model("captioning"), _images(media, item.source)[:1])[0]
    return Outcome(caption.caption)


def _predict_asr(pipeline: Pipeline, item: Item, base_dir: Path) -> Outcome:
    from core.media import load_media
    from core.transcription import transcribe

    media = load_media(item.source, base_dir=base_dir)
    if media.audio is None:
        raise MediaError(f"{item.source}: has no audio track")
    start = time.perf_counter()
    transcript = transcribe(pipeline.model("asr"), media.audio)
    return Outcome(transcript.text, audio_s=media.audio_seconds, process_s=time.perf_counter() - start)


_PREDICTORS: dict[str, Callable[[Pipeline, Item, Path], Outcome]] = {
    "ocr": _predict_ocr,
    "caption": _predict_caption,
    "asr": _predict_asr,
}


def _predict_items(task: str, pipeline: Pipeline, data: Dataset, advance: Callable[[int], None]) -> list[Outcome]:
    """One item at a time; a media failure becomes an empty prediction with its error, never a crash."""
    predict = _PREDICTORS[task]
    outcomes = []
    for item in data.items:
        try:
            outcomes.append(predict(pipeline, item, data.base_dir))
        except MediaError as exc:
            outcomes.append(Outcome("", error=str(exc)))
        advance(1)
    return outcomes


def _chunks(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + max(1, size)]


def _predict_tweets(
    pipeline: Pipeline, data: Dataset, cfg: GenerationConfig, advance: Callable[[int], None]
) -> list[Outcome]:
    """Batched like ``core batch``: analyse each row's media, then generate a chunk's tweets together."""
    import pandas as pd

    from core.batch import row_request

    outcomes = []
    for chunk in _chunks(data.items, cfg.batch_size):
        requests = [row_request(pd.Series(item.row), data.base_dir) for item in chunk]
        for prediction in pipeline.predict_many(requests, cfg):
            analysis = prediction.analysis
            details = {"caption": analysis.caption, "ocr": " ".join(analysis.ocr.split())}
            if analysis.transcript:
                details["transcript"] = analysis.transcript
            outcomes.append(Outcome(prediction.tweet, error="; ".join(analysis.errors), details=details))
        advance(len(chunk))
    return outcomes


def _preload(task: str, pipeline: Pipeline) -> float:
    """Load the models the run needs before the clock starts, so throughput measures inference only."""
    stages = ("llm", "captioning", "ocr") if task == "tweet" else (TASKS[task].stage,)
    start = time.perf_counter()
    for stage in stages:
        pipeline.model(stage)
    return time.perf_counter() - start


def run_model(
    task: str, pipeline: Pipeline, data: Dataset, cfg: GenerationConfig | None = None, progress: bool = True
) -> tuple[list[Outcome], float]:
    """Predictions for every item and the seconds they took (model loading excluded)."""
    from tqdm import tqdm

    from core.generation import GenerationConfig

    with tqdm(
        total=len(data.items), desc=f"evaluate {task}", unit="item", file=sys.stderr, disable=None if progress else True
    ) as bar:
        start = time.perf_counter()
        if task == "tweet":
            outcomes = _predict_tweets(pipeline, data, cfg or GenerationConfig(), bar.update)
        else:
            outcomes = _predict_items(task, pipeline, data, bar.update)
        return outcomes, time.perf_counter() - start


# --------------------------------------------------------------------------- scoring


def score(task: str, predictions: list[str], references: list[str], bootstrap: int = 1000) -> dict[str, Any]:
    """Corpus metrics for the task's family: ``{"metrics", "ci", "signature"}``."""
    from core.metrics import speech_scores, text_scores

    if TASKS[task].family == "text":
        result = text_scores(predictions, references, bootstrap=bootstrap)
        return {
            "metrics": {k: result[k] for k in TEXT_METRICS},
            "ci": result["ci"],
            "signature": result["signature"],
        }
    result = speech_scores(predictions, references, bootstrap=bootstrap)
    return {"metrics": {k: result[k] for k in SPEECH_METRICS}, "ci": result["ci"], "signature": None}


def sample_scores(task: str, predictions: list[str], references: list[str]) -> list[float]:
    """One number per sample for drill-down (``SAMPLE_METRIC``): which samples pulled the corpus score down."""
    from core.metrics import sample_bleu, sample_cer, sample_wer

    one = {"bleu": sample_bleu, "cer": sample_cer, "wer": sample_wer}[TASKS[task].sample_metric]
    return [one(p, r) for p, r in zip(predictions, references, strict=True)]


def _sample_input(task: str, item: Item, outcome: Outcome | None) -> str:
    """What the model was given, as JSON: the leaderboard shows it next to prediction and reference."""
    if task == "tweet":
        wanted = ("id", "date", "likes", "username", "inferred company", "media")
        data = {k: item.row.get(k, "")[:INPUT_CHARS] for k in wanted if k in item.row}
    else:
        data = {"source": item.source}
    if outcome is not None:
        data.update({k: v[:INPUT_CHARS] for k, v in outcome.details.items()})
        if outcome.error:
            data["error"] = outcome.error[:INPUT_CHARS]
    return json.dumps(data, ensure_ascii=False)


# --------------------------------------------------------------------------- evaluate


@dataclass
class Evaluation:
    """A recorded run, its samples, and what the summary reports beside the metrics."""

    run: RunRecord
    samples: list[SampleRecord]
    db: Path
    dropped: int = 0
    load_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": asdict(self.run),
            "db": str(self.db),
            "sample_metric": SAMPLE_METRIC[self.run.task],
            "dropped_without_reference": self.dropped,
            "model_load_s": self.load_s,
        }


def _timing_fields(task: str, outcomes: list[Outcome] | None, seconds: float | None) -> dict[str, Any]:
    """Wall time and items/s of a model run; for ASR also RTFx (audio seconds per transcribing second)."""
    if outcomes is None or seconds is None:
        return {"wall_time_s": None, "throughput": None, "extra": {}}
    extra: dict[str, float] = {}
    process_s = sum(o.process_s for o in outcomes)
    if task == "asr" and process_s > 0:
        extra["rtfx"] = sum(o.audio_s for o in outcomes) / process_s
    return {"wall_time_s": seconds, "throughput": len(outcomes) / seconds if seconds > 0 else None, "extra": extra}


def evaluate(
    task: str,
    data: str | Path,
    *,
    pipeline: Pipeline | None = None,
    model: str | None = None,
    adapter: str | None = None,
    predictions: str | Path | None = None,
    limit: int | None = None,
    profile: str | None = None,
    device: str | None = None,
    generation: GenerationConfig | None = None,
    db: str | Path | None = None,
    bootstrap: int = 1000,
    progress: bool = True,
) -> Evaluation:
    """Score ``task`` on ``data`` and record the run; return what was recorded.

    With ``predictions`` no model runs: the file's answers are scored and the run is recorded
    under ``model`` (default ``"external"``).  Otherwise ``pipeline`` (built from ``model``,
    ``adapter``, ``profile`` and ``device`` when not given) answers each item.  The data is read
    and checked before any model loads, so a bad file fails in a second.
    """
    dataset = load_dataset(task, data, limit)
    references = [item.reference for item in dataset.items]
    outcomes: list[Outcome] | None = None
    seconds = load_s = None
    if predictions is not None:
        answers = read_predictions(predictions, dataset)
        model_name, adapter_name = model or EXTERNAL_MODEL, adapter
    else:
        pipeline = pipeline or build_pipeline(task, model=model, adapter=adapter, profile=profile, device=device)
        spec = pipeline.specs[TASKS[task].stage]
        model_name, adapter_name = spec.model, spec.adapter
        load_s = _preload(task, pipeline)
        outcomes, seconds = run_model(task, pipeline, dataset, generation, progress)
        answers = [o.prediction for o in outcomes]

    scored = score(task, answers, references, bootstrap)
    timing = _timing_fields(task, outcomes, seconds)
    media_errors = sum(1 for o in outcomes or [] if o.error)
    metrics = {**scored["metrics"], **timing["extra"], "media_errors": float(media_errors)}
    run = RunRecord(
        task=task,
        model=model_name,
        adapter=adapter_name,
        dataset=str(dataset.path),
        dataset_hash=file_hash(dataset.path),
        n=len(answers),
        metrics=metrics,
        ci=scored["ci"],
        signature=scored["signature"],
        wall_time_s=timing["wall_time_s"],
        throughput=timing["throughput"],
    )
    per_sample = sample_scores(task, answers, references)
    samples = [
        SampleRecord(
            idx=i,
            input=_sample_input(task, item, outcomes[i] if outcomes else None),
            prediction=answer,
            reference=item.reference,
            score=value,
        )
        for i, (item, answer, value) in enumerate(zip(dataset.items, answers, per_sample, strict=True))
    ]
    store = ResultsStore(db)
    store.record_run(run, samples)
    return Evaluation(run, samples, store.path, dropped=dataset.dropped, load_s=load_s)


# --------------------------------------------------------------------------- CLI


def _format_value(key: str, value: float) -> str:
    return f"{value:.0f}" if key == "media_errors" else f"{value:.3f}" if key == "cider" else f"{value:.2f}"


def summary_table(evaluation: Evaluation) -> str:
    """The human summary: what ran on what, each metric with its 95 % bootstrap interval."""
    run = evaluation.run
    skipped = f" ({evaluation.dropped} rows without a reference skipped)" if evaluation.dropped else ""
    lines = [
        f"task       {run.task}",
        f"model      {run.model}" + (f" + adapter {run.adapter}" if run.adapter else ""),
        f"data       {run.dataset} (sha256 {(run.dataset_hash or '')[:12]}…)",
        f"n          {run.n}{skipped}",
        "",
        f"{'metric':<18} {'value':>9}   95% CI",
    ]
    for key, value in run.metrics.items():
        low_high = run.ci.get(key)
        interval = f"[{_format_value(key, low_high[0])}, {_format_value(key, low_high[1])}]" if low_high else ""
        lines.append(f"{LABELS.get(key, key):<18} {_format_value(key, value):>9}   {interval}")
    lines.append("")
    if run.signature:
        lines.append(f"sacrebleu  {run.signature}")
    if run.wall_time_s is not None:
        load = f"; models loaded in {evaluation.load_s:.1f} s, not counted" if evaluation.load_s is not None else ""
        lines.append(f"time       {run.wall_time_s:.1f} s, {run.throughput or 0:.2f} items/s{load}")
    lines.append(f"hardware   {run.hardware}")
    lines.append(f"recorded   run {run.id} in {evaluation.db} (per-sample score: {SAMPLE_METRIC[run.task]})")
    return "\n".join(line.rstrip() for line in lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Entry point of ``python -m core evaluate``."""
    from core.cli import _emit, _say

    generation = None
    if args.task == "tweet" and args.predictions is None:
        from core.generation import GenerationConfig

        generation = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    evaluation = evaluate(
        args.task,
        args.data,
        model=args.model,
        adapter=args.adapter,
        predictions=args.predictions,
        limit=args.limit,
        profile=args.profile,
        device=args.device,
        generation=generation,
        db=args.db,
        bootstrap=args.bootstrap,
    )
    errors = int(evaluation.run.metrics.get("media_errors", 0))
    if errors:
        _say(f"warning: {errors} of {evaluation.run.n} items had a media error (see the samples' input.error)")
    _emit(evaluation.to_dict(), args.json, summary_table(evaluation))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``evaluate`` on the CLI's sub-parsers (``common`` carries --profile/--device/--json)."""
    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="score a model on a labelled set and record the run",
        description="Run a model over labelled data (or score a predictions file), print the metrics and "
        f"record the run in the results store ({default_store_path()} unless --db or M2T_RESULTS_DB).",
    )
    p.add_argument("--task", required=True, choices=tuple(TASKS), help="what is evaluated")
    p.add_argument(
        "--data", required=True, help="tweet dump CSV | caption CSV/parquet (path|url,caption) | ocr CSV "
        "(path,text) | asr CSV (audio,text); relative media paths start at the file's folder"
    )
    p.add_argument("--model", help="model under test (default: the profile's); with --predictions, the name recorded")
    p.add_argument("--adapter", help="LoRA adapter folder for the tweet task's LLM")
    p.add_argument(
        "--predictions", help="score this CSV/parquet instead of running a model: a `prediction` column aligned "
        "with the data rows, or joined on an id/path/url/audio column"
    )
    p.add_argument("--limit", type=_positive_int, help="only the first N rows that have a reference")
    p.add_argument("--db", help="results store (default: $M2T_RESULTS_DB or ~/.cache/media2tweet/results.sqlite)")
    p.add_argument("--max-new-tokens", type=_positive_int, default=60, help="tweet task: tokens per tweet")
    p.add_argument("--batch-size", type=_positive_int, default=8, help="tweet task: prompts generated together")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the 95%% CIs (0: none)")
    p.set_defaults(func=cmd_evaluate)
    return p
