"""The bounded queue between the call path and one sink, and the counts capture keeps. Knows nothing about
sinks, events' format or I/O.

The call path only appends (`put`): a record too many for the queue's events or bytes is dropped
and counted, never waited for, so a slow or dead sink costs memory up to the bound and nothing
else. The sink's one task takes batches (`take`), waking when the queue gets its first record.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sidecar.capture.events import Captured

Sleep = Callable[[float], Awaitable[None]]

# Why an event did not reach its sink (the label of ..._capture_dropped_total).
QUEUE_FULL: Final = "queue_full"  # the sink's queue held its maximum events or bytes
RETRIES_EXHAUSTED: Final = "retries_exhausted"  # every try of its batch failed
REJECTED: Final = "rejected"  # the sink refused it for good (an HTTP 4xx but 408 and 429)
SHUTDOWN: Final = "shutdown"  # still queued when the sidecar stopped
DROP_REASONS: Final = (QUEUE_FULL, RETRIES_EXHAUSTED, REJECTED, SHUTDOWN)
# What a queued record costs beyond its payload (the record, its ids, the metadata it shares with its
# call's other records), counted against queue_bytes so the bound is the memory, not just the bytes.
RECORD_OVERHEAD: Final = 256


@dataclass
class SinkStats:
    """One sink's counts, plain numbers the event loop's thread keeps; read at scrape time."""

    enqueued: int = 0
    sent: int = 0
    retries: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n


class SinkQueue:
    def __init__(self, name: str, *, max_events: int, max_bytes: int) -> None:
        self.name = name
        self.stats = SinkStats()
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._records: collections.deque[Captured] = collections.deque()
        self.bytes = 0
        self._wake = asyncio.Event()

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: Captured) -> None:
        """Append, or drop and count when full. Never blocks."""
        size = len(record.data) + RECORD_OVERHEAD
        if len(self._records) >= self._max_events or self.bytes + size > self._max_bytes:
            self.stats.drop(QUEUE_FULL)
            return
        self._records.append(record)
        self.bytes += size
        self.stats.enqueued += 1
        if len(self._records) == 1:
            self._wake.set()

    async def take(self, most: int, linger: float, sleep: Sleep) -> list[Captured]:
        """Wait for a record, then up to `linger` seconds for `most`, and take up to `most`."""
        while not self._records:
            self._wake.clear()
            await self._wake.wait()
        if len(self._records) < most and linger > 0:
            await sleep(linger)
        return self.take_now(most)

    def take_now(self, most: int) -> list[Captured]:
        batch: list[Captured] = []
        records = self._records
        while records and len(batch) < most:
            record = records.popleft()
            self.bytes -= len(record.data) + RECORD_OVERHEAD
            batch.append(record)
        return batch

    def clear(self) -> int:
        """Drop every record still queued; how many there were."""
        n = len(self._records)
        self._records.clear()
        self.bytes = 0
        return n


class Fanout:
    """What the call path puts records into: every sink's queue."""

    def __init__(self, queues: Sequence[SinkQueue]) -> None:
        self.queues = tuple(queues)

    def put(self, record: Captured) -> None:
        for q in self.queues:
            q.put(record)
