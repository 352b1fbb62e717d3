"""Metrics agree with their reference implementations and with hand computation."""

from __future__ import annotations

import math

import jiwer
import pytest
import sacrebleu
from whisper_normalizer.english import EnglishTextNormalizer

from core.errors import UserError
from core.eval.metrics import (
    cider_d,
    cider_d_per_sample,
    join_signatures,
    rouge_l_coco_per_sample,
    sample_bleu,
    sample_cer,
    sample_rouge_l,
    sample_wer,
    speech_normalizer_of,
    speech_scores,
    split_signature,
    text_scores,
)
from tests.test_eval_ptb import COCO_INPUTS

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
        speech_scores(["a"], ["[music] (laughs) um"], bootstrap=0)  # empty after normalisation ("..." is not)


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


# --------------------------------------------------------------------------- published reference values

# pycocoevalcap 1.2 (Cider, Rouge after its Java PTBTokenizer: stanford-corenlp-3.4.1.jar, OpenJDK 17) on
# COCO_INPUTS, one image per sample; computed once (research run coco_scores.py), kept here as numbers.
COCO_CIDER_D = 2.959810882860607
COCO_CIDER_D_PER_IMAGE = [
    2.9480123595762593,
    1.8105889785872533,
    3.5514217944349307,
    2.704210230484181,
    2.9352303667817017,
    1.769945643277587,
    4.723505279485612,
    3.2355724102573316,
]
COCO_ROUGE_L = 0.7512236330455883
COCO_ROUGE_L_PER_IMAGE = [
    0.8495821727019499,
    0.5820610687022901,
    0.875,
    0.8341880341880341,
    0.7439024390243903,
    0.5820610687022901,
    0.8888888888888888,
    0.6541053921568627,
]

# sacrebleu 2.6.0 ``BLEU().corpus_score`` on raw tweets (placeholders as they stand), and on the same
# tweets with each placeholder replaced by one word (" xxhyperlinkxx ", " xxmentionxx ") first.
TWEET_HYPS = [
    "Big news from <mention>: the new café opens today! <hyperlink>",
    "Check out our black-and-white photo series <hyperlink> #photography",
    "Thanks <mention> <mention> for the 3.5 stars, we don't mind :)",
    "Rain all day in London... colour me grey <hyperlink>",
]
TWEET_REFS = [
    "Huge news from <mention>: our new café opens today! <hyperlink>",
    "Check out the new black-and-white photo series here <hyperlink> #photography",
    "Thank you <mention> for 3.5 stars! We don't mind at all :)",
    "Rainy day in London, colour me grey. <hyperlink>",
]
SACREBLEU_RAW = 44.601839109870035
SACREBLEU_RAW_PRECISIONS = [75.86206896551724, 57.407407407407405, 38.0, 23.91304347826087]
SACREBLEU_WORDS = 32.002282708236905
SACREBLEU_SIGNATURE = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"

# jiwer 4.0.0 ``wer`` over whisper-normalizer 0.1.15's EnglishTextNormalizer (full english.json):
# (reference, hypothesis) pairs full of British spellings, numbers and contractions.
ASR_PAIRS = [
    (
        "The council optimised the neighbourhood's bus routes in 2023.",
        "the council optimized the neighborhood bus routes in twenty twenty three",
    ),
    (
        "Our catalogues show every colour, from grey to turquoise.",
        "our catalogs show every color from gray to turquoise",
    ),
    ("She paid £25.50 for the programme, didn't she?", "she paid twenty five pounds fifty for the program did she"),
    (
        "We've analysed 1,250 samples; 3.5% were contaminated.",
        "we have analyzed one thousand two hundred fifty samples three point five percent were contaminated",
    ),
    (
        "The theatre's centre stage was refurbished in the 1990s.",
        "the theater center stage was refurbished in the nineteen nineties",
    ),
    ("I'd recognise that flavour anywhere!", "i would recognize that flavor anywhere"),
    (
        "Mr. Smith travelled 42 kilometres on his favourite tyres.",
        "mister smith traveled forty two kilometers on his favorite tires",
    ),
    ("The organisation's labour costs rose by 7 per cent.", "the organization labor costs rose by seven percent"),
    ("Um, the jewellery was, uh, stolen at 9:30 p.m.", "the jewelry was stolen at nine thirty pm"),
    (
        "Visit the neighbourhood centre on the 21st of June.",
        "visit the neighborhood center on the twenty first of june",
    ),
    ("Colour-coded catalogues were optimised for defence.", "colour coded catalogs were optimized for defense"),
]
JIWER_CORPUS_WER = 0.10638297872340426
JIWER_PER_PAIR_WER = [0.1, 0.0, 1 / 3, 0.0, 0.1, 0.0, 0.0, 0.125, 4 / 9, 0.0, 0.0]


def test_cider_d_equals_pycocoevalcap_on_the_coco_caption_set():
    preds = [pred for _, pred in COCO_INPUTS]
    refs = [list(group) for group, _ in COCO_INPUTS]
    assert cider_d_per_sample(preds, refs) == pytest.approx(COCO_CIDER_D_PER_IMAGE, abs=1e-6)
    assert cider_d(preds, refs) == pytest.approx(COCO_CIDER_D, abs=1e-6)
    assert text_scores(preds, refs, bootstrap=0)["cider"] == pytest.approx(COCO_CIDER_D, abs=1e-6)


def test_coco_rouge_l_equals_pycocoevalcap_on_the_coco_caption_set():
    preds = [pred for _, pred in COCO_INPUTS]
    refs = [list(group) for group, _ in COCO_INPUTS]
    per_image = [x / 100 for x in rouge_l_coco_per_sample(preds, refs)]
    assert per_image == pytest.approx(COCO_ROUGE_L_PER_IMAGE, abs=1e-6)
    assert text_scores(preds, refs, bootstrap=0)["rougeL_coco"] / 100 == pytest.approx(COCO_ROUGE_L, abs=1e-6)


def test_cider_d_keeps_hyphenated_words_whole():
    # The old [a-z0-9]+ tokeniser split "black-and-white" into three words that every reference of
    # image 1 shares, which inflated its CIDEr-D to 4.10 (pycocoevalcap: 2.95).
    preds = [pred for _, pred in COCO_INPUTS]
    refs = [list(group) for group, _ in COCO_INPUTS]
    assert cider_d_per_sample(preds, refs)[0] == pytest.approx(2.9480123595762593, abs=1e-6)


def test_bleu_on_raw_tweets_equals_sacrebleu_and_its_signature():
    ours = text_scores(TWEET_HYPS, TWEET_REFS, bootstrap=0, placeholders="raw")
    assert ours["bleu"] == pytest.approx(SACREBLEU_RAW, abs=1e-6)
    assert [ours[f"bleu{k}"] for k in range(1, 5)] == pytest.approx(SACREBLEU_RAW_PRECISIONS, abs=1e-6)
    assert ours["signatures"]["bleu"] == SACREBLEU_SIGNATURE + "|placeholders:raw|norm:none"


def test_bleu_with_placeholders_as_words_equals_sacrebleu_on_rewritten_text():
    ours = text_scores(TWEET_HYPS, TWEET_REFS, bootstrap=0)
    assert ours["bleu"] == pytest.approx(SACREBLEU_WORDS, abs=1e-6)
    assert ours["signatures"]["bleu"] == SACREBLEU_SIGNATURE + "|placeholders:words|norm:none"
    # The rewrite changes the score by 12.6 points, so the signature must tell the two apart.
    assert ours["signature"] != text_scores(TWEET_HYPS, TWEET_REFS, bootstrap=0, placeholders="raw")["signature"]
    raw_sentence = sample_bleu(TWEET_HYPS[0], TWEET_REFS[0], placeholders="raw")
    assert raw_sentence == pytest.approx(sacrebleu.sentence_bleu(TWEET_HYPS[0], [TWEET_REFS[0]]).score)


def test_wer_with_british_spellings_equals_jiwer_after_whisper_normalizer():
    refs = [r for r, _ in ASR_PAIRS]
    hyps = [h for _, h in ASR_PAIRS]
    assert speech_scores(hyps, refs, bootstrap=0)["wer"] / 100 == pytest.approx(JIWER_CORPUS_WER, abs=1e-6)
    per_pair = [sample_wer(h, r) / 100 for r, h in ASR_PAIRS]
    assert per_pair == pytest.approx(JIWER_PER_PAIR_WER, abs=1e-6)


def test_every_signature_names_its_preprocessing():
    sigs = text_scores(HYPS, REFS, bootstrap=0)["signatures"]
    assert set(sigs) == {"bleu", "chrf", "rougeL", "rougeL_coco", "cider"}
    assert all("placeholders:words" in sig for sig in sigs.values())
    assert "tok:13a" in sigs["bleu"] and "norm:none" in sigs["bleu"] and "norm:none" in sigs["chrf"]
    assert "tok:ptb" in sigs["cider"] and "tok:ptb" in sigs["rougeL_coco"]
    assert "variant:rougeL-f1" in sigs["rougeL"] and "stem:no" in sigs["rougeL"] and "refs:best" in sigs["rougeL"]
    speech = speech_scores(HYPS, REFS, bootstrap=0)["signatures"]
    assert "norm:whisper-en|ref:whisper-normalizer-0.1.15" in speech["wer"] and "spelling:whisper-1739" in speech["wer"]
    words = speech_scores(HYPS, REFS, bootstrap=0, normalizer="whisper-words")["signatures"]
    assert "norm:whisper-en-words|symbols:dropped|placeholders:tokens" in words["wer"] and words["cer"] == words["wer"]


def test_signature_string_round_trips_and_reads_old_runs():
    sigs = text_scores(HYPS, REFS, bootstrap=0)["signatures"]
    joined = join_signatures(sigs)
    assert joined.startswith(SACREBLEU_SIGNATURE)  # what older readers of the column expect first
    assert split_signature(joined) == sigs
    assert split_signature(SACREBLEU_SIGNATURE) == {"bleu": SACREBLEU_SIGNATURE}  # a run recorded before
    assert split_signature(None) == {} and split_signature("") == {}


def test_bad_placeholder_mode_is_a_user_error():
    with pytest.raises(UserError, match="placeholders must be one of words, raw"):
        text_scores(HYPS, REFS, bootstrap=0, placeholders="drop")  # type: ignore[arg-type]


# (reference, hypothesis) transcripts where the normaliser decides the score: "..." and lone symbols
# (tokens for Whisper's normaliser), numbers spoken and written, British and American spellings.
SYMBOL_PAIRS = [
    ("Wait... what?", "wait what"),
    ('I said, "..." and left', "i said and left"),
    ("The answer is... 42", "the answer is forty two"),
    ("So... twenty five... no, thirty", "so twenty five no thirty"),
    ("...", "uh"),
    ("um ...", "..."),
    ("He said . and left", "he said and left"),
    ("we paid 25 ¢", "we paid twenty five cents"),
    ("Price: £ 12", "price twelve pounds"),
    ("It fell 10 % today", "it fell ten percent today"),
    ("€ 5 only", "five euros only"),
    ("Just $, really", "just really"),
    ("Costs $ and cents", "costs dollars and cents"),
    ("That is 20%.", "that is twenty per cent"),
    ("It was 9:30... or 10?", "it was nine thirty or ten"),
    ("Mr. Smith travelled 42 kilometres...", "mister smith traveled forty two kilometers"),
    ("The programme's behaviour was analysed.", "the program behavior was analyzed"),
    ("Aeroplanes, aluminium and jewellery.", "airplanes aluminum and jewelry"),
    ("kinda sorta dunno cause", "kind of sort of do not know because"),
    ("see <hyperlink> now <mention>", "see now"),
    ("one and a half", "1.5"),
    ("twenty first of june", "21st of june"),
    *ASR_PAIRS,
]


@pytest.fixture(scope="module")
def whisper_reference() -> EnglishTextNormalizer:
    return EnglishTextNormalizer()


@pytest.mark.parametrize(("reference", "hypothesis"), SYMBOL_PAIRS)
def test_sample_wer_and_cer_equal_jiwer_after_whisper_normalizer(whisper_reference, reference, hypothesis):
    ref, hyp = whisper_reference(reference), whisper_reference(hypothesis)
    assert sample_wer(hypothesis, reference) / 100 == pytest.approx(jiwer.wer(ref, hyp), abs=1e-9)
    assert sample_cer(hypothesis, reference) / 100 == pytest.approx(jiwer.cer(ref, hyp), abs=1e-9)


def test_corpus_wer_and_cer_equal_jiwer_after_whisper_normalizer(whisper_reference):
    refs = [whisper_reference(r) for r, _ in SYMBOL_PAIRS]
    hyps = [whisper_reference(h) for _, h in SYMBOL_PAIRS]
    ours = speech_scores([h for _, h in SYMBOL_PAIRS], [r for r, _ in SYMBOL_PAIRS], bootstrap=0)
    assert ours["wer"] / 100 == pytest.approx(jiwer.wer(refs, hyps), abs=1e-9)
    assert ours["cer"] / 100 == pytest.approx(jiwer.cer(refs, hyps), abs=1e-9)


def test_the_words_only_variant_is_named_and_never_the_default():
    refs, hyps = [r for r, _ in SYMBOL_PAIRS], [h for _, h in SYMBOL_PAIRS]
    default = speech_scores(hyps, refs, bootstrap=0)
    words = speech_scores(hyps, refs, bootstrap=0, normalizer="whisper-words")
    assert words["wer"] < default["wer"]  # the "." tokens of "..." no longer count as deleted words
    assert words["signature"] != default["signature"]
    assert sample_wer("and so", "and so ...") == pytest.approx(100 / 3)  # "and so ." has 3 tokens, "." deleted
    assert sample_wer("and so", "and so ...", normalizer="whisper-words") == 0.0
    assert speech_normalizer_of(default["signature"]) == "whisper"
    assert speech_normalizer_of(words["signature"]) == "whisper-words"
    # Runs stored before the default equalled the reference used the words-only normaliser; so they read.
    old = "wer=jiwer:4.0.0|norm:whisper-en|spelling:whisper-1739|placeholders:tokens|corpus:pooled-edits"
    assert speech_normalizer_of(old) == "whisper-words"
    with pytest.raises(UserError, match="normalizer must be one of whisper, whisper-words"):
        speech_scores(hyps, refs, bootstrap=0, normalizer="plain")  # type: ignore[arg-type]
