"""One HTTP/2 connection of the egress proxy, either end: frames read and written, settings, flow control.

The client's connection (downstream.py) and each pooled upstream connection (upstream.py) are
both a Wire: it reads every frame in one loop per socket read (over sidecar/h2/reader.py's
FrameBuffer, with no Frame built for DATA or HEADERS), decodes header blocks
with this connection's own HPACK context, keeps both directions' windows (flow.py), answers
SETTINGS and PING, and hands the subclass a stream's headers, DATA, reset and the peer's GOAWAY.
Writes made in one socket callback, to this connection or any other of the loop's (the far side
of a proxied stream), leave in one send() per connection when it ends. A stream error resets that
stream; a connection error sends GOAWAY and closes. Knows nothing about calls, routing or what
the other side of the proxy is.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import weakref
from typing import Final, cast

from sidecar.egress.h2proxy.flow import DEFAULT_WINDOW, RecvFlow, SendFlow
from sidecar.h2 import frames as f
from sidecar.h2 import hpack_encoder as he
from sidecar.h2.hpack_decoder import Decoder, Headers, HPACKDecodeError
from sidecar.h2.limits import MAX_BLOCK, MAX_CONTINUATIONS
from sidecar.h2.reader import FrameBuffer

log = logging.getLogger(__name__)

ENABLE_PUSH: Final = 0x2
MAX_CONCURRENT_STREAMS: Final = 0x3
INITIAL_WINDOW_SIZE: Final = 0x4

# Each stream may have this many bytes in flight towards the proxy, and a connection this many
# in all: what one slow reader on the far side can make the proxy hold for one stream.
STREAM_WINDOW: Final = 1 << 20
CONNECTION_WINDOW: Final = 16 << 20
# Bytes queued on a socket before it counts as full (its peer reads slower than we write).
WRITE_HIGH: Final = 1 << 20


def settings_frame(values: dict[int, int]) -> bytes:
    return f.frame(f.SETTINGS, 0, 0, b"".join(struct.pack(">HL", k, v) for k, v in values.items()))


def _header_block(buf: bytes, pos: int, end: int, max_frame: int) -> tuple[int, bytes] | None:
    """The end and the block of the header block whose HEADERS frame is buf[pos:end], with the
    CONTINUATIONs after it in `buf`; None while it does not end within `buf`. The relay's reader
    gathers blocks incrementally against hostile clients; the proxy's peers are the local model and
    the fleet's sidecars, so a block is gathered once it is whole, within MAX_BLOCK bytes and
    MAX_CONTINUATIONS frames (a connection error past either)."""
    flags = buf[pos + 4]
    sid = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
    fragments = [f.headers_fragment(flags, buf[pos + f.HEADER_LEN : end])]
    size, last, n = len(fragments[0]), flags, len(buf)
    while not last & f.END_HEADERS:
        if n - end < f.HEADER_LEN:
            return None
        length, kind, last, csid = f.parse_header(buf[end : end + f.HEADER_LEN])
        if kind != f.CONTINUATION or csid != sid:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "header block interrupted")
        if length > max_frame:
            raise f.too_large(length, max_frame)
        size += length
        if size > MAX_BLOCK or len(fragments) > MAX_CONTINUATIONS:
            raise f.ConnectionError_(f.ENHANCE_YOUR_CALM, "header block too large")
        if end + f.HEADER_LEN + length > n:
            return None
        fragments.append(buf[end + f.HEADER_LEN : end + f.HEADER_LEN + length])
        end += f.HEADER_LEN + length
    return end, b"".join(fragments)


class _Batch:
    """The writes made while any of one loop's proxy connections handles a socket read: the proxy
    writes to the other side's connection from inside this one's callback, and those writes leave
    when the callback ends, one send() per connection, with no loop callback per write."""

    __slots__ = ("depth", "dirty")

    def __init__(self) -> None:
        self.depth = 0
        self.dirty: list[Wire] = []


_batches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = weakref.WeakKeyDictionary()


def _batch_of(loop: asyncio.AbstractEventLoop) -> _Batch:
    batch = _batches.get(loop)
    if batch is None:
        batch = _batches[loop] = _Batch()
    return batch


class Wire(asyncio.Protocol):
    """One HTTP/2 connection: the subclass says what its streams' frames mean."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._batch = _batch_of(loop)
        self._dirty = False  # writes wait: in the batch, or a flush is scheduled
        self.reader = FrameBuffer()
        self.max_frame = f.DEFAULT_MAX_FRAME  # what this side advertised: larger frames are an error
        self.decoder = Decoder()
        self.send = SendFlow(self.write, self.sent, self.finished)
        self.recv = RecvFlow(STREAM_WINDOW, CONNECTION_WINDOW)
        self.peer_max_streams = 2**31 - 1
        # A dynamic table size update owed at the start of the next block (RFC 7541 4.2): blocks
        # here index nothing, but a peer that lowers SETTINGS_HEADER_TABLE_SIZE must hear it.
        self._table_update = b""
        self._table_size = 4096
        self.closed = False
        self.going_away = False

    # ---- writing ----

    def write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._dirty:
            self._dirty = True
            batch = self._batch
            if batch.depth:
                batch.dirty.append(self)
            else:  # outside any socket callback (a timer, a task): at the end of this loop turn
                self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._dirty = False
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.write(data)

    def begin(self) -> None:
        self._batch.depth += 1

    def end(self) -> None:
        batch = self._batch
        batch.depth -= 1
        if not batch.depth and batch.dirty:
            dirty, batch.dirty = batch.dirty, []
            for wire in dirty:
                wire.flush()

    def block(self, block: bytes) -> bytes:
        """A header block as this connection writes it next (after any table size update owed)."""
        if self._table_update:
            block, self._table_update = self._table_update + block, b""
        return block

    def preamble(self, settings: dict[int, int]) -> bytes:
        values = {INITIAL_WINDOW_SIZE: STREAM_WINDOW, **settings}
        return settings_frame(values) + f.window_update(0, CONNECTION_WINDOW - DEFAULT_WINDOW)

    def consumed(self, sid: int, length: int) -> None:
        """`length` DATA bytes the peer sent on `sid` left the proxy: the peer may send more."""
        self.recv.consumed(sid, length, self.write)

    def reset(self, sid: int, code: int) -> None:
        self.send.close(sid)
        self.recv.close(sid)
        self.write(f.rst_stream(sid, code))

    def fail(self, code: int, reason: str, last_sid: int) -> None:
        """A connection error: GOAWAY naming it, then close."""
        if self.closed:
            return
        self.write(f.goaway(last_sid, code, reason.encode()[:256]))
        self.close()

    def close(self) -> None:
        self.flush()
        if self.transport is not None:
            self.transport.close()

    # ---- the socket ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)
        self.made()

    def data_received(self, data: bytes) -> None:
        self.begin()
        try:
            self.received(data)
        except f.ConnectionError_ as e:
            log.warning("egress: %s sent a malformed frame: %s", self.name(), e)
            self.fail(e.code, str(e), self.last_peer_sid())
        except Exception:
            log.exception("egress: connection with %s failed", self.name())
            self.fail(f.INTERNAL_ERROR, "proxy error", self.last_peer_sid())
        finally:
            self.end()

    def received(self, data: bytes) -> None:
        self.read(data)

    def read(self, data: bytes) -> None:
        """Take a socket read and handle every frame it completes: DATA and header blocks go to the
        subclass with no Frame built (a call per frame is most of what a frame costs in Python)."""
        reader = self.reader
        if data:
            reader.feed(data)
        window = reader.window()
        if window is None:
            return
        buf, pos = window
        n, need = len(buf), f.HEADER_LEN
        max_frame = self.max_frame
        unpack = f.HEADER.unpack_from
        try:
            while n - pos >= f.HEADER_LEN:
                high, low, kind, flags, sid = unpack(buf, pos)
                length = (high << 16) | low
                if length > max_frame:
                    raise f.too_large(length, max_frame)
                start = pos + f.HEADER_LEN
                end = start + length
                if end > n:
                    need = f.HEADER_LEN + length
                    break
                sid &= 0x7FFFFFFF
                if kind == f.DATA and sid:
                    stop = end
                    if flags & f.PADDED and length:
                        stop -= buf[start]
                        start += 1
                        if stop < start:
                            raise f.ConnectionError_(f.PROTOCOL_ERROR, "DATA padding exceeds the payload")
                    pos = end
                    self._data(sid, buf[start:stop], length, flags & f.END_STREAM)
                    continue
                if kind == f.HEADERS and sid:
                    if flags & f.PRIORITY_FLAG and length >= 5 + (flags & f.PADDED and 1):
                        at = start + (1 if flags & f.PADDED else 0)
                        if int.from_bytes(buf[at : at + 4], "big") & 0x7FFFFFFF == sid:
                            self._self_dependent(sid)
                    if flags & f.END_HEADERS:
                        block = f.headers_fragment(flags, buf[start:end])
                    else:
                        whole = _header_block(buf, pos, end, max_frame)
                        if whole is None:
                            need = n - pos + 1
                            break
                        end, block = whole
                    pos = end
                    self._headers(sid, block, bool(flags & f.END_STREAM))
                    continue
                f.check(length, kind, flags, sid, max_frame)
                pos = end
                self._control(kind, flags, sid, buf[start:end])
        finally:
            reader.advance(pos, need)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost()

    def pause_writing(self) -> None:
        self.send.paused = True

    def resume_writing(self) -> None:
        self.begin()
        try:
            self.send.resume()
        finally:
            self.end()

    # ---- frames ----

    def _credit(self, increment: int) -> None:
        if not increment:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
        self.send.credit(0, increment)

    def _data(self, sid: int, payload: bytes, length: int, end_stream: int) -> None:
        try:
            self.recv.received(sid, length)
            if length > len(payload):
                self.consumed(sid, length - len(payload))  # padding is nobody's to consume
            self.on_data(sid, payload, bool(end_stream))
        except f.StreamError as e:
            self.reset(sid, e.code)
            self.on_reset(sid, e.code)

    def _headers(self, sid: int, block: bytes, end_stream: bool) -> None:
        try:
            headers = self.decoder.decode(block)
        except HPACKDecodeError as e:
            raise f.ConnectionError_(f.COMPRESSION_ERROR, f"invalid HPACK: {e}") from None
        try:
            self.on_headers(sid, headers, end_stream)
        except f.StreamError as e:
            self.reset(sid, e.code)
            self.on_reset(sid, e.code)

    def _self_dependent(self, sid: int) -> None:
        """RFC 9113 5.3.1: a stream that depends on itself is a stream error."""
        self.reset(sid, f.PROTOCOL_ERROR)
        self.on_reset(sid, f.PROTOCOL_ERROR)

    def _control(self, kind: int, flags: int, sid: int, payload: bytes) -> None:
        if sid and kind in (f.WINDOW_UPDATE, f.RST_STREAM) and self.idle_stream(sid):
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"frame type {kind} on idle stream {sid}")
        try:
            if kind == f.PRIORITY:
                if int.from_bytes(payload[:4], "big") & 0x7FFFFFFF == sid:
                    self._self_dependent(sid)
            elif kind == f.WINDOW_UPDATE:
                increment = f.window_increment(payload)
                if sid == 0:
                    self._credit(increment)
                    return
                if not increment:
                    raise f.StreamError(f.PROTOCOL_ERROR, f"WINDOW_UPDATE of 0 on stream {sid}")
                self.send.credit(sid, increment)
            elif kind == f.RST_STREAM:
                self.send.close(sid)
                self.recv.close(sid)
                self.on_reset(sid, f.error_code(payload))
            elif kind == f.SETTINGS:
                if not flags & f.ACK:
                    self._settings(f.settings(payload))
            elif kind == f.PING:
                if not flags & f.ACK:
                    self.write(f.ping_ack(payload))
            elif kind == f.GOAWAY:
                last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                self.going_away = True
                self.on_goaway(last, f.error_code(payload), payload[8:])
            elif kind == f.PUSH_PROMISE:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, "PUSH_PROMISE: push is disabled")
            elif kind == f.CONTINUATION:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, "CONTINUATION without HEADERS")
            # PRIORITY and unknown types are ignored (RFC 9113 5.5).
        except f.StreamError as e:
            self.reset(sid, e.code)
            self.on_reset(sid, e.code)

    def _settings(self, values: dict[int, int]) -> None:
        table = values.get(f.HEADER_TABLE_SIZE)
        if table is not None and table < self._table_size:
            self._table_size = table
            self._table_update = he.table_size_update(table)
        size = f.max_frame_size(values, "")
        if size is not None:
            self.send.max_frame = size
        window = values.get(INITIAL_WINDOW_SIZE)
        if window is not None:
            self.send.initial_window(window)
        streams = values.get(MAX_CONCURRENT_STREAMS)
        if streams is not None:
            self.peer_max_streams = streams
        push = values.get(ENABLE_PUSH)
        if push is not None and push > 1:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"SETTINGS_ENABLE_PUSH {push}")
        self.write(f.settings_ack())

    # ---- what the subclass says ----

    def name(self) -> str:
        raise NotImplementedError

    def made(self) -> None:
        raise NotImplementedError

    def lost(self) -> None:
        raise NotImplementedError

    def last_peer_sid(self) -> int:
        return 0

    def idle_stream(self, sid: int) -> bool:
        """Whether stream `sid` is idle (RFC 9113 5.1): frames on it but HEADERS are an error."""
        return False

    def sent(self, sid: int, length: int) -> None:
        """`length` DATA bytes this side queued on `sid` were written."""

    def finished(self, sid: int) -> None:
        """This side wrote `sid`'s END_STREAM."""

    def on_headers(self, sid: int, headers: Headers, end_stream: bool) -> None:
        raise NotImplementedError

    def on_data(self, sid: int, payload: bytes, end_stream: bool) -> None:
        raise NotImplementedError

    def on_reset(self, sid: int, code: int) -> None:
        raise NotImplementedError

    def on_goaway(self, last_sid: int, code: int, debug: bytes) -> None:
        raise NotImplementedError
