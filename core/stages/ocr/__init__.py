"""Read the text in an image in reading order: EasyOCR's CRAFT detector and english_g2 recogniser.

``read`` is the stage (two detection passes, reading order, keyframes); ``detector_onnx`` and
``recogniser_onnx`` export the networks once at ``m2t prepare``; ``boxes`` and ``recognise`` turn their
outputs into lines of text without torch; ``torchfree`` puts those together into a reader.
"""

from core.stages.ocr.read import (
    COARSE_SIDE,
    MIN_COARSE_LINE_PX,
    MIN_COARSE_SCALE,
    MIN_CONFIDENCE,
    OcrBox,
    OcrReader,
    OcrResult,
    coarse_scale,
    coarse_side_from_env,
    detect,
    load_ocr,
    merge_frame_texts,
    needs_full_pass,
    read_images,
    read_text,
    reading_order,
)

__all__ = [
    "COARSE_SIDE",
    "MIN_COARSE_LINE_PX",
    "MIN_COARSE_SCALE",
    "MIN_CONFIDENCE",
    "OcrBox",
    "OcrReader",
    "OcrResult",
    "coarse_scale",
    "coarse_side_from_env",
    "detect",
    "load_ocr",
    "merge_frame_texts",
    "needs_full_pass",
    "read_images",
    "read_text",
    "reading_order",
]
