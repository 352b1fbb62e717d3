"""The tweet page's batch tab: a tweet-dump CSV in, the same rows plus generated tweets out.

``core.batch.run_batch`` works on files (it writes results after every chunk so a crash loses
little), so the upload goes to a temporary folder and the output is read back for the preview
and the download.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pandas as pd
import streamlit as st

from app.errors import UserErrors
from app.line import turn
from app.models import make_loader
from app.settings import Settings
from app.widgets import download, safe_stem
from core.batch import REQUIRED_COLUMNS, read_tweet_csv, run_batch
from core.errors import MediaError
from core.media.decode import Media, load_media
from core.pipeline import Pipeline, Prediction, PredictRequest
from core.stages.llm import GenerationConfig

RESULT_KEY = "batch.result"


class RemoteMediaPipeline(Pipeline):
    """The batch pipeline for an uploaded CSV: its media cells come from a visitor, so a cell that is
    not an http(s) URL (or a dump field of them) is refused for that row (recorded in ``error``, the
    row still gets a tweet) instead of being read from the server's disk."""

    in_turn: Callable[[], AbstractContextManager] = nullcontext

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._fetched: dict[int, tuple[Media | None, list[str]]] = {}

    def predict_many(self, requests: list[PredictRequest], cfg: GenerationConfig | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
        """One chunk of rows in one turn of the models' line (``in_turn``): a long batch shares the models with the
        visitors who click meanwhile, a chunk at a time, instead of holding them to the end. The chunk's media is
        fetched and decoded before the turn, so a slow URL holds up no one else."""
        self._fetched = {id(request): self._fetch(request) for request in requests}
        try:
            with self.in_turn():
                return super().predict_many(requests, cfg, progress)
        finally:
            self._fetched = {}

    def load_request_media(self, request: PredictRequest) -> tuple[Media | None, list[str]]:
        fetched = self._fetched.get(id(request))
        return fetched if fetched is not None else self._fetch(request)

    @staticmethod
    def _fetch(request: PredictRequest) -> tuple[Media | None, list[str]]:
        if request.media is None or (isinstance(request.media, str) and not request.media.strip()):
            return None, []
        try:
            return load_media(request.media, filename=request.media_name, allow_local=False), []
        except MediaError as exc:
            return None, [f"media: {exc}"]


def _run(settings: Settings, name: str, data: bytes, limit: int | None) -> pd.DataFrame | None:
    status = st.status(f"Running {name}…", expanded=True)
    failed = lambda: status.update(label="Batch failed", state="error", expanded=True)  # noqa: E731
    with UserErrors("Batch", profile=settings.profile, on_error=failed) as guard, status, \
            tempfile.TemporaryDirectory(prefix="m2t-batch-") as tmp:
        in_path = Path(tmp) / "input.csv"
        in_path.write_bytes(data)
        rows = len(read_tweet_csv(in_path))  # checks the columns before any model loads
        total = min(rows, limit) if limit else rows
        place = st.empty()
        bar = st.progress(0.0, text=f"0 / {total} rows")

        def progress(done: int, of: int) -> None:
            bar.progress(done / max(1, of), text=f"{done} / {of} rows")

        pipeline = RemoteMediaPipeline(settings.specs(), loader=make_loader(notify=status.markdown))
        pipeline.in_turn = lambda: turn("batch", place, status, resume_label=f"Running {name}…")
        frame = run_batch(in_path, Path(tmp) / "generated.csv", pipeline, settings.generation(), progress=progress,
                          limit=limit, allow_local=False)
    if guard.failed:
        return None
    failures = int((frame["error"].astype(str).str.len() > 0).sum()) if "error" in frame else 0
    status.update(label=f"{len(frame)} tweets written" + (f" ({failures} rows with media problems)" if failures
                                                            else ""), state="complete", expanded=False)
    return frame


def batch_tab(settings: Settings) -> None:
    st.caption(
        f"Upload a tweet dump (columns {', '.join(REQUIRED_COLUMNS)}; optionally id, likes, media). "
        "Media must be http(s) URLs or `[Photo(…)]` fields of them: file paths are not read in the app. "
        "A row whose media fails still gets a tweet, and the `error` column says why."
    )
    upload = st.file_uploader("Tweet dump CSV", type=["csv"], key="batch.file")
    limit = st.number_input("Rows to process (0 = all)", min_value=0, value=0, step=1, key="batch.limit",
                            persist_state="session")
    if st.button("Run batch", key="batch.run", disabled=upload is None, type="primary") and upload is not None:
        frame = _run(settings, upload.name, upload.getvalue(), int(limit) or None)
        if frame is not None:
            st.session_state[RESULT_KEY] = (upload.name, frame)
    stored = st.session_state.get(RESULT_KEY)
    if stored:
        name, frame = stored
        st.markdown(f"**Results for {name}** ({len(frame)} rows)")
        first = [c for c in ("generated", "inferred company", "username", "date", "error") if c in frame.columns]
        st.dataframe(frame[first + [c for c in frame.columns if c not in first]], hide_index=True, width="stretch")
        download("Download results (CSV)", frame.to_csv(index=False), f"{safe_stem(name)}_generated.csv",
                 "text/csv", key="batch.download")
