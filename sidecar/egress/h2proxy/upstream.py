"""A pooled HTTP/2 connection to one instance: many proxied calls' streams multiplexed over it.

The proxy is this connection's client: it opens odd streams in order, up to the instance's
SETTINGS_MAX_CONCURRENT_STREAMS, and encodes each request block for this connection alone
(blocks.py). What the instance sends on a stream goes to that stream's Listener: its response
headers, DATA, trailers, or its end otherwise (a reset; a GOAWAY whose last stream id is below
it: never processed, so safe to try elsewhere; the connection lost). Knows nothing about calls,
routing or the client's connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sidecar.egress.h2proxy import blocks
from sidecar.egress.h2proxy.wire import ENABLE_PUSH, Wire
from sidecar.h2 import frames as f
from sidecar.h2.hpack_decoder import Headers

log = logging.getLogger(__name__)


class Listener(Protocol):
    """Who hears one upstream stream: the try that opened it."""

    def response(self, headers: Headers, end_stream: bool) -> None: ...
    def response_data(self, payload: bytes, end_stream: bool) -> None: ...
    def request_sent(self, length: int) -> None: ...
    def ended(self, code: int, refused: bool, why: str) -> None:
        """The stream ended without trailers: reset with `code` (refused: never processed)."""
        ...


class Refused(Exception):
    """No stream can be opened on this connection (it is going away, closed or full)."""


class Upstream(Wire):
    """The client end of one connection to the instance at `address`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str) -> None:
        super().__init__(loop)
        self.address = address
        self.streams: dict[int, Listener] = {}
        self._next_sid = 1
        self.connected: asyncio.Future[None] = loop.create_future()
        self.idle_since = loop.time()

    def name(self) -> str:
        return f"instance {self.address}"

    @property
    def usable(self) -> bool:
        return not self.closed and not self.going_away and self._next_sid < 2**31 - 1

    @property
    def full(self) -> bool:
        return len(self.streams) >= self.peer_max_streams

    def made(self) -> None:
        self.write(f.PREFACE + self.preamble({ENABLE_PUSH: 0}))
        if not self.connected.done():
            self.connected.set_result(None)

    def open(self, listener: Listener, headers: Headers, end_stream: bool) -> int:
        """A new stream with request `headers`; Refused when this connection cannot take one."""
        if not self.usable or self.full:
            raise Refused(self.address)
        sid = self._next_sid
        self._next_sid += 2
        self.streams[sid] = listener
        self.send.open(sid)
        self.recv.open(sid)
        self.write(
            f.header_block_frames(sid, self.block(blocks.encode(headers)), end_stream, self.send.max_frame)
        )
        if end_stream:
            self.send.close(sid)
        return sid

    def data(self, sid: int, payload: bytes, end_stream: bool) -> None:
        self.send.data(sid, payload, end_stream)

    def cancel(self, sid: int, code: int = f.CANCEL) -> None:
        """The try is over without the stream: reset it (the instance stops its work)."""
        if self.streams.pop(sid, None) is not None and not self.closed:
            self.reset(sid, code)
        self._settled()

    def sent(self, sid: int, length: int) -> None:
        listener = self.streams.get(sid)
        if listener is not None:
            listener.request_sent(length)

    # ---- the instance's frames ----

    def on_headers(self, sid: int, headers: Headers, end_stream: bool) -> None:
        listener = self.streams.get(sid)
        if listener is None:
            return  # a stream this side reset
        if end_stream:
            self._done(sid)
        listener.response(headers, end_stream)

    def on_data(self, sid: int, payload: bytes, end_stream: bool) -> None:
        listener = self.streams.get(sid)
        if listener is None:
            self.consumed(sid, len(payload))
            return
        if end_stream:
            self._done(sid)
        listener.response_data(payload, end_stream)

    def on_reset(self, sid: int, code: int) -> None:
        listener = self.streams.pop(sid, None)
        self.recv.close(sid)
        self._settled()
        if listener is not None:
            listener.ended(code, code == f.REFUSED_STREAM, f"instance {self.address} reset the stream")

    def on_goaway(self, last_sid: int, code: int, debug: bytes) -> None:
        log.info("egress: instance %s sent GOAWAY (last stream %d, error %d)", self.address, last_sid, code)
        for sid in [s for s in self.streams if s > last_sid]:
            listener = self.streams.pop(sid)
            self.send.close(sid)
            self.recv.close(sid)
            listener.ended(f.REFUSED_STREAM, True, f"instance {self.address} is going away")
        if not self.streams:
            self.close()

    def lost(self) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"connection to {self.address} closed"))
        streams, self.streams = self.streams, {}
        for listener in streams.values():
            listener.ended(f.INTERNAL_ERROR, False, f"connection to instance {self.address} closed")

    def _done(self, sid: int) -> None:
        """The instance ended `sid`: its request side, if still open, is of no more use."""
        del self.streams[sid]
        self.recv.close(sid)
        if self.send.sending(sid):
            self.reset(sid, f.CANCEL)
        self._settled()

    def _settled(self) -> None:
        if not self.streams:
            self.idle_since = self.loop.time()
            if self.going_away and not self.closed:
                self.close()
