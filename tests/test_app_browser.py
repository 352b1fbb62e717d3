"""End to end in headless Chromium: a real ``streamlit run`` server, used the way a person would.

Screenshots go to a temporary folder, so a test run never rewrites tracked files; the README's
pictures in ``docs/screenshots/`` are refreshed on purpose by ``scripts/refresh_screenshots.sh``
(which sets ``M2T_SCREENSHOTS_DIR``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import POSTER_TEXT, SPEECH_TEXT

ROOT = Path(__file__).resolve().parent.parent
SHOTS_ENV = "M2T_SCREENSHOTS_DIR"
STARTUP_S = 90
PREDICT_MS = 300_000  # cold model loads in the server process + one prediction on a 2-core CPU
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with opener.open(f"{url}/_stcore/health", timeout=2) as resp:
            return resp.status == 200 and resp.read().strip() == b"ok"
    except OSError:
        return False


@pytest.fixture(scope="module")
def results_db(tmp_path_factory, poster_path, speech_path) -> Path:
    """A leaderboard with real runs: two ASR models and the OCR model scored on tiny sets made here."""
    from core.devtools.synthetic import render_text_image, speak
    from core.eval.command import EvalConfig, evaluate

    folder = tmp_path_factory.mktemp("eval")
    db = folder / "results.sqlite"
    second_poster = folder / "open.png"
    render_text_image("GRAND OPENING SATURDAY", size=(640, 360), font_size=48).save(second_poster)
    (folder / "ocr.csv").write_text(f"path,text\n{poster_path},{POSTER_TEXT}\n{second_poster},GRAND OPENING SATURDAY\n")
    second_clip = speak("Free delivery on every order this week.", folder / "delivery.wav")
    (folder / "asr.csv").write_text(
        f"audio,text\n{speech_path},{SPEECH_TEXT}\n{second_clip},Free delivery on every order this week.\n"
    )
    evaluate(EvalConfig("ocr", folder / "ocr.csv", db=db, progress=False, bootstrap=200))
    for model in ("whisper-base", "whisper-tiny.en"):
        evaluate(EvalConfig("asr", folder / "asr.csv", model=model, db=db, progress=False, bootstrap=200))
    return db


@pytest.fixture(scope="module")
def server(results_db, tmp_path_factory):
    """``streamlit run streamlit_app.py`` in its own process group, ready once /_stcore/health says ok."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {**os.environ, "M2T_RESULTS_DB": str(results_db), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while not _healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)  # polling for readiness, not waiting for work
    yield url
    os.killpg(proc.pid, signal.SIGTERM)  # the group we started: streamlit and anything it spawned
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1800})
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        tab.goto(server)
        yield tab
        context.close()
        browser.close()


def wait_idle(page, timeout_ms: int = 60_000) -> None:
    """Until the app has finished its current run (Streamlit marks the root with its script state)."""
    page.wait_for_timeout(300)  # let a rerun that was just triggered start
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


@pytest.fixture(scope="module")
def shots_dir(tmp_path_factory) -> Path:
    """Where screenshots go: ``$M2T_SCREENSHOTS_DIR`` when refreshing the README's, else a temporary folder."""
    folder = Path(os.environ[SHOTS_ENV]) if os.environ.get(SHOTS_ENV) else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{name}: the screenshot is nearly empty"
    return path


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_predict_a_tweet_from_an_uploaded_poster(page, poster_path, shots_dir):
    page.locator("h1", has_text="Tweet prediction").wait_for()
    tokens = page.get_by_role("spinbutton", name="Max new tokens")
    tokens.fill("24")
    tokens.press("Enter")
    wait_idle(page)
    page.get_by_role("textbox", name="Company").fill("Acme Shoes")
    page.get_by_role("textbox", name="Username").fill("acmeshoes")
    page.get_by_role("spinbutton", name="Target likes (optional)").fill("120")
    page.locator('[data-testid="stForm"] [data-testid="stFileUploaderDropzoneInput"][accept*=".png"]').set_input_files(
        str(poster_path))
    page.get_by_text("poster.png").first.wait_for()
    page.get_by_role("button", name="Predict tweet").click()
    page.get_by_text("Tweet ready in").wait_for(timeout=PREDICT_MS)
    wait_idle(page)
    code = page.locator('[data-testid="stMain"] [data-testid="stCode"]').first
    tweet = ""
    for _ in range(60):  # a rerun (e.g. after the upload widgets settle) can redraw the card: wait for its text
        tweet = code.inner_text().strip()
        if tweet:
            break
        page.wait_for_timeout(500)
    assert tweet and tweet != "(empty)"
    text = " ".join(main_text(page).upper().split())
    assert POSTER_TEXT in text, "the OCR text is on the page"
    assert "CHARACTERS" in text
    screenshot(page, shots_dir, "tweet_prediction")


def test_transcribe_a_speech_clip(page, speech_path, shots_dir):
    page.get_by_role("link", name="Transcription").click()
    page.locator("h1", has_text="Transcription").wait_for()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(speech_path))
    page.get_by_text("speech.wav").first.wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Transcribe").click()
    page.get_by_text("files transcribed").wait_for(timeout=PREDICT_MS)
    wait_idle(page)
    text = main_text(page).lower()
    assert "coffee" in text and "monday" in text
    assert page.get_by_role("button", name="SRT").count() == 1
    screenshot(page, shots_dir, "transcription")


def test_ocr_page_draws_the_boxes(page, poster_path, shots_dir):
    page.get_by_role("link", name="OCR").click()
    page.locator("h1", has_text="OCR").wait_for()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(poster_path))
    page.get_by_text("poster.png").first.wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Read text").click()
    page.get_by_text("Text found in").wait_for(timeout=PREDICT_MS)
    wait_idle(page)
    assert POSTER_TEXT in " ".join(main_text(page).upper().split())
    screenshot(page, shots_dir, "ocr")


def test_leaderboard_and_form_survive_navigation(page, shots_dir):
    page.get_by_role("link", name="Leaderboard").click()
    page.locator("h1", has_text="Leaderboard").wait_for()
    page.get_by_text("runs recorded").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_role("tab", name="Speech (ASR)").click()
    page.locator(".js-plotly-plot").nth(2).wait_for(state="visible")
    wait_idle(page)
    screenshot(page, shots_dir, "leaderboard")
    page.get_by_role("link", name="Tweet prediction").click()
    page.locator("h1", has_text="Tweet prediction").wait_for()
    wait_idle(page)
    company = page.get_by_role("textbox", name="Company").input_value()
    assert company == "Acme Shoes", "form values survive a page switch"
