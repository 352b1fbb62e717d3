"""``core.stages.ocr.boxes``: score maps drawn here become the words and lines a reader would expect."""

from __future__ import annotations

import numpy as np

from core.stages.ocr import boxes


def _maps(shape: tuple[int, int], words: list[tuple[int, int, int, int]], links: list[tuple[int, int, int, int]] = ()
          ) -> np.ndarray:
    """(H, W, 2) maps with a strong region score inside each word rectangle (x0, y0, x1, y1) and affinity in links."""
    maps = np.zeros((*shape, 2), np.float32)
    for x0, y0, x1, y1 in words:
        maps[y0:y1, x0:x1, 0] = 0.9
    for x0, y0, x1, y1 in links:
        maps[y0:y1, x0:x1, 1] = 0.9
    return maps


def test_each_strong_region_is_one_word_and_specks_and_faint_smudges_are_not() -> None:
    maps = _maps((100, 200), [(10, 10, 60, 25), (100, 10, 150, 25), (5, 80, 7, 82)])
    maps[60:75, 100:160, 0] = 0.5  # above LOW_TEXT but never reaching TEXT: a smudge
    words = boxes.word_boxes(maps[:, :, 0], maps[:, :, 1])
    assert len(words) == 2
    lefts = sorted(float(w[:, 0].min()) for w in words)
    assert lefts[0] <= 10 and 95 <= lefts[1] <= 100  # grown a little beyond the score map's core


def test_affinity_joins_characters_into_one_word() -> None:
    maps = _maps((60, 200), [(10, 10, 30, 30), (40, 10, 60, 30)], links=[(28, 15, 42, 25)])
    assert len(boxes.word_boxes(maps[:, :, 0], maps[:, :, 1])) == 1
    maps[:, :, 1] = 0
    assert len(boxes.word_boxes(maps[:, :, 0], maps[:, :, 1])) == 2


def test_corners_run_clockwise_from_the_top_left() -> None:
    maps = _maps((100, 200), [(20, 30, 120, 50)])
    (word,) = boxes.word_boxes(maps[:, :, 0], maps[:, :, 1])
    top_left, top_right, bottom_right, bottom_left = word
    assert top_left[0] < top_right[0] and top_left[1] < bottom_left[1] and bottom_right[0] > bottom_left[0]


def _quad(left: float, top: float, right: float, bottom: float) -> np.ndarray:
    return np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float64)


def test_words_on_one_line_merge_and_a_wide_gap_or_another_size_splits() -> None:
    words = [_quad(10, 100, 60, 130), _quad(70, 101, 140, 131),  # "GRAND OPENING": 10 px apart, 30 px tall
             _quad(400, 100, 460, 130),  # far along the same line: its own box
             _quad(150, 102, 170, 112),  # same centre band, a third of the height: another run
             _quad(10, 200, 90, 230)]  # the next line
    horizontal, free = boxes.lines(words)
    assert not free
    assert len(horizontal) == 4
    first = min(horizontal, key=lambda b: (b[2], b[0]))
    assert first[0] < 10 and first[1] > 140  # the two words, with a margin around them


def test_tilted_words_stay_four_cornered_and_grow_outwards() -> None:
    tilted = np.array([[10, 60], [110, 10], [120, 30], [20, 80]], np.float64)
    horizontal, free = boxes.lines([tilted])
    assert not horizontal and len(free) == 1
    (corners,) = free
    assert corners[0][0] < 10 and corners[2][0] > 120  # pushed out at both ends


def test_tiny_boxes_are_dropped() -> None:
    assert boxes.lines([_quad(0, 0, 12, 10)]) == ([], [])


def test_the_network_input_is_padded_to_32_and_never_enlarged() -> None:
    rgb = np.full((100, 130, 3), 255, np.uint8)
    x, scale = boxes.network_input(rgb, canvas=2560)
    assert scale == 1.0 and x.shape == (1, 3, 128, 160)
    x, scale = boxes.network_input(np.full((400, 1000, 3), 255, np.uint8), canvas=500)
    assert scale == 0.5 and x.shape == (1, 3, 224, 512)
    assert x[0, :, 0, 0].min() > 2  # white, normalised with ImageNet's statistics
    assert x[0, :, -1, -1].max() < -1.5  # the padding is black


def test_boxes_from_maps_are_in_image_pixels() -> None:
    maps = _maps((64, 128), [(10, 10, 60, 25)])
    horizontal, _ = boxes.boxes_from_maps(maps, scale=0.5)  # maps at half the input, input at half the image
    (box,) = horizontal
    assert 0 <= box[0] < 40 and 240 < box[1] <= 300  # x from about 4 * 10 to 4 * 60, grown and with a margin
