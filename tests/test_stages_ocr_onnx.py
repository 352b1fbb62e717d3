"""``core.stages.ocr.detector_onnx``: CRAFT on ONNX Runtime finds the same boxes and text as torch (the fallback)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from core.model_files import easyocr_dir
from core.registry import resolve
from core.stages.ocr import detector_onnx as ocr_onnx
from core.stages.ocr import load_ocr, read_text
from tests.conftest import torch_and_onnx

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights() -> Path:
    return easyocr_dir(resolve("ocr")) / ocr_onnx.WEIGHTS


@pytest.fixture(scope="module")
def readers(weights: Path) -> dict:
    """The OCR model as it loads with the export (what `m2t prepare` leaves) and with M2T_OCR_ONNX=0."""
    ocr_onnx.export_detector(weights)
    spec = resolve("ocr", device="cpu")
    torch_reader, onnx_reader = torch_and_onnx(ocr_onnx.ONNX_ENV, lambda: load_ocr(replace(spec)))
    return {"torch": torch_reader, "onnx": onnx_reader}


def test_the_export_is_found_by_the_weights_content(weights: Path, readers: dict) -> None:
    path = ocr_onnx.exported(weights)
    assert path is not None and path.name.startswith(f"craft-{ocr_onnx.content_hash(weights)[:16]}")
    assert readers["onnx"].detector == "onnx" and readers["torch"].detector == "torch"
    assert repr(readers["onnx"].reader.detector).startswith("OnnxDetector(")


def test_onnx_and_torch_find_the_same_boxes_and_text(readers: dict, poster_path: Path) -> None:
    from PIL import Image

    from core.devtools.speed_bench import ocr_images

    images = {"poster": Image.open(poster_path), **ocr_images()}
    for name, image in images.items():
        got = {kind: read_text(reader, image) for kind, reader in readers.items()}
        # with the recogniser's export too, the "onnx" reader is the torch-free one (its confidences are compared in
        # tests/test_stages_ocr_torchfree.py): the detector's boxes, and so the texts, are the same
        assert [(b.box, b.text) for b in got["onnx"].boxes] == [(b.box, b.text) for b in got["torch"].boxes], name
        assert got["onnx"].text == got["torch"].text, name
    assert "SUMMER SALE" in read_text(readers["onnx"], images["poster"]).text


def test_without_an_export_the_torch_detector_reads_as_before(monkeypatch, tmp_path: Path, poster_path: Path) -> None:
    from PIL import Image

    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path))  # a cache where prepare never ran
    reader = load_ocr(resolve("ocr", device="cpu"))
    assert reader.detector == "torch"
    assert "SUMMER SALE" in read_text(reader, Image.open(poster_path)).text


def test_the_content_hash_is_remembered_per_file_state(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path / "cache"))
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"first weights")
    assert ocr_onnx.content_hash(weights) == hashlib.sha256(b"first weights").hexdigest()
    weights.write_bytes(b"other weights!")  # a new size: hashed again
    assert ocr_onnx.content_hash(weights) == hashlib.sha256(b"other weights!").hexdigest()
    assert ocr_onnx.export_path(weights).name.startswith("craft-" + hashlib.sha256(b"other weights!").hexdigest()[:16])


def test_m2t_ocr_onnx_off() -> None:
    assert not ocr_onnx.enabled({ocr_onnx.ONNX_ENV: "0"}) and ocr_onnx.enabled({})
