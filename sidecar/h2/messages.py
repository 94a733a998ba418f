"""gRPC's length-prefixed messages (gRPC over HTTP/2: 1-byte compressed flag, 4-byte length, body) in DATA.

Counts the message bytes of one direction of a stream as its DATA frames pass, wherever the
frames split the messages. Knows nothing about frames beyond their payload bytes, or about HPACK.
"""

from __future__ import annotations

from sidecar.h2.limits import EXACT_MESSAGES


class MessageBytes:
    """The message bytes in one direction of a gRPC stream's DATA, without each message's 5-byte
    prefix (gRPC over HTTP/2: compressed flag, 4-byte length): what grpcio's handlers count.
    Exact for the first EXACT_MESSAGES messages; after those, prefixes count as message bytes."""

    @property
    def counted(self) -> int | None:
        """The total, or None without a message (as grpcio reports a call that got no reply)."""
        return self.total if self.messages else None

    __slots__ = ("_left", "_prefix", "messages", "total")

    def __init__(self) -> None:
        self.total = 0
        self.messages = 0
        self._left = 0  # bytes of the current message still to come
        self._prefix = b""  # a prefix split across DATA frames

    def add(self, data: bytes, start: int, end: int) -> None:
        if self.messages >= EXACT_MESSAGES:
            # Past this many, DATA bytes stand for message bytes: walking a flood of empty
            # messages one by one would cost the relay ~25x what their bytes cost to forward.
            self.total += end - start
            return
        if not self._left and not self._prefix and end - start >= 5:
            # The usual case: this DATA starts a message and holds its whole prefix.
            size = int.from_bytes(data[start + 1 : start + 5], "big")
            self.messages += 1
            if end - start - 5 <= size:
                self._left = size - (end - start - 5)
                self.total += end - start - 5
                return
            self.total += size
            start += 5 + size
        pos = start
        while pos < end:
            if self._left:
                take = min(self._left, end - pos)
                self._left -= take
                self.total += take
                pos += take
                continue
            need = 5 - len(self._prefix)
            self._prefix += data[pos : min(pos + need, end)]
            pos += need
            if len(self._prefix) == 5:
                self.messages += 1
                self._left = int.from_bytes(self._prefix[1:], "big")
                self._prefix = b""
                if self.messages >= EXACT_MESSAGES and pos < end:
                    self.total += end - pos
                    return
