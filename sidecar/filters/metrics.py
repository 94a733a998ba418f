"""Filter that counts calls and times them into the sidecar's Prometheus metrics, by direction.

Goes outermost, so calls a later filter rejects (readiness, limits) are
counted with the code they got, and the time includes every filter.
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
        self._metrics = metrics
        self._direction = direction
        self._in_flight = metrics.in_flight(direction)
        self._clock = clock

    async def __call__(self, call: Call, next: Next) -> Outcome:
        started = self._clock()
        self._in_flight.now += 1
        code = Code.UNKNOWN
        try:
            outcome = await next(call)
            code = outcome.code
            return outcome
        except asyncio.CancelledError:
            code = Code.CANCELLED
            raise
        finally:
            self._in_flight.now -= 1
            self._metrics.observe(self._direction, call.method, call.model, code, self._clock() - started)
