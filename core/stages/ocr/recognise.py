"""Read the text in each box: crop, straighten, scale to the recogniser's height, pad, run it, decode.

Why here: easyocr's reader imports torch; the recogniser itself runs on ONNX Runtime
(:mod:`core.stages.ocr.recogniser_onnx`) and what surrounds it is image handling and a CTC decode:

* **crop**: an upright line is cut out of the grey image as it is; a tilted word is warped onto an upright
  rectangle as long and as tall as its sides;
* **scale and pad**: the crop is scaled to the network's 64 px height, keeping its aspect ratio, and padded on
  the right to the next multiple of 64 px by repeating its last column (a blank margin would read as a gap);
  pixels go to [-1, 1];
* **decode**: CTC's greedy reading: the most likely class at each step, repeats merged, blanks dropped. Classes
  outside English are masked before the choice. The confidence is the product of the chosen steps'
  probabilities raised to ``2 / sqrt(steps)``, so a long line is not punished for its length;
* **second look**: a box read with confidence under ``RETRY_BELOW`` is read again with its contrast stretched
  (faint grey-on-grey text) and the better reading kept.

Boxes are read one at a time: padding a short word to a long line's width changes what the LSTMs see.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.stages import onnx_files
from core.stages.ocr.recogniser_onnx import MODEL_HEIGHT, Charset, read_charset

RETRY_BELOW = 0.1  # a first reading this unsure is read again with more contrast
FLAT = 0.5  # a crop whose (p90 - p10) / (p90 + p10) is under this counts as low contrast


def inside(box: list[int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """An upright ``[x_min, x_max, y_min, y_max]`` box clipped to an image of ``shape`` (a margin may overhang)."""
    left, right, top, bottom = box
    return max(0, left), min(right, shape[1]), max(0, top), min(bottom, shape[0])


def upright_crop(grey: np.ndarray, box: list[int]) -> np.ndarray:
    left, right, top, bottom = inside(box, grey.shape)
    return grey[top:bottom, left:right]


def straightened(grey: np.ndarray, corners: list[list[float]]) -> np.ndarray:
    """A tilted quadrilateral (clockwise from top-left) warped onto an upright rectangle of its own size."""
    quad = np.asarray(corners, np.float32)
    top, bottom = np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[2] - quad[3])
    left, right = np.linalg.norm(quad[3] - quad[0]), np.linalg.norm(quad[2] - quad[1])
    width, height = max(int(top), int(bottom)), max(int(left), int(right))
    target = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
    return cv2.warpPerspective(grey, cv2.getPerspectiveTransform(quad, target), (width, height))


def stretched(crop: np.ndarray) -> np.ndarray:
    """More contrast for a flat crop: its 10th..90th percentile spread onto most of 0..255."""
    low, high = np.percentile(crop, 10), np.percentile(crop, 90)
    if (high - low) / max(10.0, high + low) >= FLAT:
        return crop
    spread = 200.0 / max(10.0, high - low)
    return np.clip((crop.astype(np.float64) - low + 25) * spread, 0, 255).astype(np.uint8)


def network_input(crop: np.ndarray) -> np.ndarray | None:
    """(1, 1, 64, W) in [-1, 1], W a multiple of 64; None for a crop too thin to read."""
    height, width = crop.shape[:2]
    if not height or not width:
        return None
    scaled_width = int(MODEL_HEIGHT * max(width / height, height / width))
    if scaled_width < 1:
        return None
    if width >= height:  # a line: the network's height, its width in proportion
        scaled = cv2.resize(crop, (scaled_width, MODEL_HEIGHT), interpolation=cv2.INTER_LINEAR)
    else:  # taller than wide (a single glyph, a vertical strip): squeezed into one 64 px square
        scaled = cv2.resize(crop, (MODEL_HEIGHT, MODEL_HEIGHT), interpolation=cv2.INTER_LINEAR)
    padded_width = math.ceil(scaled.shape[1] / MODEL_HEIGHT) * MODEL_HEIGHT
    padded = np.pad(scaled, ((0, 0), (0, padded_width - scaled.shape[1])), mode="edge")
    return (padded.astype(np.float32) / 127.5 - 1.0)[None, None]


def greedy_ctc(probs: np.ndarray, charset: Charset) -> tuple[str, float]:
    """One sequence's (T, classes) probabilities to its text and confidence (see the module's note)."""
    best = probs.argmax(axis=1)
    kept = (best != 0) & np.concatenate([[True], best[1:] != best[:-1]])
    text = "".join(charset.characters[i - 1] for i in best[kept])
    chosen = probs.max(axis=1)[best != 0]
    if not len(chosen):
        return text, 0.0
    return text, float(np.prod(chosen) ** (2.0 / math.sqrt(len(chosen))))


class Recogniser:
    """Reads boxes from a grey image with the exported recogniser."""

    def __init__(self, onnx_file: Path, charset_file: Path) -> None:
        self.path = Path(onnx_file)
        self.session = onnx_files.session(self.path)
        self.charset = read_charset(charset_file)
        self.masked = list(self.charset.masked)

    def __repr__(self) -> str:
        return f"Recogniser({self.path.name!r})"

    def read_crop(self, crop: np.ndarray) -> tuple[str, float]:
        x = network_input(crop)
        if x is None:
            return "", 0.0
        probs = onnx_files.softmax(self.session.run(None, {"image": x})[0])[0]
        probs[:, self.masked] = 0.0
        probs /= probs.sum(axis=1, keepdims=True)
        return greedy_ctc(probs, self.charset)

    def read(self, crop: np.ndarray) -> tuple[str, float]:
        text, confidence = self.read_crop(crop)
        if confidence < RETRY_BELOW:
            again = self.read_crop(stretched(crop))
            if again[1] >= confidence:
                return again
        return text, confidence

    def recognize(self, grey: np.ndarray, horizontal: list, free: list,
                  paragraph: bool = False) -> list[tuple[Any, str, float]]:
        """``(corners, text, confidence)`` per box: upright lines top to bottom, then tilted words."""
        if paragraph:
            raise ValueError("the torch-free recogniser reads boxes, not paragraphs")
        out = []
        for box in sorted(horizontal, key=lambda b: b[2]):
            left, right, top, bottom = inside(box, grey.shape)
            corners = [[left, top], [right, top], [right, bottom], [left, bottom]]
            out.append((corners, *self.read(upright_crop(grey, box))))
        for corners in free:
            out.append((corners, *self.read(straightened(grey, corners))))
        return out
