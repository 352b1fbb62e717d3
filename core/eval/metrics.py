"""Text and speech metrics with bootstrap confidence intervals (pure functions, no UI).

Scales: every score is on 0-100 (BLEU, BLEU-n precisions, both ROUGE-Ls, chrF, WER, CER)
so tables read alike, except CIDEr-D, which is reported as pycocoevalcap returns it
(0-10 scale; captioning papers often print it x100).

Preprocessing, per metric (each result carries a signature naming it, see :func:`text_scores`):

* BLEU, chrF: sacrebleu defaults (13a tokeniser, mixed case; chrF has no tokeniser), no normaliser.
* ROUGE-L (``rougeL``): rouge-score's rougeL F1 against the best reference, its own tokeniser
  (lowercase, ``[a-z0-9]+`` words), no stemmer.
* COCO ROUGE-L (``rougeL_coco``) and CIDEr-D: pycocoevalcap's definitions on the COCO caption
  evaluation's tokens (:mod:`core.eval.ptb`: Stanford PTB rules, lowercase, punctuation removed),
  references tokenised in one call and predictions in another, as pycocoevalcap does.
* WER, CER: jiwer after Whisper's English normaliser (:func:`core.eval.normalizer.normalize`), equal to
  jiwer after the ``whisper-normalizer`` package by default; the one variant (``normalizer="whisper-words"``)
  is never the default and its signature says so.

Tweet placeholders: references keep ``<hyperlink>``/``<mention>``.  Left alone, sacrebleu's
13a tokenizer splits each into three tokens (``< hyperlink >``) and rewards a model for the
angle brackets.  So by default (``placeholders="words"``) each placeholder becomes one
alphanumeric word (``xxhyperlinkxx``/``xxmentionxx``) in hypotheses and references before every
text metric, so a placeholder is exactly one token everywhere; ``placeholders="raw"`` scores the
text as it is, which is what plain sacrebleu on the same files reports.  The choice is part of
the signature, since it moves BLEU by several points.

Confidence intervals: percentile bootstrap (2.5/97.5) over samples.  Corpus metrics
(BLEU, chrF, WER, CER) are recomputed from resampled *sufficient statistics*, the
way sacrebleu's own significance test does; mean metrics (ROUGE-L, CIDEr-D) average
resampled per-sample scores.  CIDEr-D's document frequencies are kept from the full
corpus inside the bootstrap (recomputing them per resample would be the exact but
O(bootstrap x corpus) alternative).  All metrics of one call share the same resamples.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import numpy as np

from core.errors import UserError
from core.eval.normalizer import (
    DEFAULT_SPEECH_NORMALIZER,
    SPELLING_ENTRIES,
    SpeechNormalizer,
    check_speech_normalizer,
    normalize,
    placeholders_to_words,
)
from core.eval.ptb import ptb_tokenize, ptb_tokenize_lines

References = Sequence[str] | Sequence[Sequence[str]]
Placeholders = Literal["words", "raw"]

PLACEHOLDER_MODES: tuple[str, ...] = ("words", "raw")
CIDER_N = 4
CIDER_SIGMA = 6.0
COCO_ROUGE_BETA = 1.2


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


def _check_placeholders(placeholders: str) -> None:
    if placeholders not in PLACEHOLDER_MODES:
        raise UserError(f"placeholders must be one of {', '.join(PLACEHOLDER_MODES)}, got {placeholders!r}")


def _prepare(text: str, placeholders: str) -> str:
    """The text a metric sees: placeholders rewritten to one word each, or left as they are."""
    return placeholders_to_words(text) if placeholders == "words" else text


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


def sample_bleu(prediction: str, references: str | Sequence[str], *, placeholders: Placeholders = "words") -> float:
    """Sentence BLEU (0-100, sacrebleu defaults for sentences: exp smoothing, effective order).

    For drill-down only: a corpus BLEU is *not* the mean of these.
    """
    from sacrebleu.metrics import BLEU

    _, refs = _reference_lists([prediction], [references])
    _check_placeholders(placeholders)
    hyp = _prepare(prediction, placeholders)
    return float(
        BLEU(effective_order=True).sentence_score(hyp, [_prepare(r, placeholders) for r in refs[0]]).score
    )


# ---------------------------------------------------------------- ROUGE-L


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def sample_rouge_l(
    prediction: str, references: str | Sequence[str], *, placeholders: Placeholders = "words"
) -> float:
    """ROUGE-L F1 (0-100, rouge-score's ``rougeL``, no stemmer) against the best-matching reference."""
    _, refs = _reference_lists([prediction], [references])
    _check_placeholders(placeholders)
    targets = [_prepare(r, placeholders) for r in refs[0]]
    scores = _rouge_scorer().score_multi(targets, _prepare(prediction, placeholders))
    return 100.0 * float(scores["rougeL"].fmeasure)


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if token == other else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def _coco_rouge_l(candidate: str, references: list[str], beta: float = COCO_ROUGE_BETA) -> float:
    """pycocoevalcap's ``Rouge.calc_score`` on tokenised text (0-1).

    Not rouge-score's F1: precision and recall are each maximised over the references
    (possibly from different ones) and combined with beta = 1.2, which weighs recall more.
    Tokens are split on single spaces as there (an empty caption is one empty token).
    """
    cand = candidate.split(" ")
    precisions, recalls = [], []
    for reference in references:
        ref = reference.split(" ")
        lcs = _lcs_length(ref, cand)
        precisions.append(lcs / len(cand))
        recalls.append(lcs / len(ref))
    p, r = max(precisions), max(recalls)
    if p == 0 or r == 0:
        return 0.0
    return (1 + beta**2) * p * r / (r + beta**2 * p)


def rouge_l_coco_per_sample(
    predictions: Sequence[str], references: References, *, placeholders: Placeholders = "words"
) -> list[float]:
    """Per-sample COCO ROUGE-L (0-100): pycocoevalcap's ``Rouge`` on the COCO caption evaluation's tokens.

    The corpus value (what captioning papers report as ROUGE-L) is the mean of these.
    """
    test, refs = coco_tokenize(predictions, references, placeholders=placeholders)
    return [100.0 * _coco_rouge_l(t, group) for t, group in zip(test, refs, strict=True)]


# ---------------------------------------------------------------- CIDEr-D


def cider_tokens(text: str, *, placeholders: Placeholders = "words") -> list[str]:
    """One caption's tokens as pycocoevalcap's PTBTokenizer gives them (lowercase, punctuation removed)."""
    _check_placeholders(placeholders)
    return ptb_tokenize(_prepare(text, placeholders)).split()


def coco_tokenize(
    predictions: Sequence[str], references: References, *, placeholders: Placeholders = "words"
) -> tuple[list[str], list[list[str]]]:
    """Predictions and references tokenised the way pycocoevalcap's evaluation does it.

    Two tokenizer calls, as ``tokenizer.tokenize(gts)`` and ``tokenizer.tokenize(res)`` there: all
    references sample by sample in one, all predictions in the other (a caption's last token can
    depend on the next caption, so calls matter).  Returns space-joined token strings.
    """
    preds, refs = _reference_lists(predictions, references)
    _check_placeholders(placeholders)
    flat = ptb_tokenize_lines([_prepare(r, placeholders) for group in refs for r in group])
    grouped, start = [], 0
    for group in refs:
        grouped.append(flat[start : start + len(group)])
        start += len(group)
    return ptb_tokenize_lines([_prepare(p, placeholders) for p in preds]), grouped


def _ngram_counts(tokens: list[str], n: int = CIDER_N) -> Counter[tuple[str, ...]]:
    counts: Counter[tuple[str, ...]] = Counter()
    for k in range(1, n + 1):
        for i in range(len(tokens) - k + 1):
            counts[tuple(tokens[i : i + k])] += 1
    return counts


def cider_d_per_sample(
    predictions: Sequence[str],
    references: References,
    *,
    n: int = CIDER_N,
    sigma: float = CIDER_SIGMA,
    placeholders: Placeholders = "words",
) -> list[float]:
    """Per-sample CIDEr-D, a line-by-line port of pycocoevalcap's ``CiderScorer``, on :func:`coco_tokenize` tokens.

    tf-idf weights use document frequencies over the *references of this corpus* and
    ``log(number of samples)``; hypothesis n-gram weights are clipped at the reference's
    (``min``), a Gaussian penalty ``exp(-delta^2 / (2 sigma^2))`` punishes length
    differences, scores are averaged over n = 1..4 and references and multiplied by 10.
    Faithful to a quirk of the original: the "length" is the number of *bigrams*
    (pycocoevalcap tests ``n == 1`` on a 0-based n-gram order).
    The corpus CIDEr-D is the mean of these values.  With one sample every IDF is log(1) - log(1) = 0
    and the score is 0 whatever the prediction (see ``core.eval.scoring.metric_warnings``).
    """
    test, refs = coco_tokenize(predictions, references, placeholders=placeholders)
    return _cider_d(test, refs, n, sigma)


def _cider_d(test: list[str], refs: list[list[str]], n: int, sigma: float) -> list[float]:
    ctest = [_ngram_counts(t.split(), n) for t in test]
    crefs = [[_ngram_counts(r.split(), n) for r in group] for group in refs]

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


def cider_d(predictions: Sequence[str], references: References, *, placeholders: Placeholders = "words") -> float:
    """Corpus CIDEr-D (pycocoevalcap scale: mean of per-sample scores)."""
    return float(np.mean(cider_d_per_sample(predictions, references, placeholders=placeholders)))


# ---------------------------------------------------------------- signatures


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # a version string is informative only
        return "unknown"


def text_signatures(bleu: Any, chrf: Any, placeholders: str) -> dict[str, str]:
    """What each text metric did to the text, sacrebleu-style ``key:value|...``, one per metric.

    sacrebleu's own signatures say nothing of what happened before sacrebleu saw the text, and the
    placeholder rewrite alone moves BLEU by points, so each names its placeholder handling
    (``placeholders``), normaliser (``norm``) and tokeniser (``tok``).
    """
    rouge = f"rouge-score:{_package_version('rouge-score')}"
    coco = "port:pycocoevalcap-1.2|tok:ptb-corenlp-3.4.1|case:lc|punct:removed"
    return {
        "bleu": f"{bleu.get_signature().format()}|placeholders:{placeholders}|norm:none",
        "chrf": f"{chrf.get_signature().format()}|placeholders:{placeholders}|norm:none",
        "rougeL": f"{rouge}|variant:rougeL-f1|refs:best|stem:no|tok:rouge-score|case:lc|placeholders:{placeholders}",
        "rougeL_coco": f"{coco}|variant:rougeL-coco|beta:{COCO_ROUGE_BETA}|refs:max-p-r|placeholders:{placeholders}",
        "cider": f"{coco}|variant:cider-d|n:{CIDER_N}|sigma:{CIDER_SIGMA:g}|idf:refs|placeholders:{placeholders}",
    }


# What each WER/CER normaliser does to the text, as the signature says it.  The default's fields changed
# from runs recorded before it equalled the reference ("norm:whisper-en|...|placeholders:tokens"), so those
# runs read as what they were: the words-only variant.
_SPEECH_NORM_FIELDS = {
    "whisper": "norm:whisper-en|ref:whisper-normalizer-0.1.15",
    "whisper-words": "norm:whisper-en-words|symbols:dropped|placeholders:tokens",
}


def speech_signature(normalizer: SpeechNormalizer = DEFAULT_SPEECH_NORMALIZER) -> str:
    """WER/CER preprocessing: Whisper's English normaliser (or the named variant), full spelling table, jiwer."""
    check_speech_normalizer(normalizer)
    return (
        f"jiwer:{_package_version('jiwer')}|{_SPEECH_NORM_FIELDS[normalizer]}|spelling:whisper-{SPELLING_ENTRIES}"
        "|corpus:pooled-edits"
    )


def speech_normalizer_of(signature: str | None) -> SpeechNormalizer:
    """Which normaliser a stored run's WER/CER used, read from its signature (the default when it says none)."""
    words_only = "norm:whisper-en-words" in (signature or "") or "|placeholders:tokens" in (signature or "")
    return "whisper-words" if words_only else DEFAULT_SPEECH_NORMALIZER


def join_signatures(signatures: dict[str, str]) -> str:
    """One string for the store: BLEU's signature first as is, then ``; metric=signature`` for the others.

    BLEU leads without a name so the string still starts with the sacrebleu signature people know.
    """
    parts = [signatures["bleu"]] if "bleu" in signatures else []
    parts += [f"{metric}={sig}" for metric, sig in signatures.items() if metric != "bleu"]
    return "; ".join(parts)


def split_signature(signature: str | None) -> dict[str, str]:
    """Inverse of :func:`join_signatures`; a bare sacrebleu signature (older runs) is BLEU's."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (signature or "").split("; "))):
        metric, sep, sig = part.partition("=")
        if sep and ":" not in metric:
            out[metric] = sig
        else:
            out["bleu"] = part
    return out


# ---------------------------------------------------------------- text_scores


def text_scores(
    predictions: Sequence[str],
    references: References,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    placeholders: Placeholders = "words",
) -> dict[str, Any]:
    """Corpus text metrics for generated tweets or captions.

    ``references`` is one string per prediction or a list of references per prediction.
    Returns ``{"bleu", "bleu1".."bleu4", "rougeL", "rougeL_coco", "chrf", "cider", "signature",
    "signatures", "chrf_signature", "ci": {metric: [lo, hi]}, "n"}``.  ``bleu`` is sacrebleu
    corpus BLEU (13a, mixed case, exp smoothing); ``bleu1..4`` are its modified n-gram precisions
    (the "60.1/35.2/..." in sacrebleu's output), not cumulative BLEU-n; ``rougeL`` is rouge-score's
    mean F1 (best reference, no stemmer); ``rougeL_coco`` is pycocoevalcap's ROUGE-L (what
    captioning papers report); all 0-100 except ``cider`` (see module docstring).
    ``signatures`` names each metric's preprocessing, ``signature`` joins them
    (:func:`join_signatures`).  ``placeholders`` is ``"words"`` (default) or ``"raw"``.
    ``bootstrap=0`` skips the confidence intervals.
    """
    preds, refs = _reference_lists(predictions, references)
    _check_bootstrap(bootstrap)
    _check_placeholders(placeholders)
    hyps = [_prepare(p, placeholders) for p in preds]
    ref_groups = [[_prepare(r, placeholders) for r in group] for group in refs]
    streams = _streams(ref_groups)

    bleu, chrf = _sacrebleu_metrics()
    bleu_stats = np.asarray(bleu._extract_corpus_statistics(hyps, streams), dtype=np.float64)
    chrf_stats = np.asarray(chrf._extract_corpus_statistics(hyps, streams), dtype=np.float64)
    rouge = np.array(
        [sample_rouge_l(p, r, placeholders=placeholders) for p, r in zip(preds, refs, strict=True)], dtype=np.float64
    )
    coco_test, coco_refs = coco_tokenize(preds, refs, placeholders=placeholders)
    rouge_coco = np.array(
        [100.0 * _coco_rouge_l(t, g) for t, g in zip(coco_test, coco_refs, strict=True)], dtype=np.float64
    )
    cider = np.array(_cider_d(coco_test, coco_refs, CIDER_N, CIDER_SIGMA), dtype=np.float64)

    result: dict[str, Any] = {}
    result.update(_bleu_from_stats(bleu, bleu_stats.sum(axis=0)))
    result["rougeL"] = float(rouge.mean())
    result["rougeL_coco"] = float(rouge_coco.mean())
    result["chrf"] = _chrf_from_stats(chrf, chrf_stats.sum(axis=0))["chrf"]
    result["cider"] = float(cider.mean())
    signatures = text_signatures(bleu, chrf, placeholders)
    result["signatures"] = signatures
    result["signature"] = join_signatures(signatures)
    result["chrf_signature"] = signatures["chrf"]

    n = len(preds)
    ci: dict[str, list[float]] = {}
    ci.update(_bootstrap_ci(bleu_stats, lambda s: _bleu_from_stats(bleu, s), bootstrap, seed))
    ci.update(_bootstrap_ci(chrf_stats, lambda s: _chrf_from_stats(chrf, s), bootstrap, seed))
    ci.update(_bootstrap_ci(rouge[:, None], lambda s: {"rougeL": float(s[0]) / n}, bootstrap, seed))
    ci.update(_bootstrap_ci(rouge_coco[:, None], lambda s: {"rougeL_coco": float(s[0]) / n}, bootstrap, seed))
    ci.update(_bootstrap_ci(cider[:, None], lambda s: {"cider": float(s[0]) / n}, bootstrap, seed))
    result["ci"] = ci
    result["n"] = n
    return result


# ---------------------------------------------------------------- WER / CER


def _edit_stats(
    prediction: str, reference: str, *, characters: bool, normalizer: SpeechNormalizer = DEFAULT_SPEECH_NORMALIZER
) -> tuple[int, int]:
    """(errors, reference length) in words or characters after :func:`normalize`."""
    import jiwer

    hyp, ref = normalize(prediction, normalizer), normalize(reference, normalizer)
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


def sample_wer(prediction: str, reference: str, *, normalizer: SpeechNormalizer = DEFAULT_SPEECH_NORMALIZER) -> float:
    """Word error rate of one sample, percent, after :func:`normalize` (the reference's by default)."""
    _single_references([prediction], [reference])
    check_speech_normalizer(normalizer)
    return _rate(*_edit_stats(prediction, reference, characters=False, normalizer=normalizer))


def sample_cer(prediction: str, reference: str, *, normalizer: SpeechNormalizer = DEFAULT_SPEECH_NORMALIZER) -> float:
    """Character error rate of one sample, percent, after :func:`normalize` (the reference's by default)."""
    _single_references([prediction], [reference])
    check_speech_normalizer(normalizer)
    return _rate(*_edit_stats(prediction, reference, characters=True, normalizer=normalizer))


def speech_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    normalizer: SpeechNormalizer = DEFAULT_SPEECH_NORMALIZER,
) -> dict[str, Any]:
    """Corpus WER and CER in **percent (0-100, may exceed 100)** after :func:`normalize`.

    Corpus rates are total edits / total reference length (jiwer's definition), not a
    mean of per-sample rates; by default they equal ``jiwer.wer``/``jiwer.cer`` over the
    ``whisper-normalizer`` package's output.  ``normalizer="whisper-words"`` is the one variant (see
    :mod:`core.eval.normalizer`), named in the signature.  Returns ``{"wer", "cer", "ci": {"wer": [lo, hi],
    "cer": [...]}, "signature", "signatures", "n"}``.
    """
    preds, refs = _single_references(predictions, references)
    _check_bootstrap(bootstrap)
    check_speech_normalizer(normalizer)
    word = np.array(
        [_edit_stats(p, r, characters=False, normalizer=normalizer) for p, r in zip(preds, refs, strict=True)],
        dtype=np.float64,
    )
    char = np.array(
        [_edit_stats(p, r, characters=True, normalizer=normalizer) for p, r in zip(preds, refs, strict=True)],
        dtype=np.float64,
    )
    if word[:, 1].sum() == 0:
        raise UserError("all references are empty after normalisation: WER is undefined")

    def rate(key: str) -> Callable[[np.ndarray], dict[str, float]]:
        return lambda s: {key: 100.0 * float(s[0]) / float(s[1]) if s[1] else 0.0}

    ci: dict[str, list[float]] = {}
    ci.update(_bootstrap_ci(word, rate("wer"), bootstrap, seed))
    ci.update(_bootstrap_ci(char, rate("cer"), bootstrap, seed))
    signatures = {"wer": speech_signature(normalizer), "cer": speech_signature(normalizer)}
    return {
        "wer": rate("wer")(word.sum(axis=0))["wer"],
        "cer": rate("cer")(char.sum(axis=0))["cer"],
        "ci": ci,
        "signature": join_signatures(signatures),
        "signatures": signatures,
        "n": len(preds),
    }
