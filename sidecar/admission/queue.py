"""Admission control: a concurrency limit in front of the model and a bounded queue that knows deadlines.

`acquire` admits a call at once while fewer than `limit` are in flight; otherwise it queues it
(by priority, then arrival) unless the queue is full or the call's wait would outlast its
deadline, which sheds it at once with a reason. The expected wait of the n-th waiter is n
average service times divided by the limit. `release` frees a slot, feeds the limit algorithm
one sample (unless told not to) and hands the slot to the next waiter. Waiters are opaque: the
filter that owns them wakes them. No I/O; time is injected.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sidecar.admission.limits import Limit
from sidecar.core.clock import Clock

# Weight of one sample in the average service time used to predict waits.
_RTT_WEIGHT: Final = 0.1


@dataclass(frozen=True, slots=True)
class Shed:
    reason: str


class Waiter:
    """A queued call: `wake(True)` admits it (the slot is already taken for it), `wake(False)` sheds it."""

    __slots__ = ("priority", "queued", "wake")

    def __init__(self, wake: Callable[[bool], None], priority: int) -> None:
        self.wake = wake
        self.priority = priority
        self.queued = True


class Admission:
    def __init__(self, limit: Limit, *, queue_size: int, priorities: int, clock: Clock) -> None:
        if queue_size < 0 or priorities < 1:
            raise ValueError("queue_size must be >= 0 and priorities >= 1")
        self.limiter = limit
        self._queue_size = queue_size
        self._clock = clock
        # One FIFO per priority; 0 is served first.
        self._queues: list[collections.deque[Waiter]] = [collections.deque() for _ in range(priorities)]
        self.in_flight = 0
        self.queued = 0
        self.rtt = 0.0  # the average service time, seconds (0 until the first sample)
        self.shed = 0

    @property
    def limit(self) -> int:
        return self.limiter.limit

    def reconfigure(self, limit: Limit, *, queue_size: int, priorities: int) -> None:
        """A new policy: calls in flight and waiting stay counted here, and drain under the new limit."""
        self.limiter = limit
        self._queue_size = queue_size
        while len(self._queues) < priorities:
            self._queues.append(collections.deque())
        self._wake()

    def acquire(self, priority: int, remaining: float | None) -> bool | Shed:
        """True: admitted (a slot is taken); False: enqueue a Waiter; or the Shed that refuses it."""
        if self.in_flight < self.limiter.limit and not self.queued:
            self.in_flight += 1
            return True
        if self.queued >= self._queue_size:
            self.shed += 1
            return Shed(f"admission queue full ({self._queue_size} waiting, limit {self.limiter.limit})")
        ahead = sum(len(q) for q in self._queues[: priority + 1])
        wait = (ahead + 1) * self.rtt / max(1, self.limiter.limit)
        if remaining is not None and wait >= remaining:
            self.shed += 1
            return Shed(
                f"expected wait {wait * 1000:.0f} ms in the admission queue would outlast the deadline "
                f"({remaining * 1000:.0f} ms left)"
            )
        return False

    def enqueue(self, waiter: Waiter) -> None:
        self._queues[min(waiter.priority, len(self._queues) - 1)].append(waiter)
        self.queued += 1

    def cancel(self, waiter: Waiter) -> None:
        """A waiter that gave up (its deadline, its queue timeout, its client): it leaves the queue."""
        if waiter.queued:
            waiter.queued = False
            self._queues[min(waiter.priority, len(self._queues) - 1)].remove(waiter)
            self.queued -= 1

    def release(self, rtt: float, *, sample: bool, dropped: bool = False) -> None:
        in_flight = self.in_flight
        self.in_flight -= 1
        if sample:
            self.rtt = rtt if not self.rtt else self.rtt + (rtt - self.rtt) * _RTT_WEIGHT
            self.limiter.sample(rtt, in_flight, dropped)
        self._wake()

    def _wake(self) -> None:
        while self.queued and self.in_flight < self.limiter.limit:
            for q in self._queues:
                if q:
                    waiter = q.popleft()
                    break
            waiter.queued = False
            self.queued -= 1
            self.in_flight += 1
            waiter.wake(True)
