"""Bytes in, whole HTTP/2 frames out: the buffer behind each direction of a relayed connection.

Chunks from the socket are fed as they arrive; the relay scans the complete frames in
`window()` itself (a function call per frame is most of what a frame costs in Python) and
says with `advance()` how far it got and how many bytes the next frame needs. Until that many
have arrived, chunks wait unjoined, so a 16 MiB frame arriving in 64 KiB reads is copied once,
not hundreds of times. `header_block` finds a HEADERS frame's CONTINUATIONs (RFC 9113 6.10).
Knows nothing about HPACK, streams or sockets.
"""

from __future__ import annotations

from typing import NamedTuple

from sidecar.h2 import frames as f
from sidecar.h2.limits import MAX_BLOCK


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


def header_block(buf: bytes, pos: int, end: int, max_frame: int, max_block: int = MAX_BLOCK) -> Frame | None:
    """The header block whose HEADERS frame is buf[pos:end], with the CONTINUATIONs after it in `buf`.

    None if the block does not end within `buf` yet; ConnectionError_ if a frame interrupts it.
    """
    flags = buf[pos + 4]
    sid = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
    fragments = [f.headers_fragment(flags, buf[pos + f.HEADER_LEN : end])]
    size = len(fragments[0])
    last = flags
    n = len(buf)
    while not last & f.END_HEADERS:
        if n - end < f.HEADER_LEN:
            return None
        length, kind, last, csid = f.parse_header(buf[end : end + f.HEADER_LEN])
        if kind != f.CONTINUATION or csid != sid:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "header block interrupted")
        if length > max_frame:
            raise f.too_large(length, max_frame)
        size += length
        if size > max_block:
            raise f.ConnectionError_(f.PROTOCOL_ERROR, "header block too large")
        if end + f.HEADER_LEN + length > n:
            return None
        fragments.append(buf[end + f.HEADER_LEN : end + f.HEADER_LEN + length])
        end += f.HEADER_LEN + length
    return Frame(f.HEADERS, flags | f.END_HEADERS, sid, buf[pos:end], b"".join(fragments))
