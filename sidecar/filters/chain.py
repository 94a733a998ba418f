"""The filter chain: `async def __call__(call, next) -> Outcome`, composed once per route.

A filter may read or add metadata, stop the call by returning an Outcome
without calling `next`, or observe the Outcome `next` returned. The terminal
handler belongs to the transport and performs the exchange itself, so a
streaming call is one `next` like a unary one. Knows nothing about transports.

A filter decides from state it can read at once (the request path reads state; background
tasks decide it): a transport may run the chain without a current asyncio task (the relay
steps it by hand, in its socket callbacks), so `asyncio.timeout` and libraries built on it
(aiohttp's client timeouts) do not work inside a filter; plain awaits and `wait_for` do.
What a filter does after `next` returns may run after the client has its reply (the relay
writes the reply first), so an Outcome returned then is recorded, not sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sidecar.core.call import Call, Outcome

Next = Callable[[Call], Awaitable[Outcome]]


class Filter(Protocol):
    async def __call__(self, call: Call, next: Next) -> Outcome: ...


def build_chain(filters: Sequence[Filter], terminal: Next) -> Next:
    """Compose filters around terminal, first filter outermost. Done once per route at start-up."""
    handler = terminal
    for f in reversed(filters):
        handler = _bind(f, handler)
    return handler


def _bind(f: Filter, next: Next) -> Next:
    async def step(call: Call) -> Outcome:
        return await f(call, next)

    return step
