"""Small display helpers the pages share: OCR boxes drawn on images, copyable tweets, labels, players."""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from core.media.decode import AUDIO_EXTS, GIF_EXTS, IMAGE_EXTS, SAMPLE_RATE, VIDEO_EXTS, Media
from core.stages.ocr import OcrBox
from core.tables import formula_safe_csv_text

MAX_TWEET_CHARS = 280
BOX_COLOUR = (29, 155, 240)  # the theme's primary colour: boxes read as part of the app, not the image
IMAGE_TYPES = sorted(e.lstrip(".") for e in IMAGE_EXTS | GIF_EXTS)
VIDEO_TYPES = sorted(e.lstrip(".") for e in VIDEO_EXTS)
AUDIO_TYPES = sorted(e.lstrip(".") for e in AUDIO_EXTS)


def extension(name: str) -> str:
    return Path(name.split("?")[0]).suffix.lower()


def mime_type(name: str, fallback: str = "application/octet-stream") -> str:
    return mimetypes.guess_type(name)[0] or fallback


def draw_ocr_boxes(image: Image.Image, boxes: Sequence[OcrBox]) -> Image.Image:
    """A copy of ``image`` with every OCR box outlined and numbered in reading order."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 300))
    font = ImageFont.load_default(size=max(12, round(max(out.size) / 50)))
    for i, box in enumerate(boxes, 1):
        points = [(float(x), float(y)) for x, y in box.box]
        draw.polygon(points, outline=BOX_COLOUR, width=width)
        x, y = points[0]
        label = str(i)
        left, top, right, bottom = draw.textbbox((x, y), label, font=font)
        tag = (left, top - (bottom - top) - 4, right + 4, top)
        draw.rectangle(tag, fill=BOX_COLOUR)
        draw.text((tag[0] + 2, tag[1]), label, fill=(255, 255, 255), font=font)
    return out


def boxes_frame(boxes: Sequence[OcrBox]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"#": i, "text": b.text, "confidence": round(b.confidence, 3)} for i, b in enumerate(boxes, 1)],
        columns=["#", "text", "confidence"],
    )


def tweet_card(text: str, title: str | None = None) -> None:
    """The tweet in ``st.code`` (its copy button copies the exact text) with its length against 280."""
    if title:
        st.markdown(f"**{title}**")
    st.code(text or "(empty)", language=None, wrap_lines=True)
    over = len(text) > MAX_TWEET_CHARS
    st.caption(f"{len(text)} / {MAX_TWEET_CHARS} characters" + (" — too long to post" if over else ""))


def labels_table(labels: Sequence[tuple[str, float]]) -> None:
    """Top-k labels as bars: the top label is sometimes wrong and the runners-up say how sure it was."""
    if not labels:
        return
    frame = pd.DataFrame([{"label": label, "score": float(score)} for label, score in labels])
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        column_config={
            "label": st.column_config.TextColumn("label"),
            "score": st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="percent"),
        },
    )


def timings_caption(timings: dict[str, float], names: dict[str, str] | None = None) -> None:
    names = names or {}
    parts = [f"{names.get(k, k)} {v:.1f} s" for k, v in timings.items() if k != "total"]
    total = timings.get("total")
    text = " · ".join(parts) + (f" — total {total:.1f} s" if total is not None else "")
    st.caption(f":material/timer: {text}")


def show_upload(data: bytes, name: str) -> None:
    """Play or show an uploaded file in its original form (animated GIF, video, audio)."""
    ext = extension(name)
    if ext in VIDEO_EXTS:
        st.video(data, format=mime_type(name, "video/mp4"))
    elif ext in AUDIO_EXTS:
        st.audio(data, format=mime_type(name, "audio/wav"))
    elif ext in GIF_EXTS | IMAGE_EXTS:
        st.image(data, caption=name)


def show_media(media: Media, boxes: Sequence[OcrBox] = (), upload: tuple[str, bytes] | None = None) -> None:
    """The media as the models saw it: image(s) with OCR boxes, keyframes, and a player for sound."""
    if upload is not None and media.kind in ("video", "audio", "gif"):
        show_upload(upload[1], upload[0])
    if len(media.images) == 1:
        shown = draw_ocr_boxes(media.images[0], boxes) if boxes else media.images[0]
        st.image(shown, caption="OCR boxes, numbered in reading order" if boxes else media.source[:80])
    elif media.images:
        # OCR boxes of several keyframes cannot be told apart, so keyframes are shown plain.
        st.image(media.images, caption=[f"keyframe {i}" for i in range(1, len(media.images) + 1)], width=180)
    if media.audio is not None and upload is None:
        st.audio(np.asarray(media.audio, dtype=np.float32), sample_rate=SAMPLE_RATE)


def download(label: str, data: str | bytes, file_name: str, mime: str, key: str) -> None:
    """A download that does not rerun the page (nothing on the page changes when a file is saved).

    CSV files are made formula-safe here, for every page at once: cells come from visitors (tweet
    dumps, OCR text, usernames), and a cell starting with ``= + - @``, tab or CR would run as a
    formula in the spreadsheet of whoever opens the download (OWASP CSV injection); they get a ``'``.
    """
    if mime == "text/csv" or file_name.lower().endswith(".csv"):
        data = safe_csv(data)
    st.download_button(label, data=data, file_name=file_name, mime=mime, key=key, on_click="ignore")


def safe_csv(data: str | bytes) -> str | bytes:
    """``data`` (CSV text or UTF-8 bytes) with every formula-like cell guarded; other bytes unchanged."""
    if isinstance(data, bytes):
        try:
            return formula_safe_csv_text(data.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            return data
    return formula_safe_csv_text(data)


def safe_stem(name: str) -> str:
    stem = Path(name).stem or "file"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:60]


def thumbnail(image: Image.Image, side: int = 640) -> Image.Image:
    """A small copy to keep in session state (results outlive the run; full frames would pile up)."""
    small = image.convert("RGB").copy()
    small.thumbnail((side, side))
    return small
