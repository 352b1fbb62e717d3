"""Captioning: describe several images at once, with the top-k labels behind each caption."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.errors import UserErrors
from app.models import load_with_status
from app.settings import page_settings
from app.uploads import process_uploads
from app.widgets import IMAGE_TYPES, VIDEO_TYPES, download, labels_table, thumbnail
from core.stages.caption import CLASS_SCORE, CONFIDENT_SCORE, caption_images

RESULTS_KEY = "captioning.results"

settings = page_settings()
st.title("Captioning")
st.caption("Describe images in words. GIFs and videos are captioned from their keyframes.")

files = st.file_uploader("Images, GIFs or videos", type=IMAGE_TYPES + VIDEO_TYPES, accept_multiple_files=True,
                         key="captioning.files")


def caption_files(uploads: list) -> list[dict]:
    spec = settings.spec("caption")
    captioner = load_with_status(spec)

    def work(upload, media, row: dict) -> None:
        captions = caption_images(captioner, media.images)
        row.update(caption="; ".join(dict.fromkeys(c.caption for c in captions)), labels=captions[0].labels,
                   guess=captions[0].guess, frames=len(media.images), thumb=thumbnail(media.images[0]))

    return process_uploads(uploads, spec.model, work, needs="image", missing="no picture to caption (audio only?)",
                           kind="caption")


if st.button("Caption", type="primary", disabled=not files, key="captioning.run") and files:
    with UserErrors("Captioning", profile=settings.profile):
        st.session_state[RESULTS_KEY] = caption_files(files)

results = st.session_state.get(RESULTS_KEY, [])
if results:
    ok = [r for r in results if "error" not in r]
    table = pd.DataFrame([
        {"file": r["file"], "caption": r["caption"], "guess": r.get("guess", ""),
         "labels": "; ".join(f"{label} ({score:.0%})" for label, score in r["labels"]),
         "seconds": round(r["seconds"], 3), "model": r["model"]}
        for r in ok
    ], columns=["file", "caption", "guess", "labels", "seconds", "model"])
    st.subheader(f"{len(ok)} of {len(results)} files captioned")
    download("Download captions (CSV)", table.to_csv(index=False), "captions.csv", "text/csv",
             key="captioning.csv")
    for r in results:
        with st.container(border=True):
            image_col, text_col = st.columns([1, 2])
            if "error" in r:
                text_col.error(f"**{r['file']}:** {r['error']}", icon=":material/error:")
                continue
            with image_col:
                st.image(r["thumb"], caption=r["file"])
            with text_col:
                st.markdown(f"**{r['caption']}**")
                if r.get("guess"):  # the caption gate kept a weak top label out of the caption
                    st.caption(f":material/help: a guess, not the subject: {r['guess']} "
                               f"({r['labels'][0][1]:.0%}: a class needs {CLASS_SCORE:.0%}, a broader word such as "
                               f"'cat' {CONFIDENT_SCORE:.0%} summed over its classes)")
                labels_table(r["labels"])
                frames = f" from {r['frames']} keyframes" if r["frames"] > 1 else ""
                st.caption(f":material/timer: {r['seconds'] * 1000:.0f} ms{frames} · {r['model']}")
