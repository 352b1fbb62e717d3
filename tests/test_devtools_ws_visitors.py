"""``core.devtools.ws_visitors``: visitors without browsers, through Streamlit's own websocket protocol."""

from __future__ import annotations

import socket

import pytest

from core.devtools import ws_visitors
from core.devtools.ws_visitors import VisitorResult, _tweet_and_ocr, companies, summary
from core.serve import server as serve
from core.serve.proxy import AuthProxy, Credentials


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_companies_never_name_one_another() -> None:
    for n in (2, 20, 45):
        names = companies(n)
        assert len(set(names)) == n
        assert not any(a != b and a in b for a in names for b in names)


def test_no_company_is_one_the_prompt_itself_names() -> None:
    """The page shows the prompt, whose few-shot examples name companies: a visitor's name among them would be
    "seen" on every page."""
    from core.stages.prompt import TweetContext, build_prompt

    for style in ("few-shot", "zero-shot"):
        prompt = build_prompt(TweetContext("Someone", "someone", "2024-01-01 12:00"), style)
        assert not [name for name in companies(20) if name in prompt], style


def test_the_tweet_and_the_ocr_text_are_the_code_blocks_after_their_headings() -> None:
    from streamlit.proto.Code_pb2 import Code
    from streamlit.proto.Heading_pb2 import Heading
    from streamlit.proto.Markdown_pb2 import Markdown

    elements = [("code", Code(code_text="a form's code")), ("heading", Heading(body="Tweet candidates")),
                ("markdown", Markdown(body="**Candidate 1**")), ("code", Code(code_text="first tweet")),
                ("code", Code(code_text="second tweet")), ("markdown", Markdown(body="**Text in the media (OCR)**")),
                ("code", Code(code_text="POSTER TEXT")), ("code", Code(code_text="the prompt"))]
    assert _tweet_and_ocr(elements) == ("first tweet", "POSTER TEXT")


def test_summary_compares_the_slowest_with_taking_turns_and_checks_each_page() -> None:
    a = VisitorResult(0, "Bean Town", "beantown", "a.png", total_s=5.0, pipeline_s=5.0, tweet="Coffee at bean town",
                      own_company_seen=True)
    b = VisitorResult(1, "Maple Bakery", "maplebakery", "b.png", total_s=11.0, pipeline_s=5.5, line_s=5.0,
                      tweet="Grand opening!", own_company_seen=True, place_texts=["You are next, about 5 s"])
    s = summary([a, b], one_warm_s=5.0)
    assert s["tweets_naming_own_company"] == 1
    assert (s["tweets"], s["max_s"], s["slowest_vs_turns"]) == (2, 11.0, 1.1)
    assert s["tweets_per_min"] == pytest.approx(60 * 2 / 11)
    assert s["every_one_own_tweet"] and s["none_sees_another"] and s["waiting_saw_place"] and s["waited"] == 1
    b.place_texts, b.others_seen = [], ["Bean Town"]
    s = summary([a, b], one_warm_s=5.0)
    assert not s["waiting_saw_place"] and not s["none_sees_another"] and not s["every_one_own_tweet"]


@pytest.mark.slow
def test_two_visitors_through_the_auth_proxy_each_get_their_own_tweet_and_the_second_sees_its_place() -> None:
    """The real app and models, behind ``m2t serve --auth``'s proxy: two visitors click at once; one slot, so one
    waits, and its page shows its place in line."""
    server = serve.start_server(free_port(), profile="offline", preload=True)
    proxy = None
    try:
        serve.wait_until_ready(server, timeout=120)
        login = ("visitor", "a-long-password")
        proxy = AuthProxy("127.0.0.1", free_port(), server.port, Credentials(*login))
        proxy.start()
        url = f"http://127.0.0.1:{proxy.port}"
        refused = ws_visitors.run_visitors(url, 1, ("visitor", "wrong-password"), timeout=60)
        assert refused[0].error and "401" in refused[0].error
        results = ws_visitors.run_visitors(url, 2, login, timeout=900)
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
    names = [r.company for r in results]
    assert len(set(names)) == 2
    for r in results:
        assert r.error is None, r.error
        assert r.tweet and r.pipeline_s and r.total_s >= r.pipeline_s
        assert r.own_company_seen and not r.others_seen, (r.company, r.others_seen)
        assert r.company in r.ocr.replace("\n", " ")  # its own poster, read back on its own page
        assert r.stage_lines and r.stage_lines[-1].startswith("Writing the tweet")
    first, second = sorted(results, key=lambda r: r.line_s)
    assert first.line_s == 0 and not first.place_texts
    assert second.line_s > 0
    assert second.place_texts and second.place_texts[0].startswith("You are next"), second.place_texts
    assert second.status_labels[-1].startswith("Tweet ready in") and "s in line" in second.status_labels[-1]
