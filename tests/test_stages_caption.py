import pytest
from PIL import Image, ImageDraw

from core.registry import resolve
from core.stages.caption import CONFIDENT_SCORE, UNSURE_CAPTION, caption_images, load_captioner, phrase_label


def test_phrase_label_uses_the_right_article():
    assert phrase_label("espresso") == "a photo of an espresso"
    assert phrase_label("sports car") == "a photo of a sports car"


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
        top, score = result.labels[0]
        if score >= CONFIDENT_SCORE:
            assert result.caption == phrase_label(top) and result.guess == ""
        else:  # a weak guess stays a guess: no subject in the caption, the label kept for the person
            assert result.caption == UNSURE_CAPTION and result.guess == phrase_label(top)
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


@pytest.mark.slow
def test_the_gate_names_a_confident_subject_and_keeps_a_weak_guess_out_of_the_caption(captioner):
    """Without the gate the astronaut is captioned "a photo of a bobsled" (0.29) and the tweet is about a bobsled."""
    from core.devtools.brand_dump import sample_photo

    coffee, astronaut = (Image.open(sample_photo(name)).convert("RGB") for name in ("coffee.png", "astronaut.png"))
    sure, unsure = caption_images(captioner, [coffee, astronaut])
    assert sure.caption == "a photo of an espresso" and sure.labels[0][1] >= CONFIDENT_SCORE
    assert unsure.caption == UNSURE_CAPTION and unsure.guess == "a photo of a bobsled"
    assert unsure.labels[0] == ("bobsled", pytest.approx(0.289, abs=0.01)) and len(unsure.labels) == 5
    captioner.min_confidence = 0.0  # the gate off: what the captioner said before
    try:
        assert caption_images(captioner, [astronaut])[0].caption == "a photo of a bobsled"
    finally:
        captioner.min_confidence = CONFIDENT_SCORE
