"""A page's model work as turns in the process's one line (``core.model_queue``), with the place shown meanwhile.

Every page that runs models on a served app goes through here: the tweet page (one turn per prediction), its
Batch tab (one turn per chunk of rows) and the Captioning, OCR and Transcription pages (one turn per file). A
long batch or a pile of files therefore never holds the models for minutes: a visitor who clicks *Predict tweet*
meanwhile waits for one chunk or one file, not for the whole job, and the job goes on after them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from core import model_queue
from core.model_queue import Ticket, TurnQueue

POLL_S = 1.0  # how often a waiting page looks at its place in line
# A waiting page writes to itself when its place text changes, and at least this often: each write is where Streamlit
# stops a closed or rerun page, and each is re-drawn by every browser waiting.
HEARTBEAT_S = 2.0


def show_place(place, text: str) -> None:
    """The waiting visitor's line (one function, so a test can watch what a page showed)."""
    place.markdown(f":material/groups: {text}")


def wait_in_line(line: TurnQueue, ticket: Ticket, status, place) -> float:
    """Block until ``ticket`` holds a slot, showing its place (updated every ``POLL_S``); the seconds it waited.

    Each update is an ``st`` call, and every ``st`` call is where Streamlit stops a script run that should end:
    ``ScriptRunner._enqueue_forward_msg`` runs ``_maybe_handle_execution_control_request``, which raises
    ``StopException`` after ``request_stop()`` (a closed tab: ``disconnect_session`` -> ``request_script_stop``;
    a rerun with ``runner.fastReruns``, the default: the old runner is stopped and a new one started) or
    ``RerunException``. So a gone page raises here within ``HEARTBEAT_S`` (plus a poll), and the caller's
    ``finally`` gives up its place. ``status`` (an ``st.status``, or ``None``) also shows the place in its label.
    """
    start = time.perf_counter()
    timeout = 0.0  # the first look is immediate: a visitor with nobody ahead sees no waiting line at all
    shown, written = "", 0.0
    while not ticket.wait(timeout):
        if ticket.left:
            raise RuntimeError("the ticket left the line while its page was waiting")
        text = line.place(ticket)
        if text != shown and status is not None:
            status.update(label=f"Waiting for your turn: {text[:1].lower()}{text[1:]}")
        if text != shown or time.perf_counter() - written >= HEARTBEAT_S:
            show_place(place, text)  # also the point where a gone page is stopped
            shown, written = text, time.perf_counter()
        timeout = POLL_S
    return time.perf_counter() - start if shown else 0.0


@contextmanager
def turn(kind: str, place, status=None, resume_label: str | None = None) -> Iterator[float]:
    """``with turn("tweet", place, status) as waited:`` runs the block in this page's turn; ``waited`` is the
    seconds spent in line (0 with nobody ahead).

    ``kind`` names the work ("tweet", "batch", "caption", …) so the estimate shown to those behind counts each
    turn ahead at its own kind's recent length. While waiting, ``place`` (an ``st.empty``) shows the place, and
    then how long the wait was; ``status`` gets ``resume_label`` back when the turn comes. Every exit (an error, a
    closed page, a rerun) gives up the place or the slot.
    """
    line = model_queue.shared()
    ticket = line.join(kind)
    try:
        ahead = ticket.ahead()
        waited = wait_in_line(line, ticket, status, place)
        if waited:
            place.caption(f":material/groups: Waited {waited:.1f} s in line ({ahead} ahead of you at first)")
            if status is not None and resume_label:
                status.update(label=resume_label)
        with ticket.turn():
            yield waited
    finally:
        ticket.leave()
