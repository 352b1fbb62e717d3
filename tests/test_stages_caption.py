import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.registry import resolve
from core.stages.caption import (
    CLASS_SCORE,
    CONFIDENT_SCORE,
    UNSURE_CAPTION,
    Captioner,
    caption_images,
    load_captioner,
    phrase_label,
)
from core.stages.caption import hierarchy as caption_hierarchy

# The classes that make up "domestic cat" in ImageNet-1k's output order.
CAT_CLASSES = {"tabby": 281, "tiger cat": 282, "Persian cat": 283, "Siamese cat": 284, "Egyptian cat": 285}


def test_phrase_label_uses_the_right_article():
    assert phrase_label("espresso") == "a photo of an espresso"
    assert phrase_label("sports car") == "a photo of a sports car"
    assert phrase_label("bread") == "a photo of bread"  # a mass noun takes no article


def _assert_gated(result) -> None:
    """What every offline caption keeps to: a subject only at or above its gate, else a guess and no subject."""
    top, _ = result.labels[0]
    if result.caption == UNSURE_CAPTION:
        assert result.guess == phrase_label(top) and result.subject == "" and result.score == 0.0
    else:
        assert result.guess == "" and result.caption == phrase_label(result.subject)
        assert result.score >= CONFIDENT_SCORE


@pytest.mark.slow
def test_efficientnet_gives_a_caption_and_sorted_top_k(captioner, poster_path):
    ball = Image.new("RGB", (300, 300), (30, 120, 40))
    ImageDraw.Draw(ball).ellipse((60, 60, 240, 240), fill=(250, 250, 250), outline=(0, 0, 0), width=6)
    results = caption_images(captioner, [Image.open(poster_path), ball])
    assert len(results) == 2
    for result in results:
        scores = [score for _, score in result.labels]
        assert len(result.labels) == 5
        assert scores == sorted(scores, reverse=True)
        assert 0 < sum(scores) <= 1.0001
        _assert_gated(result)
    assert results[0].labels != results[1].labels  # the model looks at the pixels
    assert caption_images(captioner, []) == []


def test_vision_encoder_decoder_folder_loads_through_the_hub_path(tmp_path):
    from tests.tiny_models import tiny_vit_gpt2

    folder = tiny_vit_gpt2(tmp_path / "vit-gpt2")
    spec = resolve("caption", str(folder), device="cpu")
    assert spec.backend == "vision-encoder-decoder"  # inferred from the folder's config.json
    cap = load_captioner(spec)
    (result,) = caption_images(cap, [Image.new("RGB", (64, 48), "red")])
    assert isinstance(result.caption, str)
    assert result.caption == " ".join(result.caption.split())


class _Logits:
    """Stands in for the network: returns logits whose softmax is the probability vector given (the rest of
    the caption stage, softmax, top 5, the tree and the gates, runs as it does for a photo)."""

    def __init__(self, probs: np.ndarray) -> None:
        self.logits = np.log(np.clip(probs, 1e-12, None)).astype(np.float32)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.repeat(self.logits[None], len(batch), axis=0)


def _captioner_for(probs: np.ndarray, labels: list[str]) -> Captioner:
    return Captioner(spec=resolve("caption", device="cpu"), model=_Logits(probs), labels=labels, runtime="onnx")


def _spread(weights: dict[int, float]) -> np.ndarray:
    """A probability vector: the given classes, the rest of the mass spread thinly over the other 995."""
    probs = np.full(1000, (1 - sum(weights.values())) / (1000 - len(weights)))
    for index, p in weights.items():
        probs[index] = p
    return probs


@pytest.mark.slow
def test_three_unsure_cat_breeds_make_a_sure_cat(captioner):
    """Egyptian cat 0.31, tiger cat 0.30, tabby 0.29: no label passes a single-label gate (the caption said
    "a photo" before), but together they are 0.90 "domestic cat", which the caption names "cat"."""
    probs = _spread({CAT_CLASSES["Egyptian cat"]: 0.31, CAT_CLASSES["tiger cat"]: 0.30, CAT_CLASSES["tabby"]: 0.29})
    labels = captioner.labels
    assert [labels[i] for i in CAT_CLASSES.values()] == list(CAT_CLASSES)  # the output order this test assumes
    (result,) = caption_images(_captioner_for(probs, labels), [Image.new("RGB", (64, 64))])
    assert result.caption == "a photo of a cat" and result.subject == "cat" and result.guess == ""
    assert result.score == pytest.approx(0.90, abs=0.01) and result.labels[0] == ("Egyptian cat", 0.31)
    assert max(probs) < CONFIDENT_SCORE  # what the single-label gate saw: nothing to name

    # Spread the same 0.9 over classes that share no nameable node short of "animal": no subject.
    scattered = _spread({CAT_CLASSES["Egyptian cat"]: 0.31, labels.index("goldfish"): 0.30,
                         labels.index("tree frog"): 0.29})
    (unsure,) = caption_images(_captioner_for(scattered, labels), [Image.new("RGB", (64, 64))])
    assert unsure.caption == UNSURE_CAPTION and unsure.guess == "a photo of an Egyptian cat"


@pytest.mark.slow
def test_a_single_class_needs_its_own_higher_gate(captioner):
    labels = captioner.labels
    sure = _spread({labels.index("tricycle"): 0.99})
    fairly = _spread({labels.index("tricycle"): (CONFIDENT_SCORE + CLASS_SCORE) / 2})
    (named,) = caption_images(_captioner_for(sure, labels), [Image.new("RGB", (64, 64))])
    (unnamed,) = caption_images(_captioner_for(fairly, labels), [Image.new("RGB", (64, 64))])
    assert named.caption == "a photo of a tricycle" and named.score == pytest.approx(0.99)
    assert unnamed.caption == UNSURE_CAPTION  # above the broad gate, below the class gate: no named node over it
    sorrel = _spread({labels.index("sorrel"): 0.99})  # a class renamed by the node over it alone
    (horse,) = caption_images(_captioner_for(sorrel, labels), [Image.new("RGB", (64, 64))])
    assert horse.caption == "a photo of a horse"


@pytest.mark.slow
def test_chelsea_the_cat_is_named_cat_where_no_single_breed_is_sure(captioner):
    """Views whose summed "cat" is far above the gate (0.93-0.94, against 0.88), so any CPU's rounding agrees."""
    from core.devtools.brand_dump import sample_photo

    path = sample_photo("chelsea.png")
    if path is None:
        pytest.skip("scikit-image's sample photos are not installed")
    chelsea = Image.open(path).convert("RGB")
    w, h = chelsea.size
    views = [chelsea.transpose(Image.Transpose.FLIP_LEFT_RIGHT), chelsea.crop((0, 0, int(w * 0.8), int(h * 0.8)))]
    for result in caption_images(captioner, views):
        assert result.caption == "a photo of a cat" and result.subject == "cat"
        assert result.score > CONFIDENT_SCORE + 0.03
        assert result.labels[0][0] in CAT_CLASSES and result.labels[0][1] < 0.7  # no single breed is sure


@pytest.mark.slow
def test_the_gate_names_a_confident_subject_and_keeps_a_weak_guess_out_of_the_caption(captioner):
    """Without the gate the astronaut is captioned "a photo of a bobsled" (0.29) and the tweet is about a bobsled.
    The espresso (0.94) is below the class gate, but with the other drinks it is 0.95 "drink"."""
    from core.devtools.brand_dump import sample_photo

    coffee, astronaut = (Image.open(sample_photo(name)).convert("RGB") for name in ("coffee.png", "astronaut.png"))
    sure, unsure = caption_images(captioner, [coffee, astronaut])
    assert sure.caption == "a photo of a drink" and sure.labels[0] == ("espresso", pytest.approx(0.944, abs=0.01))
    assert unsure.caption == UNSURE_CAPTION and unsure.guess == "a photo of a bobsled"
    assert unsure.labels[0] == ("bobsled", pytest.approx(0.289, abs=0.01)) and len(unsure.labels) == 5
    captioner.min_confidence = captioner.min_class_confidence = 0.0  # the gates off: the top label, as before
    try:
        assert caption_images(captioner, [astronaut])[0].caption == "a photo of a bobsled"
        assert caption_images(captioner, [coffee])[0].caption == "a photo of an espresso"
    finally:
        captioner.min_confidence, captioner.min_class_confidence = CONFIDENT_SCORE, CLASS_SCORE


def test_the_tree_loads_fast_without_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, time\n"
            "from core.stages.caption import hierarchy\n"
            "t = time.perf_counter(); hierarchy.load_tree(); print(time.perf_counter() - t)\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    assert out[1] == "False"
    assert float(out[0]) < 0.1  # measured ~0.01 s on 2 cores
    assert caption_hierarchy.TREE_FILE.stat().st_size < 100_000
