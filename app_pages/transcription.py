"""Transcription: speech to text for several audio or video files, with timed segments and subtitles."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.errors import UserErrors
from app.models import load_with_status
from app.settings import page_settings
from app.uploads import process_uploads
from app.widgets import AUDIO_TYPES, VIDEO_TYPES, download, safe_stem, show_upload
from core.stages.asr import to_srt, to_vtt, transcribe

RESULTS_KEY = "transcription.results"

settings = page_settings()
st.title("Transcription")
st.caption("Speech to text with timestamps; download it as plain text or as SRT/VTT subtitles.")

files = st.file_uploader("Audio or video files", type=AUDIO_TYPES + VIDEO_TYPES, accept_multiple_files=True,
                         key="transcription.files")


def transcribe_files(uploads: list) -> list[dict]:
    spec = settings.spec("asr")
    asr = load_with_status(spec)

    def work(upload, media, row: dict) -> None:
        row["data"] = upload.getvalue()
        row["transcript"] = transcribe(asr, media.audio)
        row["audio_seconds"] = media.audio_seconds

    return process_uploads(uploads, spec.model, work, needs="audio", missing="no sound track to transcribe",
                           kind="asr")


if st.button("Transcribe", type="primary", disabled=not files, key="transcription.run") and files:
    with UserErrors("Transcription", profile=settings.profile):
        st.session_state[RESULTS_KEY] = transcribe_files(files)

results = st.session_state.get(RESULTS_KEY, [])
if results:
    ok = [r for r in results if "error" not in r]
    st.subheader(f"{len(ok)} of {len(results)} files transcribed")
    if len(ok) > 1:
        everything = "\n\n".join(f"# {r['file']}\n{r['transcript'].text}" for r in ok)
        download("Download all transcripts (TXT)", everything, "transcripts.txt", "text/plain",
                 key="transcription.all_txt")
    for i, r in enumerate(results):
        with st.container(border=True):
            if "error" in r:
                st.error(f"**{r['file']}:** {r['error']}", icon=":material/error:")
                continue
            transcript = r["transcript"]
            player_col, text_col = st.columns([2, 3])
            with player_col:
                st.markdown(f"**{r['file']}**")
                show_upload(r["data"], r["file"])
                rtfx = r["audio_seconds"] / r["seconds"] if r["seconds"] > 0 else 0.0
                st.caption(f":material/timer: {r['audio_seconds']:.1f} s of audio in {r['seconds']:.1f} s "
                           f"(RTFx {rtfx:.1f}) · language {transcript.language or '?'} · {r['model']}")
            with text_col:
                st.code(transcript.text or "(no speech found)", language=None, wrap_lines=True)
                if transcript.segments:
                    segments = pd.DataFrame([{"start": s.start, "end": s.end, "text": s.text}
                                             for s in transcript.segments])
                    st.dataframe(segments, hide_index=True, width="stretch",
                                 column_config={"start": st.column_config.NumberColumn(format="%.2f s"),
                                                "end": st.column_config.NumberColumn(format="%.2f s")})
                stem = safe_stem(r["file"])
                txt_col, srt_col, vtt_col = st.columns(3)
                with txt_col:
                    download("TXT", transcript.text, f"{stem}.txt", "text/plain", key=f"transcription.txt.{i}")
                with srt_col:
                    download("SRT", to_srt(transcript), f"{stem}.srt", "application/x-subrip",
                             key=f"transcription.srt.{i}")
                with vtt_col:
                    download("VTT", to_vtt(transcript), f"{stem}.vtt", "text/vtt", key=f"transcription.vtt.{i}")
