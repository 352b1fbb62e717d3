"""``core.stages.ocr.torchfree``: the reader without torch/easyocr finds the boxes easyocr finds and reads the same
texts, with confidences close to easyocr's (its CPU path rounds the LSTMs to int8; the export is fp32)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.model_files import easyocr_dir
from core.registry import resolve
from core.stages.ocr import OcrResult, load_ocr, read_text
from core.stages.ocr import detector_onnx as ocr_onnx
from core.stages.ocr import recognise as ocr_recognise
from core.stages.ocr import recogniser_onnx as ocr_recogniser_onnx
from tests.conftest import torch_and_onnx

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def readers() -> dict:
    """Both exports (what `m2t prepare` leaves), then the OCR model as it loads with them and with M2T_OCR_ONNX=0."""
    folder = easyocr_dir(resolve("ocr"))
    ocr_onnx.export_detector(folder / ocr_onnx.WEIGHTS)
    ocr_recogniser_onnx.export_recogniser(folder / ocr_recogniser_onnx.WEIGHTS)
    spec = resolve("ocr", device="cpu")
    torch_reader, free_reader = torch_and_onnx(ocr_onnx.ONNX_ENV, lambda: load_ocr(replace(spec)))
    return {"torch": torch_reader, "free": free_reader}


MAX_CONFIDENCE_GAP = 0.25  # int8 against fp32 LSTMs: 0.16 apart on a 0.6-0.75 line, under 0.04 elsewhere


def _assert_same(free: OcrResult, torch: OcrResult, name: str) -> None:
    assert [b.box for b in free.boxes] == [b.box for b in torch.boxes], name
    assert [b.text for b in free.boxes] == [b.text for b in torch.boxes], name
    assert free.text == torch.text, name
    for a, b in zip(free.boxes, torch.boxes, strict=True):
        assert abs(a.confidence - b.confidence) <= MAX_CONFIDENCE_GAP, (name, a.text, a.confidence, b.confidence)


def _rotated_text() -> Image.Image:
    from core.devtools.synthetic import render_text_image

    return render_text_image("Fresh Bagels Daily", size=(640, 360), font_size=48).rotate(25, expand=True,
                                                                                        fillcolor=(255, 255, 255))


def _low_contrast_text() -> Image.Image:
    """Grey on grey, out of focus: the first pass reads it with a confidence under 0.1 (0.008 measured)."""
    from PIL import ImageFilter

    from core.devtools.synthetic import render_text_image

    return render_text_image("Soft focus morning", fg=(90, 90, 90), bg=(140, 140, 140), size=(640, 200),
                             font_size=40).filter(ImageFilter.GaussianBlur(4))


def test_the_torch_free_reader_is_chosen_with_both_exports(readers: dict) -> None:
    assert readers["free"].runtime == "onnx" and readers["free"].detector == "onnx"
    assert readers["torch"].runtime == "torch" and readers["torch"].detector == "torch"
    assert repr(readers["free"].reader).startswith("TorchFreeReader(OnnxDetector(")


def test_same_boxes_texts_and_confidences_as_easyocr(readers: dict, poster_path: Path) -> None:
    from skimage import data

    from core.devtools.speed_bench import ocr_images

    images = {"poster": Image.open(poster_path), **ocr_images(), "cat photo": Image.fromarray(data.chelsea()),
              "rotated": _rotated_text()}
    for name, image in images.items():
        _assert_same(read_text(readers["free"], image), read_text(readers["torch"], image), name)
    assert "SUMMER SALE" in read_text(readers["free"], images["poster"]).text


def test_low_contrast_text_takes_the_contrast_retry_alike(readers: dict, monkeypatch) -> None:
    calls: list[int] = []
    original = ocr_recognise.stretched

    def counting(crop: np.ndarray) -> np.ndarray:
        calls.append(crop.size)
        return original(crop)

    monkeypatch.setattr(ocr_recognise, "stretched", counting)
    image = _low_contrast_text()
    free = read_text(readers["free"], image)
    assert calls, "no box went through the second, contrast-adjusted pass"
    _assert_same(free, read_text(readers["torch"], image), "low contrast")


def test_reading_imports_no_torch_torchvision_or_easyocr(readers: dict, poster_path: Path) -> None:
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from core.registry import resolve\n"
        "from core.stages.ocr import load_ocr, read_text\n"
        "ocr = load_ocr(resolve('ocr', device='cpu'))\n"
        f"text = read_text(ocr, Image.open({str(poster_path)!r})).text\n"
        "assert ocr.runtime == 'onnx' and 'SUMMER SALE' in text, (ocr.runtime, text)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'easyocr'))\n"
        "assert not bad, bad\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != ocr_onnx.ONNX_ENV}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**env, "CUDA_VISIBLE_DEVICES": ""})


def test_without_the_recogniser_export_easyocr_reads(monkeypatch, readers: dict, poster_path: Path) -> None:
    monkeypatch.setattr(ocr_recogniser_onnx, "exported", lambda weights: None)  # as if prepare made no such file
    reader = load_ocr(resolve("ocr", device="cpu"))
    assert reader.runtime == "torch" and reader.detector == "onnx"  # the detector's export still serves easyocr
    assert "SUMMER SALE" in read_text(reader, Image.open(poster_path)).text


def test_a_damaged_export_is_removed_and_easyocr_reads_meanwhile(monkeypatch, tmp_path: Path, poster_path: Path,
                                                                 capsys) -> None:
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path))
    weights = easyocr_dir(resolve("ocr")) / ocr_recogniser_onnx.WEIGHTS
    ocr_onnx.export_detector(weights.with_name(ocr_onnx.WEIGHTS))
    network, _ = ocr_recogniser_onnx.export_recogniser(weights)
    network.write_bytes(network.read_bytes()[:500])  # a truncated file, as a full disk or a killed copy leaves
    reader = load_ocr(resolve("ocr", device="cpu"))
    assert reader.runtime == "torch" and "SUMMER" in read_text(reader, Image.open(poster_path)).text
    assert "could not be loaded" in capsys.readouterr().err
    assert ocr_recogniser_onnx.exported(weights) is None, "removed, so the next m2t prepare exports it again"


def test_m2t_ocr_onnx_off_keeps_torch(readers: dict) -> None:
    assert readers["torch"].runtime == "torch"
    assert type(readers["torch"].reader).__module__.startswith("easyocr")


def test_the_export_is_named_by_the_weights_content(readers: dict) -> None:
    from core.stages import onnx_files

    weights = easyocr_dir(resolve("ocr")) / ocr_recogniser_onnx.WEIGHTS
    found = ocr_recogniser_onnx.exported(weights)
    assert found is not None
    assert all(p.name.startswith(f"english_g2-{onnx_files.content_hash(weights)[:16]}") for p in found)
