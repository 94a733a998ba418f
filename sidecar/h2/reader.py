"""Bytes in, frames out: one direction of a relayed HTTP/2 connection, read in one call per socket read.

FrameReader walks every complete frame a read brought in and sorts each one: a frame the stream
layer need not see passes on as it is, in one span with its neighbours (`forward`); connection
credit (WINDOW_UPDATE on stream 0) goes up as its increment (`credit`); any other goes up whole
(`handle`): a control frame, or a header block with its CONTINUATIONs assembled. DATA and
WINDOW_UPDATE of a relayed stream (a stream id in `counters`; DATA is counted there on its way,
see messages.py) always pass; of the rest, each direction says per frame type whether it
passes, goes up (UP), or goes up and passes too (LOOK: the model's HEADERS, which the stream
layer decodes and the client gets as they are). A function call per frame is most of what a
frame costs in Python, so nothing here calls one for a passing frame but DATA's count; this
class is what a compiled twin replaces.

Chunks from the socket wait unjoined in a FrameBuffer until the next frame is complete, so a
16 MiB frame arriving in 64 KiB reads is copied once, not hundreds of times. A header block
(HEADERS and its CONTINUATIONs, RFC 9113 6.10) is gathered incrementally: each fragment is taken
once as its frame completes, so no read rescans the block, and its bounds (bytes, including a
single HEADERS frame's, and CONTINUATION frames) are checked as each frame header arrives.
`gathered` looks at one stream's DATA among the
frames waiting unread, without taking them (a verdict that needs a call's first request bytes).
Knows nothing about HPACK, stream states or sockets.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Final, NamedTuple, Protocol

from sidecar.h2 import frames as f
from sidecar.h2.limits import MAX_BLOCK, MAX_CONTINUATIONS


class Counter(Protocol):
    """What a relayed stream's DATA is counted into as it passes (messages.MessageBytes)."""

    def frame(self, buf: bytes, pos: int, end: int) -> None: ...


class Frame(NamedTuple):
    kind: int
    flags: int  # for a header block: its HEADERS frame's flags with END_HEADERS set
    sid: int
    raw: bytes  # the frame as received; for a header block, all its frames
    block: bytes  # the header block (HEADERS and CONTINUATION fragments); b"" for other frames

    @property
    def payload(self) -> bytes:
        return self.raw[f.HEADER_LEN :]


class FrameBuffer:
    __slots__ = ("_buf", "_have", "_need", "_parts", "_pos")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._parts: list[bytes] = []  # chunks not yet joined: together fewer than _need bytes
        self._have = 0
        self._need = f.HEADER_LEN

    @property
    def buffered(self) -> int:
        return len(self._buf) - self._pos + self._have

    def feed(self, data: bytes) -> None:
        if self._pos == len(self._buf) and not self._parts:
            self._buf, self._pos = data, 0
            return
        self._parts.append(data)
        self._have += len(data)

    def window(self) -> tuple[bytes, int] | None:
        """(buffer, offset of the first unread byte); None while the next frame is still incomplete."""
        if self._parts:
            if len(self._buf) - self._pos + self._have < self._need:
                return None
            self._buf = self._buf[self._pos :] + b"".join(self._parts)
            self._pos = 0
            self._parts.clear()
            self._have = 0
        return self._buf, self._pos

    def advance(self, pos: int, need: int) -> None:
        """The scan read up to `pos` of window()'s buffer; the next frame needs `need` bytes from there."""
        self._pos = pos
        self._need = need

    def take(self, n: int) -> bytes | None:
        """The next `n` bytes, unparsed (the connection preface); None until there are that many."""
        self._need = n
        window = self.window()
        if window is None or len(window[0]) - window[1] < n:
            return None
        buf, pos = window
        self._pos = pos + n
        self._need = f.HEADER_LEN
        return buf[pos : pos + n]


def gathered(buf: bytes, pos: int, sid: int, limit: int) -> tuple[bytes, bool]:
    """Stream `sid`'s DATA payload bytes in the whole frames of buf[pos:] (at most about `limit`,
    padding left out), and True if its END_STREAM or RST_STREAM is among those frames."""
    parts: list[bytes] = []
    have, n = 0, len(buf)
    unpack = f.HEADER.unpack_from
    while n - pos >= f.HEADER_LEN and have < limit:
        high, low, kind, flags, stream = unpack(buf, pos)
        end = pos + f.HEADER_LEN + ((high << 16) | low)
        if end > n:
            break
        if stream & 0x7FFFFFFF == sid:
            if kind == f.DATA:
                start, stop = pos + f.HEADER_LEN, end
                if flags & f.PADDED and start < stop:
                    stop -= buf[start]
                    start += 1
                if stop > start:
                    parts.append(buf[start:stop])
                    have += stop - start
                if flags & f.END_STREAM:
                    return b"".join(parts), True
            elif kind == f.RST_STREAM:
                return b"".join(parts), True
        pos = end
    return b"".join(parts), False


# How many frames past a new stream's HEADERS the relay looks for its reset (rapid reset: opened
# and cancelled in one write). A reset further on reaches the model, and counts against the
# connection's reset budget like every other.
RESET_LOOKAHEAD: Final = 16

# What a direction's reader does with a frame type (for frames not of a relayed stream).
PASS: Final = 0  # passes on as it is, in the span
UP: Final = 1  # goes up instead (the span before it first)
LOOK: Final = 2  # goes up and passes on too (the layer above only looks)


class FrameReader(FrameBuffer):
    """The frames of one direction: fed chunks as they arrive, read in one call for all that is complete."""

    __slots__ = ("_actions", "_block", "_block_count", "_block_flags", "_block_look", "_block_raw",
                 "_block_sid", "_block_size", "_credit", "_forward", "_handle", "counters", "max_block",
                 "max_continuations", "max_frame", "paused")  # fmt: skip

    def __init__(
        self,
        *,
        up: Collection[int],
        look: Collection[int] = (),
        counters: dict[int, Counter],
        forward: Callable[[bytes], None],
        handle: Callable[[Frame], None],
        credit: Callable[[int], None],
        max_frame: int,
        max_block: int = MAX_BLOCK,
        max_continuations: int = MAX_CONTINUATIONS,
    ) -> None:
        super().__init__()
        actions = [PASS] * 256
        for kind in up:
            actions[kind] = UP
        for kind in look:
            actions[kind] = LOOK
        self._actions = tuple(actions)
        self.counters = counters  # relayed streams: their DATA and WINDOW_UPDATE pass
        self._forward = forward
        self._handle = handle
        self._credit = credit  # connection-level WINDOW_UPDATE: its increment, the frame consumed
        self.max_frame = max_frame  # larger frames are a connection error
        self.max_block = max_block  # header block bytes (fragments), a single HEADERS frame's too
        self.max_continuations = max_continuations
        self.paused = False  # read() stops before the next frame while set
        # While a HEADERS frame is handled: the frame right after it, whole, resets its stream.
        # The header block being gathered: its stream (0: none), HEADERS flags, fragments and
        # frames so far, their bytes and CONTINUATION count, and whether it goes up or is looked at.
        self._block_sid = 0
        self._block_flags = 0
        self._block: list[bytes] = []
        self._block_raw: list[bytes] = []
        self._block_size = 0
        self._block_count = 0
        self._block_look = False

    def gathered(self, sid: int, limit: int) -> tuple[bytes, bool]:
        """`gathered` over the frames waiting unread: nothing is taken, they are read as they would be."""
        window = self.window()
        if window is None:
            return b"", False
        return gathered(*window, sid, limit)

    def reset_ahead(self, sid: int, frames: int = RESET_LOOKAHEAD) -> bool:
        """Whether an RST_STREAM of stream `sid` is among the next `frames` whole frames waiting
        unread: a stream its client reset before the model saw it need not be relayed."""
        window = self.window()
        if window is None:
            return False
        buf, pos = window
        n = len(buf)
        unpack = f.HEADER.unpack_from
        while frames and n - pos >= f.HEADER_LEN:
            high, low, kind, _, stream = unpack(buf, pos)
            end = pos + f.HEADER_LEN + ((high << 16) | low)
            if end > n:
                return False
            if kind == f.RST_STREAM and stream & 0x7FFFFFFF == sid:
                return True
            pos = end
            frames -= 1
        return False

    def read(self, data: bytes = b"") -> None:
        """Take `data` (a socket read), then walk every complete frame until paused: spans to
        `forward`, connection credit to `credit`, the rest to `handle`.

        Raises ConnectionError_ for a frame larger than max_frame, a malformed frame that goes
        up, or a header block interrupted or too large; what came before it has gone on.
        """
        # FrameBuffer.feed and window(), inline: this runs once per socket read.
        if data:
            if self._pos == len(self._buf) and not self._parts:
                self._buf, self._pos = data, 0
            else:
                self._parts.append(data)
                self._have += len(data)
        if self._parts:
            window = self.window()
            if window is None:
                return
            buf, pos = window
        else:
            buf, pos = self._buf, self._pos
        n, span, need = len(buf), pos, f.HEADER_LEN
        counters, actions, max_frame, max_block = self.counters, self._actions, self.max_frame, self.max_block
        unpack = f.HEADER.unpack_from
        try:
            if self._block_sid:  # a header block left open by the last read: its CONTINUATIONs first
                pos, need, whole = self._continuations(buf, pos, n)
                span = self._pos = pos
                if whole is None:
                    return
                self._finish(whole)
                need = f.HEADER_LEN
            while n - pos >= f.HEADER_LEN and not self.paused:
                high, low, kind, flags, sid = unpack(buf, pos)
                length = (high << 16) | low
                if length > max_frame:
                    raise f.too_large(length, max_frame)
                end = pos + f.HEADER_LEN + length
                if end > n:
                    need = f.HEADER_LEN + length
                    break
                sid &= 0x7FFFFFFF
                if kind == f.DATA:
                    counter = counters.get(sid)
                    # An empty DATA frame that does not end its stream goes the slow way: it is
                    # counted against a budget (CVE-2019-9518), even on a relayed stream.
                    if counter is not None and (length or flags & f.END_STREAM):
                        counter.frame(buf, pos, end)
                        pos = end
                        continue
                elif kind == f.WINDOW_UPDATE and length == 4:
                    if sid in counters:
                        pos = end
                        continue
                    if not sid:
                        if pos > span:
                            self._forward(buf[span:pos])
                        pos = span = end
                        self._credit(int.from_bytes(buf[end - 4 : end], "big") & 0x7FFFFFFF)
                        continue
                action = actions[kind]
                if action == PASS:
                    pos = end
                    continue
                if kind == f.HEADERS:
                    # A block in parts is bounded as its frames come, not by this frame's length.
                    f.check(length if flags & f.END_HEADERS else 0, kind, flags, sid, max_frame)
                    raw = buf[pos:end]
                    block = f.headers_fragment(flags, raw[f.HEADER_LEN :])
                    if len(block) > max_block:
                        raise _too_large(len(block), max_block)
                    if not flags & f.END_HEADERS:
                        # A block in parts: its frames pass (LOOK) or go up once it is whole.
                        if pos > span:
                            self._forward(buf[span:pos])
                        self._block_sid, self._block_flags, self._block_look = sid, flags, action == LOOK
                        self._block, self._block_raw = [block], [raw]
                        self._block_size, self._block_count = len(block), 0
                        pos, need, whole = self._continuations(buf, end, n)
                        span = self._pos = pos
                        if whole is None:
                            break
                        self._finish(whole)
                        need = f.HEADER_LEN
                        continue
                    frame = Frame(kind, flags, sid, raw, block)
                else:
                    f.check(length, kind, flags, sid, max_frame)
                    frame = Frame(kind, flags, sid, buf[pos:end], b"")
                if action == LOOK:
                    self._handle(frame)
                    pos = end
                    continue
                if pos > span:
                    self._forward(buf[span:pos])
                pos = span = self._pos = end  # where reset_ahead looks from, while it is handled
                self._handle(frame)
        finally:
            if pos > span:
                self._forward(buf[span:pos])
            self._pos, self._need = pos, need

    def _continuations(self, buf: bytes, pos: int, n: int) -> tuple[int, int, Frame | None]:
        """Take the open block's CONTINUATIONs from buf[pos:n]: (where reading goes on, the bytes
        the next frame needs, the whole block once its END_HEADERS came, else None)."""
        sid = self._block_sid
        unpack = f.HEADER.unpack_from
        while n - pos >= f.HEADER_LEN:
            high, low, kind, flags, csid = unpack(buf, pos)
            length = (high << 16) | low
            if kind != f.CONTINUATION or csid & 0x7FFFFFFF != sid:
                raise f.ConnectionError_(f.PROTOCOL_ERROR, "header block interrupted")
            if length > self.max_frame:
                raise f.too_large(length, self.max_frame)
            # Bounded at the frame header, before its payload is waited for (nor counted twice).
            if self._block_count >= self.max_continuations:
                reason = f"header block of more than {self.max_continuations} CONTINUATIONs"
                raise f.calm(reason, "continuations")
            if self._block_size + length > self.max_block:
                raise _too_large(self._block_size + length, self.max_block)
            end = pos + f.HEADER_LEN + length
            if end > n:
                return pos, f.HEADER_LEN + length, None
            self._block.append(buf[pos + f.HEADER_LEN : end])
            self._block_raw.append(buf[pos:end])
            self._block_size += length
            self._block_count += 1
            pos = end
            if flags & f.END_HEADERS:
                raw, block = b"".join(self._block_raw), b"".join(self._block)
                frame = Frame(f.HEADERS, self._block_flags | f.END_HEADERS, sid, raw, block)
                self._block_sid = 0
                self._block, self._block_raw = [], []
                return pos, f.HEADER_LEN, frame
        return pos, f.HEADER_LEN, None

    def _finish(self, frame: Frame) -> None:
        """A block gathered in parts is whole: up, or looked at and then passed on as it came."""
        self._handle(frame)
        if self._block_look:
            self._forward(frame.raw)


def _too_large(size: int, limit: int) -> f.ConnectionError_:
    return f.calm(f"header block too large: {size} bytes, more than {limit}", "header_block")
