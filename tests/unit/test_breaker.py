"""Exact breaker transitions for both window kinds, on a fake clock."""

import pytest

from sidecar.breaker.breaker import Breaker, BreakerConfig, State, WindowType
from sidecar.breaker.window import CountWindow, TimeWindow
from sidecar.core.clock import FakeClock


def make(clock: FakeClock, **kw: object) -> tuple[Breaker, list[tuple[State, State]]]:
    moves: list[tuple[State, State]] = []
    cfg = BreakerConfig(**{"window_size": 10, "minimum_calls": 4, "failure_rate_threshold": 50.0,
                           "wait_in_open": 5.0, "permitted_in_half_open": 2, **kw})  # type: ignore[arg-type]
    return Breaker("svc", cfg, clock, lambda _n, a, b: moves.append((a, b))), moves


def st(b: Breaker) -> State:
    return b.state  # a call, so mypy does not carry narrowing across b's methods


def call(b: Breaker, failed: bool, duration: float = 0.01) -> bool:
    if not b.allow():
        return False
    b.record(duration, failed)
    return True


def test_count_window_opens_exactly_at_the_threshold_after_minimum_calls():
    clock = FakeClock()
    b, moves = make(clock)
    for failed in (True, True, False):  # 3 calls < minimum 4: stays closed at 66%
        assert call(b, failed)
    assert st(b) is State.CLOSED
    assert call(b, False)  # 4 calls, 2 failed = 50% >= 50%
    assert st(b) is State.OPEN and moves == [(State.CLOSED, State.OPEN)]
    assert not b.allow()


def test_below_the_threshold_stays_closed_and_old_outcomes_slide_out():
    clock = FakeClock()
    b, _ = make(clock, window_size=4)
    for failed in (True, False, False, False):  # 25%
        call(b, failed)
    assert st(b) is State.CLOSED
    for _ in range(4):
        call(b, False)  # the failure slid out of the 4-call window
    call(b, True)
    assert st(b) is State.CLOSED  # 1 of the last 4


def test_open_to_half_open_after_the_wait_then_closed_on_good_trials():
    clock = FakeClock()
    b, moves = make(clock)
    for _ in range(4):
        call(b, True)
    assert st(b) is State.OPEN and b.retry_after == 5.0
    clock.advance(4.999)
    assert not b.allow()
    clock.advance(0.001)
    assert b.allow() and st(b) is State.HALF_OPEN
    assert b.allow()  # second permitted trial
    assert not b.allow()  # only 2 permitted
    b.record(0.01, False)
    assert st(b) is State.HALF_OPEN
    b.record(0.01, False)
    assert st(b) is State.CLOSED
    assert moves == [(State.CLOSED, State.OPEN), (State.OPEN, State.HALF_OPEN),
                     (State.HALF_OPEN, State.CLOSED)]


def test_half_open_back_to_open_when_trials_fail():
    clock = FakeClock()
    b, moves = make(clock)
    for _ in range(4):
        call(b, True)
    clock.advance(5)
    assert call(b, True) and call(b, False)  # 50% of trials failed
    assert st(b) is State.OPEN
    assert moves[-1] == (State.HALF_OPEN, State.OPEN)
    assert b.retry_after == 5.0


def test_released_trial_permits_are_given_back():
    clock = FakeClock()
    b, _ = make(clock)
    for _ in range(4):
        call(b, True)
    clock.advance(5)
    assert b.allow() and b.allow() and not b.allow()
    b.release()
    assert b.allow()


def test_slow_calls_trip_the_breaker():
    clock = FakeClock()
    b, _ = make(clock, slow_call_duration=0.5, slow_call_rate_threshold=75.0)
    for d in (0.6, 0.6, 0.1, 0.7):
        call(b, False, d)
    assert st(b) is State.OPEN  # 3 of 4 slow = 75%


def test_time_window_counts_only_the_last_seconds():
    clock = FakeClock(1000.0)
    b, _ = make(clock, window_type=WindowType.TIME_BASED, window_size=10)
    call(b, True)
    call(b, True)
    clock.advance(10)  # both failures are now outside the 10 s window
    call(b, False)
    call(b, False)
    call(b, False)
    assert st(b) is State.CLOSED
    call(b, True)
    call(b, True)  # 2 of 5 in window: 40%
    assert st(b) is State.CLOSED
    call(b, True)  # 3 of 6 = 50%
    assert st(b) is State.OPEN


def test_windows_keep_running_totals():
    w = CountWindow(3)
    for f in (True, False, True, False):
        t = w.record(f, False)
    assert (t.calls, t.failures) == (3, 1)
    clock = FakeClock(0.0)
    tw = TimeWindow(2, clock)
    tw.record(True, True)
    clock.advance(1)
    tw.record(False, False)
    assert (tw.current().calls, tw.current().failures, tw.current().slow) == (2, 1, 1)
    clock.advance(1)
    assert (tw.current().calls, tw.current().failures) == (1, 0)


@pytest.mark.parametrize("bad", [{"window_size": 0}, {"failure_rate_threshold": 0},
                                 {"permitted_in_half_open": 0}, {"slow_call_duration": 0}])
def test_invalid_config_is_refused(bad):
    with pytest.raises(ValueError):
        BreakerConfig(**bad)
