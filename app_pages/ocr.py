"""OCR: read the text in several images at once, boxes drawn where the text was found."""

from __future__ import annotations

import json

import streamlit as st

from app.errors import UserErrors
from app.models import load_with_status
from app.settings import page_settings
from app.uploads import process_uploads
from app.widgets import IMAGE_TYPES, VIDEO_TYPES, boxes_frame, download, draw_ocr_boxes, safe_stem, thumbnail
from core.stages.ocr import merge_frame_texts, read_text

RESULTS_KEY = "ocr.results"

settings = page_settings()
st.title("OCR")
st.caption("Read the text in images, in reading order. GIFs and videos are read from their keyframes.")

files = st.file_uploader("Images, GIFs or videos", type=IMAGE_TYPES + VIDEO_TYPES, accept_multiple_files=True,
                         key="ocr.files")


def read_files(uploads: list) -> list[dict]:
    spec = settings.spec("ocr")
    reader = load_with_status(spec)

    def work(upload, media, row: dict) -> None:
        frames = [read_text(reader, image) for image in media.images]
        row.update(
            text=merge_frame_texts([frame.text for frame in frames]),
            boxes=[box for frame in frames for box in frame.boxes],
            json=[{"frame": n, **frame.to_dict()} for n, frame in enumerate(frames)],
            images=[thumbnail(draw_ocr_boxes(image, frame.boxes), 900)
                    for image, frame in zip(media.images, frames, strict=True)],
        )

    return process_uploads(uploads, spec.model, work, needs="image", missing="no picture to read (audio only?)",
                           kind="ocr")


if st.button("Read text", type="primary", disabled=not files, key="ocr.run") and files:
    with UserErrors("OCR", profile=settings.profile):
        st.session_state[RESULTS_KEY] = read_files(files)

results = st.session_state.get(RESULTS_KEY, [])
if results:
    ok = [r for r in results if "error" not in r]
    st.subheader(f"Text found in {len(ok)} of {len(results)} files")
    all_text = "\n\n".join(f"# {r['file']}\n{r['text']}" for r in ok)
    all_json = json.dumps([{"file": r["file"], "frames": r["json"]} for r in ok], indent=2)
    left, right = st.columns(2)
    with left:
        download("Download all text (TXT)", all_text, "ocr.txt", "text/plain", key="ocr.all_txt")
    with right:
        download("Download all, with boxes (JSON)", all_json, "ocr.json", "application/json", key="ocr.all_json")
    for i, r in enumerate(results):
        with st.container(border=True):
            if "error" in r:
                st.error(f"**{r['file']}:** {r['error']}", icon=":material/error:")
                continue
            image_col, text_col = st.columns([3, 2])
            with image_col:
                captions = [r["file"]] if len(r["images"]) == 1 else [
                    f"{r['file']} · keyframe {n}" for n in range(1, len(r["images"]) + 1)]
                st.image(r["images"], caption=captions)
            with text_col:
                st.markdown(f"**{r['file']}**")
                st.code(r["text"] or "(no text found)", language=None, wrap_lines=True)
                st.caption(f":material/timer: {r['seconds']:.1f} s · {len(r['boxes'])} boxes · {r['model']}")
                if r["boxes"]:
                    st.dataframe(boxes_frame(r["boxes"]), hide_index=True, width="stretch")
                stem = safe_stem(r["file"])
                download("Text (TXT)", r["text"], f"{stem}.txt", "text/plain", key=f"ocr.txt.{i}")
                download("Text and boxes (JSON)", json.dumps({"file": r["file"], "frames": r["json"]}, indent=2),
                         f"{stem}.json", "application/json", key=f"ocr.json.{i}")
