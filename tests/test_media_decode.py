import io

import numpy as np
import pytest
from PIL import Image

from core.errors import MediaError, UserError
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


# --------------------------------------------------------------------------- budgets (issue 12/15)

import resource  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import av  # noqa: E402
from PIL import ImageDraw  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def png_declaring(width: int, height: int) -> bytes:
    """A real PNG whose header declares ``width`` x ``height`` (a decompression bomb costs 70 bytes to make):
    a 1x1 PNG with its IHDR dimensions patched and the chunk CRC recomputed."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """Silent 8-bit mono PCM: 301 s is 2.4 MB, cheap to write and to refuse."""
    n = int(seconds * rate)
    header = b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8)
    return header + b"data" + struct.pack("<I", n) + b"\x80" * n


def mp3_understating_its_length(seconds: float = 10.0) -> bytes:
    """A real MP3 whose Info (Xing) header says 5 frames (0.2 s) while the file holds ``seconds`` of audio:
    the header check passes it, only counting while decoding can stop it."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=16000)
        stream.layout = "mono"
        for i in range(int(seconds * 10)):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), dtype=np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1600
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = bytearray(buf.getvalue())
    tag = max(data.find(b"Info"), data.find(b"Xing"))
    assert tag > 0 and struct.unpack(">I", data[tag + 4 : tag + 8])[0] & 1  # the frame count is present
    data[tag + 8 : tag + 12] = struct.pack(">I", 5)
    return bytes(data)


@pytest.mark.parametrize(
    ("width", "height", "shown"),
    [
        (30000, 30000, "900 MP"),  # above PIL's own error threshold: DecompressionBombError, not an OSError
        (10000, 10000, "100 MP"),  # between PIL's warning and error thresholds: the warning becomes the error
        (8000, 6000, "8000x6000 (48 MP)"),  # under PIL's thresholds: our cap, from the header
    ],
)
def test_pixel_bombs_are_refused_from_the_header_in_one_line(width, height, shown):
    with pytest.raises(MediaError) as caught:
        load_media(png_declaring(width, height), filename="bomb.png")
    message = str(caught.value)
    assert "\n" not in message and shown in message and "M2T_MAX_PIXELS" in message
    # Refused before decoding anything: the file holds one pixel's data, so a decoder that had started would
    # have failed on the missing rows (next test) instead of naming the size the header declares.


def test_a_declared_size_within_the_cap_reaches_the_decoder(monkeypatch):
    monkeypatch.setenv("M2T_MAX_PIXELS", str(2000 * 2000))
    with pytest.raises(MediaError, match=r"^bomb.png: not a readable image \(OSError\)"):
        load_media(png_declaring(1000, 1000), filename="bomb.png")  # one pixel of data for a million


def test_pixel_cap_follows_the_environment(monkeypatch):
    buf = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(buf, format="PNG")
    assert load_media(buf.getvalue(), filename="ok.png").kind == "image"
    monkeypatch.setenv("M2T_MAX_PIXELS", "10000")
    with pytest.raises(MediaError, match=r"200x100 \(0.0 MP\), over the 0.0 MP limit"):
        load_media(buf.getvalue(), filename="small-cap.png")
    monkeypatch.setenv("M2T_MAX_PIXELS", "lots")
    with pytest.raises(UserError, match="M2T_MAX_PIXELS must be a number"):
        load_media(buf.getvalue(), filename="typo.png")


def _big_gif(path: Path, side: int, frames: int) -> Path:
    """An animated GIF of ``frames`` distinct ``side`` x ``side`` frames (flat shapes: small file, fast to write)."""
    palette = [c for j in range(256) for c in (j, 255 - j, (j * 7) % 256)]
    images = []
    for i in range(frames):
        im = Image.new("P", (side, side), 0)
        im.putpalette(palette)
        draw = ImageDraw.Draw(im)
        draw.rectangle((i * side // frames // 2, 0, i * side // frames // 2 + side // 4, side // 3), fill=i % 250 + 1)
        images.append(im)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=50)
    return path


_MEASURE = """
import resource, sys
from core.media.decode import load_media
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
media = load_media(data, filename="big.gif")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(media.images), (after - before) / 1024, *media.errors, sep="|")
"""


@pytest.mark.slow
def test_a_gif_with_many_large_frames_is_decoded_frame_by_frame(tmp_path):
    """40 frames of 1500x1500: copying every frame first (the old way) grew the peak RSS by ~370 MB;
    streaming keeps a few frames, measured as the peak RSS growth of a fresh process (Pillow allocates
    outside Python's allocator, so tracemalloc would not see it)."""
    gif = _big_gif(tmp_path / "big.gif", 1500, 40)
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(gif)], capture_output=True, text=True, cwd=ROOT,
                         check=True, timeout=120)
    count, grown_mb, *notes = out.stdout.strip().split("|")
    assert int(count) == 3 and not notes
    assert float(grown_mb) < 100, f"peak RSS grew {grown_mb} MB decoding the GIF"


def test_a_long_animation_takes_keyframes_from_the_frames_in_its_budget(tmp_path, monkeypatch):
    gif = _big_gif(tmp_path / "long.gif", 100, 60)
    monkeypatch.setenv("M2T_MAX_PIXELS", str(100 * 100))  # 25 full-size frames' worth: frames 1-25 are used
    media = load_media(gif)
    assert media.kind == "gif" and len(media.images) == 3
    assert any("first 25 of 60 frames" in note for note in media.errors)


def test_a_long_silent_wav_is_refused_from_its_header():
    with pytest.raises(MediaError) as caught:
        load_media(wav_bytes(301), filename="long.wav")
    # "is 301 s long" comes only from the header check; a refusal while decoding says "runs past the limit"
    # (as for the MP3 whose header understates its length, below).
    assert str(caught.value) == "long.wav: the audio is 301 s long, over the 300 s limit (M2T_MAX_AUDIO_S)"
    assert load_media(wav_bytes(299), filename="ok.wav").audio_seconds == pytest.approx(299, abs=0.1)


def test_audio_that_outruns_its_header_is_stopped_while_decoding(monkeypatch):
    data = mp3_understating_its_length(10.0)
    monkeypatch.setenv("M2T_MAX_AUDIO_S", "2")
    usage_before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    with pytest.raises(MediaError, match=r"liar.mp3: the audio runs past the 2 s limit \(M2T_MAX_AUDIO_S\)"):
        load_media(data, filename="liar.mp3")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_utime - usage_before < 2.0
    monkeypatch.setenv("M2T_MAX_AUDIO_S", "20")
    assert load_media(data, filename="liar.mp3").audio_seconds == pytest.approx(10.0, abs=0.2)


def test_video_duration_and_frame_size_are_checked_before_decoding(video_path, monkeypatch):
    monkeypatch.setenv("M2T_MAX_VIDEO_S", "1")
    with pytest.raises(MediaError, match=r"clip.mp4: the video is \d+ s long, over the 1 s limit \(M2T_MAX_VIDEO_S\)"):
        load_media(video_path)
    monkeypatch.delenv("M2T_MAX_VIDEO_S")
    monkeypatch.setenv("M2T_MAX_AUDIO_S", "1")
    with pytest.raises(MediaError, match=r"the video.s sound is \d+ s long, over the 1 s limit \(M2T_MAX_AUDIO_S\)"):
        load_media(video_path)
    monkeypatch.delenv("M2T_MAX_AUDIO_S")
    monkeypatch.setenv("M2T_MAX_PIXELS", "1000")
    with pytest.raises(MediaError, match=r"the video frame is 800x450"):
        load_media(video_path)


def test_unreadable_paths_are_one_line(tmp_path):
    with pytest.raises(MediaError, match="cannot read this file"):
        load_media(tmp_path / ("x" * 300 + ".png"))  # longer than a file name may be
