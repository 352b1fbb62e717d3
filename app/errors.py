"""Show errors a person can act on as one ``st.error`` line, and let the rest of the page keep working.

``core`` raises ``UserError`` (bad input, model that cannot load) for everything a person can
fix; running out of memory is the other common, fixable failure. Anything else is a bug and is
left to Streamlit, which shows it with its traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import streamlit as st

from core.errors import ModelUnavailableError, UserError
from core.registry import aliases

OOM_HINT = (
    "out of memory: the models and the media need more memory than is free. Free the loaded models in the "
    "sidebar, pick smaller models (smollm2-135m, whisper-tiny.en), or use fewer or smaller files."
)


def is_out_of_memory(exc: BaseException) -> bool:
    """Host RAM (``MemoryError``) or GPU memory (``torch.cuda.OutOfMemoryError``, matched by name: no torch import)."""
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"


def is_actionable(exc: BaseException) -> bool:
    return isinstance(exc, UserError) or is_out_of_memory(exc)


def describe(exc: BaseException, profile: str | None = None) -> str:
    """The cause, plus how to fix it where the cause alone does not say."""
    if is_out_of_memory(exc):
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return OOM_HINT + (f" ({detail})" if detail else "")
    if isinstance(exc, ModelUnavailableError):
        offline = ", ".join(sorted(aliases()))
        current = f"Current profile: '{profile}'. " if profile else ""
        return (
            f"{str(exc).rstrip('.')}. {current}To switch, choose the 'offline' **Model profile** in the sidebar, "
            f"or an offline model under **Models** ({offline})."
        )
    return str(exc)


class UserErrors:
    """``with UserErrors("OCR") as guard:`` shows an actionable error as ``st.error`` instead of raising.

    After the block, ``guard.failed`` tells the caller whether to stop. ``on_error`` runs first
    (e.g. to mark an ``st.status`` as failed).
    """

    def __init__(self, action: str, *, profile: str | None = None, on_error: Callable[[], None] | None = None):
        self.action = action
        self.profile = profile
        self.on_error = on_error
        self.failed = False
        self.message = ""

    def __enter__(self) -> UserErrors:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not is_actionable(exc):
            return False  # no error, or a bug / Streamlit's own control flow: let it propagate
        self.failed = True
        self.message = describe(exc, self.profile)
        if self.on_error is not None:
            self.on_error()
        st.error(f"**{self.action} failed:** {self.message}", icon=":material/error:")
        return True
