"""Scores for one run and its record in the results store: the one path the CLI and training share.

Text tasks (tweets, captions) get corpus BLEU (sacrebleu, with its signature), BLEU-1..4,
ROUGE-L, chrF and CIDEr-D; speech-like tasks (ASR, OCR) get WER/CER after Whisper's English
normaliser. Every run lands in the SQLite store with per-sample rows for the leaderboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.eval.datasets import TASKS
from core.eval.store import ResultsStore, RunRecord, SampleRecord, file_hash

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



def score(task: str, predictions: list[str], references: list[str], bootstrap: int = 1000) -> dict[str, Any]:
    """Corpus metrics for the task's family: ``{"metrics", "ci", "signature"}``."""
    from core.eval.metrics import speech_scores, text_scores

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
    from core.eval.metrics import sample_bleu, sample_cer, sample_wer

    one = {"bleu": sample_bleu, "cer": sample_cer, "wer": sample_wer}[TASKS[task].sample_metric]
    return [one(p, r) for p, r in zip(predictions, references, strict=True)]




def record_run(
    task: str,
    *,
    model: str,
    adapter: str | None,
    dataset: Path,
    predictions: list[str],
    references: list[str],
    inputs: list[str],
    scored: dict[str, Any],
    extra_metrics: dict[str, float] | None = None,
    wall_time_s: float | None = None,
    db: str | Path | None = None,
) -> tuple[RunRecord, list[SampleRecord], Path]:
    """Store a scored run with one row per sample; returns what was stored and where."""
    run = RunRecord(
        task=task,
        model=model,
        adapter=adapter,
        dataset=str(dataset),
        dataset_hash=file_hash(dataset),
        n=len(predictions),
        metrics={**scored["metrics"], **(extra_metrics or {})},
        ci=scored["ci"],
        signature=scored["signature"],
        wall_time_s=wall_time_s,
        throughput=len(predictions) / wall_time_s if wall_time_s else None,
    )
    per_sample = sample_scores(task, predictions, references)
    samples = [
        SampleRecord(idx=i, input=inp, prediction=pred, reference=ref, score=value)
        for i, (inp, pred, ref, value) in enumerate(zip(inputs, predictions, references, per_sample, strict=True))
    ]
    store = ResultsStore(db)
    store.record_run(run, samples)  # sets run.id
    return run, samples, store.path
