"""``core.stages.caption.onnx_model``: EfficientNet-Lite0 on ONNX Runtime names the same classes with the same scores as
torch, loads without importing torch, and torch stays the fallback (no export, ``M2T_CAPTION_ONNX=0``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.devtools.brand_dump import sample_photo_dirs
from core.errors import ModelUnavailableError
from core.registry import resolve
from core.stages.caption import onnx_model as caption_onnx
from core.stages.caption.classify import (
    Captioner,
    _efficientnet_array,
    _efficientnet_batch,
    _efficientnet_on_cpu,
    caption_images,
    load_captioner,
)
from tests.conftest import torch_and_onnx

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# The colour and grey photos installed with scikit-image (skimage.data) and scikit-learn (load_sample_images).
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "camera.png",
          "hubble_deep_field.jpg", "china.jpg", "flower.jpg")


@pytest.fixture(scope="module")
def weights() -> Path:
    return caption_onnx.weights_file(resolve("caption"))


@pytest.fixture(scope="module")
def captioners(weights: Path) -> dict[str, Captioner]:
    """The captioner as it loads with the export (what `m2t prepare` leaves) and with M2T_CAPTION_ONNX=0."""
    caption_onnx.export_captioner(weights)
    spec = resolve("caption", device="cpu")
    torch_cap, onnx_cap = torch_and_onnx(caption_onnx.ONNX_ENV, lambda: load_captioner(replace(spec)))
    return {"torch": torch_cap, "onnx": onnx_cap}


@pytest.fixture(scope="module")
def photos(poster_path: Path) -> dict[str, Image.Image]:
    found = {}
    for folder in sample_photo_dirs():
        for name in PHOTOS:
            if (folder / name).is_file():
                found[name] = Image.open(folder / name).convert("RGB")
    if len(found) < 5:
        pytest.skip("scikit-image and scikit-learn's sample photos are not installed")
    return {**found, "poster": Image.open(poster_path)}


def test_the_export_is_found_by_the_weights_content_with_its_class_names(weights: Path, captioners: dict) -> None:
    path = caption_onnx.exported(weights)
    digest = caption_onnx.onnx_files.content_hash(weights)
    assert path is not None and path.name == f"efficientnet-lite0-{digest[:16]}-opset{caption_onnx.OPSET}.onnx"
    assert captioners["onnx"].runtime == "onnx" and captioners["torch"].runtime == "torch"
    assert repr(captioners["onnx"].model).startswith("OnnxClassifier(")
    assert json.loads(caption_onnx.labels_path(path).read_text()) == captioners["torch"].labels  # torchvision's names
    assert len(captioners["onnx"].labels) == 1000 and captioners["onnx"].labels[967] == "espresso"


def test_onnx_and_torch_give_the_same_logits_labels_scores_and_captions(captioners: dict, photos: dict) -> None:
    import torch

    images = list(photos.values())
    with torch.inference_mode():
        expected = captioners["torch"].model(_efficientnet_batch(images)).numpy()
    got = captioners["onnx"].model(_efficientnet_array(images))
    assert np.abs(got - expected).max() < caption_onnx.MAX_EXPORT_DIFF
    for batch in ([[image] for image in images], [images]):  # one image at a time, and all in one batch
        for chunk in batch:
            results = {kind: caption_images(cap, chunk) for kind, cap in captioners.items()}
            for onnx_result, torch_result in zip(results["onnx"], results["torch"], strict=True):
                assert [label for label, _ in onnx_result.labels] == [label for label, _ in torch_result.labels]
                assert np.allclose([s for _, s in onnx_result.labels], [s for _, s in torch_result.labels],
                                   atol=1e-4, rtol=0)
                assert (onnx_result.caption, onnx_result.guess) == (torch_result.caption, torch_result.guess)
    coffee, astronaut = caption_images(captioners["onnx"], [photos["coffee.png"], photos["astronaut.png"]])
    assert coffee.caption == "a photo of a drink" and coffee.labels[0][0] == "espresso"
    assert astronaut.caption == "a photo" and astronaut.guess == "a photo of a bobsled"


def test_the_onnx_load_and_caption_import_no_torch(captioners: dict) -> None:
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from core.registry import resolve\n"
        "from core.stages.caption import caption_images, load_captioner\n"
        "cap = load_captioner(resolve('caption', device='cpu'))\n"
        "(result,) = caption_images(cap, [Image.new('RGB', (320, 240), (200, 120, 40))])\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'efficientnet_lite_pytorch') if m in sys.modules)\n"
        "print(cap.runtime, len(result.labels), heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != caption_onnx.ONNX_ENV}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["onnx", "5", "[]"]


def test_without_an_export_the_torch_network_captions_as_before(monkeypatch, tmp_path: Path, photos: dict) -> None:
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path))  # a cache where prepare never ran
    cap = load_captioner(resolve("caption", device="cpu"))
    assert cap.runtime == "torch"
    assert caption_images(cap, [photos["coffee.png"]])[0].caption == "a photo of a drink"


def test_an_export_that_differs_from_torch_is_refused(monkeypatch, tmp_path: Path, weights: Path) -> None:
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(caption_onnx, "MAX_EXPORT_DIFF", 0.0)  # no export is bit-exact: this one must be refused
    with pytest.raises(ModelUnavailableError, match="differs from torch"):
        caption_onnx.export_captioner(weights)
    assert caption_onnx.exported(weights) is None
    assert not [p for p in (tmp_path / "onnx").iterdir() if p.name != "hashes.json"]  # no half-written files
    assert load_captioner(resolve("caption", device="cpu")).runtime == "torch"


def test_a_damaged_export_is_removed_and_torch_captions_meanwhile(monkeypatch, tmp_path: Path, weights: Path,
                                                                 photos: dict, capsys) -> None:
    monkeypatch.setenv("M2T_CACHE_DIR", str(tmp_path))
    export = caption_onnx.export_captioner(weights)
    export.write_bytes(export.read_bytes()[:1000])  # a truncated file, as a full disk or a killed copy leaves
    cap = load_captioner(resolve("caption", device="cpu"))
    assert cap.runtime == "torch" and caption_images(cap, [photos["coffee.png"]])[0].caption == "a photo of a drink"
    assert "could not be loaded" in capsys.readouterr().err
    assert caption_onnx.exported(weights) is None, "removed, so the next m2t prepare exports it again"
    assert caption_onnx.export_captioner(weights) == export and load_captioner(
        resolve("caption", device="cpu")).runtime == "onnx"


def test_m2t_caption_onnx_off_and_accelerators_keep_torch() -> None:
    assert not caption_onnx.enabled({caption_onnx.ONNX_ENV: "0"}) and caption_onnx.enabled({})
    spec = resolve("caption", device="cpu")
    assert _efficientnet_on_cpu(spec) and _efficientnet_on_cpu(replace(spec, device="auto"))
    assert not _efficientnet_on_cpu(replace(spec, device="cuda"))
