"""Session-wide fixtures: each real offline model loads once per test session."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest


@pytest.fixture(autouse=True)
def keep_main_module():
    """Puts ``__main__`` back after each test. ``AppTest.from_function`` runs its script as ``__main__`` and leaves it
    there, and a later ``multiprocessing`` spawn re-runs ``__main__`` in each child: a script written with
    ``args=`` then fails there (``name '__args' is not defined``), and the child exits 1 before its work."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

POSTER_TEXT = "SUMMER SALE 50% OFF ALL RUNNING SHOES"
T = TypeVar("T")
SPEECH_TEXT = "Our new coffee shop opens on Monday morning. Come early and get a free croissant."


def torch_and_onnx(switch: str, load: Callable[[], T]) -> tuple[T, T]:
    """One model loaded twice: with its ONNX switch (``M2T_CAPTION_ONNX``, ``M2T_OCR_ONNX``) off, on torch, then with
    it unset, on the export ``m2t prepare`` left; the environment is restored after."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv(switch, "0")
        on_torch = load()
        mp.delenv(switch)
        return on_torch, load()
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def pipeline():
    from core.pipeline import Pipeline

    return Pipeline(profile="offline")


@pytest.fixture(scope="session")
def captioner(pipeline):
    return pipeline.model("caption")


@pytest.fixture(scope="session")
def ocr_reader(pipeline):
    return pipeline.model("ocr")


@pytest.fixture(scope="session")
def asr(pipeline):
    return pipeline.model("asr")


@pytest.fixture(scope="session")
def llm(pipeline):
    return pipeline.model("llm")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def poster_path(media_dir) -> Path:
    from core.devtools.synthetic import render_text_image

    path = media_dir / "poster.png"
    render_text_image(POSTER_TEXT, size=(800, 450), font_size=56).save(path)
    return path


@pytest.fixture(scope="session")
def speech_path(media_dir) -> Path:
    from core.devtools.synthetic import speak

    return speak(SPEECH_TEXT, media_dir / "speech.wav")


@pytest.fixture(scope="session")
def video_path(media_dir, poster_path, speech_path) -> Path:
    from PIL import Image

    from core.devtools.synthetic import make_video

    with Image.open(poster_path) as im:
        frame = im.convert("RGB")
    return make_video(media_dir / "clip.mp4", [frame, frame], fps=2, seconds_per_image=2.0, audio_wav=speech_path)


class _Handler(BaseHTTPRequestHandler):
    """A real local web server: dead links, big files and good media over real HTTP."""

    routes: dict[str, tuple[int, bytes, str]] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        status, body, ctype = self.routes.get(self.path.split("?")[0], (404, b"not found", "text/plain"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def media_server(poster_path):
    """Serves on 127.0.0.1, which the URL policy refuses by default: tests that use it opt in with
    ``M2T_ALLOW_PRIVATE_URLS`` as a person would for local media (tests/test_media_fetch.py covers the
    refusal itself and controls the variable per test)."""
    routes = {"/poster.png": (200, poster_path.read_bytes(), "image/png")}
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    previous = os.environ.get("M2T_ALLOW_PRIVATE_URLS")
    os.environ["M2T_ALLOW_PRIVATE_URLS"] = "1"
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    if previous is None:
        os.environ.pop("M2T_ALLOW_PRIVATE_URLS", None)
    else:
        os.environ["M2T_ALLOW_PRIVATE_URLS"] = previous
    server.shutdown()


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
