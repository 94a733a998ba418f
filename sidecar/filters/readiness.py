"""Filter that fails calls fast while the model is not ready, instead of letting them hang or queue."""

from __future__ import annotations

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.health.readiness import Readiness


class ReadinessGate:
    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    async def __call__(self, call: Call, next: Next) -> Outcome:
        state = self._readiness.current
        if not state.accepts_calls:
            return Outcome(Code.UNAVAILABLE, f"{call.method}: {state.reason}")
        return await next(call)
