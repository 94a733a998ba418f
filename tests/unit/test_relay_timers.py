"""A relay connection's timers (sidecar/ingress/relay/timers.py): the preface deadline, the idle check."""

from collections.abc import Callable

from sidecar.ingress.relay.timers import IDLE_CHECKS, ConnectionTimers


class _Timer:
    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay, self.callback, self.cancelled = delay, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Loop:
    """call_later held until a test fires it: no real time passes."""

    def __init__(self) -> None:
        self.timers: list[_Timer] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        self.timers.append(_Timer(delay, callback))
        return self.timers[-1]

    def fire(self) -> None:
        self.timers[-1].callback()


class _Connection:
    def __init__(self) -> None:
        self.busy, self.last_sid, self.said = False, 0, list[str]()

    def timers(self, loop: _Loop) -> ConnectionTimers:
        return ConnectionTimers(
            loop,  # type: ignore[arg-type]
            preface_timeout=5.0,
            idle_timeout=8.0,
            late=lambda: self.said.append("late"),
            idle=lambda: self.said.append("idle"),
            busy=lambda: self.busy,
            last_sid=lambda: self.last_sid,
        )


def test_no_preface_by_its_deadline_is_late_and_one_in_time_cancels_it():
    loop, conn = _Loop(), _Connection()
    timers = conn.timers(loop)
    timers.preface()
    loop.fire()
    assert conn.said == ["late"] and loop.timers[0].delay == 5.0
    timers.preface()
    timers.cancel()
    assert loop.timers[1].cancelled and conn.said == ["late"]


def test_idle_after_idle_checks_in_a_row_with_no_stream_and_no_new_one():
    loop, conn = _Loop(), _Connection()
    conn.timers(loop).idle_checks()
    for _ in range(IDLE_CHECKS - 1):
        loop.fire()
    assert conn.said == []
    loop.fire()
    assert conn.said == ["idle"] and len(loop.timers) == IDLE_CHECKS
    assert {t.delay for t in loop.timers} == {8.0 / IDLE_CHECKS}


def test_a_busy_connection_or_a_new_stream_starts_the_count_again():
    loop, conn = _Loop(), _Connection()
    conn.timers(loop).idle_checks()
    loop.fire()
    conn.busy = True  # a stream open or a health Watch
    loop.fire()
    conn.busy = False
    for _ in range(IDLE_CHECKS - 1):
        loop.fire()
    conn.last_sid = 3  # a stream came and went between two checks
    loop.fire()
    assert conn.said == []
    for _ in range(IDLE_CHECKS):
        loop.fire()
    assert conn.said == ["idle"]


def test_once_stopped_no_timer_runs():
    loop, conn = _Loop(), _Connection()
    timers = conn.timers(loop)
    timers.idle_checks()
    check = loop.timers[-1]
    timers.stop()
    check.callback()  # it fired as it was cancelled
    assert check.cancelled and conn.said == [] and len(loop.timers) == 1
