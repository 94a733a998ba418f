"""Filter that writes one access log record per call: all of them, or a sample (every failure kept).

Sits inside the tracing filter when tracing is on, so the ids it logs are the
sidecar's server span; with tracing off it logs the caller's own trace ids.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code, http_status
from sidecar.filters.chain import Next
from sidecar.telemetry.access_log import AccessLog, Record

CLIENT_ID = "x-client-id"

# The (trace id, span id) to log for a call, in hex; None when it has none.
TraceIds = Callable[[Call], tuple[str, str] | None]


class AccessLogFilter:
    def __init__(
        self,
        log: AccessLog,
        *,
        direction: str,
        trace_ids: TraceIds,
        sample_ratio: float = 1.0,
        rng: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """`sample_ratio` 1 logs every call; below 1, that share of successful calls and every failed one."""
        self._log = log
        self._direction = direction
        self._trace_ids = trace_ids
        self._ratio = sample_ratio
        self._rng = rng
        self._wall_clock = wall_clock
        self._clock = clock

    async def __call__(self, call: Call, next: Next) -> Outcome:
        arrived = self._wall_clock()
        started = self._clock()
        code = Code.UNKNOWN
        try:
            outcome = await next(call)
            code = outcome.code
            return outcome
        except asyncio.CancelledError:
            code = Code.CANCELLED
            raise
        finally:
            if self._ratio >= 1.0 or code is not Code.OK or self._rng() < self._ratio:
                self._log.submit(self._record(call, code, arrived, self._clock() - started))

    def _record(self, call: Call, code: Code, arrived: float, duration: float) -> Record:
        ids = self._trace_ids(call)
        return Record(
            time=arrived,
            direction=self._direction,
            protocol=call.protocol,
            method=call.method,
            model=call.model,
            code=code.name,
            duration_s=duration,
            peer=call.peer,
            trace_id=ids[0] if ids else None,
            span_id=ids[1] if ids else None,
            client_id=call.client_id or _client_id(call),
            client_class=call.client_class or None,
            governance=call.governance or None,
            http_status=http_status(code) if call.protocol == "http" else None,
            request_bytes=call.request_bytes,
            response_bytes=call.response_bytes,
        )


def _client_id(call: Call) -> str | None:
    for key, value in call.metadata:
        if key == CLIENT_ID and isinstance(value, str):
            return value[:128]
    return None
