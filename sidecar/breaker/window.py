"""Sliding windows of call outcomes: the last N calls, or the calls of the last N seconds. No I/O.

Both keep running totals so that recording an outcome and reading the rates are O(1)
(the time window is O(1) amortised: it drops whole one-second buckets as time passes).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sidecar.core.clock import Clock


@dataclass(slots=True)
class Totals:
    calls: int = 0
    failures: int = 0
    slow: int = 0

    def add(self, failed: bool, slow: bool, sign: int = 1) -> None:
        self.calls += sign
        self.failures += sign * failed
        self.slow += sign * slow

    @property
    def failure_rate(self) -> float:
        """Percent of calls that failed (0 with no calls)."""
        return 100.0 * self.failures / self.calls if self.calls else 0.0

    @property
    def slow_rate(self) -> float:
        return 100.0 * self.slow / self.calls if self.calls else 0.0


class CountWindow:
    """The outcomes of the last `size` calls."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a count window holds at least one call")
        self._size = size
        self._ring: deque[tuple[bool, bool]] = deque()
        self.totals = Totals()

    def record(self, failed: bool, slow: bool) -> Totals:
        if len(self._ring) == self._size:
            old_failed, old_slow = self._ring.popleft()
            self.totals.add(old_failed, old_slow, -1)
        self._ring.append((failed, slow))
        self.totals.add(failed, slow)
        return self.totals

    def reset(self) -> None:
        self._ring.clear()
        self.totals = Totals()


class TimeWindow:
    """The outcomes of the calls of the last `seconds` seconds, in one-second buckets."""

    def __init__(self, seconds: int, clock: Clock) -> None:
        if seconds < 1:
            raise ValueError("a time window spans at least one second")
        self._seconds = seconds
        self._clock = clock
        self._buckets: deque[tuple[int, Totals]] = deque()
        self.totals = Totals()

    def record(self, failed: bool, slow: bool) -> Totals:
        now = int(self._clock())
        self._expire(now)
        if not self._buckets or self._buckets[-1][0] != now:
            self._buckets.append((now, Totals()))
        self._buckets[-1][1].add(failed, slow)
        self.totals.add(failed, slow)
        return self.totals

    def current(self) -> Totals:
        self._expire(int(self._clock()))
        return self.totals

    def _expire(self, now: int) -> None:
        oldest = now - self._seconds + 1
        while self._buckets and self._buckets[0][0] < oldest:
            _, gone = self._buckets.popleft()
            self.totals.calls -= gone.calls
            self.totals.failures -= gone.failures
            self.totals.slow -= gone.slow

    def reset(self) -> None:
        self._buckets.clear()
        self.totals = Totals()
