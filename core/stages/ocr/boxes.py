"""From CRAFT's score maps to text boxes, and from boxes to lines: the detector's post-processing, without torch.

Why here: the detector network runs on ONNX Runtime (:mod:`core.stages.ocr.detector_onnx`); what turns its two
maps into boxes is a few array operations, written from the CRAFT paper's description (Baek et al., 2019,
"Character Region Awareness for Text Detection"):

1. A pixel belongs to text where the *region* score (how likely a character centre is near) passes ``LOW_TEXT``,
   or where the *affinity* score (how likely two characters belong together) passes ``LINK``.
2. Each connected group of such pixels is one word candidate; it is kept if it is not a speck (``MIN_AREA``) and
   its strongest region score passes ``TEXT`` (a faint smudge of affinity alone is no word).
3. The group, minus pixels that are affinity only, is grown by a margin that scales with its stroke height (the
   score map is tighter than the glyphs), and the smallest rotated rectangle around it is the word's box.

Words are then joined into lines as the recogniser reads a line best: upright boxes whose vertical centres agree
(``SAME_LINE``) and whose heights are alike (``SAME_HEIGHT``) are merged left to right while the gap between them
is under ``WORD_GAP`` of their height, and the merged box gets a small margin (``MARGIN``). Tilted boxes stay
four-cornered and are straightened by the recogniser. The thresholds are the values EasyOCR uses with CRAFT's
published weights, so both readers see the same boxes on the same maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

LOW_TEXT = 0.4  # region score for a pixel to be text
LINK = 0.4  # affinity score for a pixel to join two characters
TEXT = 0.7  # the strongest region score a word must reach
MIN_AREA = 10  # px of the score map: smaller groups are specks
MIN_SIDE = 20  # px of the image: a box whose longer side is shorter is dropped
SQUARE = 0.1  # a rotated box within this of square is taken upright (its angle is meaningless)
SLOPE = 0.1  # a box whose top and bottom edges slope less than this is upright
SAME_LINE = 0.5  # of the line's mean height: how far a box's centre may sit from the line's
SAME_HEIGHT = 0.5  # of the run's mean height: how different a box's height may be to merge with it
WORD_GAP = 0.5  # of a box's height: the widest gap that still joins two boxes into one
MARGIN = 0.1  # of the shorter side: added around each box, so that no glyph edge is cut
MAP_SCALE = 2  # the score maps are half the input's resolution
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


@dataclass(frozen=True)
class Upright:
    """An axis-aligned box in image pixels."""

    left: float
    right: float
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def centre(self) -> float:
        return (self.top + self.bottom) / 2

    def grown(self, by: float) -> Upright:
        return Upright(self.left - by, self.right + by, self.top - by, self.bottom + by)

    def as_list(self) -> list[int]:
        """``[x_min, x_max, y_min, y_max]``, the horizontal-box form the recogniser reads."""
        return [int(self.left), int(self.right), int(self.top), int(self.bottom)]


def network_input(rgb: np.ndarray, canvas: int) -> tuple[np.ndarray, float]:
    """The detector's input for an RGB image no longer than ``canvas`` px: resized (never enlarged), padded with
    black to multiples of 32 (the network halves the size five times), normalised with ImageNet's statistics.
    Returns the (1, 3, H, W) array and the scale from the image to it."""
    height, width = rgb.shape[:2]
    scale = min(canvas, max(height, width)) / max(height, width)
    size = (int(width * scale), int(height * scale))
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR) if size != (width, height) else rgb
    padded = np.zeros((-(-size[1] // 32) * 32, -(-size[0] // 32) * 32, 3), np.float32)
    padded[: size[1], : size[0]] = resized
    return ((padded - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None], scale


def _ordered_corners(corners: np.ndarray) -> np.ndarray:
    """Four corners, clockwise, the one nearest the top-left first."""
    first = int(np.argmin(corners.sum(axis=1)))
    return np.roll(corners, -first, axis=0)


def _word_box(points: np.ndarray) -> np.ndarray:
    """The smallest rotated rectangle around a word's pixels (x, y); upright when it is nearly square."""
    corners = cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32)))
    sides = np.linalg.norm(corners[0] - corners[1]), np.linalg.norm(corners[1] - corners[2])
    if max(sides) / (min(sides) + 1e-5) - 1 <= SQUARE:
        (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
        corners = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float32)
    return _ordered_corners(corners)


def word_boxes(region: np.ndarray, affinity: np.ndarray) -> list[np.ndarray]:
    """Each word's four corners in score-map pixels (steps 1-3 of the module's description)."""
    text, link = region > LOW_TEXT, affinity > LINK
    count, labels, stats, _ = cv2.connectedComponentsWithStats((text | link).astype(np.uint8), connectivity=4)
    link_only = link & ~text
    rows, cols = region.shape
    words = []
    for label in range(1, count):
        left, top, width, height, area = (int(v) for v in stats[label])
        if area < MIN_AREA:
            continue
        window = (slice(top, top + height), slice(left, left + width))
        member = labels[window] == label
        if region[window][member].max() < TEXT:
            continue
        grow = int(2 * math.sqrt(area * min(width, height) / (width * height)))
        # the word's pixels, grown by `grow` within a window that leaves room for the growth
        y0, x0 = max(top - grow, 0), max(left - grow, 0)
        y1, x1 = min(top + height + grow + 1, rows), min(left + width + grow + 1, cols)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        inner = (slice(top - y0, top - y0 + height), slice(left - x0, left - x0 + width))
        mask[inner] = member & ~link_only[window]
        if grow:
            mask = cv2.dilate(mask, np.ones((grow + 1, grow + 1), np.uint8))
        ys, xs = np.nonzero(mask)
        if len(xs):
            words.append(_word_box(np.stack([xs + x0, ys + y0], axis=1)))
    return words


def _slopes(quad: np.ndarray) -> tuple[float, float]:
    (x1, y1), (x2, y2), (x3, y3), (x4, y4) = quad
    return (y2 - y1) / max(10.0, x2 - x1), (y3 - y4) / max(10.0, x3 - x4)


def _straight_with_margin(quad: np.ndarray) -> list[list[float]]:
    """A tilted word's corners pushed outwards along its diagonals by ``MARGIN`` of its shorter side."""
    (x1, y1), (x2, y2), (x3, y3), (x4, y4) = (tuple(map(float, p)) for p in quad)
    pad = int(1.44 * MARGIN * min(math.hypot(x4 - x1, y4 - y1), math.hypot(x2 - x1, y2 - y1)))
    main = abs(math.atan((y1 - y3) / max(10.0, x1 - x3)))  # the top-left to bottom-right diagonal
    anti = abs(math.atan((y2 - y4) / max(10.0, x2 - x4)))  # the top-right to bottom-left diagonal
    dx1, dy1, dx2, dy2 = math.cos(main) * pad, math.sin(main) * pad, math.cos(anti) * pad, math.sin(anti) * pad
    return [[x1 - dx1, y1 - dy1], [x2 + dx2, y2 - dy2], [x3 + dx1, y3 + dy1], [x4 - dx2, y4 + dy2]]


def _rows(boxes: list[Upright]) -> list[list[Upright]]:
    """Upright boxes grouped by vertical centre, top to bottom."""
    rows: list[list[Upright]] = []
    for box in sorted(boxes, key=lambda b: b.centre):
        row = rows[-1] if rows else None
        if row and abs(np.mean([b.centre for b in row]) - box.centre) < SAME_LINE * np.mean([b.height for b in row]):
            row.append(box)
        else:
            rows.append([box])
    return rows


def _runs(row: list[Upright]) -> list[list[Upright]]:
    """One row's boxes, left to right, split wherever the height changes or the gap is wide."""
    runs: list[list[Upright]] = []
    for box in sorted(row, key=lambda b: b.left):
        run = runs[-1] if runs else None
        if run:
            mean_height = float(np.mean([b.height for b in run]))
            alike = abs(mean_height - box.height) < SAME_HEIGHT * mean_height
            if alike and box.left - run[-1].right < WORD_GAP * box.height:
                run.append(box)
                continue
        runs.append([box])
    return runs


def _merged(run: list[Upright]) -> Upright:
    whole = Upright(min(b.left for b in run), max(b.right for b in run), min(b.top for b in run),
                    max(b.bottom for b in run))
    return whole.grown(int(MARGIN * min(whole.right - whole.left, whole.height)))


def lines(quads: list[np.ndarray]) -> tuple[list[list[int]], list[list[list[float]]]]:
    """Words in image pixels to the recogniser's boxes: upright lines ``[x_min, x_max, y_min, y_max]`` and tilted
    words as four corners, each at least ``MIN_SIDE`` px on its longer side."""
    upright: list[Upright] = []
    tilted: list[list[list[float]]] = []
    for quad in quads:
        if max(abs(s) for s in _slopes(quad)) < SLOPE:
            (left, top), (right, bottom) = quad.min(axis=0), quad.max(axis=0)
            upright.append(Upright(float(left), float(right), float(top), float(bottom)))
        else:
            tilted.append(_straight_with_margin(quad))
    merged = [_merged(run) for row in _rows(upright) for run in _runs(row)]
    horizontal = [b.as_list() for b in merged if max(b.right - b.left, b.height) > MIN_SIDE]
    free = [q for q in tilted if max(np.ptp([p[0] for p in q]), np.ptp([p[1] for p in q])) > MIN_SIDE]
    return horizontal, free


def boxes_from_maps(maps: np.ndarray, scale: float) -> tuple[list[list[int]], list[list[list[float]]]]:
    """The detector's (H/2, W/2, 2) maps for an image shown to it at ``scale``: its lines in image pixels."""
    words = word_boxes(maps[:, :, 0], maps[:, :, 1])
    # integer pixels, as the recogniser crops them
    in_image = [np.trunc(w * (MAP_SCALE / scale)).astype(np.int32).astype(np.float64) for w in words]
    return lines(in_image)
