"""A circuit breaker as Resilience4j defines it: CLOSED → OPEN → HALF_OPEN → CLOSED or OPEN. No I/O.

CLOSED: every outcome goes into a sliding window (COUNT_BASED or TIME_BASED);
once the window holds at least `minimum_calls`, a failure rate or slow-call
rate at or above its threshold opens the breaker. OPEN: calls are refused
until `wait_in_open` has passed, then the breaker is HALF_OPEN and lets
`permitted_in_half_open` trial calls through; when all have reported, the same
thresholds decide CLOSED or OPEN again. Time comes from the injected clock, so
transitions are exact in tests.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from sidecar.breaker.window import CountWindow, TimeWindow, Totals
from sidecar.core.clock import Clock


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class WindowType(enum.Enum):
    COUNT_BASED = "count"
    TIME_BASED = "time"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    window_type: WindowType = WindowType.COUNT_BASED
    # Calls (COUNT_BASED) or seconds (TIME_BASED).
    window_size: int = 100
    minimum_calls: int = 20
    failure_rate_threshold: float = 50.0  # percent
    slow_call_duration: float = 5.0  # seconds
    slow_call_rate_threshold: float = 100.0  # percent; 100 = only when every call is slow
    wait_in_open: float = 10.0  # seconds
    permitted_in_half_open: int = 5

    def __post_init__(self) -> None:
        for name in ("window_size", "minimum_calls", "permitted_in_half_open"):
            if getattr(self, name) < 1:
                raise ValueError(f"breaker {name} must be at least 1")
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            if not 0 < getattr(self, name) <= 100:
                raise ValueError(f"breaker {name} must be in (0, 100]")
        if self.wait_in_open < 0 or self.slow_call_duration <= 0:
            raise ValueError("breaker wait_in_open must be >= 0 and slow_call_duration > 0")


Transition = Callable[[str, State, State], None]


class Breaker:
    def __init__(
        self, name: str, config: BreakerConfig, clock: Clock, on_transition: Transition | None = None
    ) -> None:
        self.name = name
        self._config = config
        self._clock = clock
        self._on_transition = on_transition
        self.state = State.CLOSED
        self._opened_at = 0.0
        self._window: CountWindow | TimeWindow = (
            CountWindow(config.window_size)
            if config.window_type is WindowType.COUNT_BASED
            else TimeWindow(config.window_size, clock)
        )
        self._trial = Totals()
        self._trials_in_flight = 0

    def allow(self) -> bool:
        """May a call go through now? A True in HALF_OPEN takes one trial permit: record or release it."""
        if self.state is State.OPEN:
            if self._clock() - self._opened_at < self._config.wait_in_open:
                return False
            self._move(State.HALF_OPEN)
        if self.state is State.HALF_OPEN:
            if self._trials_in_flight + self._trial.calls >= self._config.permitted_in_half_open:
                return False
            self._trials_in_flight += 1
        return True

    @property
    def retry_after(self) -> float:
        """Seconds until an OPEN breaker lets a trial through (0 when not OPEN)."""
        if self.state is not State.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._config.wait_in_open - self._clock())

    def record(self, duration: float, failed: bool) -> None:
        slow = duration >= self._config.slow_call_duration
        if self.state is State.HALF_OPEN:
            self._trials_in_flight = max(0, self._trials_in_flight - 1)
            self._trial.add(failed, slow)
            if self._trial.calls >= self._config.permitted_in_half_open:
                self._move(State.OPEN if self._tripped(self._trial) else State.CLOSED)
            return
        if self.state is State.OPEN:
            return  # a call admitted before the breaker opened; its outcome is moot
        totals = self._window.record(failed, slow)
        if totals.calls >= self._config.minimum_calls and self._tripped(totals):
            self._move(State.OPEN)

    def release(self) -> None:
        """Give back a permit whose call had no outcome worth counting (e.g. cancelled by the caller)."""
        if self.state is State.HALF_OPEN:
            self._trials_in_flight = max(0, self._trials_in_flight - 1)

    def _tripped(self, totals: Totals) -> bool:
        return (
            totals.failure_rate >= self._config.failure_rate_threshold
            or totals.slow_rate >= self._config.slow_call_rate_threshold
        )

    def _move(self, to: State) -> None:
        was, self.state = self.state, to
        self._trial = Totals()
        self._trials_in_flight = 0
        if to is State.OPEN:
            self._opened_at = self._clock()
        if to is not State.HALF_OPEN:
            self._window.reset()
        if self._on_transition is not None:
            self._on_transition(self.name, was, to)
