"""The dynamic batcher of one model: calls wait in batches by key, a batch goes when full or when its
first call has waited `max_latency`, and at most `max_concurrent_batches` are at the model at once.
Knows nothing about messages' contents, transports or the model; the clock and the loop's timers
are the only time it reads.

A batch is open while it takes calls. It is sent when it is full, or once it is due (its first
call has waited max_latency) and a slot at the model is free; a due batch that finds no free slot
stays open and keeps filling until one frees, so an overloaded model gets full batches. Batches
go in the order their first call came. Each waiting call has its own future: its deadline ends
its wait alone (DEADLINE_EXCEEDED), and a caller that leaves takes only its own rows out; a batch
all of whose callers have left is not sent, or is cancelled at the model.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from sidecar.batching.policy import BatchingRule
from sidecar.core.call import Outcome
from sidecar.core.clock import Clock, monotonic
from sidecar.core.deadline import Deadline
from sidecar.core.status import Code

SIZE: Final = "size"
LATENCY: Final = "latency"

# Rows per batch, and seconds a call waited before its batch went: the histograms' bounds.
SIZE_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
DELAY_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bound, then one for +Inf
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.total += value


@dataclass
class BatchStats:
    """One model's batching counts, plain numbers; read at scrape time."""

    sizes: Histogram = field(default_factory=lambda: Histogram(SIZE_BUCKETS))
    delays: Histogram = field(default_factory=lambda: Histogram(DELAY_BUCKETS))
    flushes: dict[str, int] = field(default_factory=lambda: {SIZE: 0, LATENCY: 0})
    passed_through: dict[str, int] = field(default_factory=dict)
    queue_full: int = 0

    def passthrough(self, reason: str) -> None:
        self.passed_through[reason] = self.passed_through.get(reason, 0) + 1


class Member:
    """One call waiting in a batch: what the sender needs of it, and the future its caller awaits."""

    __slots__ = ("answered", "arrived", "batch", "context", "deadline", "future", "rows", "timer")

    def __init__(
        self, rows: int, context: Any, deadline: Deadline | None, future: asyncio.Future[Any]
    ) -> None:
        self.rows = rows
        self.context = context  # the caller's request and exchange, opaque here
        self.deadline = deadline
        self.future = future
        self.arrived = 0.0
        self.answered = False
        self.batch: Batch | None = None
        self.timer: Cancellable | None = None


def answer(member: Member, value: Any) -> None:
    """Resolve a member with its batch's result (the sender's way; a caller gone is skipped)."""
    if not member.future.done():
        member.answered = True
        member.future.set_result(value)


class Batch:
    __slots__ = ("due", "first_at", "full", "key", "members", "rows", "sender", "sent", "task", "timer")

    def __init__(self, key: bytes, sender: Sender) -> None:
        self.key = key
        self.sender = sender  # what sends it: bound to the chain of the call that opened it
        self.members: list[Member] = []
        self.rows = 0
        self.first_at = 0.0
        self.due = False
        self.full = False
        self.sent = False
        self.timer: Cancellable | None = None
        self.task: asyncio.Task[None] | None = None


# Sends a batch's live members to the model and resolves their futures.
Sender = Callable[[Sequence[Member]], Coroutine[Any, Any, None]]


class Timers(Protocol):
    """The loop's call_later, injected so tests fire timers by hand."""

    def __call__(self, delay: float, callback: Callable[..., object], *args: Any) -> Cancellable: ...


class Cancellable(Protocol):
    def cancel(self) -> None: ...


def deadline_exceeded(waited: float) -> Outcome:
    return Outcome(Code.DEADLINE_EXCEEDED, f"deadline exceeded after {waited * 1000:.1f} ms in a batch")


class Batcher:
    def __init__(self, rule: BatchingRule, *, clock: Clock = monotonic, timers: Timers | None = None) -> None:
        self.rule = rule
        self._timers = timers
        self.stats = BatchStats()
        self._clock = clock
        self._open: dict[bytes, Batch] = {}
        self._queue: collections.deque[Batch] = collections.deque()  # open and full, oldest first
        self._running = 0
        self.waiting = 0  # calls in batches not yet sent

    def add(
        self, key: bytes, rows: int, context: Any, deadline: Deadline | None, sender: Sender
    ) -> Member | None:
        """Put a call in its key's open batch; None when the model's queue is full."""
        if self.waiting >= self.rule.max_queued:
            self.stats.queue_full += 1
            return None
        loop = asyncio.get_running_loop()
        later = self._timers or loop.call_later
        member = Member(rows, context, deadline, loop.create_future())
        member.arrived = self._clock()
        batch = self._open.get(key)
        if batch is not None and batch.rows + rows > self.rule.max_batch_size:
            self._close(batch)
            batch = None
        if batch is None:
            batch = self._open[key] = Batch(key, sender)
            batch.first_at = member.arrived
            batch.timer = later(self.rule.max_latency, self._due, batch)
            self._queue.append(batch)
        batch.members.append(member)
        batch.rows += rows
        member.batch = batch
        self.waiting += 1
        if deadline is not None:
            member.timer = later(max(deadline.remaining(), 0.0), self._expire, member)
        member.future.add_done_callback(lambda _: self._left(member))
        if batch.rows >= self.rule.max_batch_size:
            self._close(batch)
        self._dispatch()
        return member

    def _close(self, batch: Batch) -> None:
        """The batch takes no more calls: full."""
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        batch.full = True

    def _due(self, batch: Batch) -> None:
        batch.due = True
        batch.timer = None
        self._dispatch()

    def _dispatch(self) -> None:
        while self._running < self.rule.max_concurrent_batches:
            batch = next((b for b in self._queue if b.full or b.due), None)
            if batch is None:
                return
            self._queue.remove(batch)
            self._send(batch)

    def _send(self, batch: Batch) -> None:
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        if batch.timer is not None:
            batch.timer.cancel()
        live = [m for m in batch.members if not m.future.done()]
        self.waiting -= len(live)
        if not live:
            return
        self.stats.flushes[SIZE if batch.full else LATENCY] += 1
        self.stats.sizes.observe(sum(m.rows for m in live))
        now = self._clock()
        for m in live:
            self.stats.delays.observe(now - m.arrived)
        batch.members = live
        batch.sent = True
        self._running += 1
        batch.task = asyncio.get_running_loop().create_task(batch.sender(live))
        batch.task.add_done_callback(lambda _: self._finished())

    def _finished(self) -> None:
        self._running -= 1
        self._dispatch()

    def _expire(self, member: Member) -> None:
        if not member.future.done():
            member.future.set_result(deadline_exceeded(self._clock() - member.arrived))

    def _left(self, member: Member) -> None:
        """A member's future is done: answered, expired or cancelled by its caller."""
        if member.timer is not None:
            member.timer.cancel()
        batch = member.batch
        if batch is None:
            return
        if not batch.sent:
            # Still waiting: its rows leave the batch, which may then take others instead.
            member.batch = None
            batch.members.remove(member)
            batch.rows -= member.rows
            self.waiting -= 1
            if not batch.members:
                self._drop(batch)
        elif (
            batch.task is not None
            and not batch.task.done()
            and not any(m.answered for m in batch.members)
            and all(m.future.done() for m in batch.members)
        ):
            batch.task.cancel()  # nobody waits for this batch's answer any more

    def _drop(self, batch: Batch) -> None:
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        if batch.timer is not None:
            batch.timer.cancel()
        if batch in self._queue:
            self._queue.remove(batch)
