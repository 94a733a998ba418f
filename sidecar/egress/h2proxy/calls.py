"""One proxied call: a client's stream, routed by name, tried on upstream streams by the egress router.

The call runs the egress filters once; their terminal hands the router an attempt that opens a
stream on a pooled connection to the picked instance (pool.py), so the balancer, breakers,
retries, retry budget, deadlines and ejection are the router's, in its one order (router.py,
attempts.py). A try sends the request as it comes (and what came before, replayed from the
bytes held for a retry) and commits the call when the instance's response headers arrive: from
then on the response passes to the client as it comes and the call is never tried again. A try
that ends before committing (trailers-only, a refused or reset stream, a lost connection, a
connection refused) is the router's to retry; its trailers reach the client only if no retry
follows. Credit flows per stream: the client may send more once the instance took its bytes,
the instance once the client took its own. Knows nothing about frames' bytes or sockets.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final, Protocol

from sidecar.core.call import Call, Metadata, Outcome
from sidecar.core.deadline import grpc_timeout_value
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.discovery.endpoint import Endpoint
from sidecar.egress.attempts import AttemptChain
from sidecar.egress.h2proxy import blocks
from sidecar.egress.h2proxy.pool import UpstreamPool
from sidecar.egress.h2proxy.upstream import Refused, Upstream
from sidecar.egress.router import AttemptResult, EgressRouter
from sidecar.filters.chain import Next
from sidecar.h2 import frames as f
from sidecar.h2 import grpc_headers as gh
from sidecar.h2 import hpack_encoder as he
from sidecar.h2.hpack_decoder import Headers
from sidecar.h2.messages import MessageBytes
from sidecar.transport.metadata import HOP_BY_HOP

log = logging.getLogger(__name__)

TARGET_KEY: Final = "x-sidecar-target"
# Request bytes all calls together hold for a retry (flow control bounds the rest): past them a
# new call's bytes are not held, and that call is tried once.
HELD_FOR_RETRIES: Final = 64 << 20
LOAD_KEYS: Final = ("x-sidecar-load", "x-queue-depth")

# gRPC over HTTP/2: an HTTP status other than 200 says what code the call ends with.
_HTTP_CODES: Final = {400: Code.INTERNAL, 401: Code.UNAUTHENTICATED, 403: Code.PERMISSION_DENIED,
                      404: Code.UNIMPLEMENTED, 429: Code.UNAVAILABLE, 502: Code.UNAVAILABLE,
                      503: Code.UNAVAILABLE, 504: Code.UNAVAILABLE}  # fmt: skip


class Client(Protocol):
    """The client's connection, as a call writes to it (downstream.py)."""

    def respond(self, sid: int, block: bytes, end_stream: bool) -> None: ...
    def respond_data(self, sid: int, payload: bytes) -> None: ...
    def finish(self, sid: int, trailers: Callable[[], bytes], still_sending: bool) -> None: ...
    def consumed(self, sid: int, length: int) -> None: ...


class Proxy:
    """What every call of one egress listener shares: the router, the pool, the per-try filters."""

    def __init__(
        self, router: EgressRouter, pool: UpstreamPool, attempts: AttemptChain, max_held: int
    ) -> None:
        self.router = router
        self.pool = pool
        self.attempts = attempts
        self.max_held = max_held  # request bytes held for a retry; past them a call is tried once
        self.held = 0  # request bytes all calls hold for retries now, at most HELD_FOR_RETRIES


class ProxiedCall:
    """A client stream's call: its request as it arrives, its tries, what its client was sent."""

    __slots__ = (
        "_credited",
        "_held_bytes",
        "_proxy",
        "call",
        "cancelled",
        "client",
        "committed",
        "credit_to",
        "done",
        "headers",
        "last_trailers",
        "problem",
        "replayable",
        "request",
        "request_bytes",
        "request_ended",
        "response_bytes",
        "service",
        "sid",
        "taken",
        "try_",
    )  # fmt: skip

    def __init__(self, proxy: Proxy, client: Client, sid: int, headers: Headers, service: str) -> None:
        self._proxy = proxy
        self.client = client
        self.sid = sid
        self.headers = headers
        self.service = service
        self.call: Call | None = None
        self.request: list[bytes] = []  # payloads held: all of them while replayable
        self._held_bytes = 0
        self.replayable = True
        self.request_ended = False
        self.request_bytes = MessageBytes()
        self.response_bytes = MessageBytes()
        self._credited = 0  # request bytes credited back to the client
        self.try_: Try | None = None
        self.committed = False
        self.credit_to: tuple[Upstream, int] | None = None  # whose DATA the client's reads pay for
        self.last_trailers: Headers | None = None  # the last uncommitted try's trailers-only block
        self.cancelled = False
        self.done = False  # the client has its response's end
        self.taken = False  # a try took request bytes
        self.problem = ""  # why the call names no service, if it does not

    # ---- from the client ----

    def request_data(self, payload: bytes, end_stream: bool) -> None:
        n = len(payload)
        if n:
            self.request_bytes.add(payload, 0, n)
        self.request_ended = end_stream
        if self.replayable:
            proxy = self._proxy
            if self.committed or self._held_bytes + n > proxy.max_held or proxy.held + n > HELD_FOR_RETRIES:
                self.stop_holding()  # the call is tried once from here on
            else:
                self._held_bytes += n
                proxy.held += n
        t = self.try_
        if t is not None and not t.done.done():
            t.conn.data(t.sid, payload, end_stream)
            self.taken = True
            if self.replayable:
                self.request.append(payload)
            elif self.request:
                self.request.clear()
        else:
            self.request.append(payload)  # the next try sends it

    def stop_holding(self) -> None:
        """No more retries will need the request: what is held for them goes."""
        if self.replayable:
            self.replayable = False
            self._proxy.held -= self._held_bytes
            self._held_bytes = 0

    def client_cancelled(self) -> None:
        self.stop_holding()
        self.cancelled = True
        self.done = True
        t = self.try_
        if t is not None:
            t.cancel(Code.CANCELLED, "cancelled by the client")

    def response_sent(self, length: int) -> None:
        """The client's socket took `length` of this call's response bytes: the instance may send more."""
        if self.credit_to is not None:
            conn, sid = self.credit_to
            conn.consumed(sid, length)

    def request_sent(self, written: int) -> None:
        """A try has written `written` request bytes in all: credit the client what no try had."""
        if written > self._credited:
            self.client.consumed(self.sid, written - self._credited)
            self._credited = written

    # ---- the filters' terminal ----

    async def forward(self, call: Call) -> Outcome:
        router = self._proxy.router
        deadline = router.deadline_for(self.service, call.deadline)
        attempt = self._proxy.attempts.attempt(call, self._attempt, _port)
        try:
            result = await router.call(self.service, deadline, attempt)
        except SidecarError as e:
            result = AttemptResult(e.code, e.message)
        finally:
            self.stop_holding()
            call.request_bytes = self.request_bytes.counted
            call.response_bytes = self.response_bytes.counted
        if not self.committed:
            trailers = self.last_trailers
            outcome = gh.outcome(trailers) if trailers is not None else None
            if trailers is not None and outcome is not None and outcome.code is result.code:
                block = blocks.passed_block(trailers)
                self.end(lambda: block)
                return outcome
            self.refuse(Outcome(result.code, result.message))
            return Outcome(result.code, result.message)
        t = self.try_
        return Outcome(result.code, result.message, t.trailing if t is not None and t.trailing else [])

    def refuse(self, outcome: Outcome) -> None:
        """Answer the client from here: trailers-only with `outcome`."""
        block = he.trailers_only(outcome)
        self.end(lambda: block)

    def end(self, trailers: Callable[[], bytes]) -> None:
        if self.done:
            return
        self.done = True
        self.client.finish(self.sid, trailers, not self.request_ended)

    async def _attempt(self, tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
        if self.cancelled:
            return AttemptResult(Code.CANCELLED, "cancelled by the client", committed=True)
        self.last_trailers = None
        if not self.replayable and self.taken:
            # A try before this one took request bytes no longer held: they cannot be sent again.
            return AttemptResult(Code.UNAVAILABLE, "egress: the request is too large to try again",
                                 committed=True)  # fmt: skip
        address = endpoint.grpc_address
        if address is None:
            return AttemptResult(
                Code.UNAVAILABLE, f"egress: instance {endpoint.instance_id} advertises no grpc.port"
            )
        if timeout <= 0:
            return AttemptResult(Code.DEADLINE_EXCEEDED, "deadline exceeded")
        pool = self._proxy.pool
        conn = pool.ready(address)
        if conn is None:  # the first call to this instance, or every connection to it is full
            try:
                conn = await asyncio.wait_for(pool.connection(address), timeout)
            except (OSError, TimeoutError, ConnectionError) as e:
                what = "timed out" if isinstance(e, TimeoutError) else str(e) or type(e).__name__
                return AttemptResult(
                    Code.UNAVAILABLE,
                    f"egress: cannot connect to instance {endpoint.instance_id} at {address}: {what}",
                )
            if self.cancelled:
                return AttemptResult(Code.CANCELLED, "cancelled by the client", committed=True)
        t = Try(self, conn, endpoint)
        headers = blocks.upstream_request(
            self.headers, self.service, tried.metadata, HOP_BY_HOP, grpc_timeout_value(timeout)
        )
        held = self.request
        try:
            t.sid = conn.open(t, headers, self.request_ended and not held)
        except Refused:
            return AttemptResult(Code.UNAVAILABLE, f"egress: connection to {address} takes no new stream")
        self.try_ = t
        for i, payload in enumerate(held):
            conn.data(t.sid, payload, self.request_ended and i == len(held) - 1)
        if held:
            self.taken = True
            if not self.replayable:
                held.clear()
        timer = conn.loop.call_later(timeout, t.expire)
        try:
            return await t.done
        finally:
            timer.cancel()
            if not t.done.done():
                t.cancel(Code.CANCELLED, "egress call abandoned")


class Try:
    """One try of a call on one upstream stream: the upstream.Listener of that stream."""

    __slots__ = ("call", "conn", "done", "endpoint", "sid", "trailing", "written")

    def __init__(self, call: ProxiedCall, conn: Upstream, endpoint: Endpoint) -> None:
        self.call = call
        self.conn = conn
        self.endpoint = endpoint
        self.sid = 0
        self.written = 0
        self.trailing: Metadata | None = None
        self.done: asyncio.Future[AttemptResult] = conn.loop.create_future()

    def _finish(self, code: Code, message: str, committed: bool, load: float | None = None) -> None:
        if not self.done.done():
            self.done.set_result(AttemptResult(code, message, committed, load))

    # ---- upstream.Listener ----

    def response(self, headers: Headers, end_stream: bool) -> None:
        c = self.call
        if self.done.done():
            return
        status = headers[0][1] if headers and headers[0][0] == ":status" else None
        if not c.committed:
            if status is not None and status != "200":
                if not end_stream:
                    self.conn.cancel(self.sid)
                code = _HTTP_CODES.get(int(status) if status.isdigit() else 0, Code.UNKNOWN)
                self._finish(code, f"instance {self.endpoint.instance_id} answered HTTP {status}", False)
                return
            if end_stream:  # trailers-only: the router may try again, so the client hears it later
                outcome = gh.outcome(headers) or Outcome(Code.UNKNOWN, "instance sent no grpc-status")
                c.last_trailers = headers
                self._finish(outcome.code, outcome.message, False, _load(outcome))
                return
            c.committed = True
            c.stop_holding()
            c.request.clear()  # this try was given it all
            c.credit_to = (self.conn, self.sid)
            c.client.respond(c.sid, blocks.passed_block(headers), False)
            return
        # The trailers of a committed call.
        outcome = gh.outcome(headers) or Outcome(Code.UNKNOWN, "instance sent no grpc-status")
        self.trailing = outcome.trailing_metadata
        block = blocks.passed_block(headers)
        c.end(lambda: block)
        self._finish(outcome.code, outcome.message, True, _load(outcome))

    def response_data(self, payload: bytes, end_stream: bool) -> None:
        c = self.call
        if not c.committed or self.done.done():
            self.conn.consumed(self.sid, len(payload))
            if not self.done.done():
                self.conn.cancel(self.sid, f.PROTOCOL_ERROR)
                self._finish(
                    Code.INTERNAL, f"instance {self.endpoint.instance_id} sent DATA before headers", False
                )
            return
        n = len(payload)
        if n:
            c.response_bytes.add(payload, 0, n)
            c.client.respond_data(c.sid, payload)
        if end_stream:
            self._fail(
                Code.INTERNAL, f"instance {self.endpoint.instance_id} ended the stream without trailers"
            )

    def request_sent(self, length: int) -> None:
        self.written += length
        self.call.request_sent(self.written)

    def ended(self, code: int, refused: bool, why: str) -> None:
        if self.done.done():
            return
        if refused:
            self._fail(Code.UNAVAILABLE, f"egress: {why} (stream refused)")
        elif code == f.INTERNAL_ERROR and why.startswith("connection"):
            self._fail(Code.UNAVAILABLE, f"egress: {why}")
        else:
            outcome = gh.reset_outcome(code)
            self._fail(outcome.code, f"egress: {why} (HTTP/2 error {code})")

    # ---- from the call ----

    def expire(self) -> None:
        if not self.done.done():
            self.conn.cancel(self.sid)
            self._fail(Code.DEADLINE_EXCEEDED, "deadline exceeded")

    def cancel(self, code: Code, message: str) -> None:
        if not self.done.done():
            self.conn.cancel(self.sid)
            self._finish(code, message, True)

    def _fail(self, code: Code, message: str) -> None:
        """The try ends without the instance's trailers: a committed call's client hears `code` now."""
        c = self.call
        if c.committed:
            c.end(lambda: he.trailers_only(Outcome(code, message), after_headers=True))
        self._finish(code, message, c.committed)


def _port(endpoint: Endpoint) -> int | None:
    return endpoint.grpc_port


def _load(outcome: Outcome) -> float | None:
    for key, value in outcome.trailing_metadata:
        if key in LOAD_KEYS:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def run(chain: Next, call: Call, pc: ProxiedCall) -> None:
    """Run the call's chain now, in a context of its own, until it first waits; no task per call.

    As the ingress relay runs its chains (sidecar/ingress/relay/calls.py): the coroutine is
    stepped by hand, each future it waits on resuming it from that future's callback, so no step
    has a current task (sidecar/filters/chain.py says what that rules out)."""
    _step(_run(chain, call, pc), contextvars.copy_context())


def _step(coro: Coroutine[Any, Any, Outcome], context: contextvars.Context) -> None:
    try:
        waiting = context.run(coro.send, None)
    except StopIteration:
        return
    except Exception:  # _run catches the chain's; this would be a bug of ours
        log.exception("egress: a call failed")
        return
    if waiting is None:  # a bare yield, as asyncio.sleep(0) makes
        asyncio.get_running_loop().call_soon(_step, coro, context)
        return
    waiting._asyncio_future_blocking = False  # what a task does with the future it is handed
    waiting.add_done_callback(lambda _: _step(coro, context))


async def _run(chain: Next, call: Call, pc: ProxiedCall) -> Outcome:
    try:
        outcome = await chain(call)
    except Exception:
        log.exception("egress: filter chain failed for %s", call.method)
        outcome = Outcome(Code.INTERNAL, f"{call.method}: the sidecar failed the call")
    if not pc.done:
        pc.refuse(outcome)  # a filter answered without forwarding
    return outcome


async def forward(call: Call) -> Outcome:
    """The egress filters' terminal: try the call upstream through the router."""
    pc = call.exchange
    assert isinstance(pc, ProxiedCall)
    if not pc.service:
        return Outcome(Code.INVALID_ARGUMENT, pc.problem)
    return await pc.forward(call)
