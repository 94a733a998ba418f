"""HTTP/2 frames (RFC 9113 section 4 and 6): parse the 9-byte header, build the few frames the relay writes.

Knows nothing about HPACK, gRPC, sockets or streams' meaning.
"""

from __future__ import annotations

import struct
from typing import Final

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADER_LEN: Final = 9
DEFAULT_MAX_FRAME: Final = 16384
MAX_FRAME_LIMIT: Final = 2**24 - 1

DATA: Final = 0x0
HEADERS: Final = 0x1
PRIORITY: Final = 0x2
RST_STREAM: Final = 0x3
SETTINGS: Final = 0x4
PUSH_PROMISE: Final = 0x5
PING: Final = 0x6
GOAWAY: Final = 0x7
WINDOW_UPDATE: Final = 0x8
CONTINUATION: Final = 0x9

END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8
PRIORITY_FLAG: Final = 0x20

# Settings identifiers (section 6.5.2).
HEADER_TABLE_SIZE: Final = 0x1
MAX_CONCURRENT_STREAMS: Final = 0x3
INITIAL_WINDOW_SIZE: Final = 0x4
MAX_FRAME_SIZE: Final = 0x5
MAX_HEADER_LIST_SIZE: Final = 0x6
MAX_WINDOW: Final = 2**31 - 1

# Error codes (section 7).
NO_ERROR: Final = 0x0
PROTOCOL_ERROR: Final = 0x1
INTERNAL_ERROR: Final = 0x2
FLOW_CONTROL_ERROR: Final = 0x3
STREAM_CLOSED: Final = 0x5
FRAME_SIZE_ERROR: Final = 0x6
REFUSED_STREAM: Final = 0x7
CANCEL: Final = 0x8
COMPRESSION_ERROR: Final = 0x9
ENHANCE_YOUR_CALM: Final = 0xB

# Frames whose payload length is fixed (section 6): a different length is a connection error.
_FIXED_LENGTH: Final = {PRIORITY: 5, RST_STREAM: 4, PING: 8, WINDOW_UPDATE: 4}

# A frame header: length (24 bits, as 8 + 16), type, flags, stream id (with its reserved bit).
HEADER: Final = struct.Struct(">BHBBL")


class ConnectionError_(Exception):
    """A connection error (RFC 9113 section 5.4.1): answer GOAWAY with `code` and close.

    `kind`: the limit that fired, when one did (counted by that name, sidecar/h2/limits.py).
    """

    def __init__(self, code: int, reason: str, kind: str = "") -> None:
        super().__init__(reason)
        self.code = code
        self.kind = kind


def calm(reason: str, kind: str) -> ConnectionError_:
    """A limit passed: GOAWAY(ENHANCE_YOUR_CALM) (RFC 9113 section 10.5), counted as `kind`."""
    return ConnectionError_(ENHANCE_YOUR_CALM, reason, kind)


class StreamError(Exception):
    """A stream error (RFC 9113 section 5.4.2): reset the stream with `code`; the connection goes on."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def parse_header(raw: bytes) -> tuple[int, int, int, int]:
    """(length, type, flags, stream id) of a 9-byte frame header."""
    hi, lo, kind, flags, sid = HEADER.unpack(raw)
    return (hi << 16) | lo, kind, flags, sid & 0x7FFFFFFF


def check(length: int, kind: int, flags: int, sid: int, max_frame: int) -> None:
    """Raise ConnectionError_ for a frame whose size or stream id the spec forbids outright."""
    if length > max_frame:
        raise too_large(length, max_frame)
    fixed = _FIXED_LENGTH.get(kind)
    if fixed is not None and length != fixed:
        raise ConnectionError_(FRAME_SIZE_ERROR, f"frame type {kind} with {length} bytes, not {fixed}")
    if kind == SETTINGS:
        if sid != 0:
            raise ConnectionError_(PROTOCOL_ERROR, "SETTINGS on a stream")
        if length % 6 or (flags & ACK and length):
            raise ConnectionError_(FRAME_SIZE_ERROR, f"SETTINGS of {length} bytes")
    elif kind in (PING, GOAWAY):
        if sid != 0:
            raise ConnectionError_(PROTOCOL_ERROR, f"frame type {kind} on a stream")
        if kind == GOAWAY and length < 8:
            raise ConnectionError_(FRAME_SIZE_ERROR, "short GOAWAY")
    elif kind in (DATA, HEADERS, PRIORITY, RST_STREAM, CONTINUATION, PUSH_PROMISE) and sid == 0:
        raise ConnectionError_(PROTOCOL_ERROR, f"frame type {kind} on stream 0")


def too_large(length: int, max_frame: int) -> ConnectionError_:
    return ConnectionError_(FRAME_SIZE_ERROR, f"frame of {length} bytes exceeds {max_frame}")


def frame(kind: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return HEADER.pack(n >> 16, n & 0xFFFF, kind, flags, sid) + payload


def header_block_frames(sid: int, block: bytes, end_stream: bool, max_frame: int) -> bytes:
    """A header block as one HEADERS frame and as many CONTINUATIONs as `max_frame` requires."""
    first, rest = block[:max_frame], block[max_frame:]
    flags = (END_STREAM if end_stream else 0) | (0 if rest else END_HEADERS)
    out = [frame(HEADERS, flags, sid, first)]
    while rest:
        chunk, rest = rest[:max_frame], rest[max_frame:]
        out.append(frame(CONTINUATION, 0 if rest else END_HEADERS, sid, chunk))
    return b"".join(out)


def headers_fragment(flags: int, payload: bytes) -> bytes:
    """The header block fragment of a HEADERS payload, without padding and priority fields."""
    start, end = 0, len(payload)
    if flags & PADDED:
        if not payload:
            raise ConnectionError_(PROTOCOL_ERROR, "PADDED HEADERS without a pad length")
        pad = payload[0]
        start, end = 1, len(payload) - pad
    if flags & PRIORITY_FLAG:
        start += 5
    if end < start:
        raise ConnectionError_(PROTOCOL_ERROR, "HEADERS padding exceeds the payload")
    return payload[start:end]


def settings(payload: bytes) -> dict[int, int]:
    return {ident: value for ident, value in struct.iter_unpack(">HL", payload)}


def settings_frame(values: dict[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HL", k, v) for k, v in values.items()))


def max_frame_size(values: dict[int, int], whose: str) -> int | None:
    """SETTINGS_MAX_FRAME_SIZE among settings `values`, if there; ConnectionError_ outside its range
    (RFC 9113 6.5.2). `whose` starts the error's text."""
    size = values.get(MAX_FRAME_SIZE)
    if size is not None and not DEFAULT_MAX_FRAME <= size <= MAX_FRAME_LIMIT:
        raise ConnectionError_(PROTOCOL_ERROR, f"{whose}SETTINGS_MAX_FRAME_SIZE {size}")
    return size


def window_update(sid: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">L", increment))


def window_increment(payload: bytes) -> int:
    return int(struct.unpack(">L", payload)[0]) & 0x7FFFFFFF


def rst_stream(sid: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, sid, struct.pack(">L", code))


def error_code(payload: bytes) -> int:
    """The error code of RST_STREAM (its whole payload) or GOAWAY (after the last stream id)."""
    return int(struct.unpack(">L", payload[-4:] if len(payload) == 4 else payload[4:8])[0])


def goaway(last_sid: int, code: int, debug: bytes = b"") -> bytes:
    return frame(GOAWAY, 0, 0, struct.pack(">LL", last_sid, code) + debug)


def settings_ack() -> bytes:
    return frame(SETTINGS, ACK, 0)


def ping_ack(payload: bytes) -> bytes:
    return frame(PING, ACK, 0, payload)


def unpad(flags: int, payload: bytes) -> bytes:
    """A DATA payload without its padding (section 6.1)."""
    if flags & PADDED and payload:
        return payload[1 : len(payload) - payload[0]]
    return payload
