"""The OCR reader without torch, torchvision or easyocr: what :func:`core.stages.ocr.load_ocr` builds on a CPU.

Why: a cold ``m2t predict`` spent ~5.5 s importing easyocr (which imports torch and torchvision) before reading a
word. With both exports ``m2t prepare`` makes (the CRAFT detector, :mod:`core.stages.ocr_onnx`; the recogniser,
:mod:`core.stages.ocr_recogniser_onnx`) this reader answers ``detect`` and ``recognize`` as ``easyocr.Reader``
does for the calls :mod:`core.stages.ocr` makes, with the same boxes, texts and confidences, from ONNX Runtime,
numpy and OpenCV alone.
"""

from __future__ import annotations

from pathlib import Path

from core.stages import ocr_onnx, ocr_recogniser_onnx
from core.stages.ocr_detect import Detector
from core.stages.ocr_recognise import Recogniser


class TorchFreeReader:
    """``detect`` and ``recognize`` with ``easyocr.Reader``'s signatures for the arguments core.stages.ocr passes."""

    def __init__(self, detection: Detector, recogniser: Recogniser) -> None:
        self.detection, self.recogniser = detection, recogniser
        self.detector = detection.network  # the OnnxDetector, where easyocr.Reader keeps its detector too
        self.detect, self.recognize = detection.detect, recogniser.recognize

    def __repr__(self) -> str:
        return f"TorchFreeReader({self.detector!r}, {self.recogniser!r})"


def exports(folder: Path) -> tuple[Path, tuple[Path, Path]] | None:
    """The detector's and the recogniser's exports for the weights in ``folder``, if prepare made both."""
    detector_weights, recogniser_weights = folder / ocr_onnx.WEIGHTS, folder / ocr_recogniser_onnx.WEIGHTS
    if not (detector_weights.is_file() and recogniser_weights.is_file()):
        return None
    detector, recogniser = ocr_onnx.exported(detector_weights), ocr_recogniser_onnx.exported(recogniser_weights)
    return (detector, recogniser) if detector is not None and recogniser is not None else None


def load(detector_file: Path, recogniser_files: tuple[Path, Path]) -> TorchFreeReader:
    return TorchFreeReader(Detector(ocr_onnx.OnnxDetector(detector_file)), Recogniser(*recogniser_files))
