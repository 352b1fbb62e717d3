"""``m2t evaluate``: run a model over a labelled set, score it, record the run.

Four tasks, each scored the way its literature does (see ``docs/evaluation.md``):

* ``tweet``   tweet-dump CSV, reference ``content``      -> BLEU, ROUGE-L, chrF, CIDEr-D (:func:`text_scores`)
* ``caption`` CSV/parquet ``path`` or ``url`` + ``caption`` -> same text metrics
* ``ocr``     CSV ``path,text``                          -> WER/CER (:func:`speech_scores`)
* ``asr``     CSV ``audio,text``                         -> WER/CER, plus RTFx

Every run lands in the SQLite :class:`ResultsStore` with its per-sample predictions, so the
leaderboard can compare models and drill into single samples.  ``--predictions FILE`` scores
outputs made elsewhere (another machine, another project) through exactly the same code.

Only the standard library and light ``core`` modules are imported at module level: the CLI
imports this file to register its sub-command, and ``m2t --help`` must stay fast.
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

from core.console import emit, non_negative_int, positive_int, say
from core.errors import MediaError, UserError
from core.eval.datasets import TASKS, Dataset, Item, load_dataset, normalize_task, read_predictions
from core.eval.scoring import LABELS, SAMPLE_METRIC, record_run, score, signature_groups
from core.eval.store import RunRecord, SampleRecord, StoreError, check_store, default_store_path, save_unrecorded
from core.stages.llm import GenerationConfig

if TYPE_CHECKING:
    from core.eval.brand import BrandEval
    from core.pipeline import Pipeline

EXTERNAL_MODEL = "external"
INPUT_CHARS = 500  # cap on each field of a sample's stored input (a media field can be kilobytes)


# --------------------------------------------------------------------------- running a model


@dataclass
class Outcome:
    """A model's answer for one item, with what went wrong and what it saw on the way."""

    prediction: str
    error: str = ""
    details: dict[str, str] = field(default_factory=dict)
    audio_s: float = 0.0  # asr: seconds of audio transcribed
    process_s: float = 0.0  # asr: seconds spent transcribing it
    grounding: dict = field(default_factory=dict)  # llm: the tweet's grounding report
    fallback: bool = False  # llm with history: the brand had no earlier tweet


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
    from core.media.decode import load_media
    from core.stages.ocr import read_images

    media = load_media(item.source, base_dir=base_dir)
    found = read_images(pipeline.model("ocr"), _images(media, item.source))
    return Outcome(" ".join(found.text.split()))


def _predict_caption(pipeline: Pipeline, item: Item, base_dir: Path) -> Outcome:
    from core.media.decode import load_media
    from core.stages.caption import caption_images

    media = load_media(item.source, base_dir=base_dir)
    caption = caption_images(pipeline.model("caption"), _images(media, item.source)[:1])[0]
    return Outcome(caption.caption)


def _predict_asr(pipeline: Pipeline, item: Item, base_dir: Path) -> Outcome:
    from core.media.decode import load_media
    from core.stages.asr import transcribe

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
    pipeline: Pipeline, data: Dataset, cfg: GenerationConfig, advance: Callable[[int], None],
    brand: BrandEval | None = None,
) -> list[Outcome]:
    """Batched like ``core batch``: analyse each row's media, then generate a chunk's tweets together.

    With ``brand`` history, each row's prompt shows its brand's earlier tweets (never itself, never a later one).
    """
    import pandas as pd

    from core.batch import row_request
    from core.eval import brand as brand_eval  # pandas and the history reader: only tweet runs pay for them
    outcomes = []
    for chunk in _chunks(data.items, cfg.batch_size):
        requests = [row_request(pd.Series(item.row), data.base_dir) for item in chunk]
        if brand is not None:
            requests = [brand_eval.configure(r, item, brand) for r, item in zip(requests, chunk, strict=True)]
        for prediction in pipeline.predict_many(requests, cfg):
            analysis = prediction.analysis
            details = {"caption": analysis.caption, "ocr": " ".join(analysis.ocr.split())}
            if analysis.transcript:
                details["transcript"] = analysis.transcript
            details.update(brand_eval.details(prediction))
            outcomes.append(Outcome(prediction.tweet, error="; ".join(analysis.errors), details=details,
                                    grounding=prediction.grounding,
                                    fallback=bool(analysis.brand is not None and analysis.brand.fallback)))
        advance(len(chunk))
    return outcomes


def _preload(task: str, pipeline: Pipeline) -> float:
    """Load the models the run needs before the clock starts, so throughput measures inference only."""
    stages = ("llm", "caption", "ocr") if task == "llm" else (TASKS[task].stage,)
    start = time.perf_counter()
    for stage in stages:
        pipeline.model(stage)
    return time.perf_counter() - start


def run_model(
    task: str, pipeline: Pipeline, data: Dataset, cfg: GenerationConfig | None = None, progress: bool = True,
    brand: BrandEval | None = None,
) -> tuple[list[Outcome], float]:
    """Predictions for every item and the seconds they took (model loading excluded)."""
    from tqdm import tqdm

    with tqdm(
        total=len(data.items), desc=f"evaluate {task}", unit="item", file=sys.stderr, disable=None if progress else True
    ) as bar:
        start = time.perf_counter()
        if task == "llm":
            outcomes = _predict_tweets(pipeline, data, cfg or GenerationConfig(), bar.update, brand)
        else:
            outcomes = _predict_items(task, pipeline, data, bar.update)
        return outcomes, time.perf_counter() - start


def _sample_input(task: str, item: Item, outcome: Outcome | None) -> str:
    """What the model was given, as JSON: the leaderboard shows it next to prediction and reference."""
    if task == "llm":
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
    protocol: str = ""  # tweet runs with history: the split or history file and examples per row

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": asdict(self.run),
            "db": str(self.db),
            "sample_metric": SAMPLE_METRIC[self.run.task],
            "dropped_without_reference": self.dropped,
            "model_load_s": self.load_s,
            "protocol": self.protocol,
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


@dataclass
class EvalConfig:
    """What one ``m2t evaluate`` run scores and how: the CLI builds it from its flags (``from_args``), code
    and tests build it directly, so the two never drift apart."""

    task: str
    data: str | Path
    model: str | None = None  # model under test (default: the profile's); with predictions, the name recorded
    adapter: str | None = None
    predictions: str | Path | None = None  # score this file instead of running a model
    limit: int | None = None
    profile: str | None = None
    device: str | None = None
    generation: GenerationConfig | None = None
    db: str | Path | None = None
    bootstrap: int = 1000
    progress: bool = True
    history: str | Path | None = None  # tweet task: a separate history dump
    split: str | None = None  # tweet task: "brand" or "time"
    cutoff: str | None = None  # split "time": rows dated on or after it are the test set
    examples: int = 3  # tweet task: history tweets per prompt (0: the no-history baseline)
    split_seed: int = 0
    brand_kit: bool = True  # tweet task with history: the brand kit finish (core.brand.kit)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvalConfig:
        generation = None
        if normalize_task(args.task) == "llm" and args.predictions is None:
            generation = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                          num_candidates=args.candidates, facts_first=not args.no_facts_first)
        return cls(task=args.task, data=args.data, model=args.model, adapter=args.adapter,
                   predictions=args.predictions, limit=args.limit, profile=args.profile, device=args.device,
                   generation=generation, db=args.db, bootstrap=args.bootstrap, history=args.history,
                   split=args.split, cutoff=args.cutoff, examples=args.examples, split_seed=args.split_seed,
                   brand_kit=not args.no_brand_kit)


def evaluate(cfg: EvalConfig, *, pipeline: Pipeline | None = None) -> Evaluation:
    """Score ``task`` on ``data`` and record the run; return what was recorded.

    With ``predictions`` no model runs: the file's answers are scored and the run is recorded
    under ``model`` (default ``"external"``).  Otherwise ``pipeline`` (built from ``model``,
    ``adapter``, ``profile`` and ``device`` when not given) answers each item.  The data is read
    and checked before any model loads, so a bad file fails in a second; so is the results store
    (garbage, damaged, locked, unwritable), and a run whose recording still fails after scoring is saved
    as JSON beside the store (the :class:`StoreError` names the file).

    Tweet runs only: ``split`` (``brand`` or ``time``, with ``cutoff``) scores held-out rows of ``data`` with
    the rest as brand history; ``history`` names a separate history dump; ``examples`` is how many history
    tweets each prompt shows (0: none, the no-history baseline on the same rows). See :mod:`core.eval.brand`.
    """
    from core.eval import brand as brand_eval  # as in _predict_tweets: `m2t --help` must not import pandas

    task, data, limit, history, split = normalize_task(cfg.task), cfg.data, cfg.limit, cfg.history, cfg.split
    predictions, model, adapter, db = cfg.predictions, cfg.model, cfg.adapter, cfg.db
    brand = None
    if task == "llm" and (history is not None or split is not None):
        dataset, brand = brand_eval.prepare(load_dataset(task, data, None), history=history, split=split,
                                            cutoff=cfg.cutoff, seed=cfg.split_seed, k=cfg.examples, limit=limit,
                                            kit=cfg.brand_kit)
    elif history is not None or split is not None:
        raise UserError("--history and --split apply to --task llm only")
    else:
        dataset = load_dataset(task, data, limit)
    db = check_store(db)
    references = [item.reference for item in dataset.items]
    outcomes: list[Outcome] | None = None
    seconds = load_s = None
    if predictions is not None:
        answers = read_predictions(predictions, dataset)
        model_name, adapter_name = model or EXTERNAL_MODEL, adapter
    else:
        pipeline = pipeline or build_pipeline(task, model=model, adapter=adapter, profile=cfg.profile,
                                              device=cfg.device)
        spec = pipeline.specs[TASKS[task].stage]
        model_name, adapter_name = spec.label, spec.adapter  # e.g. "gemma-3-270m [ctranslate2]"
        load_s = _preload(task, pipeline)
        outcomes, seconds = run_model(task, pipeline, dataset, cfg.generation, cfg.progress, brand)
        answers = [o.prediction for o in outcomes]

    scored = score(task, answers, references, cfg.bootstrap)
    timing = _timing_fields(task, outcomes, seconds)
    media_errors = sum(1 for o in outcomes or [] if o.error)
    inputs = [_sample_input(task, item, outcomes[i] if outcomes else None) for i, item in enumerate(dataset.items)]
    extra = {**timing["extra"], "media_errors": float(media_errors)}
    if brand is not None:
        voices = [brand_eval.row_voice(brand, item) for item in dataset.items]
        groundings = [o.grounding for o in outcomes] if outcomes else []
        fallbacks = [o.fallback for o in outcomes] if outcomes and brand.k > 0 else None
        extra.update(brand_eval.grounding_metrics(groundings, answers, references, voices, fallbacks))
        extra.update(brand_eval.floor_metrics(answers, references))
        if outcomes:
            extra.update(brand_eval.brand_quality(brand, dataset.items, answers, references,
                                                  [o.details for o in outcomes], groundings))
            extra.update(brand_eval.subject_metrics(dataset.items, answers, [o.details for o in outcomes],
                                                    brand_eval.read_subjects(dataset.path)))
        extra["history_examples"] = float(brand.k)
        extra["brand_kit"] = float(brand.kit)
    try:
        run, samples, db_path = record_run(
            task, model=model_name, adapter=adapter_name, dataset=dataset.path, predictions=answers,
            references=references, inputs=inputs, scored=scored, extra_metrics=extra,
            wall_time_s=timing["wall_time_s"], db=db,
        )
    except StoreError as exc:
        if exc.saved_to is not None:  # the store saved the run itself
            raise
        # The store failed before it had the run (e.g. the file was replaced while the model ran).
        # Same shape as the store's own fallback: {"db", "run", "samples"}.
        payload = {
            "db": str(db),
            "run": {"task": task, "model": model_name, "adapter": adapter_name, "dataset": str(dataset.path),
                    "n": len(answers), "metrics": {**scored["metrics"], **extra}, "ci": scored["ci"],
                    "signature": scored.get("signature"), "wall_time_s": timing["wall_time_s"]},
            "samples": [{"idx": i, "input": inp, "prediction": pred, "reference": ref}
                        for i, (inp, pred, ref) in enumerate(zip(inputs, answers, references, strict=True))],
        }
        saved = save_unrecorded(db, payload)
        where = f"its scores are saved in {saved}" if saved else "and no folder could take a JSON copy"
        raise StoreError(f"{exc}; the run was not recorded, {where}", saved_to=saved) from None
    return Evaluation(run, samples, db_path, dropped=dataset.dropped, load_s=load_s,
                      protocol=brand.describe() if brand is not None else "")


# --------------------------------------------------------------------------- CLI


def _format_value(key: str, value: float) -> str:
    return f"{value:.0f}" if key == "media_errors" else f"{value:.3f}" if key == "cider" else f"{value:.2f}"


def summary_table(evaluation: Evaluation) -> str:
    """The human summary: what ran on what, each metric with its 95 % bootstrap interval."""
    from core.eval.brand import LABELS as BRAND_LABELS

    run = evaluation.run
    skipped = f" ({evaluation.dropped} rows without a reference skipped)" if evaluation.dropped else ""
    lines = [
        f"task       {run.task}",
        f"model      {run.model}" + (f" + adapter {run.adapter}" if run.adapter else ""),
        f"data       {run.dataset} (sha256 {(run.dataset_hash or '')[:12]}…)",
        f"n          {run.n}{skipped}",
        *([f"protocol   {evaluation.protocol}"] if evaluation.protocol else []),
        "",
        f"{'metric':<18} {'value':>9}   95% CI",
    ]
    for key, value in run.metrics.items():
        low_high = run.ci.get(key)
        interval = f"[{_format_value(key, low_high[0])}, {_format_value(key, low_high[1])}]" if low_high else ""
        label = LABELS.get(key) or BRAND_LABELS.get(key, key)[:18]
        lines.append(f"{label:<18} {_format_value(key, value):>9}   {interval}")
    lines.append("")
    for labels, signature in signature_groups(run.signature):
        lines.append(f"signature  {labels}: {signature}")
    if run.wall_time_s is not None:
        load = f"; models loaded in {evaluation.load_s:.1f} s, not counted" if evaluation.load_s is not None else ""
        lines.append(f"time       {run.wall_time_s:.1f} s, {run.throughput or 0:.2f} items/s{load}")
    lines.append(f"hardware   {run.hardware}")
    lines.append(f"recorded   run {run.id} in {evaluation.db} (per-sample score: {SAMPLE_METRIC[run.task]})")
    return "\n".join(line.rstrip() for line in lines)


def run_evaluate(args: argparse.Namespace) -> int:
    """Entry point of ``m2t evaluate``."""
    if args.task == LIKES_TASK:  # predicted likes: no pipeline, its own protocol (core.eval.likes)
        from core.eval.likes import run_likes_evaluation

        return run_likes_evaluation(args)
    evaluation = evaluate(EvalConfig.from_args(args))
    errors = int(evaluation.run.metrics.get("media_errors", 0))
    if errors:
        say(f"warning: {errors} of {evaluation.run.n} items had a media error (see the samples' input.error)")
    for warning in evaluation.run.warnings:
        say(f"warning: {warning}")
    emit(evaluation.to_dict(), args.json, summary_table(evaluation))
    return 0


LIKES_TASK = "likes"


def _task_arg(text: str) -> str:
    """An evaluation task: a stage's name, or ``likes`` (predicted likes against real ones)."""
    return LIKES_TASK if text.strip().lower() == LIKES_TASK else normalize_task(text)


def configure_evaluate(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Run a model over labelled data (or score a predictions file), print the metrics and "
        f"record the run in the results store ({default_store_path()} unless --db or M2T_RESULTS_DB).")
    p.add_argument("--task", required=True, type=_task_arg, metavar="{" + ",".join([*TASKS, LIKES_TASK]) + "}",
                   help="what is evaluated: the stage's name (tweet and captioning still work), or likes "
                   "(predicted likes against real ones, beside two baselines; see docs/engagement.md)")
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
    p.add_argument("--limit", type=positive_int, help="only the first N rows that have a reference")
    p.add_argument("--db", help="results store (default: $M2T_RESULTS_DB or ~/.cache/media2tweet/results.sqlite)")
    p.add_argument("--max-new-tokens", type=positive_int, default=60, help="tweet task: tokens per tweet")
    p.add_argument("--batch-size", type=positive_int, default=8, help="tweet task: prompts generated together")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the 95%% CIs (0: none)")
    p.add_argument("--history", metavar="CSV", help="tweet task: a tweet dump with content whose tweets become each "
                   "row's examples (same account first; never the row itself or a later tweet)")
    p.add_argument("--split", choices=("brand", "time"), help="tweet task: score held-out rows of --data, the rest "
                   "being the history: brand = a seeded 20%% of accounts, time = the latest 20%% (or --cutoff)")
    p.add_argument("--cutoff", metavar="DATE", help="--split time: rows dated on or after DATE are the test set")
    p.add_argument("--examples", type=non_negative_int, default=3, metavar="K",
                   help="history tweets per prompt (0: none: the no-history baseline on the same rows)")
    p.add_argument("--split-seed", type=int, default=0, help="--split brand: which accounts are held out")
    p.add_argument("--candidates", type=positive_int, default=GenerationConfig.num_candidates,
                   help="tweet task: candidates per row, the best chosen (default %(default)s; >1 samples)")
    p.add_argument("--no-facts-first", action="store_true", help="tweet task: let the model start each tweet "
                   "itself (by default it opens with the media's text; see docs/brand-voice.md)")
    p.add_argument("--no-brand-kit", action="store_true", help="tweet task with history: leave tweets as the "
                   "model wrote them (no sign-off, hashtag or emoji added by the brand kit)")
