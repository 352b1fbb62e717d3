"""``easyocr.Reader.recognize`` without torch: crop, resize, pad and normalise each box, run the recogniser, decode.

Why: importing any part of easyocr imports torch and torchvision (~5.5 s of a cold ``m2t predict``). Vendored
from EasyOCR 1.7.2 (Apache-2.0): ``utils.py`` (``get_image_list``, ``four_point_transform``,
``compute_ratio_and_resize``, ``calculate_ratio``, ``CTCLabelConverter.decode_greedy``), ``recognition.py``
(``AlignCollate``, ``NormalizePAD``, ``recognizer_predict``, ``get_text``, ``custom_mean``,
``adjust_contrast_grey``) and ``easyocr.py`` (``Reader.recognize``), kept to the path
``Reader.recognize(grey, horizontal, free, paragraph=False)`` takes on a CPU with its defaults: greedy decoding,
one box at a time (``batch_size`` 1; the int8 layers quantise over the whole batch, so batching would change the
numbers), horizontal boxes before free ones, a second pass with more contrast for results under
``CONTRAST_THS``. The network is :mod:`core.stages.ocr_recogniser_onnx`'s export: features on ONNX Runtime, the
int8 BiLSTMs in numpy (:mod:`core.stages.ocr_quant`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from core.stages import onnx_files
from core.stages.ocr_recogniser_onnx import MODEL_HEIGHT, Tail, load_tail

CONTRAST_THS, ADJUST_CONTRAST = 0.1, 0.5  # Reader.recognize's defaults


def four_point_transform(image: np.ndarray, rect: np.ndarray) -> np.ndarray:
    (tl, tr, br, bl) = rect
    width_a = np.sqrt(((br[0] - bl[0]) ** 2) + ((br[1] - bl[1]) ** 2))
    width_b = np.sqrt(((tr[0] - tl[0]) ** 2) + ((tr[1] - tl[1]) ** 2))
    max_width = max(int(width_a), int(width_b))
    height_a = np.sqrt(((tr[0] - br[0]) ** 2) + ((tr[1] - br[1]) ** 2))
    height_b = np.sqrt(((tl[0] - bl[0]) ** 2) + ((tl[1] - bl[1]) ** 2))
    max_height = max(int(height_a), int(height_b))
    dst = np.array([[0, 0], [max_width - 1, 0], [max_width - 1, max_height - 1], [0, max_height - 1]],
                   dtype="float32")
    return cv2.warpPerspective(image, cv2.getPerspectiveTransform(rect, dst), (max_width, max_height))


def calculate_ratio(width: float, height: float) -> float:
    ratio = width / height
    return 1.0 / ratio if ratio < 1.0 else ratio


def compute_ratio_and_resize(img: np.ndarray, width: int, height: int, model_height: int) -> tuple[np.ndarray, float]:
    # EasyOCR passes PIL's Image.Resampling.LANCZOS (1) to cv2.resize, where 1 is cv2.INTER_LINEAR
    ratio = width / height
    if ratio < 1.0:
        ratio = calculate_ratio(width, height)
        img = cv2.resize(img, (model_height, int(model_height * ratio)), interpolation=cv2.INTER_LINEAR)
    else:
        img = cv2.resize(img, (int(model_height * ratio), model_height), interpolation=cv2.INTER_LINEAR)
    return img, ratio


def get_image_list(horizontal_list: list, free_list: list, img: np.ndarray,
                   model_height: int = MODEL_HEIGHT) -> tuple[list, int]:
    """utils.get_image_list: (box, crop resized to the model's height) per box, and the batch's padded width."""
    image_list = []
    maximum_y, maximum_x = img.shape
    max_ratio_hori, max_ratio_free = 1, 1
    for box in free_list:
        rect = np.array(box, dtype="float32")
        transformed_img = four_point_transform(img, rect)
        ratio = calculate_ratio(transformed_img.shape[1], transformed_img.shape[0])
        if int(model_height * ratio) != 0:
            crop_img, ratio = compute_ratio_and_resize(transformed_img, transformed_img.shape[1],
                                                       transformed_img.shape[0], model_height)
            image_list.append((box, crop_img))
            max_ratio_free = max(ratio, max_ratio_free)
    max_ratio_free = math.ceil(max_ratio_free)
    for box in horizontal_list:
        x_min, x_max = max(0, box[0]), min(box[1], maximum_x)
        y_min, y_max = max(0, box[2]), min(box[3], maximum_y)
        crop_img = img[y_min:y_max, x_min:x_max]
        width, height = x_max - x_min, y_max - y_min
        ratio = calculate_ratio(width, height)
        if int(model_height * ratio) != 0:
            crop_img, ratio = compute_ratio_and_resize(crop_img, width, height, model_height)
            image_list.append(([[x_min, y_min], [x_max, y_min], [x_max, y_max], [x_min, y_max]], crop_img))
            max_ratio_hori = max(ratio, max_ratio_hori)
    max_ratio = max(math.ceil(max_ratio_hori), max_ratio_free)
    max_width = math.ceil(max_ratio) * model_height
    image_list = sorted(image_list, key=lambda item: item[0][0][1])  # by vertical position
    return image_list, max_width


def adjust_contrast_grey(img: np.ndarray, target: float = 0.4) -> np.ndarray:
    high, low = np.percentile(img, 90), np.percentile(img, 10)
    contrast = (high - low) / np.maximum(10, high + low)
    if contrast < target:
        img = img.astype(int)
        ratio = 200. / np.maximum(10, high - low)
        img = (img - low + 25) * ratio
        img = np.maximum(np.full(img.shape, 0), np.minimum(np.full(img.shape, 255), img)).astype(np.uint8)
    return img


def align(crop: np.ndarray, img_w: int, adjust_contrast: float = 0.0) -> np.ndarray:
    """AlignCollate + NormalizePAD for one crop: (1, 1, 64, img_w), right-padded with its last column."""
    image = Image.fromarray(crop)  # 2-D uint8: mode L, as ListDataset makes it
    w, h = image.size
    if adjust_contrast > 0:
        image = Image.fromarray(adjust_contrast_grey(np.array(image.convert("L")), target=adjust_contrast))
    resized_w = min(math.ceil(MODEL_HEIGHT * (w / float(h))), img_w)
    resized = np.asarray(image.resize((resized_w, MODEL_HEIGHT), Image.BICUBIC), dtype=np.float32)
    tensor = (resized / np.float32(255) - np.float32(0.5)) / np.float32(0.5)  # ToTensor, then sub_(0.5).div_(0.5)
    padded = np.empty((1, 1, MODEL_HEIGHT, img_w), np.float32)
    padded[0, 0, :, :resized_w] = tensor
    padded[0, 0, :, resized_w:] = tensor[:, resized_w - 1:resized_w]
    return padded


def custom_mean(x: np.ndarray) -> float:
    return x.prod() ** (2.0 / np.sqrt(len(x)))


def decode_greedy(indices: np.ndarray, characters: list[str]) -> str:
    """CTCLabelConverter.decode_greedy for one sequence: repeats collapsed, blanks (index 0) dropped."""
    keep = np.insert(~(indices[1:] == indices[:-1]), 0, True) & (indices != 0)
    return "".join(np.array(characters)[indices[keep.nonzero()]])


class Recogniser:
    """``Reader.recognize(grey, horizontal, free, paragraph=False)`` on the exported recogniser."""

    def __init__(self, onnx_file: Path, int8_file: Path) -> None:
        self.path = Path(onnx_file)
        self.session = onnx_files.session(self.path)
        self.tail: Tail = load_tail(int8_file)
        self.characters = ["[blank]", *self.tail.characters]

    def __repr__(self) -> str:
        return f"Recogniser({self.path.name!r})"

    def predict(self, image: np.ndarray) -> tuple[str, float]:
        """recognizer_predict for a batch of one: masked, renormalised probabilities, greedy text, confidence."""
        probs = onnx_files.softmax(self.tail(self.session.run(None, {"image": image})[0]))  # (1, T, classes)
        probs[:, :, self.tail.ignore_idx] = 0.0
        probs = probs / np.expand_dims(probs.sum(axis=2), axis=-1)
        values, indices = probs.max(axis=2)[0], probs.argmax(axis=2)[0]
        text = decode_greedy(indices, self.characters)
        max_probs = values[indices != 0]
        return text, custom_mean(max_probs if len(max_probs) > 0 else np.array([0]))

    def get_text(self, image_list: list, img_w: int) -> list[tuple[Any, str, float]]:
        """recognition.get_text: a first pass, then a contrast-adjusted one for results under CONTRAST_THS."""
        result = []
        for box, crop in image_list:
            text, confidence = self.predict(align(crop, img_w))
            if confidence < CONTRAST_THS:
                text2, confidence2 = self.predict(align(crop, img_w, ADJUST_CONTRAST))
                if not confidence > confidence2:
                    text, confidence = text2, confidence2
            result.append((box, text, confidence))
        return result

    def recognize(self, img_cv_grey: np.ndarray, horizontal_list: list, free_list: list,
                  paragraph: bool = False) -> list[tuple[Any, str, float]]:
        """Horizontal boxes first, then free ones, each alone with its own padded width, as on EasyOCR's CPU path."""
        if paragraph:
            raise ValueError("the torch-free recogniser reads boxes, not paragraphs")
        result = []
        for h_list, f_list in [([b], []) for b in horizontal_list] + [([], [b]) for b in free_list]:
            image_list, max_width = get_image_list(h_list, f_list, img_cv_grey)
            result += self.get_text(image_list, int(max_width))
        return result
