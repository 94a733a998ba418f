"""A probe call's window judged against the loop's lag, on a fake clock: fail, inconclusive or wait on."""

import pytest

from sidecar.core.clock import FakeClock
from sidecar.health.loop_lag import LagRecord
from sidecar.health.probe_window import LIMIT_FACTOR, MIN_WAIT, ProbeWindow, Verdict

BUDGET = 1.0


def window(start: float = 10.0) -> tuple[ProbeWindow, FakeClock, LagRecord]:
    clock, lag = FakeClock(start), LagRecord()
    return ProbeWindow(lag, clock, BUDGET), clock, lag


def test_no_answer_on_a_loop_that_kept_time_fails_at_the_budget() -> None:
    w, clock, _ = window()
    assert w.remaining() == BUDGET
    assert w.limit == BUDGET * LIMIT_FACTOR
    clock.advance(BUDGET)
    assert w.expired() is Verdict.FAIL


def test_a_stall_during_the_wait_is_given_back_then_the_call_fails() -> None:
    w, clock, lag = window()
    lag.tick(due=10.2, ran=10.6)  # the loop lost 0.4 s of the model's second
    clock.advance(BUDGET)
    assert w.expired() is None
    assert w.remaining() == pytest.approx(0.4)
    clock.advance(0.4)
    assert w.expired() is Verdict.FAIL


def test_a_stall_over_the_deadline_waits_for_an_answer_that_may_be_waiting_to_be_read() -> None:
    w, clock, lag = window()
    # The monitor's tick was due just after the deadline, so it measures less than the timer's delay:
    # 0.3 s of free time seems spent, but the timer ran 0.5 s late, so the loop was stalled over it.
    lag.tick(due=11.2, ran=11.5)
    clock.advance(BUDGET + 0.5)
    assert w.expired() is None
    assert w.remaining() == pytest.approx(MIN_WAIT)
    clock.advance(MIN_WAIT)  # a timer on time now, and still no answer: the model is slow
    assert w.expired() is Verdict.FAIL


def test_a_small_delay_of_the_timer_still_gives_a_verdict() -> None:
    w, clock, _ = window()
    clock.advance(BUDGET * 1.05)  # 50 ms late on a 1 s budget: the loop was busy, not stalled
    assert w.expired() is Verdict.FAIL


def test_a_loop_stalled_for_the_whole_limit_makes_the_call_inconclusive() -> None:
    w, clock, lag = window()
    lag.expect(10.05)  # the monitor's next tick, which never runs: the loop is stalled throughout
    clock.advance(BUDGET)
    assert w.expired() is None
    while (verdict := w.expired()) is None:
        clock.advance(w.remaining())
    assert verdict is Verdict.INCONCLUSIVE
    assert clock() - w.start == pytest.approx(w.limit)  # given up at the limit, not later


def test_a_timer_that_runs_late_past_the_limit_looks_once_more_before_giving_up() -> None:
    w, clock, lag = window()
    lag.expect(10.05)
    clock.advance(w.limit * 3)  # one long stall, past twice the limit
    assert w.expired() is None  # the answer may be a loop turn away
    lag.tick(due=10.05, ran=clock())
    clock.advance(w.remaining())
    assert w.expired() is Verdict.INCONCLUSIVE


def test_a_loop_never_on_time_gets_a_verdict_at_twice_the_limit() -> None:
    w, clock, lag = window()
    lag.expect(10.05)
    steps = 0
    while (verdict := w.expired()) is None:
        clock.advance(w.remaining() + 0.5)  # every timer half a second late
        steps += 1
    assert verdict is Verdict.INCONCLUSIVE
    assert w.limit * 2 <= clock() - w.start < w.limit * 2 + 1.0
    assert steps < 100


def test_the_links_own_timeout_after_a_stalled_limit_is_inconclusive() -> None:
    w, clock, lag = window()
    lag.tick(due=10.1, ran=14.9)  # the loop lost 4.8 s of the 5 s deadline the link was given
    clock.advance(w.limit)
    assert w.gave_up() is Verdict.INCONCLUSIVE
    assert "4.80s of it with the event loop stalled" in w.describe()


def test_the_links_own_timeout_on_a_loop_that_kept_time_fails() -> None:
    w, clock, _ = window()
    clock.advance(w.limit)
    assert w.gave_up() is Verdict.FAIL


def test_a_deadline_exceeded_answered_early_is_the_models_and_fails_even_with_lag() -> None:
    w, clock, lag = window()
    lag.tick(due=10.1, ran=10.6)
    clock.advance(0.7)  # long before the link's deadline: the model said so itself
    assert w.gave_up() is Verdict.FAIL


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ProbeWindow(LagRecord(), FakeClock(), 0.0)
