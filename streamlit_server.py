"""What ``m2t serve`` runs: the app (``streamlit_app.py``, or ``--app``) as an ``st.App`` with a start-up hook.

``streamlit run streamlit_server.py`` finds ``app`` below (Streamlit 1.67 serves a script that defines an
``st.App`` through it) and runs its ``lifespan`` once, when the server starts, in the server's own process.
That is where the models start loading (:mod:`core.preload`), before the first visitor arrives, into the
process-wide cache the pages read (:mod:`core.model_cache`). ``M2T_PRELOAD=0`` (``m2t serve --no-preload``)
leaves every model to load on first use, for machines without the memory to hold them all.

``streamlit run streamlit_app.py`` (developing the app) still works as before, without the preload.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import streamlit as st

from core import preload

APP_SCRIPT_ENV = "M2T_APP_SCRIPT"  # the page script to serve; m2t serve sets it from --app


def _log(line: str) -> None:
    print(line, flush=True)


@contextlib.asynccontextmanager
async def preload_models(_app: object) -> AsyncIterator[None]:
    """Start the preload in a background thread and let the server start serving at once."""
    if preload.enabled():
        preload.start(log=_log)
    else:
        _log(f"preload: off ({preload.PRELOAD_ENV}=0): each model loads when a visitor first needs it")
    yield


app = st.App(os.environ.get(APP_SCRIPT_ENV) or str(Path(__file__).with_name("streamlit_app.py")),
             lifespan=preload_models)
