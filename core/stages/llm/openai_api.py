"""The ``openai`` engine: send the built prompt to any OpenAI-compatible server (vLLM, llama-server, Ollama).

Why: a GPU box or a llama.cpp server already holding the model writes tweets faster than this
process can, and several app users can share it. The prompt is built here exactly as for the local
engines and sent to ``POST {url}/completions`` as text: few-shot prompts as they are, chat-style
prompts already in the model's chat template (when a local tokenizer for the alias exists; the
servers parse special tokens in prompt text). One endpoint keeps every engine on the same prompt.
``GET {url}/models`` checks the model name when connecting.

Sent per prompt: ``max_tokens``, ``n`` (candidates), ``temperature`` (0 for greedy), ``top_p``,
``seed``, ``stop`` (the stop strings) and the servers' own repetition fields (vLLM
``repetition_penalty``, llama.cpp ``repeat_penalty``; others ignore them). Servers have no
``no_repeat_ngram_size``, and they cut at a stop string even at the very start of the text, where the
local engines let a leading blank line pass. ``clean_tweet`` runs on the answers as for every engine.
Requests run ``cfg.batch_size`` at a time (``M2T_LLM_CONCURRENCY`` overrides), each with a 3 s connect
timeout and a bounded read timeout (``M2T_LLM_TIMEOUT``, default 120 s).

The server address is the user's own configuration (often 127.0.0.1), so the media URL policy of
``core.media.fetch`` does not apply here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import ModelUnavailableError, UserError
from core.registry import ModelSpec, cache_dir
from core.stages.llm import LLM, GenerationConfig

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 120.0
TOP_K = 50


def base_url(url: str) -> str:
    """``http://host:port`` → ``http://host:port/v1``; a URL that names a path keeps it (minus a trailing /)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"--llm-url must be an http(s) address such as http://127.0.0.1:8080/v1, got {url!r}")
    return url if parts.path else f"{url}/v1"


def _read_timeout() -> float:
    try:
        return max(1.0, float(os.environ.get("M2T_LLM_TIMEOUT", READ_TIMEOUT_S)))
    except ValueError:
        raise UserError(f"M2T_LLM_TIMEOUT must be a number of seconds, got {os.environ['M2T_LLM_TIMEOUT']!r}") from None


@dataclass
class OpenAIClient:
    """One server and the model name it serves; ``tokenizer`` is a local copy for chat templates, if any."""

    url: str
    model: str
    tokenizer: object | None = None
    api_key: str | None = None
    read_timeout: float = READ_TIMEOUT_S

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def request(self, method: str, path: str, payload: dict | None = None) -> dict:
        """One call; every failure becomes a one-line ``ModelUnavailableError`` naming the server."""
        import requests

        where = f"{self.url}{path}"
        try:
            response = requests.request(method, where, json=payload, headers=self._headers(),
                                        timeout=(CONNECT_TIMEOUT_S, self.read_timeout))
        except requests.exceptions.ConnectTimeout:
            raise ModelUnavailableError(
                f"LLM server {self.url} did not accept a connection within {CONNECT_TIMEOUT_S:.0f} s; "
                "is it running? (--llm-url / M2T_LLM_URL)") from None
        except requests.exceptions.ReadTimeout:
            raise ModelUnavailableError(
                f"LLM server {self.url} did not answer {path} within {self.read_timeout:.0f} s "
                "(raise M2T_LLM_TIMEOUT for a slow server)") from None
        except requests.exceptions.RequestException as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else type(exc).__name__
            raise ModelUnavailableError(
                f"LLM server {self.url} is unreachable ({reason}); start it or fix --llm-url / M2T_LLM_URL") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            message = ""
            if isinstance(data, dict):
                error = data.get("error")
                message = error.get("message", "") if isinstance(error, dict) else str(error or data.get("detail", ""))
            message = " ".join((message or response.text or response.reason or "").split())[:200]
            raise ModelUnavailableError(f"LLM server {where} answered HTTP {response.status_code}: {message}")
        if not isinstance(data, dict):
            raise ModelUnavailableError(
                f"LLM server {where} did not answer with JSON; is {self.url} an OpenAI-compatible /v1 address?")
        return data

    def served_models(self) -> list[str]:
        data = self.request("GET", "/models")
        return [str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict) and m.get("id")]


def _local_tokenizer(spec: ModelSpec):
    """A tokenizer for the named model when one is on disk already (never converts or downloads)."""
    from transformers import AutoTokenizer

    candidates: list[Path] = []
    if spec.is_offline_alias:
        candidates += sorted((cache_dir() / "ct2").glob(f"{spec.model}-int8*")) + [cache_dir() / "hf" / spec.model]
    elif Path(spec.model).is_dir():
        candidates.append(Path(spec.model))
    for folder in candidates:
        if (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file():
            try:
                return AutoTokenizer.from_pretrained(str(folder))
            except (OSError, ValueError):
                continue
    return None


def connect(spec: ModelSpec) -> OpenAIClient:
    """Reach the server, check the model name against ``GET /models``, and find a local tokenizer."""
    if not spec.url:
        raise UserError("the openai backend needs --llm-url http://HOST:PORT/v1 (or M2T_LLM_URL)")
    if spec.adapter:
        raise UserError("a LoRA adapter cannot be sent to a server: load it in the server, or use "
                        "--backend ctranslate2 / transformers")
    client = OpenAIClient(url=base_url(spec.url), model="", api_key=os.environ.get("M2T_LLM_API_KEY") or None,
                          read_timeout=_read_timeout())
    served = client.served_models()
    wanted = spec.served_model
    if wanted is None:
        if spec.model in served:
            wanted = spec.model
        elif len(served) == 1:
            wanted = served[0]
    if wanted is None or wanted not in served:
        listing = ", ".join(served[:10]) + (" …" if len(served) > 10 else "") if served else "none"
        asked = f"model {wanted!r} is not served" if wanted else "several models are served"
        raise ModelUnavailableError(
            f"LLM server {client.url}: {asked}; available: {listing} (choose with --llm-model / M2T_LLM_SERVED_MODEL)")
    client.model = wanted
    client.tokenizer = _local_tokenizer(spec)
    return client


def load(spec: ModelSpec) -> LLM:
    """A connected client as an :class:`LLM` (``runner`` is the :class:`OpenAIClient`)."""
    client = connect(spec)
    return LLM(spec=spec, model=None, tokenizer=client.tokenizer, device="server", engine="openai", runner=client)


def _concurrency(cfg: GenerationConfig) -> int:
    raw = os.environ.get("M2T_LLM_CONCURRENCY")
    try:
        return max(1, int(raw)) if raw else max(1, cfg.batch_size)
    except ValueError:
        raise UserError(f"M2T_LLM_CONCURRENCY must be a whole number, got {raw!r}") from None


def payload(client: OpenAIClient, prompt: str, cfg: GenerationConfig, stop_strings: tuple[str, ...],
            scores: bool) -> dict:
    """The /completions body for one prompt (see the module docstring for what each server reads)."""
    n = max(1, cfg.num_candidates)
    sample = cfg.do_sample or n > 1
    body: dict = {
        "model": client.model,
        "prompt": prompt,
        "max_tokens": cfg.max_new_tokens,
        "n": n,
        "temperature": cfg.temperature if sample else 0.0,
        "top_p": cfg.top_p if sample else 1.0,
        "seed": cfg.seed,
        "stop": list(stop_strings),
        "repetition_penalty": cfg.repetition_penalty,
        "repeat_penalty": cfg.repetition_penalty,
    }
    if sample:
        body["top_k"] = TOP_K
    if cfg.min_new_tokens:
        body["min_tokens"] = cfg.min_new_tokens
    if scores:
        body["logprobs"] = 1
    return body


def _mean_logprob(choice: dict) -> float | None:
    values = ((choice.get("logprobs") or {}).get("token_logprobs") or [])
    values = [v for v in values if isinstance(v, int | float)]
    return sum(values) / len(values) if values else None


def generate(
    llm: LLM,
    prompts: list[str],
    cfg: GenerationConfig,
    progress: Callable[[int, int], None] | None,
    stats: dict | None,
    stop_strings: tuple[str, ...],
    *,
    scores: bool = False,
) -> list[list[tuple[str, float | None]]]:
    """Raw texts per prompt (``cfg.num_candidates`` each), requests in parallel threads."""
    client: OpenAIClient = llm.runner

    def one(prompt: str) -> tuple[list[tuple[str, float | None]], int]:
        data = client.request("POST", "/completions", payload(client, prompt, cfg, stop_strings, scores))
        choices = sorted((c for c in data.get("choices", []) if isinstance(c, dict)), key=lambda c: c.get("index", 0))
        if not choices:
            raise ModelUnavailableError(f"LLM server {client.url} answered /completions without choices")
        usage = data.get("usage") or {}
        return [(str(c.get("text") or ""), _mean_logprob(c) if scores else None) for c in choices], int(
            usage.get("completion_tokens") or 0)

    results: list[list[tuple[str, float | None]]] = [[] for _ in prompts]
    if not prompts:
        return results
    with ThreadPoolExecutor(max_workers=min(_concurrency(cfg), len(prompts))) as pool:
        futures = [pool.submit(one, p) for p in prompts]
        for done, (i, future) in enumerate(enumerate(futures), 1):
            results[i], tokens = future.result()
            if stats is not None:
                stats["new_tokens"] = stats.get("new_tokens", 0) + tokens
            if progress:
                progress(done, len(prompts))
    return results
