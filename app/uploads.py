"""The per-file loop the Captioning, OCR and Transcription pages share.

One bad file becomes an ``error`` on its own row and the others still run; every row is timed and the
progress bar advances per file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from core.errors import MediaError
from core.media.decode import Media, load_media


def process_uploads(
    uploads: list, model: str, work: Callable[[object, Media, dict], None], *, needs: str, missing: str
) -> list[dict]:
    """Decode each upload and let ``work(upload, media, row)`` fill its row.

    ``needs`` is ``image`` or ``audio``; a file without it gets ``missing`` as its error.
    """
    results = []
    progress = st.progress(0.0)
    for i, upload in enumerate(uploads):
        row: dict = {"file": upload.name, "model": model}
        start = time.perf_counter()
        try:
            media = load_media(upload.getvalue(), filename=upload.name)
            if (needs == "image" and not media.images) or (needs == "audio" and media.audio is None):
                raise MediaError(f"{upload.name}: {missing}")
            work(upload, media, row)
        except MediaError as exc:
            row["error"] = str(exc)
        row["seconds"] = time.perf_counter() - start
        results.append(row)
        progress.progress((i + 1) / len(uploads), text=f"{i + 1} / {len(uploads)} files")
    return results
