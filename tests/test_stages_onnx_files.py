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


def test_the_softmax_is_torchs() -> None:
    import numpy as np
    import torch

    logits = np.random.default_rng(0).normal(0, 30, (2, 7, 97)).astype(np.float32)  # big values: no overflow
    got = onnx_files.softmax(logits)
    assert got.dtype == np.float32
    expected = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=2.4e-7)  # torch's vectorised exp: an ulp or two apart
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-6)


def test_an_export_that_fails_to_open_is_removed_and_reported(tmp_path: Path) -> None:
    model, labels = tmp_path / "m.onnx", tmp_path / "m.labels.json"
    model.write_bytes(b"not a model")
    labels.write_text("[]")
    assert onnx_files.open_export(lambda: "opened", model, labels) == "opened"
    with pytest.raises(ModelUnavailableError, match=r"m\.onnx could not be loaded .*m2t prepare"):
        onnx_files.open_export(lambda: onnx_files.session(model), model, labels)
    assert not model.exists() and not labels.exists(), "a damaged export is never trusted again"
