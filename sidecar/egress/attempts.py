"""Each try of an egress call passes the attempt filters (its CLIENT span) once: a span per try.

The router retries inside the call's chain, so what must happen once per try runs here, around
the transport's own try: the filters see a copy of the call with the try's instance as
`upstream` and metadata of its own, so the trace context one try injects never reaches the next
and the caller's metadata stays as it came. With no attempt filters (tracing off) a try is the
transport's alone. Knows nothing about transports.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Sequence

from sidecar.core.call import Call, Outcome
from sidecar.discovery.endpoint import Endpoint
from sidecar.egress.router import Attempt, AttemptResult
from sidecar.filters.chain import Filter, Next, build_chain

# The transport's try: the call as this try sends it, the instance, the seconds it may take.
Try = Callable[[Call, Endpoint, float], Awaitable[AttemptResult]]


class _Pending:
    __slots__ = ("endpoint", "result", "run", "timeout")

    def __init__(self, run: Try, endpoint: Endpoint, timeout: float) -> None:
        self.run, self.endpoint, self.timeout = run, endpoint, timeout
        self.result: AttemptResult | None = None


class AttemptChain:
    def __init__(self, filters: Sequence[Filter]) -> None:
        self._chain: Next | None = build_chain(filters, _try) if filters else None

    def attempt(self, call: Call, run: Try, port: Callable[[Endpoint], int | None]) -> Attempt:
        """The router's attempt for `call`: `run` at the picked instance, through the attempt filters;
        `port` is the instance's port this transport calls (for the span's server.port)."""
        chain = self._chain
        if chain is None:
            return functools.partial(run, call)  # no coroutine of its own around each try

        async def attempt(endpoint: Endpoint, timeout: float) -> AttemptResult:
            pending = _Pending(run, endpoint, timeout)
            tried = dataclasses.replace(
                call,
                metadata=list(call.metadata),
                upstream=(endpoint.host, port(endpoint) or 0),
                exchange=pending,
            )
            outcome = await chain(tried)
            if pending.result is None:  # a filter answered without trying
                return AttemptResult(outcome.code, outcome.message)
            return pending.result

        return attempt


async def _try(call: Call) -> Outcome:
    pending = call.exchange
    assert isinstance(pending, _Pending)
    pending.result = await pending.run(call, pending.endpoint, pending.timeout)
    return Outcome(pending.result.code, pending.result.message)
