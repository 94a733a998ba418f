"""HTTP/2 flow control of one proxied connection (RFC 9113 6.9), both ways, per stream and per connection.

SendFlow holds what goes to a peer: each stream's DATA (and the trailers after it) waits in its
own queue until both the stream's and the connection's window have room, so a stream whose
reader is slow holds only itself. RecvFlow counts what the peer sent against the windows this
side advertised, and says when credit is owed back; credit goes back only once the bytes left
the proxy (the other side took them), so the bytes a proxy holds are bounded by the windows it
advertised. Knows nothing about HPACK, gRPC, calls or sockets.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from sidecar.h2 import frames as f

DEFAULT_WINDOW: Final = 65535
MAX_WINDOW: Final = 2**31 - 1

# A queued item: DATA payload bytes, or a trailers callback (encoded when its turn comes, so
# header blocks reach the peer's HPACK decoder in the order they were encoded).
Trailers = Callable[[], bytes]


class _Queue:
    __slots__ = ("after", "items", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.items: deque[tuple[bytes | Trailers, bool]] = deque()
        self.after = b""  # frames to write right after its trailers (a reset)


class SendFlow:
    """DATA towards one peer under the windows it grants; frames go to `out`, sent bytes to `sent`."""

    __slots__ = ("_blocked", "_finished", "_out", "_sent", "_streams", "connection", "initial", "max_frame",
                 "paused")  # fmt: skip

    def __init__(
        self, out: Callable[[bytes], None], sent: Callable[[int, int], None], finished: Callable[[int], None]
    ) -> None:
        self._out = out
        self._sent = sent  # (sid, payload bytes) once they are written
        self._finished = finished  # sid, once its END_STREAM is written
        self._streams: dict[int, _Queue] = {}
        self._blocked: dict[int, None] = {}  # streams with items waiting, oldest first
        self.connection = DEFAULT_WINDOW
        self.initial = DEFAULT_WINDOW  # the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self.max_frame = f.DEFAULT_MAX_FRAME
        self.paused = False  # the socket is full: nothing more is written until it drains

    def open(self, sid: int) -> None:
        self._streams[sid] = _Queue(self.initial)

    def close(self, sid: int) -> None:
        """Forget `sid`: what it still had queued goes nowhere (it was reset). Its DATA counts as
        sent, so the side it came from is credited for it: bytes dropped here left the proxy, and
        otherwise each reset stream would keep its share of that side's connection window."""
        q = self._streams.pop(sid, None)
        self._blocked.pop(sid, None)
        if q is not None and q.items:
            dropped = sum(len(item) for item, _ in q.items if isinstance(item, bytes))
            if dropped:
                self._sent(sid, dropped)

    def close_all(self) -> None:
        """The connection is gone: every stream's queue is dropped, as close() drops one."""
        for sid in list(self._streams):
            self.close(sid)

    def sending(self, sid: int) -> bool:
        """Whether `sid` is open this way: its END_STREAM not yet written."""
        return sid in self._streams

    def data(self, sid: int, payload: bytes, end_stream: bool) -> None:
        q = self._streams.get(sid)
        if q is None:
            return
        if not q.items and not self.paused:
            n = len(payload)
            if n <= q.window and n <= self.connection and n <= self.max_frame:
                # The usual case: it fits at once.
                q.window -= n
                self.connection -= n
                self._out(f.frame(f.DATA, f.END_STREAM if end_stream else 0, sid, payload))
                if n:
                    self._sent(sid, n)
                if end_stream:
                    del self._streams[sid]
                    self._finished(sid)
                return
        q.items.append((payload, end_stream))
        self._drain(sid, q)

    def trailers(self, sid: int, encode: Trailers, after: bytes = b"") -> None:
        """End `sid` with the header block `encode()` makes, after its queued DATA; `after` follows it."""
        q = self._streams.get(sid)
        if q is None:
            return
        q.after = after
        q.items.append((encode, True))
        self._drain(sid, q)

    def credit(self, sid: int, increment: int) -> None:
        """A WINDOW_UPDATE from the peer; FLOW_CONTROL_ERROR past 2^31-1 (RFC 9113 6.9.1)."""
        if sid == 0:
            self.connection += increment
            if self.connection > MAX_WINDOW:
                raise f.ConnectionError_(f.FLOW_CONTROL_ERROR, "connection window above 2^31-1")
            self.drain()
            return
        q = self._streams.get(sid)
        if q is None:
            return
        q.window += increment
        if q.window > MAX_WINDOW:
            raise f.StreamError(f.FLOW_CONTROL_ERROR, f"stream {sid} window above 2^31-1")
        if q.items:
            self._drain(sid, q)

    def initial_window(self, size: int) -> None:
        """The peer changed SETTINGS_INITIAL_WINDOW_SIZE: every open stream's window moves by the change."""
        if size > MAX_WINDOW:
            raise f.ConnectionError_(f.FLOW_CONTROL_ERROR, f"SETTINGS_INITIAL_WINDOW_SIZE {size}")
        delta, self.initial = size - self.initial, size
        for q in self._streams.values():
            q.window += delta
        self.drain()

    def resume(self) -> None:
        self.paused = False
        self.drain()

    def drain(self) -> None:
        for sid in list(self._blocked):
            if self.paused or self.connection <= 0:
                return
            q = self._streams.get(sid)
            if q is not None:
                self._drain(sid, q)

    def _drain(self, sid: int, q: _Queue) -> None:
        items = q.items
        while items and not self.paused:
            item, end = items[0]
            if not isinstance(item, bytes):
                items.clear()
                self._finish(sid)
                self._out(f.header_block_frames(sid, item(), True, self.max_frame) + q.after)
                self._finished(sid)
                return
            room = min(q.window, self.connection, self.max_frame)
            if room <= 0 and item:
                break
            chunk = item[:room]
            last = len(chunk) == len(item)
            if last:
                items.popleft()
            else:
                items[0] = (item[room:], end)
            n = len(chunk)
            q.window -= n
            self.connection -= n
            done = end and last
            if done:
                self._finish(sid)
            self._out(f.frame(f.DATA, f.END_STREAM if done else 0, sid, chunk))
            if n:
                self._sent(sid, n)
            if done:
                self._finished(sid)
                return
        if items:
            self._blocked[sid] = None
        else:
            self._blocked.pop(sid, None)

    def _finish(self, sid: int) -> None:
        """`sid`'s last frame goes out: its side of the stream is closed (half-closed local)."""
        self._streams.pop(sid, None)
        self._blocked.pop(sid, None)


class RecvFlow:
    """What the peer may still send, per stream and in all, against the windows advertised to it."""

    __slots__ = ("_owed", "_owed_connection", "_windows", "connection", "window")

    def __init__(self, window: int, connection: int) -> None:
        self.window = window  # the SETTINGS_INITIAL_WINDOW_SIZE this side advertised
        self.connection = connection  # the connection window advertised (its WINDOW_UPDATE sent)
        self._windows: dict[int, int] = {}
        self._owed: dict[int, int] = {}
        self._owed_connection = 0

    def open(self, sid: int) -> None:
        self._windows[sid] = self.window
        self._owed[sid] = 0

    def close(self, sid: int) -> None:
        self._windows.pop(sid, None)
        self._owed.pop(sid, None)

    def received(self, sid: int, length: int) -> None:
        """A DATA frame of `length` bytes (padding included) arrived; raise if it overran a window."""
        self.connection -= length
        if self.connection < 0:
            raise f.ConnectionError_(f.FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        window = self._windows.get(sid)
        if window is None:
            self._owed_connection += length  # a stream already over: its bytes are freed at once
            return
        window -= length
        if window < 0:
            raise f.StreamError(f.FLOW_CONTROL_ERROR, f"DATA beyond stream {sid}'s window")
        self._windows[sid] = window

    def consumed(self, sid: int, length: int, out: Callable[[bytes], None]) -> None:
        """`length` bytes of `sid` left the proxy: credit them back once a quarter window is owed."""
        self._owed_connection += length
        owed = self._owed.get(sid)
        if owed is not None:
            owed += length
            if owed >= self.window >> 2:
                self._windows[sid] += owed
                out(f.window_update(sid, owed))
                owed = 0
            self._owed[sid] = owed
        self.settle(out)

    def settle(self, out: Callable[[bytes], None]) -> None:
        owed = self._owed_connection
        if owed >= self.window >> 2:
            self.connection += owed
            self._owed_connection = 0
            out(f.window_update(0, owed))
