import pytest

from core.pipeline import PredictRequest, format_date
from core.stages.llm import GenerationConfig

CFG = GenerationConfig(max_new_tokens=40)


def test_format_date():
    assert format_date("2020-12-12 00:47:00+00:00") == "2020-12-12 00:47"
    assert format_date("next friday") == "next friday"


@pytest.mark.slow
def test_poster_prediction_mentions_its_words_or_the_company(pipeline, poster_path):
    request = PredictRequest(
        company="Nike", username="nike", date="2023-06-01 10:00", likes=300, media=str(poster_path)
    )
    stages = []
    prediction = pipeline.predict(request, CFG, on_stage=lambda stage, state: stages.append((stage, state)))
    tweet = prediction.tweet.lower()
    assert 0 < len(prediction.tweet) <= 280
    assert any(word in tweet for word in ("summer", "sale", "50%", "running", "shoes", "nike")), prediction.tweet
    assert "SUMMER SALE" in prediction.analysis.ocr
    assert prediction.analysis.caption.startswith("a photo of")
    assert "Text in the image: SUMMER SALE" in prediction.prompt
    assert ("asr", "skipped") in stages and ("llm", "done") in stages
    data = prediction.to_dict()
    assert set(data) >= {"tweet", "candidates", "caption", "ocr", "transcript", "prompt", "timings"}
    assert data["timings"]["total"] >= data["timings"]["llm"] > 0


@pytest.mark.slow
def test_video_prediction_uses_keyframes_and_the_soundtrack(pipeline, video_path):
    request = PredictRequest(company="Bean Town", username="beantown", date="2023-01-02 07:30", media=str(video_path))
    prediction = pipeline.predict(request, GenerationConfig(max_new_tokens=16))
    assert "coffee" in prediction.analysis.transcript.lower()
    assert "SUMMER" in prediction.analysis.ocr
    assert "Audio transcript:" in prediction.prompt


@pytest.mark.slow
def test_dead_media_still_predicts_from_metadata(pipeline, media_server):
    base, _ = media_server
    request = PredictRequest(company="Acme", username="acme", date="2023-01-01", media=f"{base}/dead.jpg")
    prediction = pipeline.predict(request, GenerationConfig(max_new_tokens=12))
    assert prediction.tweet
    assert any("404" in e for e in prediction.analysis.errors)
    assert "Company: Acme" in prediction.prompt and "Image description" not in prediction.prompt.split("###")[-1]


def test_candidates_are_chosen_by_grounding_and_echoes_cut():
    from core.pipeline import Analysis, choose, cut_echo

    assert cut_echo("Moon Lamp 20% off #ToTheStars Style: hashtag #ToTheStars") == "Moon Lamp 20% off #ToTheStars"
    assert cut_echo("Style: is not a tweet") == "Style: is not a tweet"
    request = PredictRequest(company="Orbit Lab", username="orbitlab", date="2023-05-05 10:00")
    analysis = Analysis(caption="a photo of a rocket", ocr="MOON LAMP\n20% OFF")
    candidates = ["Orbit Lab has built rockets since 1969", "Something nice", "The Moon Lamp is 20% off"]
    ranked, reports = choose(candidates, request, analysis)
    assert ranked == ["The Moon Lamp is 20% off", "Something nice", "Orbit Lab has built rockets since 1969"]
    assert reports[0]["unsupported"] == [] and reports[-1]["unsupported"] == ["1969"]
    assert reports[0]["coverage"] == 0.75  # moon, lamp, 20 of moon, lamp, 20, rocket (the caption)
    # Equal grounding: the model's likelihood breaks the tie (higher mean log-probability first).
    tied = ["Nice day", "Lovely day"]
    assert choose(tied, request, analysis, [-2.5, -0.7])[0] == ["Lovely day", "Nice day"]
    assert choose(tied, request, analysis, [None, None])[0] == tied  # no likelihoods: the model's own order
