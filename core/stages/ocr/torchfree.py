"""The OCR reader without torch, torchvision or easyocr: what :func:`core.stages.ocr.load_ocr` builds on a CPU.

Why: a cold ``m2t predict`` spent ~5.5 s importing easyocr (which imports torch and torchvision) before reading a
word. With both exports ``m2t prepare`` makes (the CRAFT detector, :mod:`core.stages.ocr.detector_onnx`; the
recogniser, :mod:`core.stages.ocr.recogniser_onnx`) this reader answers the two calls :mod:`core.stages.ocr.read`
makes of a reader (``detect`` and ``recognize``, as ``easyocr.Reader`` names them) from ONNX Runtime, numpy and
OpenCV alone, with the post-processing of :mod:`core.stages.ocr.boxes` and :mod:`core.stages.ocr.recognise`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.stages.ocr import boxes, detector_onnx, recogniser_onnx
from core.stages.ocr.recognise import Recogniser


class TorchFreeReader:
    def __init__(self, detector: detector_onnx.OnnxDetector, recogniser: Recogniser) -> None:
        self.detector, self.recogniser = detector, recogniser
        self.recognize = recogniser.recognize

    def __repr__(self) -> str:
        return f"TorchFreeReader({self.detector!r}, {self.recogniser!r})"

    def detect(self, rgb: np.ndarray, canvas_size: int) -> tuple[list[list], list[list]]:
        """One image's (upright lines, tilted words), each wrapped in a one-image list as easyocr returns them."""
        x, scale = boxes.network_input(rgb, canvas_size)
        horizontal, free = boxes.boxes_from_maps(self.detector.maps(x)[0], scale)
        return [horizontal], [free]


def exports(folder: Path) -> tuple[Path, tuple[Path, Path]] | None:
    """The detector's and the recogniser's exports for the weights in ``folder``, if prepare made both."""
    detector_weights, recogniser_weights = folder / detector_onnx.WEIGHTS, folder / recogniser_onnx.WEIGHTS
    if not (detector_weights.is_file() and recogniser_weights.is_file()):
        return None
    detector, recogniser = detector_onnx.exported(detector_weights), recogniser_onnx.exported(recogniser_weights)
    return (detector, recogniser) if detector is not None and recogniser is not None else None


def load(detector_file: Path, recogniser_files: tuple[Path, Path]) -> TorchFreeReader:
    return TorchFreeReader(detector_onnx.OnnxDetector(detector_file), Recogniser(*recogniser_files))
