import pytest

from core.devtools.synthetic import render_text_image
from core.eval.metrics import sample_cer
from core.stages.ocr import OcrBox, read_images, read_text, reading_order
from tests.conftest import POSTER_TEXT


def _box(x: float, y: float, text: str, w: float = 50, h: float = 20) -> OcrBox:
    return OcrBox(box=[[x, y], [x + w, y], [x + w, y + h], [x, y + h]], text=text, confidence=0.9)


def test_reading_order_groups_lines_then_left_to_right():
    boxes = [_box(200, 52, "world"), _box(10, 100, "second"), _box(10, 50, "hello"), _box(120, 101, "line")]
    lines = reading_order(boxes)
    assert [[b.text for b in line] for line in lines] == [["hello", "world"], ["second", "line"]]
    assert reading_order([]) == []


@pytest.mark.slow
def test_poster_text_is_read_with_low_cer(ocr_reader, poster_path):
    from PIL import Image

    result = read_text(ocr_reader, Image.open(poster_path))
    assert sample_cer(result.text, POSTER_TEXT) <= 3.0, result.text
    assert all(0 <= b.confidence <= 1 and len(b.box) == 4 for b in result.boxes)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "fg", "bg", "size"),
    [
        ("Grand Opening Friday at Noon", (255, 255, 255), (20, 40, 120), 44),
        ("Fresh Bagels Daily", (150, 20, 20), (250, 250, 240), 60),
    ],
)
def test_varied_colours_and_sizes(ocr_reader, text, fg, bg, size):
    image = render_text_image(text, fg=fg, bg=bg, font_size=size)
    assert sample_cer(read_text(ocr_reader, image).text, text) <= 3.0


@pytest.mark.slow
def test_keyframes_do_not_repeat_lines(ocr_reader):
    frame = render_text_image("Limited Edition")
    result = read_images(ocr_reader, [frame, frame])
    assert result.text.lower().count("limited") == 1
