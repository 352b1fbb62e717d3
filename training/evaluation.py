"""Score a model on a held-out split and record the run, the same way for every trainer.

Trainers compare "before" and "after" with one code path, so the two numbers differ only by
the weights; both runs go to the results store the leaderboard reads (with per-sample rows
for drill-down).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.eval.scoring import SPEECH_METRICS, TEXT_METRICS, record_run, score

__all__ = ["SPEECH_METRICS", "TEXT_METRICS", "EvalResult", "comparison_table", "finish_run", "record", "score_speech",
           "score_text"]


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


def _scored(task: str, label: str, predictions: list[str], references: list[str], inputs: list[str],
            seconds: float, bootstrap: int) -> EvalResult:
    scored = score(task, predictions, references, bootstrap)
    return EvalResult(label, predictions, references, inputs, scored["metrics"], scored["ci"], scored["signature"],
                      seconds)


def score_text(label: str, predictions: list[str], references: list[str], inputs: list[str], seconds: float,
               bootstrap: int = 1000) -> EvalResult:
    """Tweets and captions, scored exactly as ``m2t evaluate`` scores them."""
    return _scored("llm", label, predictions, references, inputs, seconds, bootstrap)


def score_speech(label: str, predictions: list[str], references: list[str], inputs: list[str], seconds: float,
                 bootstrap: int = 1000) -> EvalResult:
    """Transcripts, scored exactly as ``m2t evaluate --task asr`` scores them."""
    return _scored("asr", label, predictions, references, inputs, seconds, bootstrap)


def record(result: EvalResult, *, task: str, model: str, adapter: str | None, dataset: Path,
           store_path: str = "") -> int:
    """Store the run and its samples through core's one recording path; returns the run id."""
    run, _, db = record_run(
        task, model=model, adapter=adapter, dataset=dataset, predictions=result.predictions,
        references=result.references, inputs=result.inputs,
        scored={"metrics": result.metrics, "ci": result.ci, "signature": result.signature},
        wall_time_s=round(result.seconds, 3) or None, db=store_path or None,
    )
    result.run_id = run.id
    print(f"recorded {task} run {result.run_id} ({result.label}) in {db}", file=sys.stderr)
    return int(run.id or 0)


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


def finish_run(out: Path, cfg, state, before: EvalResult | None, after: EvalResult | None, fields: dict,
               card: str | None = None) -> dict:
    """The ending every trainer shares: one summary (``summary.json``) and, when given, the model card.

    ``fields`` are the trainer's own lines (what it trained on, where the weights are); the steps, losses,
    before/after metrics, run ids and config are added here the same way for every trainer.
    """
    summary = {
        **fields,
        "steps": state.step,
        "resumed_from": state.resumed_from,
        "seconds_per_step": round(state.seconds_per_step, 3),
        "first_loss": state.losses[0] if state.losses else None,
        "last_loss": state.losses[-1] if state.losses else None,
        "base": before.metrics if before else None,
        "tuned": after.metrics if after else None,
        "run_ids": [r.run_id for r in (before, after) if r],
        "config": asdict(cfg),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if card is not None:
        (out / "README.md").write_text(card)
    return summary
