"""The loop-lag monitor's measure and the record of stalls it keeps, on a fake clock."""

import asyncio

import pytest

from sidecar.core.clock import FakeClock
from sidecar.health.loop_lag import MAX_STALLS, LagRecord, LoopLagMonitor


def test_a_timer_on_time_records_no_stall() -> None:
    r = LagRecord()
    assert r.tick(due=1.0, ran=1.0) == 0.0
    assert r.tick(due=1.05, ran=1.0504) == pytest.approx(0.0004)  # timer granularity, not a stall
    assert r.lost(0.0, 10.0) == 0.0
    assert r.worst(10.0) == 0.0
    assert r.stalled_total == 0.0


def test_a_late_timer_is_a_stall_from_when_it_was_due_to_when_it_ran() -> None:
    r = LagRecord()
    assert r.tick(due=1.0, ran=1.5) == pytest.approx(0.5)
    assert r.lost(0.0, 2.0) == pytest.approx(0.5)
    assert r.lost(1.2, 2.0) == pytest.approx(0.3)  # only the part inside the window
    assert r.lost(0.0, 1.1) == pytest.approx(0.1)
    assert r.lost(1.5, 3.0) == 0.0
    assert r.lost(0.0, 1.0) == 0.0
    r.tick(due=2.0, ran=2.25)
    assert r.lost(0.0, 3.0) == pytest.approx(0.75)
    assert r.worst(3.0) == pytest.approx(0.5)
    assert r.stalled_total == pytest.approx(0.75)


def test_a_stall_under_way_counts_before_the_timer_runs() -> None:
    r = LagRecord()
    r.expect(2.0)  # due at 2.0 and not run yet at 4.5: the loop has been stalled since 2.0
    assert r.lost(1.0, 4.5) == pytest.approx(2.5)
    assert r.lost(3.0, 4.5) == pytest.approx(1.5)
    assert r.lost(0.0, 1.5) == 0.0  # not due yet then
    assert r.worst(4.5) == pytest.approx(2.5)
    r.tick(due=2.0, ran=4.5)  # once it runs, the same stall is a recorded one
    assert r.lost(1.0, 5.0) == pytest.approx(2.5)


def test_worst_looks_back_over_its_window_only() -> None:
    r = LagRecord()
    r.tick(due=1.0, ran=3.0)
    r.tick(due=20.0, ran=20.2)
    assert r.worst(21.0, window=10.0) == pytest.approx(0.2)
    assert r.worst(21.0, window=30.0) == pytest.approx(2.0)


def test_stalls_older_than_the_horizon_are_forgotten_and_the_count_is_bounded() -> None:
    r = LagRecord(horizon=5.0)
    r.tick(due=1.0, ran=2.0)
    r.tick(due=10.0, ran=10.5)
    assert r.lost(0.0, 11.0) == pytest.approx(0.5)
    assert r.stalled_total == pytest.approx(1.5)  # the counter keeps everything
    many = LagRecord(horizon=1e9)
    for i in range(MAX_STALLS + 10):
        many.tick(due=float(i), ran=i + 0.01)
    assert many.lost(0.0, MAX_STALLS + 20.0) == pytest.approx(MAX_STALLS * 0.01)


async def test_the_monitor_measures_how_late_its_sleep_comes_back() -> None:
    clock = FakeClock(100.0)
    record = LagRecord()
    # How long each sleep really took beyond its interval: the loop was busy elsewhere.
    overruns = [0.0, 0.0, 1.25, 0.0, 0.3]
    seen_pending: list[float] = []

    async def sleep(seconds: float) -> None:
        if not overruns:
            raise asyncio.CancelledError
        overrun = overruns.pop(0)
        clock.advance(seconds + overrun)
        # While the timer has not run yet, the stall is already visible.
        seen_pending.append(record.lost(0.0, clock()))

    monitor = LoopLagMonitor(record, clock, interval=0.05, sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await monitor.run()
    assert record.lost(0.0, clock()) == pytest.approx(1.55)
    assert record.worst(clock()) == pytest.approx(1.25)
    assert record.stalled_total == pytest.approx(1.55)
    assert seen_pending == pytest.approx([0.0, 0.0, 1.25, 1.25, 1.55])
    # The third tick was due at 100.15 and ran at 101.40.
    assert record.lost(100.0, 100.149) == 0.0
    assert record.lost(100.15, 101.40) == pytest.approx(1.25)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        LagRecord(horizon=0)
    with pytest.raises(ValueError):
        LoopLagMonitor(LagRecord(), FakeClock(), interval=0)
