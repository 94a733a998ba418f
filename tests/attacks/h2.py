"""The attacker's side of an HTTP/2 connection: frames and HPACK bytes built by hand, one raw socket.

Frames are packed here (RFC 9113 section 4.1) and HPACK representations written byte by byte
(RFC 7541), not with the relay's own modules, so the suite leans on nothing it attacks; ordinary
request header blocks come from the `hpack` package's encoder. `Peer` writes as fast as the
target takes bytes, reads (or deliberately does not) and records what the target answered:
GOAWAY and RST_STREAM codes, frames by type, whether the target closed the connection and whether
it stopped reading (the attacker's writes stalled). Knows nothing about attack classes, targets'
processes or what counts as holding.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import hpack

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# Frame types (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 0x8, 0x9
# Flags.
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
# Settings (section 6.5.2).
HEADER_TABLE_SIZE: Final = 0x1
MAX_CONCURRENT_STREAMS: Final = 0x3
INITIAL_WINDOW_SIZE: Final = 0x4
MAX_FRAME_SIZE: Final = 0x5
MAX_HEADER_LIST_SIZE: Final = 0x6
DEFAULT_MAX_FRAME: Final = 16384
DEFAULT_TABLE_SIZE: Final = 4096
LARGEST_FRAME: Final = 2**24 - 1
# Error codes (section 7).
ERRORS: Final = (
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
)
NO_ERROR, PROTOCOL_ERROR = 0x0, 0x1
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 0x6, 0x7, 0x8
ENHANCE_YOUR_CALM: Final = 0xB

GRPC_CODES: Final = (
    *("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS"),
    *("PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE"),
    *("UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"),
)

_HEADER: Final = struct.Struct(">BHBBL")
_READ_CHUNK: Final = 1 << 20


def error_name(code: int) -> str:
    return ERRORS[code] if 0 <= code < len(ERRORS) else f"0x{code:x}"


def frame(kind: int, flags: int, sid: int, payload: bytes = b"", *, length: int | None = None) -> bytes:
    """One frame; `length` lies about the payload's size when given."""
    n = len(payload) if length is None else length
    return _HEADER.pack(n >> 16 & 0xFF, n & 0xFFFF, kind, flags, sid) + payload


def settings(values: dict[int, int] | None = None) -> bytes:
    payload = b"".join(struct.pack(">HL", k, v) for k, v in (values or {}).items())
    return frame(SETTINGS, 0, 0, payload)


def settings_ack() -> bytes:
    return frame(SETTINGS, ACK, 0)


def ping(opaque: bytes = b"attack!!") -> bytes:
    return frame(PING, 0, 0, opaque)


def rst_stream(sid: int, code: int) -> bytes:
    return frame(RST_STREAM, 0, sid, struct.pack(">L", code))


def window_update(sid: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">L", increment))


def block_frames(sid: int, block: bytes, max_frame: int, *, end_stream: bool = False) -> bytes:
    """A header block as HEADERS and as many CONTINUATIONs as `max_frame` requires."""
    first, rest = block[:max_frame], block[max_frame:]
    flags = (END_STREAM if end_stream else 0) | (0 if rest else END_HEADERS)
    out = [frame(HEADERS, flags, sid, first)]
    while rest:
        chunk, rest = rest[:max_frame], rest[max_frame:]
        out.append(frame(CONTINUATION, 0 if rest else END_HEADERS, sid, chunk))
    return b"".join(out)


# ---- HPACK by hand (RFC 7541): what a bomb needs and an encoder would never write ----


def hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """An HPACK integer (section 5.1) after the representation's bits in `first`."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(raw: bytes) -> bytes:
    return hpack_int(len(raw), 7) + raw  # not Huffman-coded


def literal(name: bytes, value: bytes, *, index: bool) -> bytes:
    """A literal field with a new name, added to the dynamic table (section 6.2.1) or not (6.2.2)."""
    return (b"\x40" if index else b"\x00") + _string(name) + _string(value)


def indexed(index: int) -> bytes:
    """An indexed field (section 6.1): 62 is the newest dynamic-table entry."""
    return hpack_int(index, 7, 0x80)


NEWEST: Final = 62  # the first dynamic-table index (61 static entries before it)


def entry_filling(table_size: int, name: bytes = b"x-bomb") -> bytes:
    """A literal whose entry fills a dynamic table of `table_size` octets (entry = name + value + 32)."""
    return literal(name, b"b" * max(1, table_size - 32 - len(name)), index=True)


# ---- gRPC requests ----


def request_fields(path: str, authority: str = "attack") -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]


class Requests:
    """Request header blocks for one connection, in the order they are sent.

    The first block for a path teaches the target's dynamic table; once a block is nothing but
    indexed fields, it changes no table and is sent again as it is.
    """

    def __init__(self) -> None:
        self._encoder = hpack.Encoder()
        self._steady: dict[str, bytes] = {}

    def block(self, path: str) -> bytes:
        steady = self._steady.get(path)
        if steady is not None:
            return steady
        block: bytes = self._encoder.encode(request_fields(path))
        if all(b & 0x80 for b in block):
            self._steady[path] = block
        return block


def grpc_message(body: bytes) -> bytes:
    """One length-prefixed, uncompressed gRPC message."""
    return b"\x00" + struct.pack(">L", len(body)) + body


# ---- what the target answered ----


@dataclass
class Answer:
    """What one attacking connection saw and managed, in seconds since it connected."""

    settings: dict[int, int] = field(default_factory=dict)  # the target's, merged in order
    settings_seen: bool = False  # the target sent SETTINGS (perhaps empty)
    settings_acked: bool = False  # the target acknowledged ours
    goaways: list[tuple[int, bytes]] = field(default_factory=list)  # (error code, debug data)
    resets: dict[int, int] = field(default_factory=dict)  # stream id -> RST_STREAM code
    frames: Counter[int] = field(default_factory=Counter)  # received, by type
    data_bytes: Counter[int] = field(default_factory=Counter)  # DATA payload octets, by stream
    ended: set[int] = field(default_factory=set)  # streams the target ended (END_STREAM)
    answered: set[int] = field(default_factory=set)  # streams the target sent HEADERS on
    statuses: Counter[str] = field(default_factory=Counter)  # grpc-status (or :status) of the first blocks
    closed: str = ""  # "eof" or "reset" once the target closed the connection
    closed_at: float | None = None
    sent: int = 0
    received: int = 0
    stalled_s: float = 0.0  # how long the last write waited without progress when the attack ended
    connect_error: str = ""

    @property
    def reset_codes(self) -> Counter[int]:
        return Counter(self.resets.values())

    def summary(self) -> str:
        parts = [f"GOAWAY({error_name(code)})" for code in dict.fromkeys(c for c, _ in self.goaways)]
        parts += [f"RST_STREAM({error_name(c)})x{n}" for c, n in sorted(self.reset_codes.items())]
        parts += [f"{status}x{n}" for status, n in sorted(self.statuses.items())]
        if self.closed:
            parts.append(f"closed ({self.closed}) at {self.closed_at:.2f}s")
        if self.stalled_s >= 0.1:
            parts.append(f"writes stalled {self.stalled_s:.1f}s")
        if self.connect_error:
            parts.append(f"connect: {self.connect_error}")
        return ", ".join(parts) or "nothing"


class Peer:
    """One client connection: writes what it is given as fast as the target reads, reads if told to.

    A reading peer parses every frame the target sends (answering SETTINGS and PING as a client
    must); a non-reading one reads only during its handshake and when drained at the end, like a
    client whose socket buffer the target has to fill.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        reading: bool = True,
        sndbuf: int | None = None,
        rcvbuf: int | None = None,
        connect_timeout: float = 2.0,
    ) -> None:
        self.answer = Answer()
        self.reading = reading
        self._in = bytearray()
        self._control = bytearray()  # our ACKs, written before anything else
        self._statuses = _Statuses()
        self._t0 = time.monotonic()
        self._last_progress = self._t0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Buffer sizes before connect(): the receive window scale is agreed in the handshake.
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(connect_timeout)
        try:
            self.sock.connect((host, port))
        except OSError as e:
            self.answer.connect_error = str(e)
            self._closed("reset")
        self.sock.setblocking(False)

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def is_closed(self) -> bool:
        return bool(self.answer.closed)

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def handshake(
        self, values: dict[int, int] | None = None, *, window: int = 0, wait: float = 2.0
    ) -> dict[int, int]:
        """Preface and SETTINGS (and connection credit); then the target's SETTINGS, acknowledged.

        Done once the target has both sent its SETTINGS and acknowledged ours: what it advertised
        before that (in one SETTINGS frame or several) is what its limits are known to be.
        """
        credit = window_update(0, window) if window else b""
        self.write(PREFACE + settings(values) + credit, time.monotonic() + wait)
        deadline = time.monotonic() + wait
        a = self.answer
        while not (a.settings_seen and a.settings_acked) and not self.is_closed:
            if time.monotonic() >= deadline:
                break
            self._wait(deadline, want_write=False, force_read=True)
        self._flush_control()
        return self.answer.settings

    def write(self, data: bytes | bytearray | memoryview, until: float) -> bool:
        """Write all of `data` unless the target closes or stops reading until `until`."""
        view = memoryview(data)
        while view and not self.is_closed:
            if self._control:
                self._flush_control()
            try:
                n = self.sock.send(view)
            except BlockingIOError:
                n = 0
            except OSError as e:
                self._closed("reset" if e.errno != errno.EPIPE else "eof")
                return False
            if n:
                view = view[n:]
                self.answer.sent += n
                self._last_progress = time.monotonic()
                if self.reading:
                    self._read_ready()
                continue
            now = time.monotonic()
            if now >= until:
                self.answer.stalled_s = now - self._last_progress
                return False
            self._wait(until, want_write=True)
        self.answer.stalled_s = 0.0
        return not self.is_closed

    def flood(self, make: Callable[[], bytes | bytearray], until: float) -> None:
        """Write what `make` returns, again and again, until `until` or until the target closes."""
        while not self.is_closed and time.monotonic() < until:
            if not self.write(make(), until):
                return

    def pump(self, seconds: float) -> None:
        """Read (and answer) what the target sends for `seconds`, or until it closes."""
        deadline = time.monotonic() + seconds
        while not self.is_closed and time.monotonic() < deadline:
            self._wait(deadline, want_write=False, force_read=True)
            self._flush_control()

    def drain(self, seconds: float) -> None:
        """What a peer that did not read finds when it finally does: the buffered frames, maybe EOF."""
        self.reading = True
        deadline = time.monotonic() + seconds
        while not self.is_closed and time.monotonic() < deadline:
            self._wait(deadline, want_write=False, force_read=True)

    def _flush_control(self) -> None:
        while self._control and not self.is_closed:
            try:
                n = self.sock.send(self._control)
            except BlockingIOError:
                return
            except OSError:
                self._closed("reset")
                return
            del self._control[:n]
            self.answer.sent += n

    def _wait(self, until: float, *, want_write: bool, force_read: bool = False) -> None:
        events = (select.POLLIN if self.reading or force_read else 0) | (select.POLLOUT if want_write else 0)
        timeout_ms = max(0, min(int((until - time.monotonic()) * 1000), 50))
        poller = select.poll()
        try:
            poller.register(self.sock, events)
            ready = poller.poll(timeout_ms)
        except (OSError, ValueError):
            self._closed("reset")
            return
        if any(ev & (select.POLLIN | select.POLLHUP | select.POLLERR) for _, ev in ready) and (
            self.reading or force_read
        ):
            self._read_ready()

    def _read_ready(self) -> None:
        while not self.is_closed:
            try:
                chunk = self.sock.recv(_READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                self._closed("reset")
                return
            if not chunk:
                self._closed("eof")
                return
            self.answer.received += len(chunk)
            self._in += chunk
            self._parse()
            if len(chunk) < _READ_CHUNK:
                return

    def _closed(self, how: str) -> None:
        if self.answer.closed:
            return
        self.answer.closed = how
        self.answer.closed_at = self.elapsed()
        # What arrived before the close (a GOAWAY, typically) is still in the socket's queue even
        # when a write found the connection gone first.
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(_READ_CHUNK):
                self.answer.received += len(chunk)
                self._in += chunk
                self._parse()

    def _parse(self) -> None:
        buf, pos, n = self._in, 0, len(self._in)
        a = self.answer
        while n - pos >= 9:
            hi, lo, kind, flags, sid = _HEADER.unpack_from(buf, pos)
            length = hi << 16 | lo
            end = pos + 9 + length
            if end > n:
                break
            sid &= 0x7FFFFFFF
            a.frames[kind] += 1
            if kind == DATA:
                a.data_bytes[sid] += length
                if flags & END_STREAM:
                    a.ended.add(sid)
            elif kind == HEADERS:
                a.answered.add(sid)
                if flags & END_STREAM:
                    a.ended.add(sid)
                self._statuses.block(flags, bytes(buf[pos + 9 : end]), a.statuses)
            elif kind == CONTINUATION:
                self._statuses.block(flags, bytes(buf[pos + 9 : end]), a.statuses, continued=True)
            elif kind == RST_STREAM and length == 4:
                a.resets[sid] = int.from_bytes(buf[pos + 9 : end], "big")
            elif kind == GOAWAY and length >= 8:
                code = int.from_bytes(buf[pos + 13 : pos + 17], "big")
                a.goaways.append((code, bytes(buf[pos + 17 : min(end, pos + 17 + 200)])))
            elif kind == SETTINGS and flags & ACK:
                a.settings_acked = True
            elif kind == SETTINGS:
                a.settings.update(struct.iter_unpack(">HL", bytes(buf[pos + 9 : end])))
                a.settings_seen = True
                self._control += settings_ack()
            elif kind == PING and not flags & ACK and length == 8:
                self._control += frame(PING, ACK, 0, bytes(buf[pos + 9 : end]))
            pos = end
        del buf[:pos]


class _Statuses:
    """The target's first header blocks decoded, for the gRPC status (or HTTP status) they carry.

    Decoding stops after `limit` blocks (or at the first it cannot decode): an attack answered a
    hundred thousand times needs no more than the first answers named, and the attacker's time
    belongs to the attack.
    """

    def __init__(self, limit: int = 256) -> None:
        self._decoder: hpack.Decoder | None = hpack.Decoder()
        self._left = limit
        self._fragments: list[bytes] = []

    def block(self, flags: int, payload: bytes, out: Counter[str], *, continued: bool = False) -> None:
        if self._decoder is None:
            return
        if not continued:
            start, stop = 0, len(payload)
            if flags & 0x8 and payload:  # PADDED
                start, stop = 1, len(payload) - payload[0]
            if flags & 0x20:  # PRIORITY
                start += 5
            payload = payload[start:stop]
        self._fragments.append(payload)
        if not flags & END_HEADERS:
            return
        block, self._fragments = b"".join(self._fragments), []
        try:
            fields = {str(k): str(v) for k, v in self._decoder.decode(block)}
        except (hpack.HPACKError, UnicodeDecodeError, ValueError):  # any ends the decoding
            self._decoder = None
            return
        if "grpc-status" in fields:
            code = fields["grpc-status"]
            out[f"grpc-status {GRPC_CODES[int(code)] if code.isdigit() and int(code) < 17 else code}"] += 1
        elif fields.get(":status", "200") != "200":
            out[f"HTTP {fields[':status']}"] += 1
        self._left -= 1
        if self._left <= 0:
            self._decoder = None


def connect_many(
    host: str, port: int, count: int, first_bytes: bytes = b"", timeout: float = 2.0
) -> tuple[list[socket.socket], int]:
    """`count` plain sockets to the target, each having written `first_bytes`; and the failures."""
    socks: list[socket.socket] = []
    failed = 0
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
            if first_bytes:
                s.sendall(first_bytes)
        except OSError:
            failed += 1
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    return socks, failed


def closed_by_peer(socks: Iterable[socket.socket]) -> set[socket.socket]:
    """Those of `socks` the target has closed (EOF or reset), reading and discarding what it sent."""
    by_fd = {s.fileno(): s for s in socks}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    found: set[socket.socket] = set()
    for fd, _ in poller.poll(0):
        s = by_fd[fd]
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    found.add(s)
                    break
                if len(chunk) < 65536:
                    break
        except BlockingIOError:
            continue
        except OSError:
            found.add(s)
    return found
