"""One downstream HTTP/2 connection relayed frame by frame over its own upstream connection to the model.

Stream ids map 1:1, so every frame passes through as it arrives; only header blocks are
decoded (one HPACK decoder per direction, in step with that direction's encoder) so the
filter chain sees each call's path, metadata and deadline and, from the model's trailers,
its status. The original header block bytes go upstream unless a filter appended metadata
(appended as literals without indexing) or a rejected call left the model's decoder behind
the client's encoder (then blocks are re-encoded for the model from that point on).
Knows nothing about listening sockets or the composition root.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

import hpack

from sidecar.core.call import Call, Metadata, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.health.readiness import Readiness
from sidecar.ingress.relay import frames as f
from sidecar.ingress.relay import grpc_headers as gh
from sidecar.ingress.relay import health

log = logging.getLogger(__name__)

# A header block larger than this (all CONTINUATIONs together) closes the connection.
_MAX_BLOCK: Final = 1 << 20
# Request bytes buffered for a call the relay answers itself (health checks).
_MAX_LOCAL_REQUEST: Final = 64 * 1024
# Streams remembered as answered locally until the client ends them.
_MAX_DROPPED: Final = 4096
# The model is local: a connection it does not accept within this is answered locally.
_CONNECT_TIMEOUT: Final = 2.0
_HPACK_ERRORS: Final = (hpack.HPACKError, UnicodeDecodeError, IndexError, ValueError)


class _Stream:
    """Per-call state of a relayed stream; the Call's `exchange`."""

    __slots__ = ("conn", "decision", "done", "original", "request_bytes", "response_bytes", "sid")

    def __init__(
        self, conn: RelayConnection, sid: int, decision: asyncio.Future[bool], original: Metadata
    ) -> None:
        self.conn = conn
        self.sid = sid
        self.decision = decision
        self.done: asyncio.Future[Outcome] | None = None
        # The metadata as the client sent it: what filters append to it is appended to the block.
        self.original = original
        self.request_bytes = 0
        self.response_bytes = 0


class RelayConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        upstream: tuple[str, int],
        chain: Next,
        readiness: Readiness,
        healthy_services: frozenset[str],
        on_close: Callable[[RelayConnection], None],
    ) -> None:
        self._down_r = reader
        self._down_w = writer
        self._upstream = upstream
        self._chain = chain
        self._readiness = readiness
        self._healthy_services = healthy_services
        self._on_close = on_close
        self._up_r: asyncio.StreamReader | None = None
        self._up_w: asyncio.StreamWriter | None = None
        peer = writer.get_extra_info("peername")
        self._peer = _grpc_peer(peer)
        self._c2s = hpack.Decoder()
        self._s2c = hpack.Decoder()
        self._up_encoder: _ClearingEncoder | None = None  # set once the model's decoder fell behind
        self._up_table_size = 4096
        self._max_frame_in = f.DEFAULT_MAX_FRAME  # largest frame the client may send (model's setting)
        self._max_frame_down = f.DEFAULT_MAX_FRAME  # largest frame we may send the client
        self._max_frame_up = f.DEFAULT_MAX_FRAME
        self._streams: dict[int, _Stream] = {}
        self._dropped: dict[int, None] = {}
        self._local: dict[int, bytearray] = {}
        self._last_sid = 0
        self._max_forwarded = 0
        self._debt = 0  # DATA bytes we sent the client ourselves; its WINDOW_UPDATEs for them stop here
        self._going_away = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._down_out: list[bytes] = []
        self._up_out: list[bytes] = []

    # ---- lifecycle ----

    async def run(self) -> None:
        try:
            try:
                self._up_r, self._up_w = await asyncio.wait_for(
                    asyncio.open_connection(*self._upstream), _CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError) as e:
                log.debug("relay: model at %s:%d unreachable (%s); answering locally", *self._upstream, e)
            pumps = [asyncio.create_task(self._from_client())]
            if self._up_r is not None:
                pumps.append(asyncio.create_task(self._from_model(self._up_r)))
            try:
                done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for p in pumps:
                    p.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
            for p in done:
                if not p.cancelled() and p.exception() is not None:
                    # A bug, not the peer's fault: this connection ends, the process goes on.
                    log.error("relay: connection from %s failed", self._peer, exc_info=p.exception())
                    self.go_away(f.INTERNAL_ERROR)
        finally:
            self._close()

    async def shutdown(self, grace: float) -> None:
        """GOAWAY with the last stream id, let in-flight streams finish up to `grace`, then close."""
        self.go_away()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.info("relay: %d in-flight streams cut at the drain deadline", len(self._streams))
        self._close()

    # Frames are queued and written once per loop turn: everything one read brought in goes out
    # in one send() per direction, instead of one per frame (a syscall was the largest cost).

    def _to_client(self, data: bytes) -> None:
        if not self._down_out:
            self._loop.call_soon(self._flush_client)
        self._down_out.append(data)

    def _to_model(self, data: bytes) -> None:
        if not self._up_out:
            self._loop.call_soon(self._flush_model)
        self._up_out.append(data)

    def _flush_client(self) -> None:
        if self._down_out:
            data = b"".join(self._down_out)
            self._down_out.clear()
            # A closed transport raises on write (uvloop); the peer may have gone meanwhile.
            if not self._down_w.transport.is_closing():
                self._down_w.transport.write(data)

    def _flush_model(self) -> None:
        if self._up_out:
            data = b"".join(self._up_out)
            self._up_out.clear()
            if self._up_w is not None and not self._up_w.transport.is_closing():
                self._up_w.transport.write(data)

    def _close_client(self) -> None:
        self._flush_client()
        self._down_w.close()

    def go_away(self, code: int = f.NO_ERROR) -> None:
        if not self._going_away and not self._closed:
            self._going_away = True
            self._to_client(f.goaway(self._last_sid, code))

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for st in self._streams.values():
            if st.done is not None and not st.done.done():
                st.done.set_result(Outcome(Code.UNAVAILABLE, "connection closed"))
            if not st.decision.done():
                st.decision.set_result(False)
        self._streams.clear()
        self._idle.set()
        self._close_client()
        if self._up_w is not None:
            self._flush_model()
            self._up_w.close()
        self._on_close(self)

    def model_ready(self) -> None:
        # Without a model connection every call is answered here; once the model is back,
        # tell the client to reconnect so its next connection is relayed.
        if self._up_w is None and not self._closed:
            self.go_away()
            self._close_client()

    # ---- client to model ----

    async def _from_client(self) -> None:
        r = self._down_r
        try:
            if await r.readexactly(len(f.PREFACE)) != f.PREFACE:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
            if self._up_w is not None:
                self._to_model(f.PREFACE)
            else:
                self._to_client(f.frame(f.SETTINGS, 0, 0))
            while True:
                head = await r.readexactly(f.HEADER_LEN)
                length, kind, flags, sid = f.parse_header(head)
                f.check(length, kind, flags, sid, self._max_frame_in)
                payload = await r.readexactly(length) if length else b""
                await self._client_frame(head, length, kind, flags, sid, payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except f.ConnectionError_ as e:
            log.warning("relay: closing connection from %s: %s", self._peer, e)
            self._going_away = True
            self._to_client(f.goaway(self._last_sid, e.code, str(e).encode()[:256]))

    async def _client_frame(
        self, head: bytes, length: int, kind: int, flags: int, sid: int, payload: bytes
    ) -> None:
        up = self._up_w
        if sid > self._last_sid and kind not in (f.HEADERS, f.PRIORITY):
            # RFC 9113 section 5.1: only HEADERS or PRIORITY may arrive on an idle stream.
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"frame type {kind} on idle stream {sid}")
        if kind == f.DATA:
            st = self._streams.get(sid)
            if st is not None and up is not None:
                st.request_bytes += length
                self._to_model(head + payload)
                if up.transport.get_write_buffer_size() > 1 << 20:
                    await up.drain()
                return
            if length:
                self._to_client(f.window_update(0, length))
            buf = self._local.get(sid)
            if buf is not None:
                buf += _unpad(flags, payload)
                if len(buf) > _MAX_LOCAL_REQUEST:
                    raise f.ConnectionError_(f.PROTOCOL_ERROR, "health request too large")
            if flags & f.END_STREAM:
                self._client_ended(sid)
        elif kind == f.HEADERS:
            await self._client_headers(flags, sid, payload)
        elif kind == f.WINDOW_UPDATE:
            if sid == 0 and self._debt:
                inc = f.window_increment(payload)
                paid = min(inc, self._debt)
                self._debt -= paid
                if inc > paid and up is not None:
                    self._to_model(f.window_update(0, inc - paid))
            elif self._forwardable(sid) and up is not None:
                self._to_model(head + payload)
        elif kind == f.SETTINGS:
            if not flags & f.ACK:
                values = f.settings(payload)
                size = values.get(f.HEADER_TABLE_SIZE)
                if size is not None:
                    self._s2c.max_allowed_table_size = size
                frame_size = values.get(f.MAX_FRAME_SIZE)
                if frame_size is not None:
                    if not f.DEFAULT_MAX_FRAME <= frame_size <= f.MAX_FRAME_LIMIT:
                        raise f.ConnectionError_(f.PROTOCOL_ERROR, f"SETTINGS_MAX_FRAME_SIZE {frame_size}")
                    self._max_frame_down = frame_size
                if up is None:
                    self._to_client(f.settings_ack())
            if up is not None:
                self._to_model(head + payload)
        elif kind == f.PING:
            if up is not None:
                self._to_model(head + payload)
            elif not flags & f.ACK:
                self._to_client(f.ping_ack(payload))
        elif kind == f.RST_STREAM:
            st = self._streams.pop(sid, None)
            if st is not None:
                self._resolve(st, Outcome(Code.CANCELLED, "cancelled by the client"))
            self._dropped.pop(sid, None)
            self._local.pop(sid, None)  # a cancelled health check gets no answer
            if (st is not None or self._forwardable(sid)) and up is not None:
                self._to_model(head + payload)
        elif kind == f.CONTINUATION:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "CONTINUATION without HEADERS")
        elif kind == f.PUSH_PROMISE:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        elif kind == f.GOAWAY:
            if up is not None:
                self._to_model(head + payload)
        elif up is not None and (sid == 0 or self._forwardable(sid)):
            self._to_model(head + payload)  # PRIORITY and extension frames

    def _forwardable(self, sid: int) -> bool:
        """Whether the model knows this stream (it saw its HEADERS, or a later stream's)."""
        return sid in self._streams or (
            sid <= self._max_forwarded and sid not in self._dropped and sid not in self._local
        )

    async def _read_block(self, r: asyncio.StreamReader, flags: int, sid: int, payload: bytes) -> bytes:
        """The whole header block: this HEADERS frame's fragment and its CONTINUATIONs."""
        block = f.headers_fragment(flags, payload)
        end = flags & f.END_HEADERS
        if end:
            return block
        parts = [block]
        size = len(block)
        while not end:
            length, kind, cflags, csid = f.parse_header(await r.readexactly(f.HEADER_LEN))
            if kind != f.CONTINUATION or csid != sid:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, "header block interrupted")
            f.check(length, kind, cflags, csid, self._max_frame_in)
            size += length
            if size > _MAX_BLOCK:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, "header block too large")
            parts.append(await r.readexactly(length))
            end = cflags & f.END_HEADERS
        return b"".join(parts)

    async def _client_headers(self, flags: int, sid: int, payload: bytes) -> None:
        block = await self._read_block(self._down_r, flags, sid, payload)
        end_stream = bool(flags & f.END_STREAM)
        before = _table_state(self._c2s)
        try:
            headers = gh.decode(self._c2s, block)
        except _HPACK_ERRORS as e:
            raise f.ConnectionError_(f.COMPRESSION_ERROR, f"invalid HPACK from the client: {e!r}") from None
        changed = _table_state(self._c2s) != before
        if sid <= self._last_sid:
            st = self._streams.get(sid)
            if st is not None and self._up_w is not None:
                # Trailers from the client: unusual in gRPC, allowed in HTTP/2.
                self._send_block_up(sid, block, headers, [], end_stream)
            else:
                if changed:
                    self._diverge()
                if end_stream:
                    self._client_ended(sid)
            return
        if sid % 2 == 0:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"client opened even stream {sid}")
        self._last_sid = sid
        if self._going_away:
            if changed:
                self._diverge()
            self._to_client(f.rst_stream(sid, f.REFUSED_STREAM))
            if not end_stream:
                self._drop(sid)
            return
        path = gh.pseudo(headers, ":path")
        if path == health.CHECK:
            if changed:
                self._diverge()
            self._local[sid] = bytearray()
            if end_stream:
                self._client_ended(sid)
            return
        await self._start_call(sid, path, block, headers, end_stream, changed)

    async def _start_call(
        self, sid: int, path: str, block: bytes, headers: gh.Headers, end_stream: bool, changed: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        decision: asyncio.Future[bool] = loop.create_future()
        metadata = gh.metadata(headers)
        st = _Stream(self, sid, decision, list(metadata))
        call = Call(
            method=path,
            metadata=metadata,
            deadline=gh.deadline(headers),
            protocol="grpc",
            peer=self._peer,
            exchange=st,
        )
        self._streams[sid] = st
        self._idle.clear()
        task = loop.create_task(self._run_call(call))
        task.add_done_callback(lambda _: _settle(decision))
        # Header blocks must reach the model in the client's order: wait for this call's verdict.
        if await decision and not self._closed:
            assert self._up_w is not None
            self._max_forwarded = sid
            n = len(st.original)
            if call.metadata[:n] == st.original:
                self._send_block_up(sid, block, headers, call.metadata[n:], end_stream)
            else:
                # A filter removed or replaced metadata: the model gets a block encoded here,
                # so the client's block (and what it did to the table) never reaches it.
                self._diverge()
                self._send_block_up(sid, block, gh.with_metadata(headers, call.metadata), [], end_stream)
            return
        self._streams.pop(sid, None)
        if not self._streams:
            self._idle.set()
        if self._closed:
            return
        if changed:
            self._diverge()
        result = task.result() if not task.cancelled() and task.exception() is None else None
        if result is None:
            result = Outcome(Code.INTERNAL, f"{path}: the sidecar failed the call")
        self._to_client(f.header_block_frames(sid, gh.trailers_only(result), True, self._max_frame_down))
        if not end_stream:
            self._drop(sid)
        if self._up_w is None and self._going_away:
            self._close_client()  # ends the client pump: see forward()

    async def _run_call(self, call: Call) -> Outcome:
        try:
            return await self._chain(call)
        except Exception:
            log.exception("relay: filter chain failed for %s", call.method)
            return Outcome(Code.INTERNAL, f"{call.method}: the sidecar failed the call")

    async def forward(self, call: Call, st: _Stream) -> Outcome:
        if self._up_w is None:
            # The model was unreachable when this connection opened and readiness says it is
            # ready now: let the client reconnect, so its next connection is relayed.
            self.go_away()
            return Outcome(Code.UNAVAILABLE, f"{call.method}: model unreachable")
        st.done = asyncio.get_running_loop().create_future()
        st.decision.set_result(True)
        try:
            result = await st.done
        finally:
            call.request_bytes = st.request_bytes
            call.response_bytes = st.response_bytes
        if result.code is Code.CANCELLED and call.deadline is not None and call.deadline.expired:
            return Outcome(Code.DEADLINE_EXCEEDED, "deadline exceeded")
        return result

    def _send_block_up(
        self,
        sid: int,
        block: bytes,
        headers: gh.Headers,
        extra: list[tuple[str, str | bytes]],
        end_stream: bool,
    ) -> None:
        assert self._up_w is not None
        if self._up_encoder is not None:
            block = self._up_encoder.encode_fields(headers) + gh.literal_fields(extra)
        elif extra:
            block += gh.literal_fields(extra)
        self._to_model(f.header_block_frames(sid, block, end_stream, self._max_frame_up))

    def _diverge(self) -> None:
        """A block the model will never see changed the client's table: re-encode from now on."""
        if self._up_encoder is None and self._up_w is not None:
            self._up_encoder = _ClearingEncoder(self._up_table_size)

    def _drop(self, sid: int) -> None:
        self._dropped[sid] = None
        if len(self._dropped) > _MAX_DROPPED:
            del self._dropped[next(iter(self._dropped))]

    def _client_ended(self, sid: int) -> None:
        self._dropped.pop(sid, None)
        request = self._local.pop(sid, None)
        if request is not None:
            self._answer_health(sid, bytes(request))

    def _answer_health(self, sid: int, request: bytes) -> None:
        reply, data_bytes = health.answer(
            sid, request, self._readiness.current.ready, self._healthy_services, self._max_frame_down
        )
        self._debt += data_bytes
        self._to_client(reply)

    # ---- model to client ----

    async def _from_model(self, r: asyncio.StreamReader) -> None:
        down = self._down_w
        try:
            while True:
                head = await r.readexactly(f.HEADER_LEN)
                length, kind, flags, sid = f.parse_header(head)
                payload = await r.readexactly(length) if length else b""
                if kind == f.DATA:
                    st = self._streams.get(sid)
                    if st is not None:
                        st.response_bytes += length
                    self._to_client(head + payload)
                    if down.transport.get_write_buffer_size() > 1 << 20:
                        await down.drain()
                elif kind == f.HEADERS:
                    await self._model_headers(r, head, flags, sid, payload)
                elif kind == f.RST_STREAM:
                    st = self._streams.pop(sid, None)
                    if st is not None:
                        code = f.error_code(payload)
                        self._resolve(
                            st,
                            Outcome(
                                Code.UNAVAILABLE
                                if code == f.REFUSED_STREAM
                                else Code.CANCELLED
                                if code == f.CANCEL
                                else Code.INTERNAL,
                                f"model reset the stream (HTTP/2 error {code})",
                            ),
                        )
                    self._to_client(head + payload)
                elif kind == f.SETTINGS and not flags & f.ACK:
                    values = f.settings(payload)
                    size = values.get(f.HEADER_TABLE_SIZE)
                    if size is not None:
                        self._c2s.max_allowed_table_size = size
                        self._up_table_size = min(size, 4096)
                    frame_size = values.get(f.MAX_FRAME_SIZE)
                    if frame_size is not None:
                        self._max_frame_in = self._max_frame_up = frame_size
                    self._to_client(head + payload)
                else:
                    self._to_client(head + payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            if not self._closed:
                log.info("relay: model connection closed; closing the client's connection")
        except f.ConnectionError_ as e:
            log.warning("relay: model sent a malformed frame: %s", e)
        self.go_away()

    async def _model_headers(
        self, r: asyncio.StreamReader, head: bytes, flags: int, sid: int, payload: bytes
    ) -> None:
        raw = [head, payload]
        block = f.headers_fragment(flags, payload)
        if not flags & f.END_HEADERS:
            parts = [block]
            end = 0
            while not end:
                chead = await r.readexactly(f.HEADER_LEN)
                length, kind, cflags, csid = f.parse_header(chead)
                if kind != f.CONTINUATION or csid != sid:
                    raise f.ConnectionError_(f.PROTOCOL_ERROR, "header block interrupted")
                cpayload = await r.readexactly(length)
                raw += (chead, cpayload)
                parts.append(cpayload)
                end = cflags & f.END_HEADERS
            block = b"".join(parts)
        try:
            headers = gh.decode(self._s2c, block)
        except _HPACK_ERRORS as e:
            raise f.ConnectionError_(f.COMPRESSION_ERROR, f"invalid HPACK from the model: {e!r}") from None
        self._to_client(b"".join(raw))
        if flags & f.END_STREAM:
            st = self._streams.pop(sid, None)
            if st is not None:
                result = gh.outcome(headers) or Outcome(Code.UNKNOWN, "model sent no grpc-status")
                self._resolve(st, result)

    def _resolve(self, st: _Stream, result: Outcome) -> None:
        if st.done is not None and not st.done.done():
            st.done.set_result(result)
        if not self._streams:
            self._idle.set()


class _ClearingEncoder(hpack.Encoder):
    """An encoder whose first block empties the model's decoder table before using it (RFC 7541 6.3)."""

    def __init__(self, table_size: int) -> None:
        super().__init__()
        self.header_table_size = table_size
        self.table_size_changes: list[int] = []  # announced by hand, below
        self._size = table_size
        self._first = True

    def encode_fields(self, headers: gh.Headers) -> bytes:
        block: bytes = self.encode([(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers])
        if self._first:
            self._first = False
            # Size updates to 0 (evicts the model's whole table) and back, then the fields.
            block = gh.table_size_update(0) + gh.table_size_update(self._size) + block
        return block


def _settle(decision: asyncio.Future[bool]) -> None:
    if not decision.done():
        decision.set_result(False)


def _table_state(d: hpack.Decoder) -> tuple[int, int, object]:
    entries = d.header_table.dynamic_entries
    return d.header_table.maxsize, len(entries), entries[0] if entries else None


def _grpc_peer(peer: object) -> str:
    """The peer as grpc names it: ipv4:10.0.0.1:5000, ipv6:[::1]:5000."""
    if not isinstance(peer, tuple) or len(peer) < 2:
        return ""
    host, port = peer[0], peer[1]
    return f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"


def _unpad(flags: int, payload: bytes) -> bytes:
    if flags & f.PADDED and payload:
        return payload[1 : len(payload) - payload[0]]
    return payload


async def forward(call: Call) -> Outcome:
    """The filter chain's terminal on the relay: send the call upstream, then wait for its end."""
    st = call.exchange
    assert isinstance(st, _Stream)
    return await st.conn.forward(call, st)
