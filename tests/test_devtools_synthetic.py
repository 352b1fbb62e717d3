"""Synthetic data is deterministic, well-formed and usable by the pipeline's readers."""

from __future__ import annotations

import csv
import math
import re
import statistics
import wave
from datetime import datetime
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops

from core.devtools.synthetic import (
    BRANDS,
    TWEET_COLUMNS,
    WORDS,
    main,
    make_asr_set,
    make_caption_set,
    make_ocr_set,
    make_tweet_set,
    make_video,
    render_text_image,
    speak,
)
from core.errors import UserError
from core.stages.prompt import likes_bucket

MEDIA_RE = re.compile(r"^\[Photo\(previewUrl='(images/[^']+\.png)', fullUrl='(images/[^']+\.png)'\)\]$")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


# ------------------------------------------------------------------ images


def test_render_text_image_is_deterministic_and_drawn():
    a = render_text_image("Summer sale 20% off", size=(320, 180), font_size=40, seed=3)
    b = render_text_image("Summer sale 20% off", size=(320, 180), font_size=40, seed=3)
    assert a.size == (320, 180) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()
    blank = Image.new("RGB", a.size, (245, 240, 230))
    assert ImageChops.difference(a, blank).getbbox() is not None
    other_text = render_text_image("Winter sale", size=(320, 180), font_size=40, seed=3)
    assert other_text.tobytes() != a.tobytes()


def test_long_text_shrinks_to_fit():
    text = " ".join(WORDS[:30])
    image = render_text_image(text, size=(300, 120), font_size=60, seed=1)
    frame_only = render_text_image("", size=(300, 120), font_size=60, seed=1)
    # Pixels that differ from the empty poster are glyphs; they must stay clear of the edges
    # (at 60 px, 30 words would need ~10 lines and be cut off without shrinking).
    left, top, right, bottom = ImageChops.difference(image, frame_only).getbbox()
    assert left >= 10 and top >= 10 and right <= 290 and bottom <= 110


def test_unknown_font_is_a_user_error():
    with pytest.raises(UserError):
        render_text_image("x", font="NoSuchFont-Regular")


def test_named_font_is_used():
    a = render_text_image("Font check", font="DejaVuSerif")
    b = render_text_image("Font check", font="DejaVuSans.ttf")
    assert a.tobytes() != b.tobytes()


# ------------------------------------------------------------------ OCR / caption sets


def test_ocr_set_deterministic_and_well_formed(tmp_path):
    first = make_ocr_set(tmp_path / "a", n=6, seed=4)
    second = make_ocr_set(tmp_path / "b", n=6, seed=4)
    assert first.read_bytes() == second.read_bytes()
    assert _header(first) == ["path", "text"]
    rows = _rows(first)
    assert len(rows) == 6
    for row in rows:
        assert (first.parent / row["path"]).read_bytes() == (second.parent / row["path"]).read_bytes()
        assert all(word.lower() in WORDS for word in row["text"].split())
    assert make_ocr_set(tmp_path / "c", n=6, seed=5).read_bytes() != first.read_bytes()


def test_caption_set(tmp_path):
    path = make_caption_set(tmp_path, n=8, seed=0)
    rows = _rows(path)
    assert _header(path) == ["path", "caption"]
    assert len(rows) == 8
    pattern = re.compile(r"^an? (\w+) (circle|square|triangle|star) on a (white|gray|black) background$")
    for row in rows:
        match = pattern.match(row["caption"])
        assert match, row["caption"]
        assert match.group(1) != match.group(3)
        assert Image.open(path.parent / row["path"]).size == (320, 240)


# ------------------------------------------------------------------ tweet set


def test_tweet_set_deterministic_disjoint_and_well_formed(tmp_path):
    train, test = make_tweet_set(tmp_path / "a", n_train=24, n_test=6, seed=7)
    train2, test2 = make_tweet_set(tmp_path / "b", n_train=24, n_test=6, seed=7)
    assert train.read_bytes() == train2.read_bytes()
    assert test.read_bytes() == test2.read_bytes()
    other_train, _ = make_tweet_set(tmp_path / "c", n_train=24, n_test=6, seed=8)
    assert other_train.read_bytes() != train.read_bytes()

    assert _header(train) == list(TWEET_COLUMNS) == _header(test)
    train_rows, test_rows = _rows(train), _rows(test)
    assert (len(train_rows), len(test_rows)) == (24, 6)
    train_ids = {r["id"] for r in train_rows}
    test_ids = {r["id"] for r in test_rows}
    assert len(train_ids) == 24 and len(test_ids) == 6
    assert not train_ids & test_ids

    for row in train_rows + test_rows:
        match = MEDIA_RE.match(row["media"])
        assert match, row["media"]
        assert match.group(1) == match.group(2)
        assert (train.parent / match.group(1)).is_file()
        date = datetime.strptime(row["date"], "%Y-%m-%d %H:%M:%S")
        assert 2020 <= date.year <= 2023
        assert int(row["likes"]) >= 0
        assert row["content"].strip()
        assert row["username"] and row["inferred company"]


def test_tweet_set_statistics_at_default_size(tmp_path):
    train, test = make_tweet_set(tmp_path, seed=0)
    rows = _rows(train) + _rows(test)
    assert len(rows) == 360
    likes = [int(r["likes"]) for r in rows]
    assert 35 <= statistics.median(likes) <= 140  # log-normal around 70
    assert max(likes) > 10 * statistics.median(likes)  # skewed
    contents = [r["content"] for r in rows]
    assert any("<hyperlink>" in c for c in contents)
    assert any("<mention>" in c for c in contents)
    assert any("<hyperlink>" not in c and "<mention>" not in c for c in contents)
    assert len({r["username"] for r in rows}) >= 3
    assert {datetime.strptime(r["date"], "%Y-%m-%d %H:%M:%S").year for r in rows} == {2020, 2021, 2022, 2023}
    # References are templated from visible facts: the brand's product and the likes bucket.
    brands = {b.username: b for b in BRANDS}
    openers = {
        "very low": (),
        "low": (),
        "medium": ("Have you tried", "Your new favourite"),
        "high": ("Big news", "You asked"),
        "very high": ("Big news", "You asked"),
    }
    for row in rows:
        brand = brands[row["username"]]
        assert row["inferred company"] == brand.company
        # Case-insensitive: brands whose voice is all lowercase write their facts in lowercase too.
        assert any(product.lower() in row["content"].lower() for product in brand.products), row["content"]
        bucket = likes_bucket(int(row["likes"]))
        if openers[bucket]:
            assert any(opener.lower() in row["content"].lower() for opener in openers[bucket]), row["content"]
        else:
            assert brand.name.lower() in row["content"].lower()


# ------------------------------------------------------------------ speech and video


def _wav_info(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path)) as wav:
        return (
            wav.getframerate(),
            wav.getnchannels(),
            wav.getsampwidth(),
            wav.getnframes() / wav.getframerate(),
        )


def test_speak_writes_16k_mono_wav(tmp_path):
    path = speak("The quick brown fox jumps over the lazy dog.", tmp_path / "fox.wav")
    rate, channels, width, seconds = _wav_info(path)
    assert (rate, channels, width) == (16_000, 1, 2)
    assert 1.0 < seconds < 6.0
    with wave.open(str(path)) as wav:
        frames = wav.readframes(wav.getnframes())
    assert any(frames)  # not silence
    again = speak("The quick brown fox jumps over the lazy dog.", tmp_path / "fox2.wav")
    assert again.read_bytes() == path.read_bytes()


def test_speak_rejects_empty_text(tmp_path):
    with pytest.raises(UserError):
        speak("   ", tmp_path / "x.wav")


def test_asr_set(tmp_path):
    path = make_asr_set(tmp_path, n=2, seed=1)
    assert _header(path) == ["audio", "text"]
    rows = _rows(path)
    assert len(rows) == 2
    for row in rows:
        rate, channels, _, seconds = _wav_info(path.parent / row["audio"])
        assert rate == 16_000 and channels == 1 and seconds > 1.0
        assert row["text"].endswith(".")


def test_video_has_video_and_audio_streams(tmp_path):
    wav = speak("one two three", tmp_path / "a.wav")
    images = [render_text_image(f"frame {i}", size=(321, 181), seed=i) for i in range(3)]
    path = make_video(tmp_path / "v.mp4", images, fps=4, seconds_per_image=0.5, audio_wav=wav)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        frames = list(container.decode(video=0))
    assert len(frames) == 3 * 2
    assert (frames[0].width, frames[0].height) == (320, 180)
    _, _, _, audio_seconds = _wav_info(wav)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert math.isclose(float(stream.duration * stream.time_base), audio_seconds, abs_tol=0.1)


def test_video_without_audio(tmp_path):
    path = make_video(tmp_path / "silent.mp4", [render_text_image("only video")], fps=2)
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1
        assert len(container.streams.audio) == 0
    with pytest.raises(UserError):
        make_video(tmp_path / "none.mp4", [])


# ------------------------------------------------------------------ CLI


def test_cli_writes_a_set(tmp_path, capsys):
    assert main(["caption", str(tmp_path), "--n", "3", "--seed", "2"]) == 0
    out = capsys.readouterr().out.strip()
    assert Path(out) == tmp_path / "captions.csv"
    assert len(_rows(Path(out))) == 3
    assert main(["tweets", str(tmp_path / "tw"), "--n", "5", "--n-test", "2"]) == 0
    assert len(_rows(tmp_path / "tw" / "test.csv")) == 2
