"""``streamlit_server.py`` as ``m2t serve`` starts it: the start-up hook preloads once in the server's own
process, ``--no-preload`` leaves it off, and a served app runs without Streamlit's file watcher."""

from __future__ import annotations

import socket
import time

import psutil
import pytest

from core.serve import server as serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(server: serve.Server, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.alive():
        found = next((line for line in list(server.tail) if text in line), None)
        if found:
            return found
        time.sleep(0.2)  # polling a child process's output
    raise AssertionError(f"no line with {text!r}; last output:\n{server.last_output()}")


@pytest.mark.slow
def test_the_server_answers_at_once_and_loads_the_models_in_the_background() -> None:
    server = serve.start_server(free_port(), profile="offline", preload=True)
    try:
        serve.wait_until_ready(server, timeout=120)
        assert not any("Models ready" in line for line in server.tail), "the health check does not wait for models"
        ready = wait_for_line(server, "Models ready", timeout=900)
        assert ready.startswith("Models ready: 4 of 4 loaded"), ready
        # the offline profile after `m2t prepare`: ONNX Runtime and primed CTranslate2 need no warm-up prediction
        assert any("no warm-up prediction needed" in line for line in server.tail)
        assert sum("preload: loading" in line for line in server.tail) == 1
        for task in ("caption", "ocr", "asr", "llm"):
            assert any(line.startswith(f"preload: {task} model") and "ready" in line for line in server.tail)
    finally:
        server.stop()


@pytest.mark.slow
def test_no_preload_and_a_served_app_watches_no_files() -> None:
    server = serve.start_server(free_port(), preload=False)
    try:
        serve.wait_until_ready(server, timeout=120)
        wait_for_line(server, "preload: off", timeout=30)
        cmdline = psutil.Process(server.proc.pid).cmdline()
        assert cmdline[cmdline.index("--server.fileWatcherType") + 1] == "none"
        assert cmdline[cmdline.index("--server.runOnSave") + 1] == "false"
    finally:
        server.stop()
    dev = serve.start_server(free_port(), preload=False, dev=True)
    try:
        serve.wait_until_ready(dev, timeout=120)
        assert "--server.fileWatcherType" not in psutil.Process(dev.proc.pid).cmdline()
    finally:
        dev.stop()


def test_the_serve_command_has_the_switches() -> None:
    import argparse

    args = serve.configure_serve(argparse.ArgumentParser()).parse_args(["--no-preload", "--dev"])
    assert args.no_preload and args.dev
    args = serve.configure_serve(argparse.ArgumentParser()).parse_args([])
    assert not args.no_preload and not args.dev
