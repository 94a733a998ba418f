"""One client HTTP/2 connection relayed frame by frame over its own model connection: wiring and lifecycle.

The layers do the relaying: frames (sidecar/h2/reader.py) pass or go up, streams
(sidecar/h2/streams.py) keep ids, states, settings and flow control, calls (calls.py) run
each call's filter chain. This module builds them for one accepted socket, dials the model
once the client's preface is in, and decides what the connection does when either side goes: a
model that is gone or unreachable leaves open health Watches served, a drain sends GOAWAY and
waits for in-flight streams. Bytes are handled in the transports' callbacks, with no task or
await per frame: everything one read brought in is parsed, and what it produced goes out in one
write per direction.

The connection's own bounds (limits.py, counted in LimitHits): no preface within
preface_timeout closes it, no stream for idle_timeout sends GOAWAY(NO_ERROR) and closes it
(timers.py keeps both clocks), a read larger than read_slice is handled in slices for at most
read_budget seconds per loop turn (pacing.py: reading paused while the rest waits), and a client
that reads nothing is dropped (outbox.py). Knows nothing about listening sockets or the
composition root.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Final

from sidecar.core.call import Outcome, grpc_peer
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.h2 import frames as f
from sidecar.h2 import hpack_encoder as he
from sidecar.h2.limits import LimitHits, Limits
from sidecar.h2.outbox import Hold, Outbox
from sidecar.health.readiness import Readiness
from sidecar.ingress.relay import calls as c
from sidecar.ingress.relay.pacing import ReadBudget
from sidecar.ingress.relay.sockets import Dial, ModelSocket
from sidecar.ingress.relay.timers import ConnectionTimers

log = logging.getLogger(__name__)

DEFAULT_LIMITS: Final = Limits()


class RelayConnection:
    def __init__(
        self,
        *,
        model_address: tuple[str, int],
        chain: Next,
        readiness: Readiness,
        healthy_services: frozenset[str],
        on_close: Callable[[RelayConnection], None],
        limits: Limits = DEFAULT_LIMITS,
        read_model: Callable[[], bool] = lambda: False,
        hits: LimitHits | None = None,
        dial: Dial | None = None,
        clock: Callable[[], float] = time.perf_counter,
        batching: bool = False,
    ) -> None:
        """`read_model()`: the filters need the model a contract call names, so its verdict waits
        for the start of its request message (calls.py). `hits`: where the limits this connection
        enforces are counted (the listener's, shared by its connections; its own when not given).
        `dial`: how the model socket is opened (loop.create_connection); `clock`: what the read
        budget is measured with (not the loop's time, which stands still within a callback)."""
        self._model_address = model_address
        self._limits = limits
        self.hits = hits if hits is not None else LimitHits()
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self._model: asyncio.Transport | None = None
        self._dial: Dial = dial if dial is not None else self._loop.create_connection
        self._out = Outbox(
            self._loop,
            credit_delay=limits.credit_delay,
            credit_held=limits.credit_held,
            write_high=limits.write_high,
            client_high=limits.client_write_high,
            write_max=limits.write_max,
            write_stall=limits.write_stall,
            drop=self._dropped,
        )
        self._calls = c.Calls(
            out=self._out,
            chain=chain,
            readiness=readiness,
            healthy_services=healthy_services,
            limits=limits,
            client_error=self._client_error,
            model_error=self._model_error,
            read_model=read_model,
            hits=self.hits,
            clock=self._loop.time,
            batching=batching,
        )
        self._streams = streams = self._calls.streams
        # The model's bytes go straight to the stream layer; the client's through the read budget,
        # to the preface check until the preface is in (_before_preface), then to the stream layer.
        self.model_data = streams.model_data
        # Flow: one side pauses while the other cannot take more (outbox.py).
        self.model_full = functools.partial(self._out.hold_client, Hold.MODEL_FULL)
        self.client_full = self._out.client_full
        self._reads = ReadBudget(
            self._loop,
            handle=self._before_preface,
            budget=limits.read_budget,
            size=limits.read_slice,
            clock=clock,
            pause=functools.partial(self._out.hold_client, Hold.BACKLOG),
            hits=self.hits,
            failed=self.failed,
        )
        self.client_data = self._reads.feed
        self._timers = ConnectionTimers(
            self._loop,
            preface_timeout=limits.preface_timeout,
            idle_timeout=limits.idle_timeout,
            late=self._preface_late,
            idle=self._idle,
            busy=lambda: not streams.idle.is_set() or self._calls.watching,
            last_sid=lambda: streams.last_sid,
        )
        self._head = b""  # the preface's bytes so far
        self._connecting = True  # the model connection is not settled yet (it waits for the preface)
        self._closed = False

    # ---- lifecycle ----

    def client_connected(self, transport: asyncio.Transport) -> None:
        self._out.attach_client(transport)
        self._calls.peer = grpc_peer(transport.get_extra_info("peername"))
        self._timers.preface()

    def _before_preface(self, data: bytes) -> None:
        head = self._head + data[: len(f.PREFACE) - len(self._head)]
        if not f.PREFACE.startswith(head):
            log.info("relay: closing connection from %s: not an HTTP/2 connection preface", self._calls.peer)
            self._out.to_client(f.goaway(0, f.PROTOCOL_ERROR, b"not an HTTP/2 connection preface"))
            self._close()
            return
        self._streams.client_data(data)  # held until the model connection is settled
        if len(head) < len(f.PREFACE):
            self._head = head
            return
        self._reads.handle = self._streams.client_data
        self._head = b""
        self._timers.cancel()
        self._connecting_task = self._loop.create_task(self._connect())  # held: the loop holds tasks weakly

    def _preface_late(self) -> None:
        self.hits.hit("preface_timeout")
        # Debug, not info: a flood of such connections must not flood the log (LimitHits counts them).
        log.debug("relay: closing connection from %s: no HTTP/2 preface within %gs", self._calls.peer,
                  self._limits.preface_timeout)  # fmt: skip
        self._close()

    def _idle(self) -> None:
        self.hits.hit("idle")
        log.info("relay: closing connection from %s: no stream for %gs", self._calls.peer,
                 self._limits.idle_timeout)  # fmt: skip
        self.go_away()
        self._close()

    def _dropped(self, kind: str) -> None:
        """The client reads too little to keep (outbox.py): it is dropped."""
        self.hits.hit(kind)
        log.warning("relay: dropping connection from %s: it does not read what it is sent (%s)",
                    self._calls.peer, kind)  # fmt: skip
        self._out.abort_client()
        self._close()

    async def _connect(self) -> None:
        sock = ModelSocket(self)
        try:
            dialled = self._dial(lambda: sock, *self._model_address)
            await asyncio.wait_for(dialled, self._limits.connect_timeout)
            if sock.adopt() is None:
                log.debug("relay: model at %s:%d closed as it was connected; answering locally",
                          *self._model_address)  # fmt: skip
        except (OSError, TimeoutError) as e:
            # A connect that completed after its timeout fired has made the socket and had it
            # closed under it: it was never the connection's, and is never written to.
            sock.give_up()
            log.debug("relay: model at %s:%d unreachable (%s); answering locally", *self._model_address, e)
        self._connecting = False
        if self._closed:
            if self._model is not None:
                self._model.close()
            return
        self._timers.idle_checks()
        self._streams.model = self._model is not None
        try:
            self._streams.resume()
        except Exception:
            self.failed()  # as a socket callback would: this task's error must not go unseen

    def model_connected(self, transport: asyncio.Transport) -> None:
        if self._closed:
            transport.close()
            return
        self._model = transport
        self._out.attach_model(transport)

    async def shutdown(self, grace: float) -> None:
        """GOAWAY with the last stream id, let in-flight streams finish up to `grace`, then close."""
        self.go_away()
        self.readiness_changed(False)  # draining: Watch streams hear NOT_SERVING first
        try:
            await asyncio.wait_for(self._streams.idle.wait(), grace)
        except TimeoutError:
            log.info("relay: %d in-flight streams cut at the drain deadline", len(self._streams.relayed))
        self._close()

    def go_away(self, code: int = f.NO_ERROR) -> None:
        self._streams.go_away(code)

    def failed(self) -> None:
        """A bug, not the peer's fault: this connection ends, the process goes on."""
        log.error("relay: connection from %s failed", self._calls.peer, exc_info=True)
        self.go_away(f.INTERNAL_ERROR)
        self._close()

    def model_ready(self) -> None:
        # Without a model connection every call is answered here; once the model is back,
        # tell the client to reconnect so its next connection is relayed.
        if self._model is None and not self._connecting and not self._closed:
            self.go_away()
            if not self._calls.watching:
                self._out.close_client()

    def readiness_changed(self, ready: bool) -> None:
        """Tell each open Watch its service's new status, if it changed."""
        self._calls.readiness_changed(ready)

    def client_lost(self) -> None:
        self._close()

    def model_lost(self) -> None:
        if self._closed:
            return
        if not self._calls.watching:
            log.info("relay: model connection closed; closing the client's connection")
            self.go_away()
            self._close()
            return
        # Open health Watch streams outlive the model connection, as on the grpcio data plane:
        # the client hears GOAWAY (no new streams here), each relayed call ends UNAVAILABLE, and
        # the connection stays until the client closes it.
        log.info("relay: model connection closed; keeping the client's for its health watches")
        self._model = None
        self._out.detach_model()
        self.go_away()
        result = Outcome(Code.UNAVAILABLE, "model connection closed")
        for st in self._streams.model_lost():
            self._streams.reply(st.sid, he.trailers_only(result, after_headers=st.replied))
            c.end(st, result)

    def _client_error(self, e: f.ConnectionError_) -> None:
        log.warning("relay: closing connection from %s: %s", self._calls.peer, e)
        self._close()

    def _model_error(self, e: f.ConnectionError_) -> None:
        log.warning("relay: model sent a malformed frame: %s", e)
        self.model_lost()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reads.stop()
        self._timers.stop()
        result = Outcome(Code.UNAVAILABLE, "connection closed")
        for st in self._streams.close():
            c.end(st, result)  # its filters see the end within this callback
        self._out.close()
        self._on_close(self)
