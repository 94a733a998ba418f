"""One sink's delivery loop: batches off its queue, made into events, sent, retried with capped jittered
backoff, and every event that cannot be delivered counted by why. Knows nothing about a sink's
protocol; time, sleep and randomness are injected.

One task per sink, whatever the traffic (KServe's logger ran a goroutine per event, and its memory
grew with an outage until the pod was killed). While a sink is down its queue fills to its bound
and the call path drops and counts what does not fit; the loop keeps one batch in hand, retrying
it up to `max_attempts` times, then drops it as `retries_exhausted` and takes the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.capture import events as ev
from sidecar.capture.policy import CaptureSettings
from sidecar.capture.queue import REJECTED, RETRIES_EXHAUSTED, SHUTDOWN, SinkQueue
from sidecar.capture.redact import payload
from sidecar.core.clock import Clock, monotonic

log = logging.getLogger(__name__)

# Between two warnings about one sink failing, at least this long: an outage logs a line a minute,
# not one per try.
_WARN_EVERY = 60.0


@dataclass
class Delivery:
    """What one send achieved: the positions of events to try again, and how many were refused for good."""

    retry: list[int] = field(default_factory=list)
    rejected: int = 0


class Sink(Protocol):
    name: str

    async def start(self) -> None:
        """Connect; raises when the destination cannot be reached (the loop tries again later)."""
        ...

    async def send(self, events: Sequence[ev.CloudEvent]) -> Delivery: ...

    async def close(self) -> None: ...


class Dispatcher:
    def __init__(
        self,
        queue: SinkQueue,
        sink: Sink,
        settings: CaptureSettings,
        *,
        id_prefix: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Clock = monotonic,
    ) -> None:
        self.queue = queue
        self.sink = sink
        self._settings = settings
        self._prefix = id_prefix
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._in_hand = 0  # events taken off the queue and not yet delivered or dropped
        self._warned_at = -_WARN_EVERY
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"capture-{self.sink.name}")

    async def run(self) -> None:
        await self._connect()
        s = self._settings
        while True:
            batch = await self.queue.take(s.batch_size, s.flush_interval, self._sleep)
            self._in_hand = len(batch)
            await self.deliver(batch)
            self._in_hand = 0  # left as it was when cancelled: stop() counts those

    async def _connect(self) -> None:
        attempt = 0
        while True:
            try:
                await self.sink.start()
                return
            except Exception as e:
                attempt += 1
                self._warn(f"capture sink {self.sink.name} cannot start: {e!r}; trying again")
                await self._sleep(self._backoff(attempt))

    async def deliver(self, batch: Sequence[ev.Captured]) -> None:
        """Send one batch, retrying what failed; count what was sent, refused and given up on."""
        stats = self.queue.stats
        identity = self._settings.identity
        events = [ev.build(c, identity, self._prefix, payload(c)) for c in batch]
        attempt = 1
        while events:
            try:
                result = await self.sink.send(events)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._warn(f"capture sink {self.sink.name} failed to send {len(events)} events: {e!r}")
                result = Delivery(retry=list(range(len(events))))
            stats.sent += len(events) - len(result.retry) - result.rejected
            stats.drop(REJECTED, result.rejected)
            self._in_hand = len(result.retry)
            if not result.retry:
                return
            events = [events[i] for i in result.retry]
            if attempt >= self._settings.retry.max_attempts:
                stats.drop(RETRIES_EXHAUSTED, len(events))
                name, n = self.sink.name, len(events)
                self._warn(f"capture sink {name}: gave up on {n} events after {attempt} tries")
                return
            stats.retries += 1
            await self._sleep(self._backoff(attempt))
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        """Full jitter (AWS's "exponential backoff and jitter"): uniform in [0, min(cap, base * 2^n))."""
        r = self._settings.retry
        cap: float = min(r.max_backoff, r.base_backoff * 2.0 ** (attempt - 1))
        return self._rng() * cap

    def _warn(self, message: str) -> None:
        now = self._clock()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning("%s", message)

    async def stop(self, timeout: float) -> None:
        """Deliver what is queued for up to `timeout` seconds; drop and count the rest; close the sink."""
        deadline = self._clock() + timeout
        while (len(self.queue) or self._in_hand) and self._clock() < deadline:
            if self._task is None or self._task.done():
                break
            await asyncio.sleep(0.02)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.queue.stats.drop(SHUTDOWN, self.queue.clear() + self._in_hand)
        self._in_hand = 0
        await self.sink.close()
