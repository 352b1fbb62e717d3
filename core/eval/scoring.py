"""Scores for one run and its record in the results store: the one path the CLI and training share.

Text tasks (tweets, captions) get corpus BLEU (sacrebleu, with its signature), BLEU-1..4,
ROUGE-L (rouge-score F1 and the COCO variant), chrF and CIDEr-D; speech-like tasks (ASR, OCR) get
WER/CER after Whisper's English normaliser. Every run lands in the SQLite store with its
preprocessing signature, its small-set warnings and per-sample rows for the leaderboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import UserError
from core.eval.datasets import TASKS, normalize_task
from core.eval.store import ResultsStore, RunRecord, SampleRecord, file_hash

if TYPE_CHECKING:
    from core.eval.metrics import Placeholders
    from core.eval.normalizer import SpeechNormalizer

# What SampleRecord.score means per task, for the leaderboard's drill-down: sentence BLEU for text
# (as training/evaluation.py records it, so a task's column means one thing whoever wrote the run),
# CER % for OCR (short phrases: one wrong letter should not cost a whole word), WER % for ASR.
SAMPLE_METRIC = {task: spec.sample_metric for task, spec in TASKS.items()}
TEXT_METRICS = ("bleu", "bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "rougeL_coco", "chrf", "cider")
SPEECH_METRICS = ("wer", "cer")
LABELS = {
    "bleu": "BLEU",
    "bleu1": "BLEU-1 precision",
    "bleu2": "BLEU-2 precision",
    "bleu3": "BLEU-3 precision",
    "bleu4": "BLEU-4 precision",
    "rougeL": "ROUGE-L F1",
    "rougeL_coco": "ROUGE-L (COCO)",
    "chrf": "chrF",
    "cider": "CIDEr-D",
    "wer": "WER %",
    "cer": "CER %",
    "rtfx": "RTFx",
    "media_errors": "media errors",
}
# What each number is, in one line (the leaderboard prints these under its table).
DEFINITIONS = {
    "bleu": "BLEU: sacrebleu corpus BLEU, 13a tokeniser, mixed case, exp smoothing, 0-100",
    "bleu1": "BLEU-1..4: sacrebleu's modified n-gram precisions (not cumulative BLEU-n)",
    "rougeL": "ROUGE-L F1: rouge-score's rougeL F-measure against the best reference, no stemmer, its own "
    "lowercase [a-z0-9] tokeniser, mean over samples, 0-100",
    "rougeL_coco": "ROUGE-L (COCO): pycocoevalcap's ROUGE-L (max precision and max recall over the references, "
    "beta 1.2) on COCO PTB tokens, mean over samples, 0-100: what captioning papers report",
    "chrf": "chrF: sacrebleu chrF (character 6-grams, beta 2), 0-100",
    "cider": "CIDEr-D: as pycocoevalcap computes it (COCO PTB tokens, IDF from this set's references), 0-10",
    "wer": "WER/CER: jiwer edits / reference length pooled over the set, after Whisper's English normaliser "
    "(full 1,739-word British->American table; equal to the whisper-normalizer package), percent",
}

CIDER_MIN_SAMPLES = 10  # below this, IDF from the set's own references is too coarse to compare
CI_MIN_SAMPLES = 10  # below this, a percentile bootstrap interval says little
BLEU_MIN_WORDS = 4  # BLEU-4 needs 4-grams
WER_MIN_WORDS = 3  # one error in a 1-2 word reference is 50-100 %


def score(
    task: str,
    predictions: list[str],
    references: list[str],
    bootstrap: int = 1000,
    placeholders: Placeholders = "words",
    normalizer: SpeechNormalizer = "whisper",
) -> dict[str, Any]:
    """Corpus metrics for the task's family: ``{"metrics", "ci", "signature", "signatures", "warnings"}``.

    ``placeholders`` (text tasks only): ``"words"`` scores ``<hyperlink>``/``<mention>`` as one word
    each, ``"raw"`` as the text stands (see :mod:`core.eval.metrics`); the signature says which.
    ``normalizer`` (speech tasks only): ``"whisper"``, equal to the ``whisper-normalizer`` package, or the
    words-only variant ``"whisper-words"`` (see :mod:`core.eval.normalizer`); the signature says which.
    """
    from core.eval.metrics import speech_scores, text_scores

    if TASKS[task].family == "text":
        result = text_scores(predictions, references, bootstrap=bootstrap, placeholders=placeholders)
        keys = TEXT_METRICS
    else:
        result = speech_scores(predictions, references, bootstrap=bootstrap, normalizer=normalizer)
        keys = SPEECH_METRICS
    return {
        "metrics": {k: result[k] for k in keys},
        "ci": result["ci"],
        "signature": result["signature"],
        "signatures": result["signatures"],
        "warnings": metric_warnings(task, predictions, references),
    }


def signature_groups(signature: str | None) -> list[tuple[str, str]]:
    """(metric labels, signature) pairs for display, metrics with the same signature together (WER and CER)."""
    from core.eval.metrics import split_signature

    groups: dict[str, list[str]] = {}
    for metric, sig in split_signature(signature).items():
        groups.setdefault(sig, []).append(LABELS.get(metric, metric))
    return [(", ".join(labels), sig) for sig, labels in groups.items()]


def sample_scores(
    task: str,
    predictions: list[str],
    references: list[str],
    placeholders: Placeholders = "words",
    normalizer: SpeechNormalizer = "whisper",
) -> list[float]:
    """One number per sample for drill-down (``SAMPLE_METRIC``): which samples pulled the corpus score down."""
    from core.eval.metrics import sample_bleu, sample_cer, sample_wer

    metric = TASKS[task].sample_metric
    if metric == "bleu":
        return [
            sample_bleu(p, r, placeholders=placeholders)
            for p, r in zip(predictions, references, strict=True)
        ]
    one = {"cer": sample_cer, "wer": sample_wer}[metric]
    return [one(p, r, normalizer=normalizer) for p, r in zip(predictions, references, strict=True)]


def metric_warnings(task: str, predictions: list[str], references: list[Any]) -> list[str]:
    """Why some of this run's numbers mean little, one line each (empty when nothing to say).

    Pure: looks only at the sizes and lengths of the set, never at the scores.
    * CIDEr-D weighs n-grams by IDF over the set's own references (log of samples / samples whose
      references hold the n-gram): one sample, or samples that all share the same references, make
      every IDF 0 and CIDEr-D 0 whatever the prediction; a handful makes IDF too coarse to compare.
    * BLEU is a geometric mean up to 4-grams: when most predictions or references have under 4
      words there are (almost) no 4-grams and BLEU mostly measures smoothing.
    * WER on references of 1-2 words moves in steps of 50-100 %.
    * Percentile bootstrap intervals over a handful of samples are not intervals one can trust.
    """
    from core.eval.metrics import _reference_lists, _single_references

    task = normalize_task(task)
    n = len(predictions)
    out: list[str] = []
    if TASKS[task].family == "text":
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

        from core.eval.normalizer import placeholders_to_words

        preds, refs = _reference_lists(predictions, references)
        distinct = len({tuple(group) for group in refs})
        if n < 2 or distinct < 2:
            why = "1 sample" if n < 2 else f"all {n} samples have the same references"
            out.append(f"CIDEr-D is meaningless here ({why}): every n-gram's IDF is log(1) = 0, so CIDEr-D is 0 "
                       "whatever the prediction")
        elif n < CIDER_MIN_SAMPLES:
            out.append(f"CIDEr-D: IDF comes from only {n} samples' references, too few to compare with "
                       f"published CIDEr-D; score at least {CIDER_MIN_SAMPLES}")
        tokenize = Tokenizer13a()

        def words(text: str) -> int:
            return len(tokenize(placeholders_to_words(text)).split())

        short = sum(
            1 for p, group in zip(preds, refs, strict=True)
            if words(p) < BLEU_MIN_WORDS or max(words(r) for r in group) < BLEU_MIN_WORDS
        )
        if 2 * short > n:
            out.append(f"BLEU: {short} of {n} samples have a prediction or reference under {BLEU_MIN_WORDS} words, "
                       "so there are few 4-grams and BLEU mostly measures smoothing; read chrF instead")
    else:
        from core.eval.normalizer import normalize

        _, refs_single = _single_references(predictions, references)
        short = sum(1 for r in refs_single if len(normalize(r).split()) < WER_MIN_WORDS)
        if 2 * short > n:
            out.append(f"WER: {short} of {n} references have under {WER_MIN_WORDS} words, so one wrong word moves "
                       "WER by 50-100 %; read CER")
    if n < CI_MIN_SAMPLES:
        out.append(f"only {n} sample{'s' if n != 1 else ''}: the 95 % bootstrap intervals are not reliable below "
                   f"{CI_MIN_SAMPLES}")
    return out


def shuffled_floor(
    predictions: list[str],
    references: list[Any],
    seed: int = 0,
    *,
    task: str = "llm",
    bootstrap: int = 0,
    placeholders: Placeholders = "words",
) -> dict[str, Any]:
    """The same predictions scored against other samples' references: the chance floor of every metric.

    References are permuted with a seeded derangement (no sample keeps its own), so what remains is
    what generic, on-topic text scores without looking at the input.  Returns :func:`score`'s dict.
    """
    import numpy as np

    task = normalize_task(task)
    if len(predictions) != len(references):
        raise UserError(f"{len(predictions)} predictions but {len(references)} references: lengths must match")
    if len(predictions) < 2:
        raise UserError("a shuffled floor needs at least 2 samples")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(references))
    while np.any(order == np.arange(len(order))):
        order = rng.permutation(len(references))
    shuffled = [references[int(i)] for i in order]
    return score(task, predictions, shuffled, bootstrap, placeholders)


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
    """Store a scored run with one row per sample; returns what was stored and where.

    ``scored`` is :func:`score`'s result; its ``warnings`` are recomputed when missing, and the
    per-sample BLEU treats placeholders, and per-sample WER/CER normalise, as its signature says the corpus
    metrics did.
    """
    from core.eval.metrics import speech_normalizer_of

    warnings = scored.get("warnings")
    placeholders: Placeholders = "raw" if "placeholders:raw" in (scored.get("signature") or "") else "words"
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
        warnings=list(warnings) if warnings is not None else metric_warnings(task, predictions, references),
        wall_time_s=wall_time_s,
        throughput=len(predictions) / wall_time_s if wall_time_s else None,
    )
    normalizer = speech_normalizer_of(scored.get("signature"))
    per_sample = sample_scores(task, predictions, references, placeholders, normalizer)
    samples = [
        SampleRecord(idx=i, input=inp, prediction=pred, reference=ref, score=value)
        for i, (inp, pred, ref, value) in enumerate(zip(inputs, predictions, references, per_sample, strict=True))
    ]
    store = ResultsStore(db)
    store.record_run(run, samples)  # sets run.id
    return run, samples, store.path
