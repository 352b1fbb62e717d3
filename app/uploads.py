"""The per-file loop the Captioning, OCR and Transcription pages share.

One bad file becomes an ``error`` on its own row and the others still run; every row is timed and the
progress bar advances per file.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from app.line import turn
from core.errors import MediaError
from core.media.decode import Media, load_media


def process_uploads(
    uploads: list, model: str, work: Callable[[object, Media, dict], None], *, needs: str, missing: str, kind: str
) -> list[dict]:
    """Decode each upload and let ``work(upload, media, row)`` fill its row, one file per turn of the models' line
    (``app.line.turn``, named ``kind``): a pile of files never holds the models from a visitor who clicks meanwhile.

    ``needs`` is ``image`` or ``audio``; a file without it gets ``missing`` as its error.
    """
    results = []
    place = st.empty()
    progress = st.progress(0.0)
    for i, upload in enumerate(uploads):
        row: dict = {"file": upload.name, "model": model}
        start, waited = time.perf_counter(), 0.0
        try:
            media = load_media(upload.getvalue(), filename=upload.name)
            if (needs == "image" and not media.images) or (needs == "audio" and media.audio is None):
                raise MediaError(f"{upload.name}: {missing}")
            with turn(kind, place) as waited:  # decoded outside: an unreadable file is told without waiting
                work(upload, media, row)
        except MediaError as exc:
            row["error"] = str(exc)
        row["seconds"] = time.perf_counter() - start - waited  # the file's own time, not the wait in line
        results.append(row)
        progress.progress((i + 1) / len(uploads), text=f"{i + 1} / {len(uploads)} files")
    return results
