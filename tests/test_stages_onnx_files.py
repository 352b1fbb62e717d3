"""``core.stages.onnx_files``: what the three ONNX exports share (exporter check, content hash, softmax)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.errors import ModelUnavailableError
from core.stages import onnx_files


def test_without_the_onnx_package_an_export_says_what_keeps_running(monkeypatch) -> None:
    onnx_files.require_exporter("the captioner", "captioning keeps torch")  # installed: no error
    monkeypatch.setitem(sys.modules, "onnx", None)  # what an environment without the package gives an import
    with pytest.raises(ModelUnavailableError, match=r"the captioner to ONNX needs the onnx package.*keeps torch"):
        onnx_files.require_exporter("the captioner", "captioning keeps torch")


def test_the_content_hash_follows_the_bytes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path / "cache"))
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"one")
    first = onnx_files.content_hash(weights)
    assert onnx_files.content_hash(weights) == first
    weights.write_bytes(b"two!")
    assert onnx_files.content_hash(weights) != first
