"""One relayed call: its per-call state, and its filter chain run as a coroutine stepped by hand.

The chain is not a task: its first step runs in the read that brought the call, its last in the
read that brought the model's trailers, each in the call's own contextvars context as a task's
step would; any other future it awaits resumes it from that future's callback. So no step has a
current task (sidecar/filters/chain.py says what that rules out). Knows nothing about frames
beyond counting a DATA frame's message bytes.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, Protocol

from sidecar.core.call import Call, Metadata, Outcome
from sidecar.h2.hpack_decoder import Headers
from sidecar.h2.messages import MessageBytes


class Relay(Protocol):
    """The connection a call is relayed on, as the chain's terminal sees it."""

    async def forward(self, call: Call, st: RelayedCall) -> Outcome: ...


class RelayedCall:
    """Per-call state of a stream relayed to the model; the Call's `exchange`."""

    __slots__ = (
        "block",
        "changed",
        "conn",
        "done",
        "end_stream",
        "headers",
        "original",
        "replied",
        "request_bytes",
        "response_bytes",
        "sid",
        "step",
    )

    def __init__(self, conn: Relay, sid: int, block: bytes, headers: Headers) -> None:
        self.conn = conn
        self.sid = sid
        # Until the verdict: the client's block, what it decoded to, and whether it changed the table.
        self.block = block
        self.headers = headers
        self.changed = False
        self.end_stream = False
        # The chain's coroutine resumed by hand: its context, and its own `done` when that is what
        # it waits on (then the relay resumes it when the call ends; see step).
        self.step: tuple[Coroutine[Any, Any, Outcome], contextvars.Context, bool] | None = None
        self.done: asyncio.Future[Outcome] | None = None  # set once forwarded
        self.replied = False  # the model sent response headers
        # The metadata as the client sent it: what filters append to it is appended to the block.
        self.original: Metadata = []
        self.request_bytes = MessageBytes()
        self.response_bytes = MessageBytes()


def start(st: RelayedCall, coro: Coroutine[Any, Any, Outcome]) -> None:
    """Run the call's chain `coro` now, in a context of its own, until it first waits."""
    st.step = (coro, contextvars.copy_context(), False)
    step(st)


def step(st: RelayedCall) -> None:
    """Run the call's chain until it waits again (or ends); arrange to be resumed."""
    assert st.step is not None
    coro, context, _ = st.step
    try:
        waiting = context.run(coro.send, None)
    except StopIteration:
        st.step = None
        return
    if waiting is None:  # a bare yield, as asyncio.sleep(0) makes
        asyncio.get_running_loop().call_soon(step, st)
        return
    waiting._asyncio_future_blocking = False  # what a task does with the future it is handed
    if waiting is st.done:
        st.step = (coro, context, True)  # end() resumes it
    else:
        waiting.add_done_callback(lambda _: step(st))


def end(st: RelayedCall, result: Outcome) -> None:
    """The call is over: its chain hears `result` now, within the caller's callback."""
    if st.done is not None and not st.done.done():
        st.done.set_result(result)
        if st.step is not None and st.step[2]:
            st.step = (st.step[0], st.step[1], False)
            step(st)


async def forward(call: Call) -> Outcome:
    """The filter chain's terminal on the relay: send the call upstream, then wait for its end."""
    st = call.exchange
    assert isinstance(st, RelayedCall)
    return await st.conn.forward(call, st)
