"""``core.stages.ocr.recognise``: crops, scaling, padding, contrast and CTC decoding on arrays written here."""

from __future__ import annotations

import numpy as np

from core.stages.ocr import recognise
from core.stages.ocr.recogniser_onnx import Charset

CHARSET = Charset(characters="abc", masked=())


def _probs(steps: list[int], sure: float = 0.9) -> np.ndarray:
    probs = np.full((len(steps), 4), (1 - sure) / 3, np.float32)
    probs[np.arange(len(steps)), steps] = sure
    return probs


def test_greedy_ctc_merges_repeats_and_drops_blanks() -> None:
    text, confidence = recognise.greedy_ctc(_probs([1, 1, 0, 1, 2, 2, 0, 3]), CHARSET)
    assert text == "aabc"  # a blank between the two a's keeps both
    assert 0 < confidence < 0.9


def test_confidence_does_not_fall_with_length_alone() -> None:
    short = recognise.greedy_ctc(_probs([1, 2]), CHARSET)[1]
    long = recognise.greedy_ctc(_probs([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1]), CHARSET)[1]
    assert long > 0.5 * short  # a plain product would be 0.9 ** 16 = 0.19 against 0.81


def test_all_blank_reads_nothing_with_no_confidence() -> None:
    assert recognise.greedy_ctc(_probs([0, 0, 0]), CHARSET) == ("", 0.0)


def test_a_line_is_scaled_to_64_px_and_padded_with_its_last_column() -> None:
    crop = np.zeros((20, 50), np.uint8)
    crop[:, -1] = 255
    x = recognise.network_input(crop)
    assert x is not None and x.shape == (1, 1, 64, 192)  # 50 / 20 * 64 = 160, padded to 3 * 64
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert np.all(x[0, 0, :, 170:] == x[0, 0, :, 159:160])  # the padding repeats the edge, no blank margin


def test_an_empty_crop_reads_nothing() -> None:
    assert recognise.network_input(np.zeros((0, 10), np.uint8)) is None


def test_a_flat_crop_is_stretched_and_a_contrasty_one_left_alone() -> None:
    flat = np.tile(np.linspace(110, 150, 40).astype(np.uint8), (10, 1))  # a grey-on-grey ramp
    out = recognise.stretched(flat)
    assert int(out.max()) - int(out.min()) > 100
    sharp = np.zeros((10, 40), np.uint8)
    sharp[:, 20:] = 255
    assert recognise.stretched(sharp) is sharp


def test_a_tilted_quad_is_warped_upright_at_its_own_size() -> None:
    grey = np.zeros((100, 100), np.uint8)
    out = recognise.straightened(grey, [[10, 40], [70, 10], [80, 30], [20, 60]])
    assert out.shape[1] > out.shape[0]  # wider than tall: a word along its baseline
