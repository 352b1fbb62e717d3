"""One line for the models per process: visitors' predictions take turns, in arrival order, each told its place.

Why: six visitors of one ``m2t serve`` who clicked at once each ran their prediction in their own script thread,
all sharing two cores; every one of them was slowed by all the others, and the slowest waited 25-30 s for a tweet
that takes 2.5-2.8 s alone (more than taking turns would cost: 6 x 2.7 s = 16 s), with no idea how long. A line
with one slot on a CPU (``M2T_QUEUE_SLOTS`` to change) runs one visitor's whole prediction at a time with every
core, so the first visitor waits only for their own tweet and the sixth about five tweets' time; and since the line
knows who is ahead and how long recent turns took, a waiting visitor can be told "2 ahead of you, about 6 s".

The line is process-wide (:func:`shared`), like ``core.model_cache``: every session of a server uses the same
models, so they queue in the same line. It knows nothing of Streamlit: the page polls :meth:`Ticket.wait` with a
short timeout, shows :func:`place_text` between polls, and calls :meth:`Ticket.leave` in a ``finally`` so that a
visitor whose page is closed or rerun gives up their place (and never starts a prediction nobody will see).

Model-free and stdlib-only, so tests drive it with ``threading.Event``/``Barrier`` and injected durations and
clocks, never with sleeps.
"""

from __future__ import annotations

import heapq
import math
import os
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from core.errors import UserError

SLOTS_ENV = "M2T_QUEUE_SLOTS"
DEFAULT_SLOTS = 1  # a CPU box: one prediction at a time gets every core; two at once each take about twice as long
MAX_SLOTS = 64
RECENT_TURNS = 5  # the estimate's window: follows the machine, and one cold turn stays an outlier

Clock = Callable[[], float]


def slots_from_env(environ: dict[str, str] | None = None) -> int:
    """``M2T_QUEUE_SLOTS`` as a whole number of predictions run at once (default 1); a wrong value is refused with
    what to write instead, never silently replaced (the host would then measure a setting they did not choose)."""
    raw = (os.environ if environ is None else environ).get(SLOTS_ENV, "").strip()
    if not raw:
        return DEFAULT_SLOTS
    try:
        slots = int(raw)
    except ValueError:
        slots = 0
    if not 1 <= slots <= MAX_SLOTS:
        raise UserError(f"{SLOTS_ENV} must be a whole number from 1 to {MAX_SLOTS} (predictions run at once), "
                        f"not {raw!r}; unset it for the default, {DEFAULT_SLOTS}")
    return slots


def typical_turn(durations: Sequence[float]) -> float | None:
    """The median of recent turns' seconds, ``None`` before any turn finished. A median, not a mean: the first turn
    after start-up (or one with a second look) can take twice the others and should not double every estimate."""
    return statistics.median(durations) if durations else None


def wait_estimate(ahead: int, slots: int, typical: float, elapsed: Sequence[float]) -> float:
    """Seconds until a ticket with ``ahead`` tickets before it gets a slot, if every turn takes ``typical`` seconds.

    ``elapsed`` holds how long each turn now being served has run (one per busy slot): each has
    ``typical - elapsed`` left (at least 0, an overrunning turn is taken as about to end), then the waiting tickets
    ahead take the slots as they free up, in order. With one slot this is the remaining part of the current turn
    plus one ``typical`` per ticket waiting ahead.
    """
    if ahead < slots:
        return 0.0
    served = elapsed[:slots]
    return wait_for_slot([max(0.0, typical - e) for e in served], [typical] * (ahead - len(served)), slots)


def wait_for_slot(left: Sequence[float], waiting: Sequence[float], slots: int) -> float:
    """Seconds until the next ticket gets a slot: ``left`` holds the seconds each turn being served still needs
    (one per busy slot), ``waiting`` the expected seconds of each turn waiting ahead, in order; each takes the first
    slot to free up. Turns of different kinds (a tweet, a batch chunk, one file's caption) take different times, so
    each ticket ahead counts for its own kind's typical turn (:meth:`TurnQueue.estimate`)."""
    free_at = [max(0.0, x) for x in left[:slots]]
    free_at += [0.0] * (slots - len(free_at))  # a slot being handed over counts as free now
    heapq.heapify(free_at)
    for seconds in waiting:
        heapq.heapreplace(free_at, free_at[0] + seconds)
    return free_at[0]


def place_text(ahead: int, slots: int, estimate: float | None) -> str:
    """What a waiting visitor reads: "You are next, about 3 s", "2 ahead of you, about 6 s", or, before any turn
    finished, "… estimating the wait…". ``ahead`` counts the visitors being served too."""
    if ahead < slots:
        return "Your turn: starting"
    place = "You are next" if ahead == slots else f"{ahead} ahead of you"
    return f"{place}, {about(estimate)}" if estimate is not None else f"{place}, estimating the wait…"


def about(seconds: float) -> str:
    """A wait in words, rounded up (a promise kept early is better than one kept late): "about 6 s", "about 2 min"."""
    whole = max(1, math.ceil(seconds))
    return f"about {whole} s" if whole < 90 else f"about {math.ceil(whole / 60)} min"


class Ticket:
    """One visitor's place in a :class:`TurnQueue`: waiting, then served (holding a slot), then gone.

    Every method is safe from any thread; :meth:`leave` is idempotent and frees either the place or the slot.
    """

    def __init__(self, line: TurnQueue, number: int, kind: str = "tweet") -> None:
        self._line = line
        self.number = number  # arrival order, for logs and tests
        self.kind = kind  # what its turn runs: turns of one kind take about the same time
        self.served_since: float | None = None  # the line's clock when this ticket got its slot
        self.left = False

    @property
    def serving(self) -> bool:
        return self.served_since is not None and not self.left

    def ahead(self) -> int:
        """How many tickets are before this one, those being served included; 0 once it has left."""
        return self._line._ahead(self)

    def wait(self, timeout: float | None = None) -> bool:
        """True as soon as this ticket holds a slot; False after ``timeout`` seconds without one, or once it left.
        The page calls it with a short timeout so that it can update the place shown and notice a closed page."""
        return self._line._wait(self, timeout)

    def leave(self) -> None:
        """Give up the place in line, or the slot if served, and wake the others; a left ticket never gets a slot."""
        self._line._leave(self)

    @contextmanager
    def turn(self) -> Iterator[Ticket]:
        """The served part: ``with ticket.turn(): run the models``. Its seconds are recorded for the estimate only
        when the block completes (a turn cut short says nothing about how long a turn takes); the slot is freed on
        every exit. Only a served ticket may take its turn: wait for it first."""
        if not self.serving:
            raise RuntimeError(f"ticket {self.number} has no slot: wait() for it before its turn")
        start = self._line.clock()
        try:
            yield self
        except BaseException:
            self.leave()
            raise
        self._line.record(self._line.clock() - start, self.kind)
        self.leave()


class TurnQueue:
    """A first-come, first-served line with ``slots`` places served at once (``threading.Condition`` inside).

    The first ``slots`` tickets of the line are the ones being served; when one leaves, the next in line is
    promoted at once, so arrival order is the serving order whatever the threads' timing. ``clock`` is
    injectable for tests (``time.monotonic`` otherwise).
    """

    def __init__(self, slots: int = DEFAULT_SLOTS, *, recent: int = RECENT_TURNS, clock: Clock = time.monotonic):
        if slots < 1:
            raise ValueError("a queue needs at least one slot")
        self.slots = slots
        self.clock = clock
        self._cond = threading.Condition()
        self._line: list[Ticket] = []
        self._recent = recent
        self._durations: dict[str, deque[float]] = {}
        self._issued = 0

    def join(self, kind: str = "tweet") -> Ticket:
        """A new ticket at the back of the line (served at once when a slot is free); ``kind`` names what its turn
        runs, for the estimates of those behind it."""
        with self._cond:
            self._issued += 1
            ticket = Ticket(self, self._issued, kind)
            self._line.append(ticket)
            self._promote()
            return ticket

    def record(self, seconds: float, kind: str = "tweet") -> None:
        """One completed turn's seconds, for the estimate (called by :meth:`Ticket.turn`; tests inject them)."""
        with self._cond:
            self._durations.setdefault(kind, deque(maxlen=self._recent)).append(max(0.0, float(seconds)))
            self._cond.notify_all()  # waiting pages may show a first estimate

    def typical(self, kind: str = "tweet") -> float | None:
        with self._cond:
            return typical_turn(list(self._durations.get(kind, ())))

    def estimate(self, ticket: Ticket) -> float | None:
        """Seconds until ``ticket`` is served, from the recent turns of each ticket's kind (:func:`wait_for_slot`);
        ``None`` while a ticket ahead is of a kind with no completed turn yet, 0 once it is served or gone."""
        with self._cond:
            if ticket not in self._line or ticket.serving:
                return 0.0
            ahead = self._line[: self._line.index(ticket)]
            typical = {kind: typical_turn(list(self._durations.get(kind, ()))) for kind in {t.kind for t in ahead}}
            if None in typical.values():
                return None
            now = self.clock()
            served = [t for t in ahead[: self.slots] if t.served_since is not None]
            left = [typical[t.kind] - (now - t.served_since) for t in served]  # type: ignore[operator]
            waiting = [typical[t.kind] for t in ahead if t not in served]
            return wait_for_slot(left, waiting, self.slots)  # type: ignore[arg-type]

    def place(self, ticket: Ticket) -> str:
        """:func:`place_text` for ``ticket`` now: its place and estimate read together."""
        return place_text(ticket.ahead(), self.slots, self.estimate(ticket))

    def __len__(self) -> int:
        """Tickets in line, those being served included."""
        with self._cond:
            return len(self._line)

    def serving(self) -> int:
        with self._cond:
            return sum(1 for t in self._line if t.serving)

    # ------------------------------------------------------------------ under the condition's lock

    def _promote(self) -> None:
        """Give every free slot to the first tickets in line (the caller holds the lock)."""
        now = None
        for ticket in self._line[: self.slots]:
            if ticket.served_since is None:
                now = self.clock() if now is None else now
                ticket.served_since = now
        self._cond.notify_all()

    def _ahead(self, ticket: Ticket) -> int:
        with self._cond:
            return self._line.index(ticket) if ticket in self._line else 0

    def _wait(self, ticket: Ticket, timeout: float | None) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: ticket.serving or ticket.left, timeout)
            return ticket.serving

    def _leave(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.left:
                return
            ticket.left = True
            if ticket in self._line:
                self._line.remove(ticket)
            self._promote()


_SHARED: TurnQueue | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> TurnQueue:
    """The process's one line for the models, sized by ``M2T_QUEUE_SLOTS`` when first asked for (a wrong value is
    a ``UserError``, shown to whoever asked, and asked again next time)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = TurnQueue(slots_from_env())
        return _SHARED
