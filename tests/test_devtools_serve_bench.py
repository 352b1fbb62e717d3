"""``core.devtools.serve_bench``: the pieces of the Chromium bench that can fail quietly (a wrong wrapper, a script
that collects nothing), each checked on its own; the bench itself is run by hand (``m2t bench --serve``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys

import pytest

from core.devtools.serve_bench import CHROMIUM_ARGS, RESULT_JS, WATCH_PLACES_JS, idle_wrapper


@pytest.mark.skipif(shutil.which("chrt") is None or not hasattr(os, "SCHED_IDLE"), reason="needs Linux's chrt")
def test_the_idle_wrapper_runs_its_program_with_the_arguments_in_the_idle_class(tmp_path):
    wrapper = idle_wrapper(tmp_path / "python-idle", sys.executable)
    out = subprocess.run([str(wrapper), "-c", "import os, sys; print(os.sched_getscheduler(0), sys.argv[1:])",
                          "two words"], capture_output=True, text=True, check=True).stdout.split(maxsplit=1)
    assert int(out[0]) == os.SCHED_IDLE
    assert out[1].strip() == "['two words']", "arguments pass through whole"


PAGE = """<main data-testid="stMain"><h1>Tweet prediction</h1>
<div data-testid="stExpander"><p id="place">groups2 ahead of you, about 6 s</p></div>
<h3>Tweet</h3><div data-testid="stCode"><code>Free coffee at Maple Bakery</code></div>
<p><strong>Text in the media (OCR)</strong></p><div data-testid="stCode"><code>GRAND OPENING</code></div></main>"""


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_the_page_scripts_collect_every_place_text_and_read_the_tweet_and_ocr():
    from playwright.async_api import async_playwright

    async def run() -> tuple[list[str], dict]:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = await browser.new_page()
            await page.set_content(PAGE)
            await page.evaluate(WATCH_PLACES_JS)
            for text in ("groups2 ahead of you, about 5 s", "groupsYou are next, estimating the wait…",
                         "groupsYou are next, about 2 min", "groupsYou are next, about 2 min"):
                await page.evaluate("t => { document.getElementById('place').textContent = t; }", text)
                await page.wait_for_function("t => window.__m2tPlaces.some(x => t.endsWith(x))", arg=text)
            places = await page.evaluate("() => window.__m2tPlaces")
            drawn = await page.evaluate(RESULT_JS)
            await browser.close()
            return places, drawn

    places, drawn = asyncio.run(run())
    assert places == ["2 ahead of you, about 5 s", "You are next, estimating the wait…", "You are next, about 2 min"]
    assert drawn["tweet"] == "Free coffee at Maple Bakery" and drawn["ocr"] == "GRAND OPENING"
    assert "Maple Bakery" in drawn["page"]
