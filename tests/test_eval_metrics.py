"""Metrics agree with their reference implementations and with hand computation."""

from __future__ import annotations

import math

import pytest
import sacrebleu

from core.errors import UserError
from core.eval.metrics import (
    cider_d,
    cider_d_per_sample,
    sample_bleu,
    sample_cer,
    sample_rouge_l,
    sample_wer,
    speech_scores,
    text_scores,
)

HYPS = [
    "The cat sat on the mat near the door.",
    "A dog runs quickly in the green park today",
    "Fresh coffee and warm bread every morning",
    "We are open late on Friday and Saturday",
    "Our new phone has a bigger battery",
    "Big sale on all winter jackets this weekend",
]
REFS = [
    "The cat is sitting on the mat by the door.",
    "A dog is running in the park today",
    "Fresh coffee and warm bread, every single morning",
    "We stay open late on Fridays and Saturdays",
    "The new phone comes with a bigger battery",
    "Huge sale on winter jackets this weekend only",
]


def test_bleu_and_chrf_equal_sacrebleu_corpus_scores():
    ours = text_scores(HYPS, REFS, bootstrap=0)
    bleu = sacrebleu.corpus_bleu(HYPS, [REFS])
    assert ours["bleu"] == pytest.approx(bleu.score, abs=1e-9)
    assert [ours[f"bleu{k}"] for k in range(1, 5)] == pytest.approx(bleu.precisions, abs=1e-9)
    assert ours["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score, abs=1e-9)
    assert ours["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert ours["n"] == len(HYPS)
    assert 0 < ours["bleu"] < 100


def test_multi_reference_bleu_equals_sacrebleu_streams():
    alt = [
        "A cat sat on a mat near a door.",
        "The dog ran in the park",
        "Coffee and bread every morning",
        "Open late Friday and Saturday",
        "A phone with a bigger battery",
        "Winter jackets on sale this weekend",
    ]
    ours = text_scores(HYPS, [[r, a] for r, a in zip(REFS, alt, strict=True)], bootstrap=0)
    assert ours["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS, alt]).score, abs=1e-9)
    assert ours["bleu"] > text_scores(HYPS, REFS, bootstrap=0)["bleu"]


def test_variable_number_of_references():
    ours = text_scores(["a b c d", "e f g h"], [["a b c d"], ["x y", "e f g h"]], bootstrap=0)
    assert ours["bleu"] == pytest.approx(100.0)
    assert "nrefs:var" in ours["signature"]


def test_placeholders_count_as_one_token():
    # One placeholder differs: 2 of 3 unigrams match.  Had "<hyperlink>" been split into
    # "< hyperlink >", the brackets would match too and precision would read 4/5.
    ours = text_scores(["buy now <mention>"], ["buy now <hyperlink>"], bootstrap=0)
    assert ours["bleu1"] == pytest.approx(100 * 2 / 3)
    assert ours["bleu2"] == pytest.approx(100 * 1 / 2)


def test_identical_outputs_score_perfectly():
    ours = text_scores(HYPS, HYPS, bootstrap=50)
    for key in ("bleu", "bleu1", "bleu4", "chrf", "rougeL"):
        assert ours[key] == pytest.approx(100.0), key
    speech = speech_scores(HYPS, HYPS, bootstrap=50)
    assert speech["wer"] == 0.0
    assert speech["cer"] == 0.0


def test_rouge_l_by_hand():
    # LCS("a b c d", "a c d e") = "a c d" -> P = R = 3/4 -> F = 0.75
    assert sample_rouge_l("a b c d", "a c d e") == pytest.approx(75.0)
    assert text_scores(["a b c d", "x y"], ["a c d e", "x y"], bootstrap=0)["rougeL"] == pytest.approx(87.5)


def test_wer_hand_computed():
    assert sample_wer("the cat sat down", "the cat sat up") == pytest.approx(25.0)  # 1 substitution / 4
    assert sample_wer("the cat down", "the cat sat down") == pytest.approx(25.0)  # 1 deletion / 4
    assert sample_wer("the big cat sat down", "the cat sat down") == pytest.approx(25.0)  # 1 insertion / 4
    # Corpus WER pools edits: (1 + 1) / (4 + 2), not the mean of 25 % and 50 %.
    corpus = speech_scores(["a b e d", "x y z"], ["a b c d", "x y"], bootstrap=0)
    assert corpus["wer"] == pytest.approx(100 * 2 / 6)


def test_cer_hand_computed():
    assert sample_cer("abd", "abc") == pytest.approx(100 / 3)
    assert speech_scores(["abd"], ["abc"], bootstrap=0)["cer"] == pytest.approx(100 / 3)


def test_wer_uses_the_normaliser():
    assert sample_wer("Hello, World!", "hello world") == 0.0
    assert sample_wer("25", "twenty-five") == 0.0
    assert speech_scores(["It costs twenty five dollars."], ["it costs $25"], bootstrap=0)["wer"] == 0.0


def test_wer_empty_sides():
    assert sample_wer("", "two words") == pytest.approx(100.0)
    assert sample_wer("", "") == 0.0
    assert sample_wer("extra", "") == 100.0
    with pytest.raises(UserError):
        speech_scores(["a"], ["..."], bootstrap=0)


def test_cider_d_hand_computed():
    # Corpus: ("a cat sat" | ref "a cat"), ("a bird" | ref "a dog").  N = 2 -> log N = ln 2.
    # Document frequencies over references: a:2, cat:1, dog:1, (a cat):1, (a dog):1, others 0.
    # Weight tf * (ln 2 - ln max(1, df)): "a" -> 0; every other n-gram -> ln 2.
    # Sample 1: hyp 1-grams {a:0, cat:L, sat:L}, |h1| = sqrt(2) L; ref {a:0, cat:L}, |r1| = L
    #   sim1 = (min(L, L) * L) / (sqrt(2) L * L) = 1/sqrt(2); 2-grams likewise 1/sqrt(2);
    #   3-, 4-grams: reference vector is empty -> 0.
    #   Length = number of bigrams (pycocoevalcap quirk): 2 vs 1 -> delta = 1,
    #   penalty exp(-1 / (2 * 6^2)) = exp(-1/72).
    #   score = 10 * (2 / sqrt(2)) / 4 * exp(-1/72) = 10 * sqrt(2) / 4 * exp(-1/72) ~= 3.4868
    # Sample 2: only "a" overlaps and its weight is 0 -> 0.
    expected_1 = 10 * math.sqrt(2) / 4 * math.exp(-1 / 72)
    scores = cider_d_per_sample(["a cat sat", "a bird"], ["a cat", "a dog"])
    assert scores == pytest.approx([expected_1, 0.0])
    assert cider_d(["a cat sat", "a bird"], ["a cat", "a dog"]) == pytest.approx(expected_1 / 2)
    assert text_scores(["a cat sat", "a bird"], ["a cat", "a dog"], bootstrap=0)["cider"] == pytest.approx(
        expected_1 / 2
    )


def test_cider_d_exact_match_and_multiple_references():
    # Sample 1 matches its reference exactly; weights: "a" 0, "cat" and "a cat" ln 2 ->
    # sims [1, 1, 0, 0] -> 10 * 2/4 = 5.  With a second, unrelated reference whose
    # n-grams get the same idf, the similarity to it is 0 and the mean halves to 2.5.
    assert cider_d_per_sample(["a cat", "a dog"], ["a cat", "a dog"]) == pytest.approx([5.0, 5.0])
    two = cider_d_per_sample(["a cat", "a dog"], [["a cat", "a bird"], ["a dog"]])
    assert two[0] == pytest.approx(2.5)


def test_confidence_intervals_contain_point_estimates_and_are_seeded():
    many_h, many_r = HYPS * 3, REFS * 3
    scores = text_scores(many_h, many_r, bootstrap=300, seed=1)
    for key in ("bleu", "bleu1", "bleu2", "bleu3", "bleu4", "rougeL", "chrf", "cider"):
        lo, hi = scores["ci"][key]
        assert lo <= scores[key] <= hi, key
        assert lo < hi, key
    again = text_scores(many_h, many_r, bootstrap=300, seed=1)
    assert again["ci"] == scores["ci"]
    other = text_scores(many_h, many_r, bootstrap=300, seed=2)
    assert other["ci"] != scores["ci"]

    speech = speech_scores(HYPS, REFS, bootstrap=300, seed=1)
    for key in ("wer", "cer"):
        lo, hi = speech["ci"][key]
        assert lo <= speech[key] <= hi
        assert lo < hi


def test_bootstrap_zero_skips_intervals():
    assert text_scores(HYPS, REFS, bootstrap=0)["ci"] == {}
    assert speech_scores(HYPS, REFS, bootstrap=0)["ci"] == {}


def test_sample_bleu():
    assert sample_bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(100.0)
    partial = sample_bleu("the cat sat on a mat", ["the cat sat on the mat", "a cat on a mat"])
    assert 0 < partial < 100
    assert partial == pytest.approx(
        sacrebleu.sentence_bleu("the cat sat on a mat", ["the cat sat on the mat", "a cat on a mat"]).score
    )


@pytest.mark.parametrize(
    "predictions, references",
    [
        ([], []),
        (["a", "b"], ["a"]),
        (["a"], ["a", "b"]),
        ("a string", ["a"]),
        ([None], ["a"]),
        (["a"], [None]),
        (["a"], [[]]),
    ],
)
def test_bad_input_raises_user_error(predictions, references):
    with pytest.raises(UserError):
        text_scores(predictions, references)
    with pytest.raises(UserError):
        speech_scores(predictions, references)


def test_negative_bootstrap_rejected():
    with pytest.raises(UserError):
        text_scores(["a"], ["a"], bootstrap=-1)
