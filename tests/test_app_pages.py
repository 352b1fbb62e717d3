"""Every page of the Streamlit app, driven through ``streamlit.testing.v1.AppTest`` with the real offline models.

Models live in ``st.cache_resource``, which is process-wide, so every AppTest here (and the
browser test's own server aside) shares one copy of each model; ``app.models.LOADS`` counts
the real loads.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import POSTER_TEXT

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT_S = 300  # first runs load real models on a 2-core CPU
TEST_TOKENS = 24  # enough for a short tweet; keeps each prediction to seconds, not minutes
SUBMIT = "FormSubmitter:tweet.form-Predict tweet"


def new_app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["cfg.max_new_tokens"] = TEST_TOKENS  # what a person would set in the sidebar
    return at.run()


def texts(at) -> str:
    """Everything a person can read on the page, as one string."""
    parts: list[str] = []
    for kind in ("title", "subheader", "markdown", "caption", "code", "text", "info", "success", "warning", "error"):
        parts.extend(str(getattr(el, "value", "")) for el in at.get(kind))
    return "\n".join(parts)


def normalise(text: str) -> str:
    return " ".join(text.upper().split())


def fill_tweet_form(at, company: str = "Acme Shoes", username: str = "acmeshoes", likes: int | None = 120):
    at.text_input(key="tweet.company").input(company)
    at.text_input(key="tweet.username").input(username)
    at.number_input(key="tweet.likes").set_value(likes)
    return at


def tweets_on_page(at) -> list[str]:
    last = at.session_state["tweet.last"]
    shown = {c.value for c in at.code}
    return [c for c in last.prediction.candidates if c in shown]


def assert_no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


# --------------------------------------------------------------------------- pages without models


PAGES = {
    "app_pages/tweet.py": "Tweet prediction",
    "app_pages/captioning.py": "Captioning",
    "app_pages/ocr.py": "OCR",
    "app_pages/transcription.py": "Transcription",
    "app_pages/leaderboard.py": "Leaderboard",
}


def test_every_page_renders_with_the_sidebar(tmp_path, monkeypatch):
    monkeypatch.setenv("M2T_RESULTS_DB", str(tmp_path / "results.sqlite"))
    at = new_app()
    assert_no_exception(at)
    assert at.title[0].value == "Tweet prediction"  # the default page
    for page, title in PAGES.items():
        at.switch_page(page).run()
        assert_no_exception(at)
        assert at.title[0].value == title
        # The settings sidebar is drawn on every page, with the value the test chose.
        assert at.sidebar.number_input(key="cfg.max_new_tokens").value == TEST_TOKENS
        assert at.sidebar.radio(key="cfg.profile").value == "offline"


def test_leaderboard_says_how_to_create_a_run_when_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("M2T_RESULTS_DB", str(tmp_path / "results.sqlite"))
    at = new_app().switch_page("app_pages/leaderboard.py").run()
    assert_no_exception(at)
    assert "No evaluation runs recorded yet" in at.info[0].value
    assert any("m2t evaluate --task ocr --data" in c.value for c in at.code)


def test_leaderboard_ranks_recorded_runs(tmp_path, monkeypatch):
    from core.eval.store import ResultsStore, RunRecord, SampleRecord

    db = tmp_path / "results.sqlite"
    monkeypatch.setenv("M2T_RESULTS_DB", str(db))
    store = ResultsStore(db)
    for model, cer, speed in (("easyocr-en", 1.5, 0.5), ("other-ocr", 8.0, 2.0)):
        store.record_run(
            RunRecord(task="ocr", model=model, n=2, metrics={"cer": cer, "wer": cer * 2},
                      ci={"cer": [cer - 1, cer + 1], "wer": [cer, cer * 3]}, dataset="ocr.csv",
                      wall_time_s=4.0, throughput=speed),
            [SampleRecord(0, "a.png", "SUMMER SALE", "SUMMER SALE", 0.0),
             SampleRecord(1, "b.png", "HELO", "HELLO", 20.0)],
        )
    store.record_run(RunRecord(task="llm", model="gemma-3-270m", n=1, metrics={"bleu": 3.2},
                               ci={"bleu": [1.0, 5.0]}, signature="nrefs:1"),
                     [SampleRecord(0, "Acme", "Big sale today", "Our sale starts today", 3.2)])

    at = new_app().switch_page("app_pages/leaderboard.py").run()
    assert_no_exception(at)
    assert [t.label for t in at.tabs][:2] == ["Tweets", "OCR"]
    ocr_table = at.dataframe[2].value  # tweets: leaderboard + samples; then the OCR leaderboard
    assert list(ocr_table["model"]) == ["easyocr-en", "other-ocr"]  # lower CER ranks first
    assert len(at.get("plotly_chart")) >= 3  # CI bars for both tasks, quality-vs-speed for OCR
    ocr_samples = at.dataframe[3].value
    assert list(ocr_samples["#"])[0] == 1  # worst sample first
    assert "HELLO" in texts(at)  # the reference beside the prediction
    assert any(b.label.startswith("Download the OCR leaderboard") for b in at.download_button)


def test_corrupt_upload_gives_an_error_not_a_traceback():
    at = new_app()
    fill_tweet_form(at)
    at.file_uploader(key="tweet.upload").upload("broken.png", b"definitely not a PNG", "image/png")
    at.button(key=SUBMIT).click().run()
    assert_no_exception(at)
    assert at.error, "an unreadable upload must be reported"
    assert "broken.png" in at.error[0].value and "not a readable image" in at.error[0].value
    assert "tweet.history" not in at.session_state, "nothing was predicted"
    # The rest of the page still works: the form is there to try again.
    assert at.text_input(key="tweet.company").value == "Acme Shoes"


def test_server_paths_typed_as_media_are_refused_alike(tmp_path):
    """A visitor typing a server path gets one refusal, whether the file exists or not, and nothing
    is decoded: the page must not reveal which paths exist."""
    from core.media.decode import LOCAL_PATHS_REFUSED

    existing = tmp_path / "secret.png"
    existing.write_bytes(png_bytes(Image.new("RGB", (32, 32))))
    messages = []
    for field, path in (("tweet.url", "/etc/hostname"), ("tweet.url", str(existing)),
                        ("tweet.url", str(tmp_path / "missing.png")), ("tweet.url", "file:///etc/hostname"),
                        ("tweet.dump", f"[Photo(previewUrl='{existing}', fullUrl='/etc/hostname')]")):
        at = new_app()
        fill_tweet_form(at)
        (at.text_area if field == "tweet.dump" else at.text_input)(key=field).input(path)
        at.button(key=SUBMIT).click().run()
        assert_no_exception(at)
        assert len(at.error) == 1, path
        message = at.error[0].value
        assert LOCAL_PATHS_REFUSED in message
        assert "no such file" not in message and "not a readable image" not in message
        messages.append(message.replace(path, "<path>"))
        assert "tweet.history" not in at.session_state, "nothing was predicted"
    assert len(set(messages[:4])) == 1, messages  # identical text for existing and missing paths


def test_missing_company_is_reported_before_any_model_runs():
    from app import models

    before = dict(models.LOADS)
    at = new_app()
    fill_tweet_form(at, company="  ")
    at.button(key=SUBMIT).click().run()
    assert_no_exception(at)
    assert "company and the username" in at.error[0].value
    assert dict(models.LOADS) == before


def test_a_model_that_cannot_load_offline_is_explained(tmp_path):
    at = new_app().switch_page("app_pages/ocr.py").run()
    at.sidebar.selectbox(key="cfg.model.caption").set_value("(hub id or local folder)").run()
    at.sidebar.text_input(key="cfg.custom.caption").input(str(tmp_path / "no-such-model")).run()
    at.switch_page("app_pages/captioning.py").run()
    at.file_uploader(key="captioning.files").upload("poster.png", png_bytes(Image.new("RGB", (64, 64))),
                                                    "image/png")
    at.run()  # an upload reruns the page, which enables the button
    at.button(key="captioning.run").click().run()
    assert_no_exception(at)
    message = at.error[0].value
    assert "no-such-model" in message and "offline" in message and "sidebar" in message


def png_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


# --------------------------------------------------------------------------- tweet page with real models


@pytest.fixture(scope="module")
def predicted(poster_path):
    """An app after one prediction from a rendered poster (the slow part, shared by the tests below)."""
    from app import models

    at = new_app()
    fill_tweet_form(at)
    at.file_uploader(key="tweet.upload").upload("poster.png", poster_path.read_bytes(), "image/png")
    at.button(key=SUBMIT).click().run()
    return at, dict(models.LOADS)


@pytest.mark.slow
def test_tweet_page_writes_a_tweet_and_shows_the_poster_text(predicted):
    at, _ = predicted
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    tweets = tweets_on_page(at)
    assert tweets and tweets[0].strip(), "a non-empty tweet is shown"
    assert normalise(POSTER_TEXT) in normalise(texts(at)), "the OCR text is shown"
    assert at.status[0].label.startswith("Tweet ready")
    assert any("OCR boxes" in caption for img in at.image for caption in img.captions), "boxes drawn on the image"
    prompt_view = next(e for e in at.expander if e.label == "Prompt sent to the LLM")
    assert POSTER_TEXT.split()[0] in prompt_view.code[0].value  # the OCR text went into the prompt
    assert len(at.session_state["tweet.history"]) == 1


@pytest.mark.slow
def test_switching_pages_keeps_the_form_and_the_history(predicted):
    at, _ = predicted
    history = len(at.session_state["tweet.history"])
    at.switch_page("app_pages/ocr.py").run()
    assert at.title[0].value == "OCR"
    at.switch_page("app_pages/tweet.py").run()
    assert_no_exception(at)
    assert at.text_input(key="tweet.company").value == "Acme Shoes"
    assert at.text_input(key="tweet.username").value == "acmeshoes"
    assert at.number_input(key="tweet.likes").value == 120
    assert len(at.session_state["tweet.history"]) == history
    assert tweets_on_page(at), "the last prediction is still shown"
    assert any(b.label == "Download history (CSV)" for b in at.download_button)


@pytest.mark.slow
def test_a_second_prediction_reuses_the_loaded_models(predicted, media_server):
    from app import models

    at, loads_after_first = predicted
    assert set(loads_after_first.values()) == {1}, "each model loaded exactly once"
    base, _ = media_server
    at.text_input(key="tweet.url").input(f"{base}/poster.png")  # this time by URL
    at.file_uploader(key="tweet.upload").clear()
    at.button(key=SUBMIT).click().run()
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert dict(models.LOADS) == loads_after_first, "no model was loaded again"
    assert len(at.session_state["tweet.history"]) >= 2
    assert at.session_state["tweet.history"][-1]["media"].endswith("/poster.png")
    assert tweets_on_page(at)[0].strip()


@pytest.mark.slow
def test_batch_tab_runs_a_tweet_dump(poster_path, media_server):
    """URLs in an uploaded CSV are fetched; a server path in it is refused for its row only."""
    from core.media.decode import LOCAL_PATHS_REFUSED

    base, _ = media_server
    csv = (
        "id,date,likes,username,media,inferred company\n"
        f"1,2023-05-06 09:00:00+00:00,250,acmeshoes,{base}/poster.png,Acme Shoes\n"
        "2,2023-05-07 18:30:00+00:00,40,beantown,,Bean Town Coffee\n"
        f"3,2023-05-08 10:00:00+00:00,40,acmeshoes,{poster_path},Acme Shoes\n"
    )
    at = new_app()
    at.file_uploader(key="batch.file").upload("dump.csv", csv.encode(), "text/csv")
    at.run()
    at.button(key="batch.run").click().run()
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    name, frame = at.session_state["batch.result"]
    assert name == "dump.csv" and len(frame) == 3
    assert all(str(t).strip() for t in frame["generated"])
    assert "SUMMER" in frame.loc[0, "ocr"].upper()
    assert LOCAL_PATHS_REFUSED in frame.loc[2, "error"] and not frame.loc[2, "ocr"]  # the server file was not read
    assert any(b.label == "Download results (CSV)" for b in at.download_button)


# --------------------------------------------------------------------------- single-task pages


@pytest.mark.slow
def test_ocr_page_reads_several_files_and_reports_a_bad_one(poster_path):
    at = new_app().switch_page("app_pages/ocr.py").run()
    at.file_uploader(key="ocr.files").set_value([
        ("poster.png", poster_path.read_bytes(), "image/png"),
        ("corrupt.jpg", b"\xff\xd8 broken jpeg", "image/jpeg"),
    ])
    at.run()
    at.button(key="ocr.run").click().run()
    assert_no_exception(at)
    assert normalise(POSTER_TEXT) in normalise(" ".join(c.value for c in at.code))
    assert len(at.error) == 1 and "corrupt.jpg" in at.error[0].value
    labels = [b.label for b in at.download_button]
    assert "Download all text (TXT)" in labels and "Text and boxes (JSON)" in labels
    assert "1 of 2 files" in at.subheader[0].value
    assert ":material/timer:" in texts(at)  # timings shown


@pytest.mark.slow
def test_captioning_page_captions_images_and_a_gif(poster_path):
    frames = [Image.new("RGB", (96, 96), colour) for colour in ("red", "blue")]
    gif = png_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    at = new_app().switch_page("app_pages/captioning.py").run()
    at.file_uploader(key="captioning.files").set_value([
        ("poster.png", poster_path.read_bytes(), "image/png"),
        ("flash.gif", gif, "image/gif"),
    ])
    at.run()
    at.button(key="captioning.run").click().run()
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    results = at.session_state["captioning.results"]
    assert [r["file"] for r in results] == ["poster.png", "flash.gif"]
    # Neither a poster nor a flat colour is an ImageNet class: each caption stays "a photo", the label a guess.
    assert all(r["caption"].startswith("a photo") for r in results)
    assert all(r["guess"].startswith("a photo of") for r in results if r["caption"] == "a photo")
    assert len(at.dataframe) == 2  # a top-k labels table per file
    assert any(b.label == "Download captions (CSV)" for b in at.download_button)


@pytest.mark.slow
def test_transcription_page_transcribes_speech_with_subtitles(speech_path):
    at = new_app().switch_page("app_pages/transcription.py").run()
    at.file_uploader(key="transcription.files").set_value([("speech.wav", speech_path.read_bytes(), "audio/wav")])
    at.run()
    at.button(key="transcription.run").click().run()
    assert_no_exception(at)
    assert not at.error, [e.value for e in at.error]
    transcript = " ".join(c.value for c in at.code).lower()
    assert "coffee" in transcript and "monday" in transcript
    assert {"TXT", "SRT", "VTT"} <= {b.label for b in at.download_button}
    assert at.get("audio"), "a player beside the transcript"
    assert "RTFx" in texts(at)


def test_a_shared_app_offers_no_server_paths_or_urls(monkeypatch):
    """Under ``m2t serve --tunnel``/``--auth`` (M2T_SHARED=1) a visitor picks registry models only."""
    monkeypatch.setenv("M2T_SHARED", "1")
    at = new_app().run()
    assert_no_exception(at)
    for task in ("caption", "ocr", "asr", "llm"):
        assert "(hub id or local folder)" not in at.sidebar.selectbox(key=f"cfg.model.{task}").options
    assert "openai" not in at.sidebar.selectbox(key="cfg.engine").options
    assert not [t for t in at.sidebar.text_input if t.key == "cfg.adapter"]
    monkeypatch.delenv("M2T_SHARED")
    at = new_app().run()  # the owner's own app (no sharing) keeps every choice
    assert "(hub id or local folder)" in at.sidebar.selectbox(key="cfg.model.llm").options
    assert "openai" in at.sidebar.selectbox(key="cfg.engine").options
