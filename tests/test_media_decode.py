import io

import numpy as np
import pytest
from PIL import Image

from core.errors import MediaError
from core.media.decode import SAMPLE_RATE, load_media


def test_image_from_path_and_from_bytes(poster_path):
    from_path = load_media(poster_path)
    from_bytes = load_media(poster_path.read_bytes(), filename="poster.png")
    assert from_path.kind == from_bytes.kind == "image"
    assert from_path.images[0].size == from_bytes.images[0].size == (800, 450)
    assert from_path.audio is None


def test_huge_photo_is_scaled_down_for_ocr():
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), "white").save(buf, format="JPEG")
    media = load_media(buf.getvalue(), filename="big.jpg")
    assert max(media.images[0].size) == 1600


def test_animated_gif_gives_keyframes():
    frames = [Image.new("RGB", (64, 64), (i * 20, 0, 0)) for i in range(10)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    media = load_media(buf.getvalue(), filename="anim.gif")
    assert media.kind == "gif"
    assert len(media.images) == 3
    reds = [im.getpixel((0, 0))[0] for im in media.images]
    assert reds == sorted(reds) and reds[0] != reds[-1]  # first, middle and last, in order


def test_video_gives_keyframes_and_16k_mono_audio(video_path, speech_path):
    media = load_media(video_path)
    assert media.kind == "video"
    assert 1 <= len(media.images) <= 3
    assert media.audio is not None and media.audio.dtype == np.float32
    speech = load_media(speech_path)
    assert speech.kind == "audio" and not speech.images
    # The mp4's AAC track holds the same speech: the same length within the padding of one AAC frame.
    assert abs(media.audio_seconds - speech.audio_seconds) < 0.2 or media.audio_seconds >= speech.audio_seconds
    assert speech.audio_seconds > 2.0
    assert len(speech.audio) == pytest.approx(speech.duration * SAMPLE_RATE, rel=0.01)


def test_dump_field_with_relative_local_paths(poster_path):
    field = f"[Photo(previewUrl='{poster_path.name}', fullUrl='missing.png')]"
    media = load_media(field, base_dir=poster_path.parent)
    assert media.kind == "image"
    assert any("missing.png" in e for e in media.errors)  # full URL dead, preview used, failure recorded


def test_url_fetch_and_dead_url(media_server):
    base, _ = media_server
    assert load_media(f"{base}/poster.png").kind == "image"
    with pytest.raises(MediaError, match="HTTP 404"):
        load_media(f"{base}/gone.jpg")
    with pytest.raises(MediaError, match="could not fetch"):
        load_media("http://127.0.0.1:9/nothing.jpg")  # port 9: nothing listens


def test_url_over_size_cap_is_refused(media_server, monkeypatch):
    base, routes = media_server
    routes["/huge.jpg"] = (200, b"\xff" * 5000, "image/jpeg")
    from core.media import fetch

    with pytest.raises(MediaError, match="limit"):
        fetch.fetch_bytes(f"{base}/huge.jpg", max_bytes=1000)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.wav", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "broken.png", "not a readable image"),
        (b"hello", "notes.txt", "unsupported format"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt " + b"\x00" * 8, "short.wav", "cannot decode"),
        (b"\x00\x01\x02" * 100, "mystery", "not a supported"),
    ],
)
def test_bad_input_gives_a_clear_media_error(data, name, message):
    with pytest.raises(MediaError, match=message):
        load_media(data, filename=name)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        load_media(tmp_path / "nope.jpg")
    with pytest.raises(MediaError, match="folder"):
        load_media(tmp_path)
