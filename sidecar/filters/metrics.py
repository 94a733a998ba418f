"""Filter that counts calls and times them into the sidecar's Prometheus metrics, by direction.

Goes outermost, so calls a later filter rejects (readiness, limits) are
counted with the code they got, and the time includes every filter. Per call it
keeps an in-flight count and hands (method, model, code, seconds) to the
direction's recorder: plain Python additions, no lock (telemetry/request_stats.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.telemetry.prometheus import SidecarMetrics


class MetricsFilter:
    def __init__(
        self, metrics: SidecarMetrics, *, direction: str, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._in_flight = metrics.in_flight(direction)
        self._record = metrics.recorder(direction)
        self._clock = clock

    async def __call__(self, call: Call, next: Next) -> Outcome:
        started = self._clock()
        in_flight = self._in_flight
        in_flight.now += 1
        code = Code.UNKNOWN
        try:
            outcome = await next(call)
            code = outcome.code
            return outcome
        except asyncio.CancelledError:
            code = Code.CANCELLED
            raise
        finally:
            in_flight.now -= 1
            self._record(call.method, call.model, code, self._clock() - started)
