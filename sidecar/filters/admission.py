"""Filter that admits calls to the model under a concurrency limit, queueing or shedding the rest.

A call over the limit waits in a bounded queue (by client-class priority, then arrival) unless
its expected wait would outlast its deadline, or the queue is full: then it is shed at once with
RESOURCE_EXHAUSTED and the reason. A waiter is shed when its queue timeout or deadline passes.
Each finished call is a latency sample for an adaptive limit, except cancelled ones (health
checks never get here). Waiting is a future another call's end resolves, with timers set by
call_later: no task and no asyncio.timeout (the relay runs filters without a current task).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from sidecar.admission.queue import Admission, Shed, Waiter
from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.filters.governed import EXEMPT, exhausted
from sidecar.governance.active import Active
from sidecar.governance.stats import GovernanceStats

# Outcomes that say the model is overloaded: an adaptive limit backs off on them.
_DROPPED: Final = frozenset({Code.RESOURCE_EXHAUSTED, Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED})


class AdmissionFilter:
    def __init__(
        self,
        active: Callable[[], Active],
        stats: GovernanceStats,
        admission: Callable[[], Admission | None],
        *,
        queueing: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`queueing` False sheds instead of queueing: the relay holds a connection's later calls
        while one awaits its verdict (their header blocks must reach the model in order), so a
        queued call there would hold calls that could be answered or shed at once."""
        self._queueing = queueing
        self._active = active
        self._stats = stats
        self._admission = admission
        self._clock = clock

    async def __call__(self, call: Call, next: Next) -> Outcome:
        admission = self._admission()
        if admission is None or call.method in EXEMPT:
            return await next(call)
        a = self._active()
        remaining = call.deadline.remaining() if call.deadline is not None else None
        priority = a.priority(call.client_class)
        decision = admission.acquire(priority, remaining)
        if isinstance(decision, Shed):
            return self._shed(call, decision.reason, admission)
        if decision is False and not self._queueing:
            return self._shed(call, f"concurrency limit {admission.limit} reached", admission)
        if decision is False:
            reason = await self._wait(admission, priority, remaining, a.policy.admission.queue.timeout)
            if reason:
                return self._shed(call, reason, admission)
        self._stats.count("admission", call.client_class, "admitted")
        started = self._clock()
        code = Code.CANCELLED
        try:
            outcome = await next(call)
            code = outcome.code
            return outcome
        finally:
            admission.release(
                self._clock() - started, sample=code is not Code.CANCELLED, dropped=code in _DROPPED
            )

    async def _wait(
        self, admission: Admission, priority: int, remaining: float | None, timeout: float
    ) -> str:
        """Wait for a slot; "" once one is ours, else why the call is shed."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[bool] = loop.create_future()

        def wake(admitted: bool) -> None:
            if not woken.done():
                woken.set_result(admitted)
            elif admitted:
                admission.release(0.0, sample=False)  # a slot handed to a caller that had left

        waiter = Waiter(wake, priority)
        admission.enqueue(waiter)
        bounds = [t for t in (remaining, timeout) if t]
        limit = min(bounds) if bounds else None
        timer = loop.call_later(limit, wake, False) if limit is not None else None
        started = self._clock()
        try:
            admitted = await woken
        except asyncio.CancelledError:
            admission.cancel(waiter)
            if not waiter.queued and woken.done() and not woken.cancelled() and woken.result():
                admission.release(0.0, sample=False)  # a slot handed to a caller that left
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if admitted:
            return ""
        admission.cancel(waiter)
        waited = (self._clock() - started) * 1000
        why = (
            "its deadline"
            if timeout == 0 or (remaining is not None and remaining <= timeout)
            else "the queue timeout"
        )
        return f"waited {waited:.0f} ms in the admission queue (limit {admission.limit}) until {why}"

    def _shed(self, call: Call, reason: str, admission: Admission) -> Outcome:
        self._stats.count("admission", call.client_class, "shed")
        call.governance = f"admission: {reason}"
        rtt = admission.rtt or 0.1
        return exhausted(f"{call.method}: shed: {reason}", rtt)
