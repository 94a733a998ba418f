"""RESP2, the Redis protocol: commands encoded, replies parsed incrementally. No I/O."""

from __future__ import annotations

from typing import Final, TypeAlias, Union

CRLF: Final = b"\r\n"
MAX_BULK: Final = 16 << 20
MAX_DEPTH: Final = 8

Reply: TypeAlias = Union[bytes, int, list["Reply"], "ReplyError", None]


class ReplyError(Exception):
    """An error reply (`-ERR ...`, `-NOSCRIPT ...`)."""


class ProtocolError(Exception):
    """Bytes that are not RESP2: the connection cannot go on."""


class _Incomplete(Exception):
    pass


def command(*args: bytes | str | int | float) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def parse(buf: bytes | bytearray, pos: int) -> tuple[Reply, int] | None:
    """One reply from buf[pos:] and the position after it; None if the buffer holds only part of one."""
    try:
        return _parse(buf, pos, 0)
    except _Incomplete:
        return None


def _line(buf: bytes | bytearray, pos: int) -> tuple[bytes, int]:
    end = buf.find(CRLF, pos)
    if end < 0:
        if len(buf) - pos > 64 * 1024:
            raise ProtocolError("a reply line longer than 64 KiB")
        raise _Incomplete
    return bytes(buf[pos:end]), end + 2


def _parse(buf: bytes | bytearray, pos: int, depth: int) -> tuple[Reply, int]:
    if pos >= len(buf):
        raise _Incomplete
    kind = buf[pos : pos + 1]
    line, after = _line(buf, pos + 1)
    if kind == b"+":
        return line, after
    if kind == b"-":
        return ReplyError(line.decode(errors="replace")), after
    if kind == b":":
        return int(line), after
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, after
        if n > MAX_BULK:
            raise ProtocolError(f"a bulk reply of {n} bytes")
        if len(buf) < after + n + 2:
            raise _Incomplete
        return bytes(buf[after : after + n]), after + n + 2
    if kind == b"*":
        n = int(line)
        if n < 0:
            return None, after
        if depth >= MAX_DEPTH:
            raise ProtocolError("replies nested too deep")
        items: list[Reply] = []
        for _ in range(n):
            item, after = _parse(buf, after, depth + 1)
            items.append(item)
        return items, after
    raise ProtocolError(f"unknown reply type {kind!r}")
