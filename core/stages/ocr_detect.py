"""``easyocr.Reader.detect`` without torch: CRAFT's score maps from ONNX Runtime, then EasyOCR's own post-processing.

Why: importing any part of easyocr runs its ``__init__``, which imports torch and torchvision (~5.5 s of a cold
``m2t predict``). The functions below are vendored from EasyOCR 1.7.2 (Apache-2.0; its CRAFT code is NAVER's,
MIT): ``imgproc.py`` (``resize_aspect_ratio``, ``normalizeMeanVariance``), ``craft_utils.py``
(``getDetBoxes_core`` without the character count, ``adjustResultCoordinates``), ``detection.py`` (``test_net``,
``get_textbox``) and ``utils.py`` (``reformat_input`` for arrays, ``group_text_box``, ``diff``), kept to the code
paths :func:`core.stages.ocr.detect` takes with ``Reader.detect``'s defaults, and otherwise unchanged, so that they
give the same boxes (``tests/test_stages_ocr_torchfree.py`` checks this against easyocr itself).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from core.stages.ocr_onnx import OnnxDetector

# Reader.detect's defaults
MIN_SIZE, TEXT_THRESHOLD, LOW_TEXT, LINK_THRESHOLD, MAG_RATIO = 20, 0.7, 0.4, 0.4, 1.0
SLOPE_THS, YCENTER_THS, HEIGHT_THS, WIDTH_THS, ADD_MARGIN = 0.1, 0.5, 0.5, 0.5, 0.1


def reformat_input(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EasyOCR's ``reformat_input`` for an array: (image, grey). An RGB array is taken as BGR, as EasyOCR does."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), image
    if image.shape[2] == 1:
        grey = np.squeeze(image)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), grey
    if image.shape[2] == 4:
        bgr = cv2.cvtColor(image[:, :, :3], cv2.COLOR_RGB2BGR)
        return bgr, cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    return image, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def resize_aspect_ratio(img: np.ndarray, square_size: int, mag_ratio: float = 1) -> tuple[np.ndarray, float]:
    height, width, channel = img.shape
    target_size = mag_ratio * max(height, width)
    if target_size > square_size:
        target_size = square_size
    ratio = target_size / max(height, width)
    target_h, target_w = int(height * ratio), int(width * ratio)
    proc = cv2.resize(img, (target_w, target_h), interpolation=cv2.INTER_LINEAR)
    target_h32 = target_h + (32 - target_h % 32) if target_h % 32 else target_h
    target_w32 = target_w + (32 - target_w % 32) if target_w % 32 else target_w
    resized = np.zeros((target_h32, target_w32, channel), dtype=np.float32)
    resized[0:target_h, 0:target_w, :] = proc
    return resized, ratio


def normalize_mean_variance(in_img: np.ndarray, mean: tuple[float, ...] = (0.485, 0.456, 0.406),
                            variance: tuple[float, ...] = (0.229, 0.224, 0.225)) -> np.ndarray:
    img = in_img.copy().astype(np.float32)
    img -= np.array([mean[0] * 255.0, mean[1] * 255.0, mean[2] * 255.0], dtype=np.float32)
    img /= np.array([variance[0] * 255.0, variance[1] * 255.0, variance[2] * 255.0], dtype=np.float32)
    return img


def det_boxes(textmap: np.ndarray, linkmap: np.ndarray, text_threshold: float, link_threshold: float,
              low_text: float) -> list[np.ndarray]:
    """craft_utils.getDetBoxes_core: one rotated rectangle per connected text region."""
    linkmap, textmap = linkmap.copy(), textmap.copy()
    img_h, img_w = textmap.shape
    _, text_score = cv2.threshold(textmap, low_text, 1, 0)
    _, link_score = cv2.threshold(linkmap, link_threshold, 1, 0)
    text_score_comb = np.clip(text_score + link_score, 0, 1)
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(text_score_comb.astype(np.uint8), connectivity=4)
    det = []
    for k in range(1, n_labels):
        size = stats[k, cv2.CC_STAT_AREA]
        if size < 10:
            continue
        if np.max(textmap[labels == k]) < text_threshold:
            continue
        segmap = np.zeros(textmap.shape, dtype=np.uint8)
        segmap[labels == k] = 255
        segmap[np.logical_and(link_score == 1, text_score == 0)] = 0  # remove link area
        x, y = stats[k, cv2.CC_STAT_LEFT], stats[k, cv2.CC_STAT_TOP]
        w, h = stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT]
        niter = int(math.sqrt(size * min(w, h) / (w * h)) * 2)
        sx, ex, sy, ey = x - niter, x + w + niter + 1, y - niter, y + h + niter + 1
        sx, sy = max(sx, 0), max(sy, 0)
        ex, ey = (img_w if ex >= img_w else ex), (img_h if ey >= img_h else ey)
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1 + niter, 1 + niter))
        segmap[sy:ey, sx:ex] = cv2.dilate(segmap[sy:ey, sx:ex], kernel)
        np_contours = np.roll(np.array(np.where(segmap != 0)), 1, axis=0).transpose().reshape(-1, 2)
        rectangle = cv2.minAreaRect(np_contours)
        box = cv2.boxPoints(rectangle)
        w, h = np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[1] - box[2])
        box_ratio = max(w, h) / (min(w, h) + 1e-5)
        if abs(1 - box_ratio) <= 0.1:
            left, right = min(np_contours[:, 0]), max(np_contours[:, 0])
            top, bottom = min(np_contours[:, 1]), max(np_contours[:, 1])
            box = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], dtype=np.float32)
        startidx = box.sum(axis=1).argmin()
        det.append(np.array(np.roll(box, 4 - startidx, 0)))
    return det


def adjust_result_coordinates(polys: list[np.ndarray], ratio_w: float, ratio_h: float,
                              ratio_net: int = 2) -> np.ndarray | list:
    if len(polys) > 0:
        polys = np.array(polys)
        for k in range(len(polys)):
            if polys[k] is not None:
                polys[k] *= (ratio_w * ratio_net, ratio_h * ratio_net)
    return polys


def group_text_box(polys: list[np.ndarray], slope_ths: float = 0.1, ycenter_ths: float = 0.5,
                   height_ths: float = 0.5, width_ths: float = 1.0, add_margin: float = 0.05,
                   sort_output: bool = True) -> tuple[list, list]:
    """utils.group_text_box: horizontal boxes merged into lines as [x_min, x_max, y_min, y_max]; others as quads."""
    horizontal_list, free_list, combined_list, merged_list = [], [], [], []
    for poly in polys:
        slope_up = (poly[3] - poly[1]) / np.maximum(10, (poly[2] - poly[0]))
        slope_down = (poly[5] - poly[7]) / np.maximum(10, (poly[4] - poly[6]))
        if max(abs(slope_up), abs(slope_down)) < slope_ths:
            x_max = max([poly[0], poly[2], poly[4], poly[6]])
            x_min = min([poly[0], poly[2], poly[4], poly[6]])
            y_max = max([poly[1], poly[3], poly[5], poly[7]])
            y_min = min([poly[1], poly[3], poly[5], poly[7]])
            horizontal_list.append([x_min, x_max, y_min, y_max, 0.5 * (y_min + y_max), y_max - y_min])
        else:
            height = np.linalg.norm([poly[6] - poly[0], poly[7] - poly[1]])
            width = np.linalg.norm([poly[2] - poly[0], poly[3] - poly[1]])
            margin = int(1.44 * add_margin * min(width, height))
            theta13 = abs(np.arctan((poly[1] - poly[5]) / np.maximum(10, (poly[0] - poly[4]))))
            theta24 = abs(np.arctan((poly[3] - poly[7]) / np.maximum(10, (poly[2] - poly[6]))))
            x1 = poly[0] - np.cos(theta13) * margin
            y1 = poly[1] - np.sin(theta13) * margin
            x2 = poly[2] + np.cos(theta24) * margin
            y2 = poly[3] - np.sin(theta24) * margin
            x3 = poly[4] + np.cos(theta13) * margin
            y3 = poly[5] + np.sin(theta13) * margin
            x4 = poly[6] - np.cos(theta24) * margin
            y4 = poly[7] + np.sin(theta24) * margin
            free_list.append([[x1, y1], [x2, y2], [x3, y3], [x4, y4]])
    if sort_output:
        horizontal_list = sorted(horizontal_list, key=lambda item: item[4])

    new_box: list = []
    for poly in horizontal_list:  # combine boxes of comparable height and y centre into lines
        if len(new_box) == 0:
            b_height, b_ycenter = [poly[5]], [poly[4]]
            new_box.append(poly)
        elif abs(np.mean(b_ycenter) - poly[4]) < ycenter_ths * np.mean(b_height):
            b_height.append(poly[5])
            b_ycenter.append(poly[4])
            new_box.append(poly)
        else:
            b_height, b_ycenter = [poly[5]], [poly[4]]
            combined_list.append(new_box)
            new_box = [poly]
    combined_list.append(new_box)

    for boxes in combined_list:  # merge neighbours within each line
        if len(boxes) == 1:
            box = boxes[0]
            margin = int(add_margin * min(box[1] - box[0], box[5]))
            merged_list.append([box[0] - margin, box[1] + margin, box[2] - margin, box[3] + margin])
            continue
        boxes = sorted(boxes, key=lambda item: item[0])
        merged_box, new_box = [], []
        for box in boxes:
            if len(new_box) == 0:
                b_height, x_max = [box[5]], box[1]
                new_box.append(box)
            elif (abs(np.mean(b_height) - box[5]) < height_ths * np.mean(b_height)) and (
                    (box[0] - x_max) < width_ths * (box[3] - box[2])):
                b_height.append(box[5])
                x_max = box[1]
                new_box.append(box)
            else:
                b_height, x_max = [box[5]], box[1]
                merged_box.append(new_box)
                new_box = [box]
        if len(new_box) > 0:
            merged_box.append(new_box)
        for mbox in merged_box:
            if len(mbox) != 1:
                x_min = min(mbox, key=lambda x: x[0])[0]
                x_max = max(mbox, key=lambda x: x[1])[1]
                y_min = min(mbox, key=lambda x: x[2])[2]
                y_max = max(mbox, key=lambda x: x[3])[3]
                margin = int(add_margin * (min(x_max - x_min, y_max - y_min)))
                merged_list.append([x_min - margin, x_max + margin, y_min - margin, y_max + margin])
            else:
                box = mbox[0]
                margin = int(add_margin * (min(box[1] - box[0], box[3] - box[2])))
                merged_list.append([box[0] - margin, box[1] + margin, box[2] - margin, box[3] + margin])
    return merged_list, free_list


def diff(values: list) -> float:
    return max(values) - min(values)


class Detector:
    """``Reader.detect(img, canvas_size=...)`` with every other argument at its default, on ONNX Runtime."""

    def __init__(self, network: OnnxDetector) -> None:
        self.network = network

    def textboxes(self, image: np.ndarray, canvas_size: int) -> list[np.ndarray]:
        """detection.test_net + get_textbox for one image (poly=False): int32 quads, flattened."""
        resized, target_ratio = resize_aspect_ratio(image, canvas_size, mag_ratio=MAG_RATIO)
        ratio = 1 / target_ratio
        x = np.array([np.transpose(normalize_mean_variance(resized), (2, 0, 1))])
        out = self.network.maps(x)[0]
        boxes = det_boxes(out[:, :, 0], out[:, :, 1], TEXT_THRESHOLD, LINK_THRESHOLD, LOW_TEXT)
        boxes = adjust_result_coordinates(boxes, ratio, ratio)
        return [np.array(box).astype(np.int32).reshape(-1) for box in boxes]

    def detect(self, img: np.ndarray, canvas_size: int = 2560) -> tuple[list[list], list[list]]:
        """One image's (horizontal, free) boxes, each wrapped in a one-image list as EasyOCR returns them."""
        image, _ = reformat_input(img)
        horizontal, free = group_text_box(self.textboxes(image, canvas_size), SLOPE_THS, YCENTER_THS, HEIGHT_THS,
                                          WIDTH_THS, ADD_MARGIN, True)
        horizontal = [i for i in horizontal if max(i[1] - i[0], i[3] - i[2]) > MIN_SIZE]
        free = [i for i in free if max(diff([c[0] for c in i]), diff([c[1] for c in i])) > MIN_SIZE]
        return [horizontal], [free]
