"""``m2t bench --serve``: ``m2t serve`` used by visitors in headless Chromium, timed from click to "Tweet ready".

Three questions, one run:

* the first visitor, who opens the app as soon as the health check answers and asks for a tweet at
  once, against later (warm) visitors; with the start-up preload and without it (``--no-preload``, how
  the app started before), so the two ratios compare;
* how the wait grows with N visitors clicking at the same moment (each in its own browser session).

Chromium runs on the same machine and takes CPU from the server, so the concurrent numbers are a
bound for one CPU box serving remote visitors, not an exact figure.

``--no-browser`` (:func:`bench_visitors`) drives the visitors through Streamlit's websocket protocol instead
(:mod:`core.devtools.ws_visitors`: one coroutine per visitor, no browser), so 20 visitors fit on the 2-core
box: tweets per minute, each visitor's wait and place texts, the slowest wait against taking turns, and the
server process's peak memory, for each number of visitors at once.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.serve import server as serve

VIEWPORT = {"width": 1300, "height": 1400}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
READY_TIMEOUT_MS = 900_000  # a cold prediction on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _open_form(context: Any, url: str, image: Path, request: dict) -> Any:
    """A visitor's page with the form filled in and the poster uploaded, ready to click."""
    page = await context.new_page()
    page.set_default_timeout(READY_TIMEOUT_MS)
    await page.goto(url)
    await page.locator("h1", has_text="Tweet prediction").wait_for()
    await page.get_by_role("textbox", name="Company").fill(request["company"])
    await page.get_by_role("textbox", name="Username").fill(request["username"])
    await page.locator('[data-testid="stForm"] [data-testid="stFileUploaderDropzoneInput"][accept*=".png"]'
                       ).set_input_files(str(image))
    await page.get_by_text(image.name).first.wait_for()
    # A full rerun (the upload settling, the preload notice going away) briefly shows the old form beside the new
    # one, and a form's button is disabled while it runs: click only once one enabled button is left, as a person
    # would.
    await page.wait_for_function(
        "() => { const b = document.querySelectorAll('[data-testid=stBaseButton-primaryFormSubmit]');"
        " return b.length === 1 && !b[0].disabled; }", timeout=READY_TIMEOUT_MS)
    return page


async def _click_to_ready(page: Any) -> tuple[float, re.Match]:
    """Seconds from the click to "Tweet ready", and that label read with ``ws_visitors.READY``: the seconds it
    states (the pipeline on the server; the rest is the browser and Streamlit's round trips, on the same CPU here)
    and the wait in line. A failed prediction raises at once instead of waiting out the timeout."""
    from core.devtools.ws_visitors import FAILED_LABEL, READY

    start = time.perf_counter()
    await page.get_by_role("button", name="Predict tweet").click()
    label = page.get_by_text(re.compile(f"Tweet ready in|{FAILED_LABEL}")).first
    await label.wait_for(timeout=READY_TIMEOUT_MS)
    wall = time.perf_counter() - start
    text = await label.inner_text()
    found = READY.search(text)
    if found is None:
        raise RuntimeError(f"the page says {text.strip()[:200]!r}")
    return wall, found


async def _visitors(browser: Any, url: str, image: Path, request: dict, n: int,
                    before_click: Any = None) -> list[tuple[float, float]]:
    """``n`` visitors, each in a session of its own, who fill the form and then all click at once
    (``before_click()`` runs once the forms are filled, just before the clicks)."""
    contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(n)]
    try:
        pages = await asyncio.gather(*(_open_form(c, url, image, request) for c in contexts))
        if before_click is not None:
            before_click()
        ready = await asyncio.gather(*(_click_to_ready(p) for p in pages))
        return [(wall, float(found.group(1))) for wall, found in ready]
    finally:
        for context in contexts:
            await context.close()


# Collects, in the page, every place text its status box showed ("2 ahead of you, about 6 s", "You are next, …"):
# the page is watched, not polled, so a text shown for one second between two looks is not missed.
WATCH_PLACES_JS = """() => {
  window.__m2tPlaces = [];
  const seen = new Set();
  const pattern = /(\\d+ ahead of you|you are next), (about \\d+ (s|min)|estimating the wait…)/gi;
  new MutationObserver(() => {
    for (const box of document.querySelectorAll('[data-testid="stExpander"]')) {
      for (const m of box.textContent.matchAll(pattern)) {
        const text = m[0][0].toUpperCase() + m[0].slice(1);
        if (!seen.has(text)) { seen.add(text); window.__m2tPlaces.push(text); }
      }
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
# The first code block after the "Tweet" (or "Tweet candidates") heading, and after the OCR heading.
RESULT_JS = """() => {
  const after = (start) => start && [...document.querySelectorAll('[data-testid="stCode"] code')]
      .find(c => start.compareDocumentPosition(c) & Node.DOCUMENT_POSITION_FOLLOWING);
  const heading = [...document.querySelectorAll('h3')].find(h => /^Tweet( candidates)?$/.test(h.textContent.trim()));
  const ocr = [...document.querySelectorAll('p, strong')].find(e => e.textContent.trim() === 'Text in the media (OCR)');
  const main = document.querySelector('[data-testid="stMain"]');
  return {tweet: (after(heading) || {}).textContent || '', ocr: (after(ocr) || {}).textContent || '',
          page: main ? main.textContent : ''};
}"""


async def _visitor_at_once(context: Any, url: str, index: int, name: str, poster: Path) -> Any:
    """One of the visitors of a round with a company and a poster of its own: the form filled, ready to click."""
    from core.devtools.ws_visitors import VisitorResult, username

    result = VisitorResult(index=index, company=name, username=username(name), poster=poster.name)
    page = await _open_form(context, url, poster, {"company": name, "username": result.username})
    await page.evaluate(WATCH_PLACES_JS)
    return page, result


async def _until_own_tweet(page: Any, result: Any, names: list[str]) -> None:
    """Click, wait for "Tweet ready" and the tweet drawn; record the label's seconds, the place texts the page
    showed, the tweet and whether the page named its own company and any other visitor's."""
    try:
        result.total_s, found = await _click_to_ready(page)
        result.pipeline_s = float(found.group(1))
        result.line_s = float(found.group(2)) if found.group(2) else 0.0
        # The result is drawn after the label, and a page's first code block is drawn when its code has loaded.
        await page.wait_for_function(f"() => ({RESULT_JS})().tweet.length > 0", timeout=READY_TIMEOUT_MS)
        drawn = await page.evaluate(RESULT_JS)
        result.tweet, result.ocr = drawn["tweet"], drawn["ocr"]
        result.place_texts = await page.evaluate("() => window.__m2tPlaces")
        result.own_company_seen = result.company in drawn["page"]
        result.others_seen = [other for other in names if other != result.company and other in drawn["page"]]
    except Exception as error:  # one visitor's failure is a result of the round, not the end of the bench
        result.error = f"{type(error).__name__}: {str(error)[:300]}"


async def _round_in_browsers(browser: Any, server: Any, n: int, one_warm_s: float, folder: Path) -> dict:
    """``n`` visitors in Chromium, each a company and a poster of its own, who click at the same moment: the same
    numbers and checks as the websocket bench (:func:`core.devtools.ws_visitors.summary`), and the server's peak
    memory."""
    from core.devtools import ws_visitors

    names = ws_visitors.companies(n)
    posters = []
    for i, path in enumerate(ws_visitors.render_posters(folder, names)):
        # Each visitor's own poster under the short name the page shows whole (a long one is cut in the uploader).
        short = folder / f"visitor{i:02d}" / "poster.png"
        short.parent.mkdir(exist_ok=True)
        shutil.copyfile(path, short)
        posters.append(short)
    contexts = [await browser.new_context(viewport=VIEWPORT) for _ in range(n)]
    try:
        opened = await asyncio.gather(*(_visitor_at_once(c, server.url, i, name, posters[i])
                                        for i, (c, name) in enumerate(zip(contexts, names, strict=True))))
        start = time.perf_counter()
        with PeakRss(server.proc.pid) as rss:
            await asyncio.gather(*(_until_own_tweet(page, result, names) for page, result in opened))
        wall = time.perf_counter() - start
    finally:
        for context in contexts:
            await context.close()
    results = [result for _, result in opened]
    out = ws_visitors.summary(results, one_warm_s)
    out.update({"wall_s": wall, "peak_rss_mb": rss.peak_mb, "visitors_detail": [r.as_dict() for r in results]})
    pipeline = [r.pipeline_s for r in results if r.pipeline_s is not None]
    if pipeline:
        out["turns_sum_s"] = sum(pipeline)
        out["slowest_vs_own_turns"] = out["max_s"] / sum(pipeline)
    return out


def chromium_command(folder: Path, idle: bool) -> str:
    """Debian's chromium, and with ``idle`` a two-line wrapper that starts it under Linux's idle scheduling class
    (``chrt --idle 0``), which every process and thread it starts inherits. Not ``nice``: Chromium running as root
    sets its own processes' nice values (its browser and GPU processes to -8, renderers to 0), while it leaves the
    scheduling class alone."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise UserError("m2t bench --serve drives Debian's chromium (apt-get install chromium); it is not installed")
    if not idle:
        return chromium
    chrt = shutil.which("chrt")
    if chrt is None:
        raise UserError("m2t bench --serve runs the browsers with chrt (util-linux) at idle priority; install it, "
                        "or pass --browsers-share-cpu to run them at the server's priority")
    return str(idle_wrapper(folder / "chromium-idle", chromium, chrt))


def idle_wrapper(path: Path, program: str, chrt: str = "chrt") -> Path:
    """An executable at ``path`` that runs ``program`` with its arguments in the idle scheduling class."""
    path.write_text(f'#!/bin/sh\nexec {shlex.quote(chrt)} --idle 0 {shlex.quote(program)} "$@"\n')
    path.chmod(0o755)
    return path


async def _session(preload: bool, image: Path, request: dict, concurrency: list[int], warm_visits: int,
                   chromium: str, folder: Path) -> dict:
    from playwright.async_api import async_playwright

    server = serve.start_server(_free_port(), profile="offline", preload=preload)
    out: dict = {"preload": preload}
    try:
        started = time.perf_counter()
        serve.wait_until_ready(server, timeout=300)
        out["health_s"] = time.perf_counter() - started
        healthy = time.perf_counter()

        def at_click() -> None:
            out["click_after_health_s"] = time.perf_counter() - healthy
            out["models_ready_at_first_click"] = any("Models ready" in line for line in server.tail)

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                ((out["first_visitor_s"], out["first_visitor_pipeline_s"]),) = await _visitors(
                    browser, server.url, image, request, 1, at_click)
                ready = next((line for line in server.tail if line.startswith("Models ready")), "")
                out["preload_line"] = ready
                runs = [(await _visitors(browser, server.url, image, request, 1))[0] for _ in range(warm_visits)]
                out["warm_visitor_runs_s"] = [wall for wall, _ in runs]
                out["warm_visitor_s"] = statistics.median(out["warm_visitor_runs_s"])
                out["warm_visitor_pipeline_s"] = statistics.median(stated for _, stated in runs)
                out["first_vs_warm"] = out["first_visitor_s"] / out["warm_visitor_s"]
                out["concurrent"] = {}
                for n in concurrency:
                    out["concurrent"][str(n)] = await _round_in_browsers(browser, server, n, out["warm_visitor_s"],
                                                                         folder)
            finally:
                await browser.close()
    finally:
        server.stop()
    return out


def bench_serve(image: Path, request: dict, concurrency: list[int], warm_visits: int = 3,
                browsers_idle: bool = True) -> dict:
    """With the preload and without it (the app as it started before), each on a freshly started server. The first
    and warm visitors upload ``image`` and fill in ``request``'s company and username, leaving the date, time and
    target likes at the form's defaults (``core.devtools.speed_bench.app_request`` is that request); the visitors
    of a round at once each have a company and a poster of their own.

    With ``browsers_idle`` (the default) the browsers run in Linux's idle scheduling class: they draw with the CPU
    the server leaves free. Why: a headless Chromium tab drawing this app costs about 2.5 CPU seconds per tweet on
    the 2-core bench box, about 60 % of what the server spends on the tweet (4 CPU seconds), so six tabs at the
    server's priority take about a core from the models for the whole round, which no remote visitor's browser
    does. ``browsers_idle=False`` (``--browsers-share-cpu``) measures the box shared evenly instead."""
    out: dict = {"load_avg_before": [round(x, 2) for x in os.getloadavg()], "warm_visits": warm_visits,
                 "request": request, "browsers": "idle scheduling class" if browsers_idle else "server's priority"}
    with tempfile.TemporaryDirectory() as tmp:
        chromium = chromium_command(Path(tmp), browsers_idle)
        out["with_preload"] = asyncio.run(_session(True, image, request, concurrency, warm_visits, chromium,
                                                   Path(tmp)))
        out["without_preload"] = asyncio.run(_session(False, image, request, [], warm_visits, chromium, Path(tmp)))
    out["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def serve_table(r: dict) -> str:
    rows = ["m2t serve in headless Chromium: click on 'Predict tweet' to 'Tweet ready' (the poster)",
            f"  {'server':<16}{'first visitor':>15}{'warm visitor':>14}{'ratio':>8}  click after health; models ready"]
    for key, label in (("with_preload", "with preload"), ("without_preload", "--no-preload")):
        s = r[key]
        rows.append(f"  {label:<16}{s['first_visitor_s']:>13.2f} s{s['warm_visitor_s']:>12.2f} s"
                    f"{s['first_vs_warm']:>7.2f}x  {s['click_after_health_s']:.1f} s; "
                    f"{'yes' if s['models_ready_at_first_click'] else 'no'}")
    for key, label in (("with_preload", "with preload"), ("without_preload", "--no-preload")):
        s = r[key]
        if "warm_visitor_pipeline_s" in s:
            rows.append(f"  {label}: the page's own 'Tweet ready in' (the pipeline on the server): first "
                        f"{s['first_visitor_pipeline_s']:.1f} s, warm {s['warm_visitor_pipeline_s']:.1f} s")
    if r["with_preload"].get("preload_line"):
        rows.append(f"  server log: {r['with_preload']['preload_line']}")
    concurrent = r["with_preload"].get("concurrent", {})
    if concurrent:
        rows.append(f"  visitors clicking at once (warm server; browsers at the {r.get('browsers', '?')}), each "
                    f"with a company and a poster of its own:")
        rows += [visitors_line(int(n), c) for n, c in concurrent.items()]
        rows += [f"  {n} visitors, errors: {'; '.join(c['errors'][:3])}" for n, c in concurrent.items() if c["errors"]]
    rows.append(f"  load average before/after: {r['load_avg_before'][0]} / {r['load_avg_after'][0]}")
    return "\n".join(rows)


# --------------------------------------------------------------------------- --no-browser: many visitors


class PeakRss:
    """The server process's resident memory (with any children it started), sampled every ``every`` seconds in a
    thread while the block runs: ``peak_mb`` the highest seen, ``start_mb`` the first sample."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid, self.every = pid, every
        self.peak_mb = self.start_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="serve-bench-rss")

    def sample(self) -> float:
        import psutil

        try:
            proc = psutil.Process(self.pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def _run(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, self.sample())
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> PeakRss:
        self.start_mb = self.peak_mb = self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.peak_mb = max(self.peak_mb, self.sample())


def _round(server: Any, url: str, n: int, auth: tuple[str, str] | None, one_warm_s: float | None,
           names: list[str] | None = None) -> dict:
    from core.devtools import ws_visitors

    load = [round(x, 2) for x in os.getloadavg()]
    started: dict[str, float] = {}
    with PeakRss(server.proc.pid) as rss:
        results = ws_visitors.run_visitors(url, n, auth, names=names,
                                           before_click=lambda: started.setdefault("t", time.perf_counter()))
    wall = time.perf_counter() - started.get("t", time.perf_counter())
    out = ws_visitors.summary(results, one_warm_s)
    pipeline = [r.pipeline_s for r in results if r.pipeline_s is not None]
    out.update({"wall_s": wall, "peak_rss_mb": rss.peak_mb, "rss_before_mb": rss.start_mb, "load_avg_before": load,
                "turns_sum_s": sum(pipeline), "visitors_detail": [r.as_dict() for r in results]})
    if pipeline:  # the same tweets taken in turn: the sum of this round's own model times
        out["slowest_vs_own_turns"] = out["max_s"] / sum(pipeline)
    return out


def bench_visitors(concurrency: list[int], warm_visits: int = 3, auth: bool = False,
                   ready_timeout: float = 300) -> dict:
    """A fresh ``m2t serve`` with the preload (behind the ``--auth`` proxy when ``auth``), once its models are
    ready: one first visitor, ``warm_visits`` single visitors in turn (their median is "one warm tweet"), then for
    each ``n`` of ``concurrency`` that many visitors clicking at once, all through Streamlit's websocket protocol
    (:mod:`core.devtools.ws_visitors`), each with a company and a poster of its own."""
    from core.devtools import ws_visitors
    from core.serve.proxy import AuthProxy, Credentials

    out: dict = {"harness": "websocket (core.devtools.ws_visitors), no browser",
                 "load_avg_before": [round(x, 2) for x in os.getloadavg()], "warm_visits": warm_visits,
                 "auth_proxy": auth}
    server = serve.start_server(_free_port(), profile="offline", preload=True)
    proxy, login = None, None
    try:
        serve.wait_until_ready(server, timeout=ready_timeout)
        deadline = time.monotonic() + ready_timeout
        while not any(line.startswith("Models ready") for line in server.tail) and time.monotonic() < deadline:
            time.sleep(0.5)  # polling the child's output
        out["preload_line"] = next((line for line in server.tail if line.startswith("Models ready")), "")
        url = server.url
        if auth:
            login = ("bench", "bench-password-1")
            proxy = AuthProxy("127.0.0.1", _free_port(), server.port, Credentials(*login))
            proxy.start()
            url = f"http://127.0.0.1:{proxy.port}"
        names = ws_visitors.companies(max([*concurrency, warm_visits + 1]))
        first = _round(server, url, 1, login, None, names[:1])
        out["first_visitor"] = first
        warm = [_round(server, url, 1, login, None, [names[(i + 1) % len(names)]]) for i in range(warm_visits)]
        out["warm_visitor_runs_s"] = [w["max_s"] for w in warm]
        out["warm_pipeline_runs_s"] = [w["pipeline_s"][0] for w in warm]
        out["one_warm_tweet_s"] = statistics.median(out["warm_visitor_runs_s"])
        out["single_visitor_peak_rss_mb"] = max([first["peak_rss_mb"], *(w["peak_rss_mb"] for w in warm)])
        out["concurrent"] = {}
        for n in concurrency:
            r = _round(server, url, n, login, out["one_warm_tweet_s"])
            r["rss_over_single_mb"] = r["peak_rss_mb"] - out["single_visitor_peak_rss_mb"]
            out["concurrent"][str(n)] = r
            print(visitors_line(n, r), flush=True)
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
    out["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    return out


def visitors_line(n: int, c: dict) -> str:
    ratio = f"{c['slowest_vs_turns']:.2f}x" if "slowest_vs_turns" in c else "-"
    return (f"    {n:>2}: {c['tweets']}/{n} tweets  median {c['median_s']:>7.1f} s  slowest {c['max_s']:>7.1f} s "
            f"({ratio} of {n} warm tweets)  {c['tweets_per_min']:>5.1f} per min  peak RSS {c['peak_rss_mb']:,.0f} MB  "
            f"own tweet each: {'yes' if c['every_one_own_tweet'] else 'NO'} "
            f"({c.get('tweets_naming_own_company', '?')} name their company)  waiting pages showed their place: "
            f"{'yes' if c['waiting_saw_place'] else 'NO'} ({c['waited']} waited)")


def visitors_table(r: dict) -> str:
    rows = ["m2t serve, visitors through Streamlit's websocket protocol (no browser), submit to 'Tweet ready'",
            f"  {r.get('preload_line', '')}",
            f"  first visitor {r['first_visitor']['max_s']:.1f} s; one warm tweet (median of {r['warm_visits']}) "
            f"{r['one_warm_tweet_s']:.1f} s (runs {', '.join(f'{x:.1f}' for x in r['warm_visitor_runs_s'])}); "
            f"single-visitor peak RSS {r['single_visitor_peak_rss_mb']:,.0f} MB",
            "  visitors at once:"]
    rows += [visitors_line(int(n), c) for n, c in r["concurrent"].items()]
    for n, c in r["concurrent"].items():
        if c["errors"]:
            rows.append(f"  {n} visitors, errors: {'; '.join(c['errors'][:3])}")
    rows.append(f"  load average before/after: {r['load_avg_before'][0]} / {r['load_avg_after'][0]}")
    return "\n".join(rows)
