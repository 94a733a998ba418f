"""The relay's call layer: each stream a client opens is a Call through the filter chain; its end, an Outcome.

A new stream's request headers are validated (grpc_headers.request) into a Call, or refused as
a stream error; grpc.health.v1 streams are answered here from readiness (health.py); every other
call runs the filter chain, whose terminal (`forward`) has the stream layer relay it to the
model. The model's trailers (or a reset) become the call's Outcome, and its message counts the
Call's byte counts. The stream layer (sidecar/h2/streams.py) calls in here twice per call:
`opened` and `trailers` or `reset`. When the filters need the model a unary contract call names
(`read_model()`: a policy rule names models), its chain starts only once the start of its request
message is held (`held`), so `Call.model` is field 1 of it (sidecar/oip/model_name.py). A
call's messages and end reach its observer (observer.py), the one message path capture and
batching's replies use; with a batching policy a ModelInfer's request is held whole and a call
the batcher takes is answered from here (batched.py).

The chain is not a task: its first step runs in the read that brought the call, its last in the
read that brought the model's trailers, each in the call's own contextvars context as a task's
step would; any other future it awaits resumes it from that future's callback. So no step has a
current task (sidecar/filters/chain.py says what that rules out). Knows nothing about frames,
HPACK or sockets.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Final

from sidecar.core.call import Call, Metadata, Outcome
from sidecar.core.messages import PROTOBUF, OnMessage
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.h2 import build
from sidecar.h2 import frames as f
from sidecar.h2 import hpack_encoder as he
from sidecar.h2.hpack_decoder import Headers
from sidecar.h2.limits import LimitHits, Limits
from sidecar.h2.outbox import Outbox
from sidecar.h2.stream_events import Stream
from sidecar.h2.streams import Streams
from sidecar.health.readiness import Readiness
from sidecar.ingress.relay import batched, health
from sidecar.ingress.relay.batched import BatchSeam
from sidecar.ingress.relay.observer import NO_OBSERVER, CallObserver, joined, tap
from sidecar.oip import contract, model_name

if TYPE_CHECKING:
    from sidecar.h2 import grpc_headers as gh
else:
    gh = build.twin("grpc_headers")  # compiled or pure: build.py chooses

log = logging.getLogger(__name__)

# Request bytes gathered to read a call's model name: enough for field 1 whatever comes first.
MODEL_BYTES: Final = model_name.PREFIX_LEN + 2 * model_name.MAX_NAME


class RelayedCall(Stream, BatchSeam):
    """Per-call state of a stream relayed to the model; the Call's `exchange`."""

    __slots__ = ("call", "calls", "done", "observer", "original", "reply", "request", "step", "taken",
                 "waiting")  # fmt: skip

    # The message seam (sidecar/core/messages.py): messages come with their 5-byte gRPC prefix.
    message_offset: ClassVar[int] = 5
    message_format: ClassVar[str] = PROTOBUF

    def __init__(self, calls: Calls, sid: int) -> None:
        super().__init__(sid)
        self.calls = calls
        # The chain's coroutine resumed by hand: its context, and whether it waits on `done`
        # (then the relay resumes it when the call ends; see step).
        self.step: tuple[Coroutine[Any, Any, Outcome], contextvars.Context, bool] | None = None
        self.done: asyncio.Future[Outcome] | None = None  # set once forwarded
        # The metadata as the client sent it: what filters append to it is appended to the block.
        self.original: Metadata = []
        self.observer: CallObserver = NO_OBSERVER  # observer.py: the call's message path
        self.call: Call | None = None  # while its chain waits for the model it names
        # batched.py: the request held whole, whether taken from the model, its reply from here.
        self.request: bytes | None = None
        self.taken = False
        self.reply: tuple[bytes, Metadata] | None = None
        self.waiting: asyncio.Future[Any] | None = None  # what its chain waits on, but `done`

    def observe(self, on_message: OnMessage) -> None:
        """Hear each message of this call whole, (from_client, message with its 5-byte prefix),
        as it is relayed; before the call is forwarded (a filter, before calling next)."""
        self.watch(tap(on_message))

    def watch(self, observer: CallObserver) -> None:
        """Have `observer` told this call's messages and its end (observer.py); before it is forwarded."""
        if self.observer is NO_OBSERVER:
            self.calls.streams.observe(self)
        self.observer = joined(self.observer, observer)


class Calls:
    """The calls of one relayed connection; the stream layer's StreamEvents."""

    def __init__(
        self,
        *,
        out: Outbox,
        chain: Next,
        readiness: Readiness,
        healthy_services: frozenset[str],
        limits: Limits,
        client_error: Callable[[f.ConnectionError_], None],
        model_error: Callable[[f.ConnectionError_], None],
        read_model: Callable[[], bool],
        hits: LimitHits | None = None,
        clock: Callable[[], float] = time.monotonic,
        batching: bool = False,
    ) -> None:
        """`hits`, `clock`: where the stream layer counts the limits that fire, and its budgets' clock."""
        self._chain = chain
        self._read_model = read_model
        self._batching = batching  # ModelInfer's request is held whole for the batcher (batched.py)
        self._taken: dict[int, RelayedCall] = {}
        self._readiness = readiness
        self._loop = asyncio.get_running_loop()
        self._health = health.LocalHealth(
            healthy_services, max_request=limits.health_max_request, max_streams=limits.health_max_streams
        )
        self._known: set[tuple[str, str]] = set()  # request fields found well-formed (grpc_headers)
        self._max_known = limits.known_fields
        self.peer = ""
        self.streams: Streams[RelayedCall] = Streams(
            out, self, functools.partial(RelayedCall, self), limits, client_error, model_error,
            hits=hits, clock=clock,
        )  # fmt: skip

    @property
    def watching(self) -> bool:
        """Whether a health Watch is open: it outlives the model connection."""
        return self._health.watching

    # ---- from the stream layer ----

    def opened(self, st: RelayedCall, headers: Headers, end_stream: bool) -> bool:
        try:
            path, deadline, metadata = gh.request(headers, self._known, self._max_known)
        except gh.Malformed as e:
            # A stream error (RFC 9113 8.1.1): this call is refused, the connection goes on.
            log.debug("relay: malformed request from %s on stream %d: %s", self.peer, st.sid, e)
            raise f.StreamError(f.PROTOCOL_ERROR, str(e)) from None
        if path in health.PATHS:
            if not self._health.open(st.sid, path):
                # Each holds a buffer or a watch here: a client may not open them without bound.
                self.streams.hits.hit("health_streams")
                raise f.StreamError(f.REFUSED_STREAM, "too many health streams")
            return False
        st.original = list(metadata)
        call = Call(
            method=path, metadata=metadata, deadline=deadline, protocol="grpc", peer=self.peer, exchange=st
        )
        if not end_stream and path in model_name.UNARY_MODEL_METHODS and (
            self._read_model() or (self._batching and path == contract.MODEL_INFER)
        ):
            # The verdict needs the model the request names: its DATA usually came in this same
            # read, right after the HEADERS (held() is told before the read ends), else later.
            st.call = call
            self.streams.await_data(st)
            return True
        # The chain's first step runs now, in this read's callback: an admitted call's HEADERS
        # leave in the same write as the rest of the read.
        start(st, self._run(call, st))
        return True

    def held(self, st: RelayedCall) -> bool:
        call = st.call
        assert call is not None
        whole = self._batching and call.method == contract.MODEL_INFER
        data, final = self.streams.held_data(st, batched.HELD_REQUEST if whole else MODEL_BYTES)
        name = model_name.from_grpc_frame(data)
        if name is model_name.NEED_MORE and not final:
            return True
        if whole:
            request = batched.whole_request(data, final)
            if request is batched.NEED_MORE:
                return True
            st.request = request
        st.call = None
        call.model = name or ""
        start(st, self._run(call, st))
        return False

    def trailers(self, st: RelayedCall, headers: Headers) -> None:
        end(st, gh.outcome(headers) or Outcome(Code.UNKNOWN, "model sent no grpc-status"))

    def reset(self, st: RelayedCall, code: int, by_client: bool) -> None:
        end(st, Outcome(Code.CANCELLED, "cancelled by the client") if by_client else gh.reset_outcome(code))

    def message(self, st: RelayedCall, from_client: bool, message: bytes) -> None:
        st.observer.on_message(st, from_client, message)

    def data(self, sid: int, payload: bytes) -> None:
        self._health.data(sid, payload)

    def ended(self, sid: int, reset: bool) -> bool:
        taken = self._taken.get(sid)
        if taken is not None:
            if reset:  # the client left: its batch goes on without it
                del self._taken[sid]
                self.streams.answered(taken, b"", 0)
                if taken.waiting is not None:
                    taken.waiting.cancel()
            return not reset
        if reset:
            self._health.cancel(sid)
            return False
        answered = self._health.ended(sid, self._readiness.current.ready, self.streams.max_frame_to_client)
        if answered is not None:
            self.streams.answer(sid, *answered)
        return sid in self._health

    # ---- the chain: the filters decide, then the call goes to the model or is answered here ----

    async def _run(self, call: Call, st: RelayedCall) -> Outcome:
        try:
            result = await self._chain(call)
        except Exception:
            log.exception("relay: filter chain failed for %s", call.method)
            result = Outcome(Code.INTERNAL, f"{call.method}: the sidecar failed the call")
        if st.taken:
            if self._taken.pop(st.sid, None) is not None:
                self.streams.answered(st, *batched.answer(st, result, self.streams.max_frame_to_client))
        elif self.streams.pending is st:
            # The chain ended without forwarding the call: the client hears its outcome from here.
            self.streams.refuse(st, he.trailers_only(result))
        if st.observer is not NO_OBSERVER:
            st.observer.on_end(st, result)
        return result

    async def forward(self, call: Call, st: RelayedCall) -> Outcome:
        streams = self.streams
        if streams.closed:
            return Outcome(Code.UNAVAILABLE, f"{call.method}: connection closed")
        if not streams.model:
            # The model was unreachable when this connection opened and readiness says it is
            # ready now: let the client reconnect, so its next connection is relayed.
            streams.go_away()
            return Outcome(Code.UNAVAILABLE, f"{call.method}: model unreachable")
        done: asyncio.Future[Outcome] = self._loop.create_future()
        st.done = done
        n = len(st.original)
        if call.metadata[:n] == st.original:
            streams.admit(st, call.metadata[n:], None)
        else:
            streams.admit(st, [], gh.with_metadata(st.headers, call.metadata))
        try:
            result = await done
        finally:
            call.request_bytes = st.request_bytes.counted
            call.response_bytes = st.response_bytes.counted
        if result.code is Code.CANCELLED and call.deadline is not None and call.deadline.expired:
            return Outcome(Code.DEADLINE_EXCEEDED, "deadline exceeded")
        return result

    def take(self, st: RelayedCall) -> None:
        """st waits in a batch: answered from here once its chain is over (batched.py)."""
        self._taken[st.sid] = st
        self.streams.take(st)

    def readiness_changed(self, ready: bool) -> None:
        """Tell each open Watch its service's new status, if it changed."""
        for sid, update in self._health.changed(ready):
            self.streams.answer(sid, update, len(update) - f.HEADER_LEN)


async def forward(call: Call) -> Outcome:
    """The filter chain's terminal on the relay: send the call upstream, then wait for its end."""
    st = call.exchange
    assert isinstance(st, RelayedCall)
    return await st.calls.forward(call, st)


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
    except asyncio.CancelledError:
        st.step = None
        if st.taken:  # its client left or its connection closed (batched.py): nobody to answer
            if st.observer is not NO_OBSERVER:
                st.observer.on_end(st, Outcome(Code.CANCELLED, "cancelled by the client"))
            return
        raise
    if waiting is None:  # a bare yield, as asyncio.sleep(0) makes
        asyncio.get_running_loop().call_soon(step, st)
        return
    waiting._asyncio_future_blocking = False  # what a task does with the future it is handed
    if waiting is st.done:
        st.step = (coro, context, True)  # end() resumes it
    else:
        st.waiting = waiting
        waiting.add_done_callback(lambda _: step(st))


def end(st: RelayedCall, result: Outcome) -> None:
    """The call is over: its chain hears `result` now, within the caller's callback."""
    if st.done is not None and not st.done.done():
        st.done.set_result(result)
        if st.step is not None and st.step[2]:
            st.step = (st.step[0], st.step[1], False)
            step(st)
    elif st.taken and st.waiting is not None:
        st.waiting.cancel()  # the connection closed under a call waiting in a batch
