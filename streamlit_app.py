"""Media2Tweet in the browser: ``streamlit run streamlit_app.py`` (or ``m2t serve``).

This entry script sets the page up, draws the settings sidebar (so every page sees the same
settings) and hands over to the chosen page in ``app_pages/``.

The folder is deliberately not called ``pages/``: Streamlit takes a ``pages/`` folder beside the
entry script as a legacy (v1) multipage app. A fresh server whose first visitor opens a deep link
(``/ocr``) then runs page files directly, without this script, with a filename-based menu, until
someone opens ``/``; ``AppTest`` does the same on every rerun after the first.
"""

from __future__ import annotations

import streamlit as st

from app.models import preload_notice
from app.settings import ENTRY_FLAG, loaded_models_panel, render_sidebar

st.set_page_config(page_title="Media2Tweet", page_icon=":material/campaign:", layout="wide")

PAGES = [
    st.Page("app_pages/tweet.py", title="Tweet prediction", icon=":material/campaign:", default=True),
    st.Page("app_pages/captioning.py", title="Captioning", icon=":material/image:"),
    st.Page("app_pages/ocr.py", title="OCR", icon=":material/text_fields:"),
    st.Page("app_pages/transcription.py", title="Transcription", icon=":material/mic:"),
    st.Page("app_pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
]

page = st.navigation(PAGES)
render_sidebar()
preload_notice()  # while m2t serve's start-up preload runs: which models are still loading
st.session_state[ENTRY_FLAG] = True  # tells the page the sidebar is already drawn
try:
    page.run()
finally:
    st.session_state.pop(ENTRY_FLAG, None)
loaded_models_panel()
