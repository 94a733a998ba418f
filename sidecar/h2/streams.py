"""The streams of one client connection relayed 1:1 over one model connection: ids, states, flow, settings.

Stream ids map 1:1, so most frames pass as they arrive (reader.py); this layer sees the rest. It
keeps each side's SETTINGS and HPACK context, stream ids and states (idle, awaiting its verdict,
relayed, answered here, dropped), the flow-control debt of what it answers itself, and GOAWAY.
Frames come in from two FrameReaders and go out through an Outbox.

The layer above hears of a relayed stream twice, its start and its end, through the API in
stream_events.py, which says what is told when. Knows nothing about calls, filters or sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic

from sidecar.h2 import build
from sidecar.h2 import frames as f
from sidecar.h2.control import ControlBudgets, SettingsSync
from sidecar.h2.header_contexts import HeaderContexts
from sidecar.h2.hpack_decoder import Headers
from sidecar.h2.limits import LimitHits, Limits
from sidecar.h2.local_windows import LocalWindows
from sidecar.h2.outbox import Hold, Outbox
from sidecar.h2.reader import Counter, Frame, FrameReader
from sidecar.h2.stream_events import Fields, S, StreamEvents

if TYPE_CHECKING:
    from sidecar.h2 import messages
else:
    messages = build.twin("messages")  # compiled or pure: build.py chooses

# Model frames this layer looks into, as they pass; the model's others just pass, but SETTINGS,
# which come up: the client hears the relay's own limits, not the model's (see _model_settings).
_MODEL_LOOK = frozenset({f.HEADERS, f.RST_STREAM, f.GOAWAY})
_MODEL_UP = frozenset({f.SETTINGS})
# Every client frame comes up but those of relayed streams and connection credit.
_CLIENT_UP = range(256)


class Streams(Generic[S]):
    """The stream layer of one relayed connection."""

    def __init__(
        self,
        out: Outbox,
        events: StreamEvents[S],
        new_stream: Callable[[int], S],
        limits: Limits,
        client_error: Callable[[f.ConnectionError_], None],
        model_error: Callable[[f.ConnectionError_], None],
        *,
        hits: LimitHits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`hits`: where the limits that fire are counted; `clock`: seconds, for the budgets."""
        self._out = out
        self._events = events
        self._new_stream = new_stream
        self._limits = limits
        self._client_error = client_error  # told after the GOAWAY is queued
        self._model_error = model_error
        self.relayed: dict[int, S] = {}  # streams the model saw and has not ended
        self.pending: S | None = None  # the new stream awaiting its verdict
        self._awaiting: S | None = None  # the pending stream whose verdict waits for its DATA
        self._requests: dict[int, Counter] = {}  # the relayed streams' counters: their DATA passes
        self._responses: dict[int, Counter] = {}
        # The client's frames go to the model: their bound is its setting, SETTINGS_MAX_FRAME_SIZE.
        self._client_reader = FrameReader(
            up=_CLIENT_UP, counters=self._requests, forward=out.to_model, handle=self._client_frame,
            credit=self._client_credit, max_frame=f.DEFAULT_MAX_FRAME, max_block=limits.max_block,
            max_continuations=limits.max_continuations,
        )  # fmt: skip
        self._model_reader = FrameReader(
            up=_MODEL_UP, look=_MODEL_LOOK, counters=self._responses, forward=out.to_client,
            handle=self._model_frame, credit=self._model_credit, max_frame=f.MAX_FRAME_LIMIT,
            max_block=limits.max_block,
        )  # fmt: skip
        self._hpack = HeaderContexts(limits.max_header_list_size)
        self._dropped: dict[int, None] = {}  # answered here, until the client ends them
        self._local: set[int] = set()  # answered here by the layer above
        self._taken: dict[int, S] = {}  # taken from the model by the layer above, to be answered here
        self._unseen: dict[int, S] = {}  # admitted, but reset by the client before the model saw them
        self._scanned = 0  # the new stream looked for its reset in all the client has sent since
        self._last_sid = 0
        self._max_forwarded = 0
        self._ended: list[tuple[S, Headers | None, int]] = []  # ended by the model in this read
        self._opening = False  # the layer above is in opened(): a verdict needs no resumed read
        self._preface = False
        self.model = False  # a model connection is there to relay to
        self.waiting = True  # the client's frames wait (the model connection is opening)
        self.going_away = False
        self.closed = False
        self.idle = asyncio.Event()  # set while no stream is relayed or awaiting its verdict
        self.idle.set()
        # ---- issue 12's limits (h2limits): budgets per connection, counted in `hits` ----
        self.hits = hits if hits is not None else LimitHits()
        self._max_streams = limits.max_concurrent_streams
        self._budgets = ControlBudgets(limits, clock)
        self._settings = SettingsSync(limits)
        self._windows = LocalWindows(out.to_client, self._local)  # of the streams answered here

    # ---- reading ----

    def client_data(self, data: bytes) -> None:
        if self.waiting or self.pending is not None:
            reader = self._client_reader
            reader.feed(data)
            self._scanned = 0  # a verdict to come looks for a reset again
            self._out.hold_client(Hold.AWAITING, reader.buffered > self._limits.held_high)
            if self._awaiting is not None and not self.waiting:
                self._read_client()  # the frames stay held; the layer above is told of them
            return
        self._read_client(data)

    def resume(self) -> None:
        """Read what the client sent while its frames waited; what it produces goes out when this returns."""
        self.waiting = False
        self._out.hold_client(Hold.AWAITING, False)
        self._read_client()

    def _read_client(self, data: bytes = b"") -> None:
        self._out.begin()
        try:
            if not self._preface:
                self._client_reader.feed(data)
                data = b""
                first = self._client_reader.take(len(f.PREFACE))
                if first is None:
                    return
                if first != f.PREFACE:
                    raise f.ConnectionError_(f.PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                self._preface = True
                # The relay's own SETTINGS go first (before it acknowledges the client's, and
                # whatever the model's say), so the client knows the limits it is held to.
                self._out.to_client(self._settings.own_frame())
                if self.model:
                    self._out.to_model(f.PREFACE)
            self._client_reader.read(data)
            while self._awaiting is not None and self._tell_held(self._awaiting):
                self._client_reader.read()  # its verdict came at once: read on (a loop, not recursion)
        except f.ConnectionError_ as e:
            if e.kind:
                self.hits.hit(e.kind)
            self.going_away = True
            self._out.to_client(f.goaway(self._last_sid, e.code, str(e).encode()[:256]))
            self._client_error(e)
        finally:
            self._out.end()

    def model_data(self, data: bytes) -> None:
        self._out.begin()
        try:
            self._model_reader.read(data)
        except f.ConnectionError_ as e:
            self._model_error(e)  # a malformed frame: what came before it has gone on
        finally:
            self._out.end()
            if self._ended:
                # The client has the replies: only now does the layer above hear of their end.
                ended, self._ended = self._ended, []
                for st, trailers, code in ended:
                    if trailers is not None:
                        self._events.trailers(st, trailers)
                    else:
                        self._events.reset(st, code, False)

    # ---- what the layer above decides ----

    def observe(self, st: S) -> None:
        """Deliver each of st's messages, both directions, to `message` (see the module docstring)."""
        events = self._events
        st.request_bytes = messages.MessageObserver(lambda m: events.message(st, True, m))
        st.response_bytes = messages.MessageObserver(lambda m: events.message(st, False, m))
        if st.sid in self.relayed:
            self._requests[st.sid], self._responses[st.sid] = st.request_bytes, st.response_bytes

    def await_data(self, st: S) -> None:
        """st's verdict waits for its first request bytes: `held` is told as they may come in."""
        if self.pending is st:
            self._awaiting = st

    def held_data(self, st: S, limit: int) -> tuple[bytes, bool]:
        """st's DATA payloads among the client's held frames (about `limit` bytes at most, none
        taken), and whether no more will come before its verdict: it ended, or was reset, or the
        held frames fill what may be held."""
        reader = self._client_reader
        data, ended = reader.gathered(st.sid, limit)
        return data, ended or reader.buffered > self._limits.held_high

    def _tell_held(self, st: S) -> bool:
        """Tell the layer above st's DATA may be in; True if its verdict came at once (read on)."""
        self._opening = True
        try:
            waits = self._events.held(st)
        finally:
            self._opening = False
        if self.pending is not st:
            return True
        if not waits:
            self._awaiting = None
        return False

    def admit(self, st: S, extra: Fields, headers: Headers | None) -> None:
        """st's verdict: relay it, its block with `extra` fields appended, or re-encoded from `headers`."""
        if self.pending is not st or self.closed:
            return
        self.pending = self._awaiting = None
        self._client_reader.paused = False
        if self._opening:
            self._forward(st, extra, headers)  # the read that opened it goes on
            return
        self._out.begin()
        try:
            self._forward(st, extra, headers)
            # The rest of the read that brought this stream (its DATA, often) goes up in the same
            # write as its HEADERS.
            self.resume()
        finally:
            self._out.end()

    def _forward(self, st: S, extra: Fields, headers: Headers | None) -> None:
        sid = st.sid
        if self._scanned != sid and self._client_reader.reset_ahead(sid):
            # Reset by its client while its verdict was made: the model never sees it. Its call
            # ends as the RST_STREAM is read.
            if st.changed:
                self._diverge()
            self._drop(sid)
            self._unseen[sid] = st
            st.block, st.headers = b"", []
            return
        self._max_forwarded = sid
        self.relayed[sid] = st
        self._requests[sid], self._responses[sid] = st.request_bytes, st.response_bytes
        if headers is None:
            self._send_block(sid, st.block, st.headers, extra, st.end_stream)
        else:
            # The layer above removed or replaced fields: the model gets a block encoded here, so
            # the client's block (and what it did to the table) never reaches it.
            self._diverge()
            self._send_block(sid, st.block, headers, [], st.end_stream)
        st.block, st.headers = b"", []

    def refuse(self, st: S, block: bytes) -> None:
        """st's verdict: not relayed; the client gets `block` ending the stream, its DATA goes nowhere."""
        self._unpend(st)
        if self.closed:
            return
        if st.changed:
            self._diverge()
        self.reply(st.sid, block)
        if not st.end_stream:
            self._drop(st.sid)
        if not self.model and self.going_away:
            self._out.close_client()
            return
        if not self._opening:
            self.resume()

    def take(self, st: S) -> None:
        """st's verdict: not relayed, answered here later (`answered`); the client's frames are read
        on meanwhile, st's own DATA and end going up as a locally answered stream's (`data`, `ended`)."""
        if self.pending is not st or self.closed:
            return
        self._unpend(st)
        self._local.add(st.sid)
        self._taken[st.sid] = st
        self.idle.clear()
        if st.changed:
            self._diverge()
        st.block, st.headers = b"", []  # never sent on
        if not self._opening:
            self.resume()

    def answered(self, st: S, frames: bytes, data_bytes: int) -> None:
        """A stream taken here is over: `frames` (holding `data_bytes` of DATA) end it towards the
        client; none when the client reset it."""
        if self._taken.pop(st.sid, None) is None:
            return
        self._local.discard(st.sid)
        self._drop(st.sid)
        if frames and not self.closed:
            self.answer(st.sid, frames, data_bytes)
        self._check_idle()

    def reply(self, sid: int, block: bytes) -> None:
        """End stream `sid` towards the client with the header block `block`."""
        self._out.to_client(f.header_block_frames(sid, block, True, self._settings.max_frame_to_client))

    def answer(self, sid: int, frames: bytes, data_bytes: int) -> None:
        """Frames for stream `sid`, answered here, holding `data_bytes` of DATA (which the client
        credits back). They wait, after any still waiting, while the stream's window is short."""
        self._windows.answer(sid, frames, data_bytes)

    def go_away(self, code: int = f.NO_ERROR) -> None:
        if not self.going_away and not self.closed:
            self.going_away = True
            self._out.to_client(f.goaway(self._last_sid, code))

    def model_lost(self) -> list[S]:
        """The model connection is gone: its relayed streams, over for this layer; the caller ends them."""
        self.model = False
        return self._release()

    def close(self) -> list[S]:
        """The connection is closing: every stream it still relays or holds, over for this layer."""
        self.closed = True
        self._client_reader.paused = True
        self._awaiting = None
        self._windows.clear()
        held = [] if self.pending is None else [self.pending]
        held.extend(self._taken.values())
        held.extend(self._unseen.values())
        self._taken.clear()
        self._unseen.clear()
        self.idle.set()
        return self._release() + held

    def _release(self) -> list[S]:
        released = list(self.relayed.values())
        self.relayed.clear()
        self._requests.clear()
        self._responses.clear()
        self._check_idle()
        return released

    # ---- the client's frames ----

    def _client_frame(self, frame: Frame) -> None:
        kind, flags, sid = frame.kind, frame.flags, frame.sid
        model = self.model
        if sid > self._last_sid and kind not in (f.HEADERS, f.PRIORITY):
            # RFC 9113 section 5.1: only HEADERS or PRIORITY may arrive on an idle stream.
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"frame type {kind} on idle stream {sid}")
        if kind == f.DATA:
            if len(frame.raw) == f.HEADER_LEN and not flags & f.END_STREAM:
                self._budgets.spend("empty_frames")
                if sid in self.relayed:
                    if model:
                        self._out.to_model(frame.raw)
                    return
            self._data_for_no_one(frame)
        elif kind == f.HEADERS:
            self._client_headers(frame)
        elif kind == f.WINDOW_UPDATE:  # on a stream not relayed (connection credit: _client_credit)
            opened = self._windows.update(sid, f.window_increment(frame.payload))  # one answered here
            if not opened and model and self._forwardable(sid):
                self._out.to_model(frame.raw)
        elif kind == f.SETTINGS:
            if not flags & f.ACK:
                self._budgets.spend("settings_flood")
                self._client_settings(f.settings(frame.payload))
                if model:
                    self._out.to_model(frame.raw)
            else:
                if self._settings.client_ack() and model:  # the model's; the relay's own stop here
                    self._out.to_model(frame.raw)
        elif kind == f.PING:
            if not flags & f.ACK:
                self._budgets.spend("ping_flood")
                # PING belongs to one connection (RFC 9113 6.7): the relay answers the client's.
                self._out.to_client(f.ping_ack(frame.payload))
            elif model:
                self._out.to_model(frame.raw)  # the client answering one of the model's
        elif kind == f.RST_STREAM:
            self._budgets.spend("rapid_reset")
            self._windows.forget(sid)
            unseen = self._unseen.pop(sid, None)
            forward = model and unseen is None and self._forwardable(sid)  # before it is forgotten
            st = self._pop(sid) or unseen
            if st is not None:
                self._events.reset(st, f.error_code(frame.payload), True)
                self._check_idle()
            self._dropped.pop(sid, None)
            if sid in self._local:
                self._local.discard(sid)
                self._events.ended(sid, True)
            if forward:
                self._out.to_model(frame.raw)
        elif kind == f.PUSH_PROMISE:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        elif kind == f.CONTINUATION:
            # RFC 9113 6.10: the reader takes a block's CONTINUATIONs; this one follows no open block.
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"CONTINUATION on stream {sid} without a header block")
        elif model and (sid == 0 or self._forwardable(sid)):
            self._out.to_model(frame.raw)  # GOAWAY, PRIORITY and extension frames

    def _client_credit(self, increment: int) -> None:
        if not increment:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
        rest = self._windows.repaid(increment)  # credit for DATA sent from here stops here
        if rest and self.model:
            self._out.credit_model(rest)

    def _data_for_no_one(self, frame: Frame) -> None:
        """DATA on a stream the model never saw: credit it back; the layer above gets it if it answers."""
        length = len(frame.raw) - f.HEADER_LEN
        if length:
            self._out.to_client(f.window_update(0, length))
        if frame.sid in self._local:
            self._events.data(frame.sid, f.unpad(frame.flags, frame.payload))
        if frame.flags & f.END_STREAM:
            self._client_ended(frame.sid)

    def _client_settings(self, values: dict[int, int]) -> None:
        window = values.get(f.INITIAL_WINDOW_SIZE)
        if window is not None:
            if window > f.MAX_WINDOW:
                raise f.ConnectionError_(f.FLOW_CONTROL_ERROR, f"SETTINGS_INITIAL_WINDOW_SIZE {window}")
            # RFC 9113 6.9.2: the change applies to every open stream's window.
            self._windows.initial(window)
        size = values.get(f.HEADER_TABLE_SIZE)
        if size is not None:
            self._hpack.client_table_size(size)
        frame_size = f.max_frame_size(values, "")
        if frame_size is not None:
            self._settings.max_frame_to_client = frame_size
        if not self.model:
            self._out.to_client(f.settings_ack())

    def _forwardable(self, sid: int) -> bool:
        """Whether the model knows this stream (it saw its HEADERS, or a later stream's)."""
        return sid in self.relayed or (
            sid <= self._max_forwarded and sid not in self._dropped and sid not in self._local
        )

    def _client_headers(self, frame: Frame) -> None:
        sid, block = frame.sid, frame.block
        end_stream = bool(frame.flags & f.END_STREAM)
        headers, changed = self._hpack.client(block)
        if sid <= self._last_sid:
            if sid in self.relayed and self.model:
                # Trailers from the client: unusual in gRPC, allowed in HTTP/2.
                self._send_block(sid, block, headers, [], end_stream)
            else:
                if changed:
                    self._diverge()
                if end_stream:
                    self._client_ended(sid)
            return
        if sid % 2 == 0:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"client opened even stream {sid}")
        self._last_sid = sid
        if self.going_away:
            self._reset_unseen(sid, f.REFUSED_STREAM, changed, end_stream)
            return
        if len(self.relayed) + len(self._local) >= self._max_streams:
            # RFC 9113 5.1.2: past the advertised limit; REFUSED_STREAM says it may be retried.
            self.hits.hit("concurrent_streams")
            self._reset_unseen(sid, f.REFUSED_STREAM, changed, end_stream)
            return
        self._scanned = sid  # what the client has sent so far holds no reset of it nearby
        if self._client_reader.reset_ahead(sid):
            # Opened and reset in one write (rapid reset): the model never hears of it. The
            # RST_STREAM, read soon after, is counted against the reset budget.
            if changed:
                self._diverge()
            self._drop(sid)
            return
        st = self._new_stream(sid)
        st.block, st.headers, st.changed, st.end_stream = block, headers, changed, end_stream
        # Header blocks must reach the model in the client's order: the client's frames wait
        # until this stream's verdict.
        self.pending = st
        self._client_reader.paused = True
        self.idle.clear()
        self._opening = True
        try:
            relayed = self._events.opened(st, headers, end_stream)
        except f.StreamError as refused:  # a name of its own: mypyc types `e` from the first except
            self._unpend(st)
            self._reset_unseen(sid, refused.code, changed, end_stream)
            if refused.code == f.PROTOCOL_ERROR:
                self._budgets.spend("malformed_streams")
            return
        finally:
            self._opening = False
        if not relayed:
            self._unpend(st)
            self._local.add(sid)
            self._windows.open(sid)
            if changed:
                self._diverge()
            if end_stream:
                self._client_ended(sid)

    def _unpend(self, st: S) -> None:
        """st awaits its verdict no more: the client's frames are read again."""
        if self.pending is st:
            self.pending = self._awaiting = None
            self._client_reader.paused = self.closed
            self._check_idle()

    def _reset_unseen(self, sid: int, code: int, changed: bool, end_stream: bool) -> None:
        """Reset a stream whose HEADERS the model never sees; its DATA, if any, goes nowhere."""
        if changed:
            self._diverge()
        self._out.to_client(f.rst_stream(sid, code))
        if not end_stream:
            self._drop(sid)

    def _client_ended(self, sid: int) -> None:
        self._dropped.pop(sid, None)
        if sid in self._local and not self._events.ended(sid, False):
            self._local.discard(sid)
            self._windows.ended(sid)

    def _send_block(self, sid: int, block: bytes, headers: Headers, extra: Fields, end_stream: bool) -> None:
        block = self._hpack.for_model(block, headers, extra)
        self._out.to_model(f.header_block_frames(sid, block, end_stream, self._settings.max_frame_to_model))

    def _diverge(self) -> None:
        if self.model:
            self._hpack.diverge()

    def _drop(self, sid: int) -> None:
        self._dropped[sid] = None
        if len(self._dropped) > self._limits.max_dropped:
            del self._dropped[next(iter(self._dropped))]

    # ---- the model's frames ----

    def _model_credit(self, increment: int) -> None:
        if not increment:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "model WINDOW_UPDATE of 0")
        self._out.credit_client(increment)  # it rides with the next write to the client (outbox.py)

    def _model_frame(self, frame: Frame) -> None:
        """A frame the client gets as it is (the reader passes it on); this layer only looks."""
        kind, sid = frame.kind, frame.sid
        pending = self.pending
        if pending is not None and pending.sid == sid and kind in (f.HEADERS, f.RST_STREAM):
            # The model answers a stream it was never sent (its call still awaits the filters).
            raise f.ConnectionError_(f.PROTOCOL_ERROR, f"model answered stream {sid} before its request")
        if kind == f.HEADERS:
            headers = self._hpack.model(frame.block)
            if frame.flags & f.END_STREAM:
                st = self._pop(sid)
                if st is not None:
                    self._ended.append((st, headers, 0))
            else:
                st = self.relayed.get(sid)
                if st is not None:
                    st.replied = True
        elif kind == f.RST_STREAM:
            st = self._pop(sid)
            if st is not None:
                self._ended.append((st, None, f.error_code(frame.payload)))
        elif kind == f.GOAWAY:
            # The client has the model's GOAWAY and its last stream id; a second one from the
            # relay could only repeat it or, against RFC 9113 6.8, raise that id.
            self.going_away = True
        elif kind == f.SETTINGS:
            self._model_settings(frame)

    def _model_settings(self, frame: Frame) -> None:
        """The model's SETTINGS, up from its reader: the client gets them with the relay's own
        limits in place of the model's (the lower of the two), the rest as the model sent them:
        its window, frame size and table size govern what passes end to end."""
        if frame.flags & f.ACK:
            self._out.to_client(frame.raw)
            return
        values = f.settings(frame.payload)
        frame_size = f.max_frame_size(values, "model ")  # checked before the client sees any of it
        size = values.get(f.HEADER_TABLE_SIZE)
        if size is not None:
            self._hpack.model_table_size(size)
        if frame_size is not None:
            self._client_reader.max_frame = frame_size
        self._out.to_client(self._settings.from_model(frame.raw, values, frame_size))

    def _pop(self, sid: int) -> S | None:
        """Relayed stream `sid` is over for this layer: its DATA passes no more."""
        st = self.relayed.pop(sid, None)
        if st is not None:
            del self._requests[sid], self._responses[sid]
            self._check_idle()
        return st

    def _check_idle(self) -> None:
        if not self.relayed and self.pending is None and not self._taken and not self._unseen:
            self.idle.set()

    @property
    def max_frame_to_client(self) -> int:
        """The client's SETTINGS_MAX_FRAME_SIZE: how large the frames answered here may be."""
        return self._settings.max_frame_to_client

    @property
    def last_sid(self) -> int:
        """The highest stream id the client opened (the connection's idle check looks for new ones)."""
        return self._last_sid
