"""One tweet prediction with a live status line per stage, and this session's history.

The media is decoded before the pipeline runs so an unreadable upload stops with a clear error
instead of quietly producing a tweet from the metadata alone (what a batch run wants, not a person
who just uploaded a file).

The models' part (the whole ``Pipeline.predict`` and the likes, so one visitor's stages are never interleaved
with another's) is one turn in the process-wide line (``app.line.turn``): a visitor who clicks while another's
prediction runs waits, told their place and an estimate, and their page is the one that leaves the line when it
is closed or rerun (Streamlit stops a script run at its next ``st`` call; see ``app.line.wait_in_line``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import streamlit as st

from app.errors import UserErrors
from app.likes import RANK_KEY, likes_for
from app.line import turn
from app.models import make_loader
from app.settings import Settings
from core.errors import UserError
from core.media.decode import Media, load_media
from core.pipeline import Pipeline, Prediction, PredictRequest

STAGES = {
    "media": "Reading the media",
    "caption": "Captioning",
    "ocr": "Reading text (OCR)",
    "asr": "Transcribing speech",
    "llm": "Writing the tweet",
}
HISTORY_KEY = "tweet.history"
LAST_KEY = "tweet.last"


@dataclass
class MediaInput:
    """Whichever media the form got: an upload wins over a URL, a URL over a dump field."""

    upload: tuple[str, bytes] | None = None
    location: str | None = None  # URL or tweet-dump media field

    @property
    def label(self) -> str:
        if self.upload:
            return self.upload[0]
        return (self.location or "").strip()[:120]

    def load(self) -> Media | None:
        """Visitors are untrusted: their text is fetched as an http(s) URL (under the URL policy) or
        refused, never opened as a path on the server (``allow_local=False``)."""
        if self.upload:
            return load_media(self.upload[1], filename=self.upload[0])
        if self.location and self.location.strip():
            return load_media(self.location.strip(), allow_local=False)
        return None


@dataclass
class PredictionResult:
    """What the page shows after a prediction; kept in session state so it survives reruns."""

    prediction: Prediction
    request: dict
    media_label: str
    upload: tuple[str, bytes] | None = None
    likes: list = field(default_factory=list)  # LikesPrediction per candidate, with a brand history that has likes
    likes_note: str = ""
    when: str = field(default_factory=lambda: datetime.now().isoformat(timespec="seconds"))


class StageBoard:
    """One line per stage inside an ``st.status``, updated as the pipeline reports."""

    def __init__(self, status) -> None:
        self.status = status
        self.lines = {stage: status.empty() for stage in STAGES}
        self.started: dict[str, float] = {}
        for stage, label in STAGES.items():
            self.lines[stage].markdown(f":material/radio_button_unchecked: {label}")

    def __call__(self, stage: str, event: str) -> None:
        label = STAGES.get(stage, stage)
        line = self.lines.get(stage)
        if line is None:
            return
        if event == "start":
            self.started[stage] = time.perf_counter()
            self.status.update(label=f"{label}…")
            line.markdown(f":material/hourglass_top: {label}…")
        elif event == "done":
            seconds = time.perf_counter() - self.started.get(stage, time.perf_counter())
            line.markdown(f":material/check_circle: {label} ({seconds:.1f} s)")
        elif event == "second look":  # the first tweet missed a check: more candidates to choose from
            self.status.update(label=f"{label}: a second look…")
            line.markdown(f":material/hourglass_top: {label}… a second look (the first draft missed a check)")
        elif event == "skipped":
            line.markdown(f":material/remove: {label}: nothing to do for this media")
        elif event.startswith("error"):
            line.markdown(f":material/warning: {label}: {event.partition(':')[2].strip()}")


def predict(settings: Settings, request: PredictRequest, media_input: MediaInput) -> PredictionResult | None:
    """Run the pipeline in this visitor's turn, showing the place in line, then progress; ``None`` (with an
    ``st.error`` shown) when it cannot."""
    status = st.status("Predicting…", expanded=True)
    failed = lambda: status.update(label="Prediction failed", state="error", expanded=True)  # noqa: E731
    waited = 0.0
    with UserErrors("Prediction", profile=settings.profile, on_error=failed) as guard, status:
        if not str(request.company).strip() or not str(request.username).strip():
            raise UserError("fill in the company and the username: the tweet is written for them")
        place = status.empty()
        board = StageBoard(status)
        specs = settings.specs()
        board("media", "start")
        start = time.perf_counter()
        media = media_input.load()  # outside the line: an unreadable upload is told at once, a slow URL holds no slot
        media_seconds = time.perf_counter() - start
        board("media", "done" if media is not None else "skipped")
        if media is None:  # the pipeline reports no stage at all when there is no media
            for stage in ("caption", "ocr", "asr"):
                board(stage, "skipped")
        request.media = media
        with turn("tweet", place, status, resume_label="Predicting…") as waited:
            pipeline = Pipeline(specs, loader=make_loader(notify=status.markdown))
            prediction = pipeline.predict(request, settings.generation(), on_stage=board)
            prediction, likes, likes_note = likes_for(request, prediction, bool(st.session_state.get(RANK_KEY)))
        timings = prediction.analysis.timings
        timings["media"] = media_seconds
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
    if guard.failed:
        return None
    in_line = f" after {waited:.1f} s in line" if waited else ""
    status.update(label=f"Tweet ready in {timings['total']:.1f} s{in_line}", state="complete", expanded=False)
    return PredictionResult(
        prediction=prediction,
        request={"company": request.company, "username": request.username, "date": request.date,
                 "likes": request.likes},
        media_label=media_input.label,
        upload=media_input.upload,
        likes=likes,
        likes_note=likes_note,
    )


def remember(result: PredictionResult) -> None:
    st.session_state[LAST_KEY] = result
    st.session_state.setdefault(HISTORY_KEY, []).append(history_row(result))


def history_row(result: PredictionResult) -> dict:
    p = result.prediction
    a = p.analysis
    return {
        "time": result.when,
        **result.request,
        "media": result.media_label,
        "tweet": p.tweet,
        "candidates": " ||| ".join(p.candidates),
        "caption": a.caption,
        "ocr": " ".join(a.ocr.split()),
        "transcript": a.transcript,
        "seconds": round(a.timings.get("total", 0.0), 1),
        "errors": "; ".join(a.errors),
    }


def history_frame() -> pd.DataFrame:
    return pd.DataFrame(st.session_state.get(HISTORY_KEY, []))
