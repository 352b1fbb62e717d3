"""Score a model on a held-out split and record the run, the same way for every trainer.

Trainers compare "before" and "after" with one code path, so the two numbers differ only by
the weights; both runs go to the results store the leaderboard reads (with per-sample rows
for drill-down).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from core.metrics import sample_bleu, sample_wer, speech_scores, text_scores
from core.results_store import ResultsStore, RunRecord, SampleRecord, file_hash

TEXT_METRICS = ("bleu", "bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "chrf", "cider")
SPEECH_METRICS = ("wer", "cer")


@dataclass
class EvalResult:
    """Predictions and scores of one model on one split."""

    label: str  # "base" | "tuned"
    predictions: list[str]
    references: list[str]
    inputs: list[str]
    metrics: dict[str, float]
    ci: dict[str, list[float]] = field(default_factory=dict)
    signature: str | None = None
    seconds: float = 0.0
    run_id: int | None = None

    def to_dict(self) -> dict:
        return {"label": self.label, "metrics": self.metrics, "ci": self.ci, "signature": self.signature,
                "seconds": self.seconds, "run_id": self.run_id, "predictions": self.predictions}


def score_text(label: str, predictions: list[str], references: list[str], inputs: list[str], seconds: float,
               bootstrap: int = 1000) -> EvalResult:
    scores = text_scores(predictions, references, bootstrap=bootstrap)
    return EvalResult(label, predictions, references, inputs, {k: scores[k] for k in TEXT_METRICS},
                      {k: v for k, v in scores["ci"].items() if k in TEXT_METRICS}, scores["signature"], seconds)


def score_speech(label: str, predictions: list[str], references: list[str], inputs: list[str], seconds: float,
                 bootstrap: int = 1000) -> EvalResult:
    scores = speech_scores(predictions, references, bootstrap=bootstrap)
    return EvalResult(label, predictions, references, inputs, {k: scores[k] for k in SPEECH_METRICS},
                      scores["ci"], None, seconds)


def record(result: EvalResult, *, task: str, model: str, adapter: str | None, dataset: Path,
           store_path: str = "") -> int:
    """Store the run and its samples; returns the run id (also set on ``result``)."""
    per_sample = sample_wer if task == "asr" else sample_bleu
    samples = [
        SampleRecord(idx=i, input=inp, prediction=pred, reference=ref, score=per_sample(pred, ref))
        for i, (inp, pred, ref) in enumerate(zip(result.inputs, result.predictions, result.references, strict=True))
    ]
    run = RunRecord(
        task=task,
        model=model,
        adapter=adapter,
        n=len(result.predictions),
        metrics=result.metrics,
        ci=result.ci,
        dataset=str(dataset),
        dataset_hash=file_hash(dataset),
        signature=result.signature,
        wall_time_s=round(result.seconds, 3),
        throughput=round(len(result.predictions) / result.seconds, 4) if result.seconds else None,
    )
    store = ResultsStore(store_path or None)
    result.run_id = store.record_run(run, samples)
    print(f"recorded {task} run {result.run_id} ({result.label}) in {store.path}", file=sys.stderr)
    return result.run_id


def comparison_table(before: EvalResult | None, after: EvalResult | None, metrics: tuple[str, ...]) -> str:
    """A Markdown table of base vs tuned, for model cards and logs."""
    lines = ["| metric | base | tuned | change |", "|---|---|---|---|"]
    for key in metrics:
        b = before.metrics.get(key) if before else None
        a = after.metrics.get(key) if after else None
        change = f"{a - b:+.2f}" if a is not None and b is not None else "–"
        lines.append(f"| {key} | {_fmt(b)} | {_fmt(a)} | {change} |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
