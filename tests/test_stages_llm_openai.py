"""The openai engine against a real OpenAI-compatible HTTP server on 127.0.0.1.

The server below implements the two endpoints the engine uses (``GET /v1/models`` and
``POST /v1/completions``) the way llama-server and vLLM answer them: ``n`` choices indexed in order,
text cut at the first stop string (``finish_reason`` "stop"), ``max_tokens`` counted in words,
``usage`` and optional ``logprobs``. Its completion is derived from the prompt (the post's company),
so every answer is checkable.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import ModelUnavailableError, UserError
from core.registry import resolve
from core.stages.llm import GenerationConfig, generate, generate_scored, load_llm
from core.stages.prompt import TweetContext, build_prompt

SERVED = ("gemma-3-270m-q4_k_m.gguf", "qwen2.5-0.5b")


class CompletionServer(BaseHTTPRequestHandler):
    """A small OpenAI-compatible completion server (see the module docstring)."""

    requests: list[dict] = []
    barrier: threading.Barrier | None = None  # when set, that many requests must be in flight together
    lock = threading.Lock()

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path != "/v1/models":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in SERVED]})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/v1/completions":
            return self._send(404, {"error": {"message": f"no route {self.path}"}})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.requests.append(body)
        if body.get("model") not in SERVED:
            return self._send(404, {"error": {"message": f"model '{body.get('model')}' not found"}})
        if self.barrier is not None:
            self.barrier.wait()  # raises BrokenBarrierError (→ no answer) unless requests arrive together
        companies = re.findall(r"Company: (.+)", body["prompt"])
        company = companies[-1] if companies else "us"
        choices = []
        for k in range(body.get("n", 1)):
            words = f"Big news from {company} today, take {k + 1}! <hyperlink>".split(" ")
            words = words[: body.get("max_tokens", 16)]
            text = " " + " ".join(words) + "\n\n###\n\nImage description: the next block"
            finish = "length"
            for stop in body.get("stop") or []:
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            choice = {"index": k, "text": text, "finish_reason": finish}
            if body.get("logprobs"):
                choice["logprobs"] = {"token_logprobs": [-0.5] * len(text.split())}
            choices.append(choice)
        self._send(200, {"object": "text_completion", "model": body["model"], "choices": choices,
                         "usage": {"prompt_tokens": len(body["prompt"].split()),
                                   "completion_tokens": sum(len(c["text"].split()) for c in choices)}})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    handler = type("Handler", (CompletionServer,), {"requests": [], "barrier": None, "lock": threading.Lock()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler
    httpd.shutdown()
    httpd.server_close()


def _prompts(n: int = 3) -> list[str]:
    companies = ["Starbucks", "Tesla", "Adidas", "Lego"][:n]
    return [build_prompt(TweetContext(c, c.lower(), "2023-09-01 08:00", ocr_text=f"{c} summer")) for c in companies]


def test_tweets_come_from_the_server_cut_at_the_stop_strings(server):
    url, handler = server
    llm = load_llm(resolve("llm", url=url, served_model=SERVED[0]))
    assert llm.engine == "openai" and llm.prompt_style == "few-shot"
    stats: dict = {}
    out = generate(llm, _prompts(), GenerationConfig(max_new_tokens=40), stats=stats)
    assert out == [[f"Big news from {c} today, take 1! <hyperlink>"] for c in ("Starbucks", "Tesla", "Adidas")]
    assert stats["new_tokens"] == 3 * 8  # the usage the server reported
    body = handler.requests[-1]
    assert body["stop"][:2] == ["###", "\n\n"] and body["temperature"] == 0.0 and body["max_tokens"] == 40
    assert body["prompt"].startswith("Tweets written by brands") and "<bos>" not in body["prompt"]


def test_candidates_and_scores(server):
    url, handler = server
    llm = load_llm(resolve("llm", url=url, served_model=SERVED[0]))
    (cands,) = generate_scored(llm, _prompts(1), GenerationConfig(num_candidates=3, seed=7))
    assert [t for t, _ in cands] == [f"Big news from Starbucks today, take {k}! <hyperlink>" for k in (1, 2, 3)]
    assert all(s == -0.5 for _, s in cands)
    body = handler.requests[-1]
    assert body["n"] == 3 and body["temperature"] == 0.8 and body["seed"] == 7 and body["logprobs"] == 1


def test_a_batch_is_sent_concurrently(server):
    url, handler = server
    handler.barrier = threading.Barrier(4, timeout=20)  # the server answers only once 4 requests wait together
    llm = load_llm(resolve("llm", url=url, served_model=SERVED[0]))
    out = generate(llm, _prompts(4), GenerationConfig(batch_size=4))
    assert [c[0].split()[3] for c in out] == ["Starbucks", "Tesla", "Adidas", "Lego"]  # answers stay in order


def test_the_model_name_is_checked_against_the_server(server):
    url, _ = server
    with pytest.raises(ModelUnavailableError, match="'llama-7b' is not served.*available: gemma-3-270m-q4_k_m.gguf, "
                                                    "qwen2.5-0.5b") as info:
        load_llm(resolve("llm", url=url, served_model="llama-7b"))
    assert "\n" not in str(info.value)
    # Without --llm-model, an alias the server serves under its own name is picked ...
    assert load_llm(resolve("llm", "qwen2.5-0.5b", url=url)).runner.model == "qwen2.5-0.5b"
    # ... and two other names are ambiguous.
    with pytest.raises(ModelUnavailableError, match="several models are served"):
        load_llm(resolve("llm", "smollm2-135m", url=url))


def test_an_unreachable_server_is_one_line(free_port):
    with pytest.raises(ModelUnavailableError, match=r"unreachable \(connection refused\)") as info:
        load_llm(resolve("llm", url=f"http://127.0.0.1:{free_port}/v1"))
    assert "\n" not in str(info.value)


def test_bad_urls_and_settings_are_user_errors(monkeypatch):
    with pytest.raises(UserError, match="needs the server's address"):
        resolve("llm", engine="openai")
    with pytest.raises(UserError, match="http"):
        load_llm(resolve("llm", url="ftp://127.0.0.1/v1"))
    monkeypatch.setenv("M2T_LLM_URL", "http://127.0.0.1:9/v1")
    assert resolve("llm").engine == "openai"  # the env var alone selects the server
    assert resolve("llm", engine="ctranslate2").url is None


def test_predict_with_an_unreachable_server_exits_non_zero_with_one_line(free_port, capsys):
    from core.__main__ import main

    code = main(["predict", "--company", "Nike", "--username", "nike", "--date", "2023-06-01 10:00",
                 "--llm-url", f"http://127.0.0.1:{free_port}/v1"])
    err = capsys.readouterr().err
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unreachable" in errors[0] and "Traceback" not in err
