"""``core.model_queue``: arrival order, places as the line moves, leaving, the estimate and the text a visitor reads.

No test sleeps or times anything: threads are sequenced with ``threading.Event``/``Barrier``, durations are
injected (``record``) and clocks are fake. ``TIMEOUT_S`` only keeps a broken queue from hanging the run.
"""

from __future__ import annotations

import threading

import pytest

from core import model_queue
from core.errors import UserError
from core.model_queue import TurnQueue, about, place_text, slots_from_env, typical_turn, wait_estimate, wait_for_slot

TIMEOUT_S = 30  # a guard against a hang, never a measurement


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def visitor(ticket, served: list[int], got_turn: threading.Event, release: threading.Event) -> threading.Thread:
    """A page's thread: wait for the turn, say so, hold the slot until released, then leave."""
    def run() -> None:
        if ticket.wait(TIMEOUT_S):
            served.append(ticket.number)
            got_turn.set()
            release.wait(TIMEOUT_S)
        ticket.leave()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_one_slot_serves_three_visitors_in_arrival_order_whatever_order_their_threads_run():
    line = TurnQueue(1)
    tickets = [line.join() for _ in range(3)]
    served: list[int] = []
    got = {t.number: threading.Event() for t in tickets}
    release = {t.number: threading.Event() for t in tickets}
    threads = [visitor(t, served, got[t.number], release[t.number]) for t in reversed(tickets)]  # last first

    assert got[1].wait(TIMEOUT_S)
    assert served == [1] and [t.serving for t in tickets] == [True, False, False]
    release[1].set()
    assert got[2].wait(TIMEOUT_S)
    assert served == [1, 2] and not tickets[2].serving
    release[2].set()
    assert got[3].wait(TIMEOUT_S)
    release[3].set()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert served == [1, 2, 3]
    assert len(line) == 0


def test_two_slots_serve_the_first_two_at_once_and_the_third_when_one_leaves():
    line = TurnQueue(2)
    first, second, third = (line.join() for _ in range(3))
    both_in = threading.Barrier(3, timeout=TIMEOUT_S)  # passes only when both visitors hold a slot at the same time
    done = threading.Event()

    def served_together(ticket) -> None:
        assert ticket.wait(TIMEOUT_S)
        both_in.wait()
        done.wait(TIMEOUT_S)

    threads = [threading.Thread(target=served_together, args=(t,), daemon=True) for t in (first, second)]
    for thread in threads:
        thread.start()
    both_in.wait()
    assert line.serving() == 2 and not third.serving and third.ahead() == 2
    first.leave()
    assert third.wait(TIMEOUT_S) and third.ahead() == 1
    done.set()
    for thread in threads:
        thread.join(TIMEOUT_S)


def test_ahead_counts_everyone_before_a_ticket_including_those_served_as_the_line_moves():
    line = TurnQueue(1)
    a, b, c, d = (line.join() for _ in range(4))
    assert [t.ahead() for t in (a, b, c, d)] == [0, 1, 2, 3]
    b.leave()
    assert [t.ahead() for t in (a, c, d)] == [0, 1, 2]
    a.leave()
    assert [t.ahead() for t in (c, d)] == [0, 1] and c.serving
    assert b.ahead() == 0 and a.ahead() == 0  # gone tickets are before nobody


def test_a_visitor_who_leaves_before_their_turn_frees_the_place_and_never_gets_a_slot():
    line = TurnQueue(1)
    first, leaver, last = (line.join() for _ in range(3))
    woke: list[bool] = []
    waiting = threading.Thread(target=lambda: woke.append(leaver.wait(TIMEOUT_S)), daemon=True)
    waiting.start()

    leaver.leave()
    waiting.join(TIMEOUT_S)
    assert woke == [False], "a page waiting on a ticket that left is woken, without a turn"
    assert last.ahead() == 1 and len(line) == 2
    leaver.leave()  # idempotent: a second leave (the page's finally after an error) changes nothing
    assert len(line) == 2
    first.leave()
    assert last.serving and not leaver.serving and leaver.served_since is None
    assert not leaver.wait(0)
    with pytest.raises(RuntimeError, match="no slot"):
        with leaver.turn():
            pass


def test_a_visitor_who_leaves_during_their_turn_frees_the_slot_and_records_no_duration():
    line = TurnQueue(1)
    first, second = line.join(), line.join()
    with pytest.raises(KeyboardInterrupt):  # a BaseException, as Streamlit's StopException is
        with first.turn():
            raise KeyboardInterrupt
    assert second.serving and second.ahead() == 0
    assert line.typical() is None, "a turn cut short says nothing about how long a turn takes"
    second.leave()
    second.leave()
    assert len(line) == 0 and line.serving() == 0


def test_a_completed_turn_records_its_duration_and_frees_the_slot():
    clock = FakeClock(10.0)
    line = TurnQueue(1, clock=clock)
    first, second = line.join(), line.join()
    with first.turn():
        clock.now += 4.0
    assert line.typical() == 4.0
    assert second.serving


def test_a_ticket_waits_for_its_turn_only_after_it_holds_a_slot():
    line = TurnQueue(1)
    first, second = line.join(), line.join()
    with pytest.raises(RuntimeError, match="wait"):
        with second.turn():
            pass
    assert first.wait(0) and not second.wait(0)


def test_the_estimate_comes_from_recorded_turns_and_the_current_turns_progress():
    clock = FakeClock()
    line = TurnQueue(1, clock=clock)
    served, next_, after = line.join(), line.join(), line.join()
    assert line.estimate(next_) is None, "no estimate before a turn completed"
    assert line.place(next_) == "You are next, estimating the wait…"
    for seconds in (3.0, 3.0, 30.0):  # one slow (cold) turn does not triple the estimate: a median
        line.record(seconds)
    assert line.typical() == 3.0
    assert line.estimate(next_) == 3.0 and line.estimate(after) == 6.0
    clock.now = 1.0  # the turn being served has run 1 s
    assert line.estimate(next_) == 2.0 and line.estimate(after) == 5.0
    assert line.place(after) == "2 ahead of you, about 5 s"
    assert line.estimate(served) == 0.0


def test_each_ticket_ahead_counts_for_its_own_kinds_typical_turn():
    clock = FakeClock()
    line = TurnQueue(1, clock=clock)
    line.record(10.0, "batch")
    line.record(2.0)  # a tweet
    chunk, tweet, me = line.join("batch"), line.join(), line.join("caption")
    clock.now = 4.0  # the batch chunk being served has run 4 s of its typical 10
    assert line.estimate(tweet) == 6.0
    assert line.estimate(me) == 8.0, "what is left of the chunk, then one tweet"
    assert line.typical("caption") is None and line.typical() == 2.0
    behind_me = line.join()
    assert line.estimate(behind_me) is None, "a caption turn ahead has never completed: no estimate yet"
    assert chunk.serving


def test_a_completed_turn_is_recorded_under_its_tickets_kind():
    line = TurnQueue(1, clock=FakeClock())
    ticket = line.join("ocr")
    assert ticket.wait(TIMEOUT_S)
    with ticket.turn():
        pass
    assert line.typical("ocr") == 0.0 and line.typical() is None, "an OCR file's turn says nothing about a tweet's"


def test_the_estimate_keeps_only_recent_turns():
    line = TurnQueue(1, recent=3)
    for seconds in (50.0, 50.0, 2.0, 2.0, 2.0):
        line.record(seconds)
    assert line.typical() == 2.0


@pytest.mark.parametrize(("ahead", "slots", "typical", "elapsed", "expected"), [
    (0, 1, 3.0, [], 0.0),  # served: no wait
    (1, 1, 3.0, [1.0], 2.0),  # next: what is left of the turn being served
    (3, 1, 3.0, [1.0], 8.0),  # plus one turn per ticket waiting ahead
    (1, 1, 3.0, [9.0], 0.0),  # an overrunning turn is taken as about to end
    (2, 2, 3.0, [1.0, 2.0], 1.0),  # two slots: the first to free up
    (3, 2, 3.0, [1.0, 2.0], 2.0),
    (4, 2, 3.0, [1.0, 2.0], 4.0),
    (1, 1, 3.0, [], 3.0),  # a free slot goes to the one ahead first, for a whole turn
])
def test_wait_estimate(ahead, slots, typical, elapsed, expected):
    assert wait_estimate(ahead, slots, typical, elapsed) == pytest.approx(expected)


@pytest.mark.parametrize(("left", "waiting", "slots", "expected"), [
    ([], [], 1, 0.0),  # a free slot
    ([2.0], [], 1, 2.0),
    ([2.0], [10.0, 1.0], 1, 13.0),  # in order, each its own length
    ([2.0, 5.0], [10.0], 2, 5.0),  # the 10 s chunk takes the slot freed at 2 s; the next slot frees at 5 s
    ([-1.0], [3.0], 1, 3.0),  # an overrunning turn is taken as about to end
])
def test_wait_for_slot(left, waiting, slots, expected):
    assert wait_for_slot(left, waiting, slots) == pytest.approx(expected)


def test_typical_turn_is_the_median_and_none_without_turns():
    assert typical_turn([]) is None
    assert typical_turn([2.0, 9.0, 3.0]) == 3.0


@pytest.mark.parametrize(("ahead", "slots", "estimate", "text"), [
    (1, 1, None, "You are next, estimating the wait…"),
    (1, 1, 2.2, "You are next, about 3 s"),
    (2, 1, 6.0, "2 ahead of you, about 6 s"),
    (5, 1, 0.2, "5 ahead of you, about 1 s"),
    (2, 2, 1.0, "You are next, about 1 s"),
    (3, 2, 1.0, "3 ahead of you, about 1 s"),
    (0, 1, 0.0, "Your turn: starting"),
    (20, 1, 150.0, "20 ahead of you, about 3 min"),
])
def test_place_text(ahead, slots, estimate, text):
    assert place_text(ahead, slots, estimate) == text


def test_about_rounds_up_and_switches_to_minutes():
    assert [about(s) for s in (0.0, 5.01, 89.0, 89.5, 120.0)] == [
        "about 1 s", "about 6 s", "about 89 s", "about 2 min", "about 2 min"]


def test_slots_come_from_the_environment_and_a_wrong_value_is_refused():
    assert slots_from_env({}) == 1
    assert slots_from_env({"M2T_QUEUE_SLOTS": " 2 "}) == 2
    for wrong in ("0", "-1", "two", "1.5", "65"):
        with pytest.raises(UserError, match="M2T_QUEUE_SLOTS must be a whole number"):
            slots_from_env({"M2T_QUEUE_SLOTS": wrong})
    with pytest.raises(ValueError):
        TurnQueue(0)


def test_one_shared_line_per_process_sized_when_first_asked_for(monkeypatch):
    monkeypatch.setattr(model_queue, "_SHARED", None)
    monkeypatch.setenv("M2T_QUEUE_SLOTS", "nope")
    with pytest.raises(UserError):
        model_queue.shared()
    monkeypatch.setenv("M2T_QUEUE_SLOTS", "2")
    line = model_queue.shared()
    assert line.slots == 2 and model_queue.shared() is line
