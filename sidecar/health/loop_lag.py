"""The event loop's scheduling lag: a periodic timer measures how late it wakes, and the stalls are kept.

`LoopLagMonitor` is the timer (a background task on the loop it measures);
`LagRecord` keeps what it saw and answers "how much of this window was the
loop stalled?" (the prober asks, to tell a slow model from a busy sidecar) and
"what was the worst lag lately?" (the metrics ask). A stall is kept as the span
from when the timer was due to when it ran. The record is pure: times come in as
numbers, from an injected clock. Knows nothing about probes, models or metrics.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

from sidecar.core.clock import Clock

# How often the monitor's timer runs. A stall shorter than this may go unmeasured, by as much as this;
# each wake-up of an idle process costs about 100 µs of CPU (kernel and loop), so 10 a second cost
# an idle sidecar about 0.15% of a core (docs/operations.md, "Readiness under load").
INTERVAL: Final = 0.1
# Lateness under this is timer granularity (uvloop keeps time in milliseconds), not a stall.
NOISE_FLOOR: Final = 0.001
# What `worst` looks back over: longer than a Prometheus scrape interval, so a scrape sees a stall
# that ended between two scrapes.
WORST_WINDOW: Final = 10.0
# Stalls kept at most, whatever the horizon: at one per tick this is minutes of a loop always late.
MAX_STALLS: Final = 4096


class LagRecord:
    """The stalls a loop's timer measured: (due, ran) pairs, oldest first, kept for `horizon` seconds."""

    def __init__(self, horizon: float = 60.0) -> None:
        if horizon <= 0:
            raise ValueError("horizon must be positive")
        self._horizon = horizon
        self._stalls: deque[tuple[float, float]] = deque(maxlen=MAX_STALLS)
        # When the timer is due next; a loop past it without the timer having run is stalled now.
        self._due: float | None = None
        self.stalled_total = 0.0

    def expect(self, due: float) -> None:
        """The timer is set to run at `due`."""
        self._due = due

    def tick(self, due: float, ran: float) -> float:
        """The timer due at `due` ran at `ran`: keep the stall, if any. Returns the lag measured."""
        self._due = None
        lag = ran - due
        if lag < NOISE_FLOOR:
            return max(lag, 0.0)
        self._stalls.append((due, ran))
        self.stalled_total += lag
        while self._stalls and self._stalls[0][1] < ran - self._horizon:
            self._stalls.popleft()
        return lag

    def lost(self, start: float, end: float) -> float:
        """Seconds of [start, end] the loop spent stalled, the stall under way at `end` included."""
        total = 0.0
        for due, ran in reversed(self._stalls):
            if ran <= start:
                break
            total += min(ran, end) - max(due, start) if due < end else 0.0
        if self._due is not None and self._due < end:
            total += end - max(self._due, start)
        return max(total, 0.0)

    def worst(self, now: float, window: float = WORST_WINDOW) -> float:
        """The largest lag measured in the last `window` seconds (a stall under way counts)."""
        worst = now - self._due if self._due is not None and self._due < now else 0.0
        for due, ran in reversed(self._stalls):
            if ran < now - window:
                break
            worst = max(worst, ran - due)
        return worst


Sleep = Callable[[float], Awaitable[None]]


class LoopLagMonitor:
    """Sleeps `interval` at a time on the running loop and records how late each wake-up came."""

    def __init__(
        self,
        record: LagRecord,
        clock: Clock,
        *,
        interval: float = INTERVAL,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.record = record
        self._clock = clock
        self._interval = interval
        self._sleep = sleep

    async def run(self) -> None:
        while True:
            due = self._clock() + self._interval
            self.record.expect(due)
            await self._sleep(self._interval)
            self.record.tick(due, self._clock())
