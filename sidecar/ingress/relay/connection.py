"""One downstream HTTP/2 connection relayed frame by frame over its own upstream connection to the model.

Stream ids map 1:1, so every frame passes through as it arrives; only header blocks are
decoded (one HPACK decoder per direction, in step with that direction's encoder) so the
filter chain sees each call's path, metadata and deadline and, from the model's trailers,
its status. The original header block bytes go upstream unless a filter appended metadata
(appended as literals without indexing) or a rejected call left the model's decoder behind
the client's encoder (then blocks are re-encoded for the model from that point on).

Bytes are handled in the transports' callbacks, with no task or await per frame: everything
one read brought in is parsed, and what it produced goes out in one write per direction.
While a new call waits for the filter chain's verdict, the client's later frames wait too
(header blocks must reach the model in the client's order). Knows nothing about listening
sockets or the composition root.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from sidecar.core.call import Call, Metadata, Outcome
from sidecar.core.deadline import Deadline
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.health.readiness import Readiness
from sidecar.ingress.relay import calls, first_message, health
from sidecar.ingress.relay import frames as f
from sidecar.ingress.relay import grpc_headers as gh
from sidecar.ingress.relay.calls import Stream
from sidecar.ingress.relay.framing import Frame, FrameBuffer, header_block
from sidecar.ingress.relay.hpack_decoder import Decoder, HPACKDecodeError
from sidecar.ingress.relay.outbox import Outbox
from sidecar.ingress.relay.protocols import ModelProtocol
from sidecar.oip import model_name

log = logging.getLogger(__name__)

# Streams remembered as answered locally until the client ends them.
_MAX_DROPPED: Final = 4096
# The model is local: a connection it does not accept within this is answered locally.
_CONNECT_TIMEOUT: Final = 2.0
# Model frames the relay looks into; the rest it only forwards.
_MODEL_WATCHED: Final = frozenset({f.HEADERS, f.RST_STREAM, f.SETTINGS, f.GOAWAY})
# Request bytes gathered to read a call's model name: enough for field 1 whatever comes first.
_MODEL_BYTES: Final = model_name.PREFIX_LEN + 2 * model_name.MAX_NAME
# Client bytes held while a call waits for its verdict before reading from the client pauses.
_HELD_HIGH: Final = 1 << 20


class RelayConnection:
    def __init__(
        self,
        *,
        upstream: tuple[str, int],
        chain: Next,
        readiness: Readiness,
        healthy_services: frozenset[str],
        on_close: Callable[[RelayConnection], None],
        read_model: Callable[[], bool] = lambda: False,
    ) -> None:
        """`read_model()`: the filters need the model a contract call names, so its verdict waits
        for the start of its request message (first_message.py)."""
        self._read_model = read_model
        # The call whose verdict waits for its first request bytes, and its Call.
        self._awaiting: tuple[Stream, Call] | None = None
        # The scan's buffer and the offset after the frame being handled.
        self._rest: tuple[bytes, int] = (b"", 0)
        self._upstream = upstream
        self._chain = chain
        self._readiness = readiness
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self._up: asyncio.Transport | None = None
        self._peer = ""
        self._client_in = FrameBuffer()
        self._model_in = FrameBuffer()
        self._max_frame_in = f.DEFAULT_MAX_FRAME  # largest frame the client may send (model's setting)
        self._c2s = Decoder()
        self._s2c = Decoder()
        self._up_encoder: gh.ClearingEncoder | None = None  # set once the model's decoder fell behind
        self._up_table_size = 4096
        self._max_frame_down = f.DEFAULT_MAX_FRAME  # largest frame we may send the client
        self._max_frame_up = f.DEFAULT_MAX_FRAME
        self._streams: dict[int, Stream] = {}
        self._dropped: dict[int, None] = {}
        self._health = health.LocalHealth(healthy_services)
        self._last_sid = 0
        self._max_forwarded = 0
        self._debt = 0  # DATA bytes we sent the client ourselves; its WINDOW_UPDATEs for them stop here
        self._going_away = False
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        # Client frames wait while the model connection opens or a call awaits its verdict.
        self._connecting = True
        self._pending: Stream | None = None
        # Calls the model ended in the read being handled: their filters hear it once the reply is out.
        self._ended: list[tuple[Stream, Outcome]] = []
        self._eager = False  # a call's first step is running inside the client scan
        self._preface = False
        self._out = Outbox(self._loop)

    # ---- lifecycle ----

    def client_connected(self, transport: asyncio.Transport) -> None:
        self._out.attach_client(transport)
        self._peer = _grpc_peer(transport.get_extra_info("peername"))
        self._connecting_task = self._loop.create_task(self._connect())  # held: the loop holds tasks weakly

    async def _connect(self) -> None:
        try:
            await asyncio.wait_for(
                self._loop.create_connection(lambda: ModelProtocol(self), *self._upstream), _CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as e:
            log.debug("relay: model at %s:%d unreachable (%s); answering locally", *self._upstream, e)
        self._connecting = False
        if self._closed:
            if self._up is not None:
                self._up.close()
            return
        try:
            self._resume_client()
        except Exception:
            self.failed()  # as a socket callback would: this task's error must not go unseen

    def model_connected(self, transport: asyncio.Transport) -> None:
        if self._closed:
            transport.close()
            return
        self._up = transport
        self._out.attach_model(transport)

    async def shutdown(self, grace: float) -> None:
        """GOAWAY with the last stream id, let in-flight streams finish up to `grace`, then close."""
        self.go_away()
        self.readiness_changed(False)  # draining: Watch streams hear NOT_SERVING first
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.info("relay: %d in-flight streams cut at the drain deadline", len(self._streams))
        self._close()

    def go_away(self, code: int = f.NO_ERROR) -> None:
        if not self._going_away and not self._closed:
            self._going_away = True
            self._out.to_client(f.goaway(self._last_sid, code))

    def failed(self) -> None:
        """A bug, not the peer's fault: this connection ends, the process goes on."""
        log.error("relay: connection from %s failed", self._peer, exc_info=True)
        self.go_away(f.INTERNAL_ERROR)
        self._close()

    def model_ready(self) -> None:
        # Without a model connection every call is answered here; once the model is back,
        # tell the client to reconnect so its next connection is relayed.
        if self._up is None and not self._connecting and not self._closed:
            self.go_away()
            if not self._health.watching:
                self._out.close_client()

    def client_lost(self) -> None:
        self._close()

    def model_lost(self) -> None:
        if self._closed:
            return
        if not self._health.watching:
            log.info("relay: model connection closed; closing the client's connection")
            self.go_away()
            self._close()
            return
        # Open health Watch streams outlive the model connection, as on the grpcio data plane:
        # the client hears GOAWAY (no new streams here), each relayed call ends UNAVAILABLE, and
        # the connection stays until the client closes it.
        log.info("relay: model connection closed; keeping the client's for its health watches")
        self._up = self._out.up = None
        self.go_away()
        result = Outcome(Code.UNAVAILABLE, "model connection closed")
        for sid, st in list(self._streams.items()):
            if st.done is None:
                continue  # awaiting its verdict: forward() answers it without a model
            del self._streams[sid]
            block = gh.trailers_only(result, after_headers=st.replied)
            self._out.to_client(f.header_block_frames(sid, block, True, self._max_frame_down))
            self._resolve(st, result)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        streams = list(self._streams.values())
        self._streams.clear()
        for st in streams:
            self._resolve(st, Outcome(Code.UNAVAILABLE, "connection closed"))
        self._idle.set()
        self._out.close()
        self._on_close(self)

    # ---- flow: pausing one side while the other cannot take more ----

    def model_full(self, full: bool) -> None:
        self._out.hold_client("model-full", full)

    def client_full(self, full: bool) -> None:
        self._out.client_full(full)

    # ---- client to model ----

    def client_data(self, data: bytes) -> None:
        self._client_in.feed(data)
        if self._connecting or self._pending is not None:
            self._out.hold_client("held", self._client_in.buffered > _HELD_HIGH)
            if self._awaiting is not None and not self._connecting:
                self._read_client()
            return
        self._read_client()

    def _resume_client(self) -> None:
        self._out.hold_client("held", False)
        self._read_client()

    def _read_client(self) -> None:
        """Handle what the client sent so far; what it produces goes out when this returns."""
        self._out.begin()
        try:
            self._read_client_frames()
            # A call waiting for its model name decided at once: read on (a loop, not recursion).
            while self._awaiting is not None and self._start_awaiting():
                self._read_client_frames()
        finally:
            self._out.end()

    def _read_client_frames(self) -> None:
        try:
            if not self._preface:
                first = self._client_in.take(len(f.PREFACE))
                if first is None:
                    return
                if first != f.PREFACE:
                    raise f.ConnectionError_(f.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                self._preface = True
                if self._up is not None:
                    self._out.to_model(f.PREFACE)
                else:
                    self._out.to_client(f.frame(f.SETTINGS, 0, 0))
            self._scan_client()
        except f.ConnectionError_ as e:
            log.warning("relay: closing connection from %s: %s", self._peer, e)
            self._going_away = True
            self._out.to_client(f.goaway(self._last_sid, e.code, str(e).encode()[:256]))
            self._close()

    def _scan_client(self) -> None:
        """Forward the client's frames; the common ones in one slice, the rest one by one."""
        reader = self._client_in
        window = reader.window()
        if window is None:
            return
        buf, pos = window
        n, span, need = len(buf), pos, f.HEADER_LEN
        streams, up, max_frame = self._streams, self._up, self._max_frame_in
        unpack = f.HEADER.unpack_from
        try:
            while n - pos >= f.HEADER_LEN and self._pending is None and not self._closed:
                high, low, kind, _, sid = unpack(buf, pos)
                length = (high << 16) | low
                if length > max_frame:
                    raise f.too_large(length, max_frame)
                end = pos + f.HEADER_LEN + length
                if end > n:
                    need = f.HEADER_LEN + length
                    break
                sid &= 0x7FFFFFFF
                if up is not None:
                    # Passed through as they are, in the span: DATA of a relayed call, PING,
                    # WINDOW_UPDATE the model's side of the flow control is owed.
                    if kind == f.DATA:
                        st = streams.get(sid)
                        if st is not None:
                            calls.count(st.request_bytes, buf, pos, end)
                            pos = end
                            continue
                    elif kind == f.PING:
                        if length == 8 and sid == 0 and buf[pos + 4] & f.ACK:  # answering the model's
                            pos = end
                            continue
                    elif kind == f.WINDOW_UPDATE and length == 4 and sid in streams:
                        pos = end
                        continue
                if kind == f.HEADERS and not buf[pos + 4] & f.END_HEADERS:
                    frame = header_block(buf, pos, end, max_frame)
                    if frame is None:
                        need = n - pos + 1
                        break
                    end = pos + len(frame.raw)
                else:
                    flags = buf[pos + 4]
                    f.check(length, kind, flags, sid, max_frame)
                    raw = buf[pos:end]
                    block = f.headers_fragment(flags, raw[f.HEADER_LEN :]) if kind == f.HEADERS else b""
                    frame = Frame(kind, flags, sid, raw, block)
                if pos > span:
                    self._out.to_model(buf[span:pos])
                pos = span = end
                self._rest = (buf, end)  # what follows the frame: a new call's DATA, most often
                self._client_frame(frame)
        finally:
            if pos > span and self._up is not None:
                self._out.to_model(buf[span:pos])
            reader.advance(pos, need)

    def _client_frame(self, frame: Frame) -> None:
        kind, flags, sid = frame.kind, frame.flags, frame.sid
        up = self._up
        if sid > self._last_sid and kind not in (f.HEADERS, f.PRIORITY):
            # RFC 9113 section 5.1: only HEADERS or PRIORITY may arrive on an idle stream.
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"frame type {kind} on idle stream {sid}")
        if kind == f.DATA:
            st = self._streams.get(sid)
            if st is not None and up is not None:
                calls.count(st.request_bytes, frame.raw, 0, len(frame.raw))
                self._out.to_model(frame.raw)
                return
            self._data_for_no_one(frame)
        elif kind == f.HEADERS:
            self._client_headers(frame)
        elif kind == f.WINDOW_UPDATE:
            if sid == 0:
                inc = f.window_increment(frame.payload)
                if not inc:
                    raise f.ConnectionError_(f.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
                paid = min(inc, self._debt)
                self._debt -= paid
                if inc > paid and up is not None:
                    self._out.credit_model(inc - paid)
            elif self._forwardable(sid) and up is not None:
                self._out.to_model(frame.raw)
        elif kind == f.SETTINGS:
            if not flags & f.ACK:
                self._client_settings(f.settings(frame.payload))
            if up is not None:
                self._out.to_model(frame.raw)
        elif kind == f.PING:
            if not flags & f.ACK:
                # PING belongs to one connection (RFC 9113 6.7): the relay answers the client's.
                self._out.to_client(f.ping_ack(frame.payload))
            elif up is not None:
                self._out.to_model(frame.raw)  # the client answering one of the model's
        elif kind == f.RST_STREAM:
            st = self._streams.pop(sid, None)
            if st is not None:
                self._resolve(st, Outcome(Code.CANCELLED, "cancelled by the client"))
            self._dropped.pop(sid, None)
            self._health.cancel(sid)
            if (st is not None or self._forwardable(sid)) and up is not None:
                self._out.to_model(frame.raw)
        elif kind == f.PUSH_PROMISE:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        elif up is not None and (sid == 0 or self._forwardable(sid)):
            self._out.to_model(frame.raw)  # GOAWAY, PRIORITY and extension frames

    def _data_for_no_one(self, frame: Frame) -> None:
        """DATA on a stream the model never saw: credit it back, keep it if the relay answers the call."""
        length = len(frame.raw) - f.HEADER_LEN
        if length:
            self._out.to_client(f.window_update(0, length))
        if frame.sid in self._health:
            self._health.data(frame.sid, f.unpad(frame.flags, frame.payload))
        if frame.flags & f.END_STREAM:
            self._client_ended(frame.sid)

    def _client_settings(self, values: dict[int, int]) -> None:
        size = values.get(f.HEADER_TABLE_SIZE)
        if size is not None:
            self._s2c.limit = size
        frame_size = values.get(f.MAX_FRAME_SIZE)
        if frame_size is not None:
            if not f.DEFAULT_MAX_FRAME <= frame_size <= f.MAX_FRAME_LIMIT:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, f"SETTINGS_MAX_FRAME_SIZE {frame_size}")
            self._max_frame_down = frame_size
        if self._up is None:
            self._out.to_client(f.settings_ack())

    def _forwardable(self, sid: int) -> bool:
        """Whether the model knows this stream (it saw its HEADERS, or a later stream's)."""
        return sid in self._streams or (
            sid <= self._max_forwarded
            and sid not in self._dropped
            and sid not in self._health
        )

    def _client_headers(self, frame: Frame) -> None:
        sid, block = frame.sid, frame.block
        end_stream = bool(frame.flags & f.END_STREAM)
        generation = self._c2s.generation
        try:
            headers = self._c2s.decode(block)
        except HPACKDecodeError as e:
            raise f.ConnectionError_(f.COMPRESSION_ERROR, f"invalid HPACK from the client: {e}") from None
        changed = self._c2s.generation != generation
        if sid <= self._last_sid:
            st = self._streams.get(sid)
            if st is not None and self._up is not None:
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
            self._reset_unseen(sid, f.REFUSED_STREAM, changed, end_stream)
            return
        try:
            path, deadline, metadata = gh.request(headers)
        except gh.Malformed as e:
            # A stream error (RFC 9113 8.1.1): this call is refused, the connection goes on.
            log.debug("relay: malformed request from %s on stream %d: %s", self._peer, sid, e)
            self._reset_unseen(sid, f.PROTOCOL_ERROR, changed, end_stream)
            return
        if path in health.PATHS:
            if not self._health.open(sid, path):
                # Each holds a buffer or a watch here: a client may not open them without bound.
                self._reset_unseen(sid, f.REFUSED_STREAM, changed, end_stream)
                return
            if changed:
                self._diverge()
            if end_stream:
                self._client_ended(sid)
            return
        st = Stream(self, sid, block, headers)
        st.changed, st.end_stream = changed, end_stream
        self._start_call(st, path, deadline, metadata)

    def _reset_unseen(self, sid: int, code: int, changed: bool, end_stream: bool) -> None:
        """Reset a stream whose HEADERS the model never sees; its DATA, if any, goes nowhere."""
        if changed:
            self._diverge()
        self._out.to_client(f.rst_stream(sid, code))
        if not end_stream:
            self._drop(sid)

    # ---- calls: the filter chain decides, then the block goes up or a trailers-only reply down ----

    def _start_call(self, st: Stream, path: str, deadline: Deadline | None, metadata: Metadata) -> None:
        st.original = list(metadata)
        call = Call(
            method=path,
            metadata=metadata,
            deadline=deadline,
            protocol="grpc",
            peer=self._peer,
            exchange=st,
        )
        self._streams[st.sid] = st
        self._idle.clear()
        # Header blocks must reach the model in the client's order: hold the client's frames
        # until this call's verdict (forward() admits it, or the chain ends without forwarding).
        self._pending = st
        if not st.end_stream and path in model_name.UNARY_MODEL_METHODS and self._read_model():
            # The verdict needs the model named in the request. Its DATA usually came in the same
            # read, right after the HEADERS; otherwise the chain starts once those bytes are in the
            # held frames (_start_awaiting, after this scan or at the next read).
            data, ended = first_message.gathered(*self._rest, st.sid, _MODEL_BYTES)
            name = model_name.from_grpc_frame(data)
            if name is model_name.NEED_MORE and not ended:
                self._awaiting = (st, call)
                return
            call.model = name or ""
        # The chain's first step runs now, in this read's callback (calls.py): an admitted call's
        # HEADERS leave in the same write as the rest of the read.
        self._eager = True
        try:
            calls.start(st, self._run_call(call, st))
        finally:
            self._eager = False

    def _start_awaiting(self) -> bool:
        """Start the awaiting call's chain if its model name is in (or never will be); True if its
        verdict came at once, so the held frames can be read on."""
        assert self._awaiting is not None
        st, call = self._awaiting
        if st.sid not in self._streams or self._closed:
            self._awaiting = None
            return False
        window = self._client_in.window()
        name: str | None = model_name.NEED_MORE
        ended = False
        if window is not None:
            data, ended = first_message.gathered(*window, st.sid, _MODEL_BYTES)
            name = model_name.from_grpc_frame(data)
        if name is model_name.NEED_MORE and not ended and self._client_in.buffered <= _HELD_HIGH:
            return False
        self._awaiting = None
        call.model = name or ""
        # As for a call started in the scan: a verdict now leaves the reading to the caller.
        self._eager = True
        try:
            calls.start(st, self._run_call(call, st))
        finally:
            self._eager = False
        return self._pending is None

    async def _run_call(self, call: Call, st: Stream) -> Outcome:
        try:
            result = await self._chain(call)
        except Exception:
            log.exception("relay: filter chain failed for %s", call.method)
            result = Outcome(Code.INTERNAL, f"{call.method}: the sidecar failed the call")
        if self._pending is st:
            self._refuse(st, result)
        return result

    async def forward(self, call: Call, st: Stream) -> Outcome:
        if self._closed:
            return Outcome(Code.UNAVAILABLE, f"{call.method}: connection closed")
        if self._up is None:
            # The model was unreachable when this connection opened and readiness says it is
            # ready now: let the client reconnect, so its next connection is relayed.
            self.go_away()
            return Outcome(Code.UNAVAILABLE, f"{call.method}: model unreachable")
        done: asyncio.Future[Outcome] = self._loop.create_future()
        st.done = done
        self._admit(st, call)
        try:
            result = await done
        finally:
            call.request_bytes = st.request_bytes.counted
            call.response_bytes = st.response_bytes.counted
        if result.code is Code.CANCELLED and call.deadline is not None and call.deadline.expired:
            return Outcome(Code.DEADLINE_EXCEEDED, "deadline exceeded")
        return result

    def _admit(self, st: Stream, call: Call) -> None:
        if self._pending is not st or self._closed:
            return
        self._pending = None
        if self._eager:
            self._forward_block(st, call)  # the scan that started the call goes on with the read
            return
        self._out.begin()
        try:
            self._forward_block(st, call)
            # The rest of the read that brought this call (its DATA, often) goes up in the same
            # write as its HEADERS.
            self._resume_client()
        finally:
            self._out.end()

    def _forward_block(self, st: Stream, call: Call) -> None:
        self._max_forwarded = st.sid
        n = len(st.original)
        if call.metadata[:n] == st.original:
            self._send_block_up(st.sid, st.block, st.headers, call.metadata[n:], st.end_stream)
        else:
            # A filter removed or replaced metadata: the model gets a block encoded here,
            # so the client's block (and what it did to the table) never reaches it.
            self._diverge()
            headers = gh.with_metadata(st.headers, call.metadata)
            self._send_block_up(st.sid, st.block, headers, [], st.end_stream)
        st.block, st.headers = b"", []

    def _refuse(self, st: Stream, result: Outcome) -> None:
        """The chain ended without forwarding the call: answer the client here with its outcome."""
        self._pending = None
        self._streams.pop(st.sid, None)
        if not self._streams:
            self._idle.set()
        if self._closed:
            return
        if st.changed:
            self._diverge()
        reply = gh.trailers_only(result)
        self._out.to_client(f.header_block_frames(st.sid, reply, True, self._max_frame_down))
        if not st.end_stream:
            self._drop(st.sid)
        if self._up is None and self._going_away:
            self._out.close_client()
            return
        if not self._eager:
            self._resume_client()

    def _send_block_up(
        self,
        sid: int,
        block: bytes,
        headers: gh.Headers,
        extra: list[tuple[str, str | bytes]],
        end_stream: bool,
    ) -> None:
        if self._up_encoder is not None:
            block = self._up_encoder.encode_fields(headers) + gh.literal_fields(extra)
        elif extra:
            block += gh.literal_fields(extra)
        self._out.to_model(f.header_block_frames(sid, block, end_stream, self._max_frame_up))

    def _diverge(self) -> None:
        """A block the model will never see changed the client's table: re-encode from now on."""
        if self._up_encoder is None and self._up is not None:
            self._up_encoder = gh.ClearingEncoder(self._up_table_size)

    def _drop(self, sid: int) -> None:
        self._dropped[sid] = None
        if len(self._dropped) > _MAX_DROPPED:
            del self._dropped[next(iter(self._dropped))]

    def _client_ended(self, sid: int) -> None:
        self._dropped.pop(sid, None)
        answered = self._health.ended(sid, self._readiness.current.ready, self._max_frame_down)
        if answered is not None:
            reply, data_bytes = answered
            self._debt += data_bytes
            self._out.to_client(reply)

    def readiness_changed(self, ready: bool) -> None:
        """Tell each open Watch its service's new status, if it changed."""
        for update in self._health.changed(ready):
            self._debt += len(update) - f.HEADER_LEN
            self._out.to_client(update)

    # ---- model to client ----

    def model_data(self, data: bytes) -> None:
        """Forward the model's frames in one slice; look into those that end calls or change settings."""
        reader = self._model_in
        reader.feed(data)
        window = reader.window()
        if window is None:
            return
        buf, pos = window
        n, span, need = len(buf), pos, f.HEADER_LEN
        streams, unpack = self._streams, f.HEADER.unpack_from
        self._out.begin()
        try:
            while n - pos >= f.HEADER_LEN:
                high, low, kind, flags, sid = unpack(buf, pos)
                end = pos + f.HEADER_LEN + ((high << 16) | low)
                if end > n:
                    need = end - pos
                    break
                sid &= 0x7FFFFFFF
                if kind == f.DATA:
                    st = streams.get(sid)
                    if st is not None:
                        calls.count(st.response_bytes, buf, pos, end)
                elif kind == f.WINDOW_UPDATE and not sid and end - pos == 13:
                    # Connection credit rides with the next write to the client (outbox.py).
                    if pos > span:
                        self._out.to_client(buf[span:pos])
                    span = end
                    increment = f.window_increment(buf[pos + 9 : end])
                    if not increment:
                        raise f.ConnectionError_(f.PROTOCOL_ERROR, "model WINDOW_UPDATE of 0")
                    self._out.credit_client(increment)
                elif kind in _MODEL_WATCHED:
                    if kind == f.HEADERS and not buf[pos + 4] & f.END_HEADERS:
                        frame = header_block(buf, pos, end, f.MAX_FRAME_LIMIT)
                        if frame is None:
                            need = n - pos + 1
                            break
                        end = pos + len(frame.raw)
                    else:
                        raw = buf[pos:end]
                        block = f.headers_fragment(flags, raw[f.HEADER_LEN :]) if kind == f.HEADERS else b""
                        frame = Frame(kind, flags, sid, raw, block)
                    self._model_frame(frame)
                pos = end
        except f.ConnectionError_ as e:
            log.warning("relay: model sent a malformed frame: %s", e)
            self.model_lost()
        finally:
            if pos > span:
                self._out.to_client(buf[span:pos])
            reader.advance(pos, need)
            self._out.end()
            if self._ended:
                # The client has the replies: only now do the calls' filters (metrics, logs,
                # spans) hear their end, so their work adds nothing to the client's latency.
                ended, self._ended = self._ended, []
                for st, result in ended:
                    self._resolve(st, result)

    def _model_frame(self, frame: Frame) -> None:
        kind, sid = frame.kind, frame.sid
        length = len(frame.raw) - f.HEADER_LEN if kind != f.HEADERS else 0  # a block: checked as read
        f.check(length, kind, frame.flags, sid, f.MAX_FRAME_LIMIT)
        st = self._streams.get(sid)
        if st is not None and st.done is None and kind in (f.HEADERS, f.RST_STREAM):
            # The model answers a stream it was never sent (its call still awaits the filters).
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"model answered stream {sid} before its request")
        if kind == f.DATA:
            st = self._streams.get(sid)
            if st is not None:
                calls.count(st.response_bytes, frame.raw, 0, len(frame.raw))
        elif kind == f.HEADERS:
            try:
                headers = self._s2c.decode(frame.block)
            except HPACKDecodeError as e:
                raise f.ConnectionError_(f.COMPRESSION_ERROR, f"invalid HPACK from the model: {e}") from None
            if frame.flags & f.END_STREAM:
                st = self._streams.pop(sid, None)
                if st is not None:
                    result = gh.outcome(headers) or Outcome(Code.UNKNOWN, "model sent no grpc-status")
                    self._ended.append((st, result))
            else:
                st = self._streams.get(sid)
                if st is not None:
                    st.replied = True
        elif kind == f.RST_STREAM:
            st = self._streams.pop(sid, None)
            if st is not None:
                self._ended.append((st, gh.reset_outcome(f.error_code(frame.payload))))
        elif kind == f.GOAWAY:
            # The client has the model's GOAWAY and its last stream id; a second one from the
            # relay could only repeat it or, against RFC 9113 6.8, raise that id.
            self._going_away = True
        elif kind == f.SETTINGS and not frame.flags & f.ACK:
            values = f.settings(frame.payload)
            size = values.get(f.HEADER_TABLE_SIZE)
            if size is not None:
                self._c2s.limit = size
                self._up_table_size = min(size, 4096)
            frame_size = values.get(f.MAX_FRAME_SIZE)
            if frame_size is not None:
                if not f.DEFAULT_MAX_FRAME <= frame_size <= f.MAX_FRAME_LIMIT:
                    raise f.ConnectionError_(f.PROTOCOL_ERROR, f"model SETTINGS_MAX_FRAME_SIZE {frame_size}")
                self._max_frame_in = self._max_frame_up = frame_size

    def _resolve(self, st: Stream, result: Outcome) -> None:
        calls.end(st, result)  # its filters see the end within this callback
        if not self._streams:
            self._idle.set()


def _grpc_peer(peer: object) -> str:
    """The peer as grpc names it: ipv4:10.0.0.1:5000, ipv6:[::1]:5000."""
    if not isinstance(peer, tuple) or len(peer) < 2:
        return ""
    host, port = peer[0], peer[1]
    return f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"
