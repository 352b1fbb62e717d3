"""Text and speech metrics with bootstrap confidence intervals (pure functions, no UI).

Scales: every score is on 0-100 (BLEU, BLEU-n precisions, ROUGE-L F, chrF, WER, CER)
so tables read alike, except CIDEr-D, which is reported as pycocoevalcap returns it
(0-10 scale; captioning papers often print it x100).

Tweet placeholders: references keep ``<hyperlink>``/``<mention>``.  Left alone,
sacrebleu's 13a tokenizer would split each into three tokens (``< hyperlink >``) and
reward a model for the angle brackets.  Before *every* text metric we therefore replace
each placeholder by one alphanumeric word (``xxhyperlinkxx``/``xxmentionxx``) in both
hypotheses and references, so a placeholder is exactly one token everywhere.

Confidence intervals: percentile bootstrap (2.5/97.5) over samples.  Corpus metrics
(BLEU, chrF, WER, CER) are recomputed from resampled *sufficient statistics*, the
way sacrebleu's own significance test does; mean metrics (ROUGE-L, CIDEr-D) average
resampled per-sample scores.  CIDEr-D's document frequencies are kept from the full
corpus inside the bootstrap (recomputing them per resample would be the exact but
O(bootstrap x corpus) alternative).  All metrics of one call share the same resamples.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from core.errors import UserError
from core.eval.normalizer import normalize, placeholders_to_words

References = Sequence[str] | Sequence[Sequence[str]]

CIDER_N = 4
CIDER_SIGMA = 6.0
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


# ---------------------------------------------------------------- input checking


def _check_predictions(predictions: Sequence[str]) -> list[str]:
    if isinstance(predictions, str) or not isinstance(predictions, Sequence):
        raise UserError("predictions must be a list of strings")
    if len(predictions) == 0:
        raise UserError("nothing to score: predictions are empty")
    bad = [i for i, p in enumerate(predictions) if not isinstance(p, str)]
    if bad:
        raise UserError(f"prediction #{bad[0]} is not a string ({type(predictions[bad[0]]).__name__})")
    return list(predictions)


def _reference_lists(predictions: Sequence[str], references: References) -> tuple[list[str], list[list[str]]]:
    """Validate inputs; return predictions and one non-empty list of references per sample."""
    preds = _check_predictions(predictions)
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise UserError("references must be a list of strings or a list of lists of strings")
    if len(references) != len(preds):
        raise UserError(f"{len(preds)} predictions but {len(references)} references: lengths must match")
    refs: list[list[str]] = []
    for i, ref in enumerate(references):
        group = [ref] if isinstance(ref, str) else list(ref) if isinstance(ref, Sequence) else None
        if not group or not all(isinstance(r, str) for r in group):
            raise UserError(f"reference #{i} must be a string or a non-empty list of strings")
        refs.append(group)
    return preds, refs


def _single_references(predictions: Sequence[str], references: Sequence[str]) -> tuple[list[str], list[str]]:
    preds = _check_predictions(predictions)
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise UserError("references must be a list of strings")
    if len(references) != len(preds):
        raise UserError(f"{len(preds)} predictions but {len(references)} references: lengths must match")
    bad = [i for i, r in enumerate(references) if not isinstance(r, str)]
    if bad:
        raise UserError(f"reference #{bad[0]} is not a string")
    return preds, list(references)


def _check_bootstrap(bootstrap: int) -> None:
    if not isinstance(bootstrap, int) or bootstrap < 0:
        raise UserError(f"bootstrap must be a non-negative integer, got {bootstrap!r}")


def _streams(refs: list[list[str]]) -> list[list[str | None]]:
    """Per-sample reference lists -> sacrebleu's reference streams (None pads short groups)."""
    width = max(len(g) for g in refs)
    return [[g[k] if k < len(g) else None for g in refs] for k in range(width)]


# ---------------------------------------------------------------- bootstrap


def _bootstrap_sums(stats: np.ndarray, bootstrap: int, seed: int) -> np.ndarray:
    """Column sums of ``stats`` (n x k) over ``bootstrap`` resamples of its rows -> (bootstrap x k).

    Resample indices depend only on (n, bootstrap, seed), so every metric scored with
    the same seed sees the same resamples.  Works in chunks of ~1e6 indices to bound memory.
    """
    n = stats.shape[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, 1_000_000 // n)
    out = []
    for start in range(0, bootstrap, chunk):
        rows = min(chunk, bootstrap - start)
        idx = rng.integers(0, n, size=(rows, n))
        flat = (idx + (np.arange(rows) * n)[:, None]).ravel()
        weights = np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(np.float64)
        out.append(weights @ stats)
    return np.concatenate(out, axis=0)


def _interval(values: Sequence[float] | np.ndarray) -> list[float]:
    lo, hi = np.percentile(np.asarray(values, dtype=np.float64), [2.5, 97.5])
    return [float(lo), float(hi)]


def _bootstrap_ci(
    stats: np.ndarray, score: Callable[[np.ndarray], dict[str, float]], bootstrap: int, seed: int
) -> dict[str, list[float]]:
    """Percentile CIs of every key that ``score(summed_stats)`` returns."""
    if bootstrap == 0:
        return {}
    samples: dict[str, list[float]] = defaultdict(list)
    for row in _bootstrap_sums(stats, bootstrap, seed):
        for key, value in score(row).items():
            samples[key].append(value)
    return {key: _interval(values) for key, values in samples.items()}


# ---------------------------------------------------------------- BLEU / chrF


def _sacrebleu_metrics() -> tuple[Any, Any]:
    from sacrebleu.metrics import BLEU, CHRF

    return BLEU(), CHRF()


def _bleu_from_stats(bleu: Any, stats: np.ndarray) -> dict[str, float]:
    # sacrebleu's (private, stable since 2.0) hook that its own significance tests use.
    result = bleu._compute_score_from_stats([int(round(x)) for x in stats])
    out = {"bleu": float(result.score)}
    out.update({f"bleu{k + 1}": float(p) for k, p in enumerate(result.precisions)})
    return out


def _chrf_from_stats(chrf: Any, stats: np.ndarray) -> dict[str, float]:
    return {"chrf": float(chrf._compute_score_from_stats([int(round(x)) for x in stats]).score)}


def sample_bleu(prediction: str, references: str | Sequence[str]) -> float:
    """Sentence BLEU (0-100, sacrebleu defaults for sentences: exp smoothing, effective order).

    For drill-down only: a corpus BLEU is *not* the mean of these.
    """
    from sacrebleu.metrics import BLEU

    _, refs = _reference_lists([prediction], [references])
    hyp = placeholders_to_words(prediction)
    return float(
        BLEU(effective_order=True).sentence_score(hyp, [placeholders_to_words(r) for r in refs[0]]).score
    )


# ---------------------------------------------------------------- ROUGE-L


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def sample_rouge_l(prediction: str, references: str | Sequence[str]) -> float:
    """ROUGE-L F-measure (0-100) against the best-matching reference."""
    _, refs = _reference_lists([prediction], [references])
    targets = [placeholders_to_words(r) for r in refs[0]]
    scores = _rouge_scorer().score_multi(targets, placeholders_to_words(prediction))
    return 100.0 * float(scores["rougeL"].fmeasure)


# ---------------------------------------------------------------- CIDEr-D


def cider_tokens(text: str) -> list[str]:
    """Lowercase word tokens without punctuation, approximating pycocoevalcap's PTBTokenizer."""
    return _TOKEN_RE.findall(placeholders_to_words(text).lower())


def _ngram_counts(tokens: list[str], n: int = CIDER_N) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            counts[tuple(tokens[i : i + k])] += 1
    return counts


def cider_d_per_sample(
    predictions: Sequence[str], references: References, *, n: int = CIDER_N, sigma: float = CIDER_SIGMA
) -> list[float]:
    """Per-sample CIDEr-D, a line-by-line port of pycocoevalcap's ``CiderScorer``.

    tf-idf weights use document frequencies over the *references of this corpus* and
    ``log(number of samples)``; hypothesis n-gram weights are clipped at the reference's
    (``min``), a Gaussian penalty ``exp(-delta^2 / (2 sigma^2))`` punishes length
    differences, scores are averaged over n = 1..4 and references and multiplied by 10.
    Faithful to a quirk of the original: the "length" is the number of *bigrams*
    (pycocoevalcap tests ``n == 1`` on a 0-based n-gram order).
    The corpus CIDEr-D is the mean of these values.
    """
    preds, refs = _reference_lists(predictions, references)
    ctest = [_ngram_counts(cider_tokens(p), n) for p in preds]
    crefs = [[_ngram_counts(cider_tokens(r), n) for r in group] for group in refs]

    document_frequency: Counter[tuple[str, ...]] = Counter()
    for group in crefs:
        for ngram in {g for counts in group for g in counts}:
            document_frequency[ngram] += 1
    ref_len = math.log(float(len(crefs)))

    def counts2vec(cnts: Counter[tuple[str, ...]]) -> tuple[list[dict], list[float], int]:
        vec: list[dict[tuple[str, ...], float]] = [defaultdict(float) for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for ngram, term_freq in cnts.items():
            df = math.log(max(1.0, document_frequency[ngram]))
            order = len(ngram) - 1
            vec[order][ngram] = float(term_freq) * (ref_len - df)
            norm[order] += vec[order][ngram] ** 2
            if order == 1:
                length += term_freq
        return vec, [math.sqrt(x) for x in norm], length

    def sim(
        vec_h: list[dict], vec_r: list[dict], norm_h: list[float], norm_r: list[float], len_h: int, len_r: int
    ) -> list[float]:
        delta = float(len_h - len_r)
        val = [0.0] * n
        for k in range(n):
            for ngram, weight in vec_h[k].items():
                val[k] += min(weight, vec_r[k][ngram]) * vec_r[k][ngram]
            if norm_h[k] != 0 and norm_r[k] != 0:
                val[k] /= norm_h[k] * norm_r[k]
            val[k] *= math.e ** (-(delta**2) / (2 * sigma**2))
        return val

    scores = []
    for test, group in zip(ctest, crefs, strict=True):
        vec, norm, length = counts2vec(test)
        total = [0.0] * n
        for ref in group:
            vec_r, norm_r, length_r = counts2vec(ref)
            total = [
                a + b for a, b in zip(total, sim(vec, vec_r, norm, norm_r, length, length_r), strict=True)
            ]
        scores.append(sum(total) / n / len(group) * 10.0)
    return scores


def cider_d(predictions: Sequence[str], references: References) -> float:
    """Corpus CIDEr-D (pycocoevalcap scale: mean of per-sample scores)."""
    return float(np.mean(cider_d_per_sample(predictions, references)))


# ---------------------------------------------------------------- text_scores


def text_scores(
    predictions: Sequence[str], references: References, *, bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Corpus text metrics for generated tweets or captions.

    ``references`` is one string per prediction or a list of references per prediction.
    Returns ``{"bleu", "bleu1".."bleu4", "rougeL", "chrf", "cider", "signature",
    "chrf_signature", "ci": {metric: [lo, hi]}, "n"}``.  ``bleu`` is sacrebleu corpus BLEU
    (13a, mixed case, exp smoothing); ``bleu1..4`` are its modified n-gram precisions
    (the "60.1/35.2/..." in sacrebleu's output), not cumulative BLEU-n; ``rougeL`` is the
    mean F-measure; all 0-100 except ``cider`` (see module docstring).
    ``bootstrap=0`` skips the confidence intervals.
    """
    preds, refs = _reference_lists(predictions, references)
    _check_bootstrap(bootstrap)
    hyps = [placeholders_to_words(p) for p in preds]
    ref_groups = [[placeholders_to_words(r) for r in group] for group in refs]
    streams = _streams(ref_groups)

    bleu, chrf = _sacrebleu_metrics()
    bleu_stats = np.asarray(bleu._extract_corpus_statistics(hyps, streams), dtype=np.float64)
    chrf_stats = np.asarray(chrf._extract_corpus_statistics(hyps, streams), dtype=np.float64)
    rouge = np.array([sample_rouge_l(p, r) for p, r in zip(preds, refs, strict=True)], dtype=np.float64)
    cider = np.array(cider_d_per_sample(preds, refs), dtype=np.float64)

    result: dict[str, Any] = {}
    result.update(_bleu_from_stats(bleu, bleu_stats.sum(axis=0)))
    result["rougeL"] = float(rouge.mean())
    result["chrf"] = _chrf_from_stats(chrf, chrf_stats.sum(axis=0))["chrf"]
    result["cider"] = float(cider.mean())
    result["signature"] = bleu.get_signature().format()
    result["chrf_signature"] = chrf.get_signature().format()

    n = len(preds)
    ci: dict[str, list[float]] = {}
    ci.update(_bootstrap_ci(bleu_stats, lambda s: _bleu_from_stats(bleu, s), bootstrap, seed))
    ci.update(_bootstrap_ci(chrf_stats, lambda s: _chrf_from_stats(chrf, s), bootstrap, seed))
    ci.update(_bootstrap_ci(rouge[:, None], lambda s: {"rougeL": float(s[0]) / n}, bootstrap, seed))
    ci.update(_bootstrap_ci(cider[:, None], lambda s: {"cider": float(s[0]) / n}, bootstrap, seed))
    result["ci"] = ci
    result["n"] = n
    return result


# ---------------------------------------------------------------- WER / CER


def _edit_stats(prediction: str, reference: str, *, characters: bool) -> tuple[int, int]:
    """(errors, reference length) in words or characters after :func:`normalize`."""
    import jiwer

    hyp, ref = normalize(prediction), normalize(reference)
    if characters:
        hyp_len, ref_len = len(hyp), len(ref)
    else:
        hyp_len, ref_len = len(hyp.split()), len(ref.split())
    if ref_len == 0 or hyp_len == 0:  # all insertions / all deletions; jiwer is not needed
        return max(hyp_len, ref_len), ref_len
    out = jiwer.process_characters(ref, hyp) if characters else jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, out.hits + out.substitutions + out.deletions


def _rate(errors: int, ref_len: int) -> float:
    """Percent; an empty reference scores 0 when the hypothesis is empty too, else 100."""
    if ref_len == 0:
        return 0.0 if errors == 0 else 100.0
    return 100.0 * errors / ref_len


def sample_wer(prediction: str, reference: str) -> float:
    """Word error rate of one sample, percent, after :func:`normalize`."""
    _single_references([prediction], [reference])
    return _rate(*_edit_stats(prediction, reference, characters=False))


def sample_cer(prediction: str, reference: str) -> float:
    """Character error rate of one sample, percent, after :func:`normalize`."""
    _single_references([prediction], [reference])
    return _rate(*_edit_stats(prediction, reference, characters=True))


def speech_scores(
    predictions: Sequence[str], references: Sequence[str], *, bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Corpus WER and CER in **percent (0-100, may exceed 100)** after :func:`normalize`.

    Corpus rates are total edits / total reference length (jiwer's definition), not a
    mean of per-sample rates.  Returns ``{"wer", "cer", "ci": {"wer": [lo, hi], "cer": [...]}, "n"}``.
    """
    preds, refs = _single_references(predictions, references)
    _check_bootstrap(bootstrap)
    word = np.array(
        [_edit_stats(p, r, characters=False) for p, r in zip(preds, refs, strict=True)], dtype=np.float64
    )
    char = np.array(
        [_edit_stats(p, r, characters=True) for p, r in zip(preds, refs, strict=True)], dtype=np.float64
    )
    if word[:, 1].sum() == 0:
        raise UserError("all references are empty after normalisation: WER is undefined")

    def rate(key: str) -> Callable[[np.ndarray], dict[str, float]]:
        return lambda s: {key: 100.0 * float(s[0]) / float(s[1]) if s[1] else 0.0}

    ci: dict[str, list[float]] = {}
    ci.update(_bootstrap_ci(word, rate("wer"), bootstrap, seed))
    ci.update(_bootstrap_ci(char, rate("cer"), bootstrap, seed))
    return {
        "wer": rate("wer")(word.sum(axis=0))["wer"],
        "cer": rate("cer")(char.sum(axis=0))["cer"],
        "ci": ci,
        "n": len(preds),
    }
