"""Tweet prediction: metadata + media in, tweet candidates out, with everything the models saw."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from app.batch import batch_tab
from app.brand import (
    NONE,
    grounding_caption,
    highlight_unsupported,
    index_for,
    kit_caption,
    kit_fields,
    label,
    recent_dumps,
    save_upload,
)
from app.errors import UserErrors
from app.likes import RANK_KEY, likes_caption
from app.predict import LAST_KEY, STAGES, MediaInput, PredictionResult, history_frame, predict, remember
from app.settings import page_settings
from app.widgets import (
    AUDIO_TYPES,
    IMAGE_TYPES,
    VIDEO_TYPES,
    download,
    labels_table,
    show_media,
    timings_caption,
    tweet_card,
)
from core.pipeline import PredictRequest

settings = page_settings()
st.title("Tweet prediction")
st.caption(
    "Give the company, the account and when it posts, add a photo, GIF, video or audio clip, and get the tweet "
    "the account would write. Every step the models took is shown below the tweet."
)


def form() -> tuple[PredictRequest, MediaInput] | None:
    """The form; returns the request only on submit, so typing never starts the (slow) models."""
    with st.form("tweet.form"):
        left, right = st.columns(2)
        company = left.text_input("Company", key="tweet.company", placeholder="Nike", persist_state="session")
        username = right.text_input("Username", key="tweet.username", placeholder="nike", persist_state="session")
        date = left.date_input("Date", value=dt.date.today(), key="tweet.date", persist_state="session")
        time = right.time_input("Time", value=dt.time(12, 0), step=dt.timedelta(minutes=15), key="tweet.time",
                                persist_state="session")
        likes = left.number_input("Target likes (optional)", min_value=0, value=None, step=10, key="tweet.likes",
                                  placeholder="e.g. 250", persist_state="session",
                                  help="States the engagement to aim for in the prompt.")
        st.markdown("**Media** (optional: an upload is used first, then a URL, then a dump field)")
        upload_tab, url_tab, dump_tab = st.tabs(["Upload", "URL", "Tweet dump `media` field"])
        upload = upload_tab.file_uploader(
            "Image, GIF, video or audio", type=IMAGE_TYPES + VIDEO_TYPES + AUDIO_TYPES, key="tweet.upload"
        )
        url = url_tab.text_input("Media URL", key="tweet.url", placeholder="https://…/photo.jpg",
                                 persist_state="session",
                                 help="A public http(s) link. File paths on the server are not read: upload the file.")
        dump = dump_tab.text_area("media field", key="tweet.dump", persist_state="session", height=90,
                                  placeholder="[Photo(previewUrl='https://…', fullUrl='https://…')]")
        with st.expander("Brand history (optional): the brand's own earlier tweets as examples"):
            st.caption("A tweet dump with `content`, `date` and `username` (or `inferred company`). The prompt shows "
                       "the account's earlier tweets nearest to this media, so the tweet sounds like the brand; "
                       "a brand with no history gets the nearest other brands' tweets, and the result says so.")
            history_upload = st.file_uploader("History dump (CSV)", type=["csv"], key="tweet.brand_upload")
            recent = recent_dumps()
            picked = st.selectbox("…or a recent one", [NONE, *(label(p) for p in recent)], key="tweet.brand_recent")
            k = st.slider("Examples in the prompt", 0, 8, 3, key="tweet.brand_k")
            st.checkbox("Rank by predicted likes", key=RANK_KEY,
                        help="With a history that has likes, each candidate gets predicted likes; this puts the one "
                        "with the most first, among those that pass the grounding check.")
            kit_on, kit = kit_fields()
        submitted = st.form_submit_button("Predict tweet", type="primary")
    if not submitted:
        return None
    when = dt.datetime.combine(date or dt.date.today(), time or dt.time(12, 0))
    request = PredictRequest(company=company, username=username, date=when.strftime("%Y-%m-%d %H:%M"),
                             likes=int(likes) if likes is not None else None, history_k=int(k),
                             brand_kit=kit_on, kit=kit)
    with UserErrors("Brand history", profile=settings.profile) as guard:
        path = save_upload(history_upload.name, history_upload.getvalue()) if history_upload is not None else next(
            (p for p in recent if label(p) == picked), None)
        if path is not None:
            request.history = index_for(path)  # checked and indexed before any model loads
    if guard.failed:
        return None
    media = MediaInput(
        upload=(upload.name, upload.getvalue()) if upload is not None else None,
        location=(url or "").strip() or (dump or "").strip() or None,
    )
    return request, media


def show_result(result: PredictionResult) -> None:
    prediction = result.prediction
    analysis = prediction.analysis
    st.subheader("Tweet" if len(prediction.candidates) == 1 else "Tweet candidates")
    text_col, media_col = st.columns([3, 2])
    with text_col:
        for i, candidate in enumerate(prediction.candidates, 1):
            tweet_card(candidate, f"Candidate {i}" if len(prediction.candidates) > 1 else None)
            if i <= len(result.likes):
                st.caption(likes_caption(result.likes[i - 1]))
            grounding = prediction.groundings[i - 1] if i <= len(prediction.groundings) else {}
            if grounding.get("unsupported"):
                st.markdown("Not in the inputs: " + highlight_unsupported(candidate, grounding))
            if grounding:
                st.caption(grounding_caption(grounding))
            if kit_caption(grounding):
                st.caption(kit_caption(grounding))
        if result.likes_note:
            st.caption(result.likes_note)
        if len(prediction.candidates) > 1:
            st.caption("Candidates are ordered by fewest unsupported details, then most input words used.")
        st.caption(f"For **{result.request['company']}** (@{result.request['username']}), "
                   f"{result.request['date']}" + (f", aiming at {result.request['likes']} likes"
                                                  if result.request["likes"] is not None else ""))
    with media_col:
        if analysis.media is not None:
            show_media(analysis.media, analysis.ocr_boxes, result.upload)
        else:
            st.caption("No media: the tweet comes from the metadata alone.")
    for error in [*analysis.errors, *analysis.warnings]:
        st.warning(error, icon=":material/warning:")
    caption_col, ocr_col, asr_col = st.columns(3)
    with caption_col:
        st.markdown("**Caption**")
        st.write(analysis.caption or "—")
        if analysis.caption_guess:
            st.caption(f"A guess, not used as the subject (the classifier was unsure): {analysis.caption_guess}")
        labels_table(analysis.labels)
    with ocr_col:
        st.markdown("**Text in the media (OCR)**")
        if analysis.ocr:
            st.code(analysis.ocr, language=None, wrap_lines=True)
        else:
            st.write("—")
    with asr_col:
        st.markdown("**Transcript**")
        st.write(analysis.transcript or "—")
    brand = analysis.brand
    if brand is not None and brand.fallback:
        st.info(brand.note, icon=":material/info:")
    with st.expander("Prompt sent to the LLM"):
        if brand is not None:
            st.markdown(f"**History examples**: {brand.note}")
            if brand.tweets:
                st.dataframe([{"date": t.date, "account": t.username or t.company, "likes": t.likes,
                               "match": t.score, "tweet": t.content} for t in brand.tweets],
                             hide_index=True, width="stretch")
            if brand.voice.hint():
                st.caption(f"Style learned from the brand's tweets: {brand.voice.hint()}")
        st.code(prediction.prompt, language=None, wrap_lines=True)
    timings_caption(analysis.timings, {k: v.lower() for k, v in STAGES.items()})


def history_tab() -> None:
    frame = history_frame()
    if frame.empty:
        st.info("Predictions you make in this session are listed here.")
        return
    st.dataframe(frame, hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left:
        download("Download history (CSV)", frame.to_csv(index=False), "tweet_history.csv", "text/csv",
                 key="tweet.history_csv")
    with right:
        if st.button("Clear history", key="tweet.clear_history"):
            st.session_state["tweet.history"] = []
            st.rerun()


predict_tab, history_tab_, batch_tab_ = st.tabs(["Predict", "History", "Batch (CSV)"])
with predict_tab:
    submitted = form()
    if submitted is not None:
        request, media = submitted
        result = predict(settings, request, media)
        if result is not None:
            remember(result)
    last = st.session_state.get(LAST_KEY)
    if isinstance(last, PredictionResult):
        show_result(last)
with history_tab_:
    history_tab()
with batch_tab_:
    batch_tab(settings)
