"""gRPC's length-prefixed messages (gRPC over HTTP/2: 1-byte compressed flag, 4-byte length, body) in DATA.

MessageBytes counts the message bytes of one direction of a stream as its DATA frames pass,
wherever the frames split the messages; MessageObserver also hands each whole message up, for
the calls the layer above asked to see (streams.py says when). Knows nothing about HPACK or
stream states; of frames, only DATA's header and padding.
"""

from __future__ import annotations

from collections.abc import Callable

from sidecar.h2 import frames as f
from sidecar.h2.limits import EXACT_MESSAGES, OBSERVED_MESSAGE


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

    def frame(self, buf: bytes, pos: int, end: int) -> None:
        """Count the DATA frame buf[pos:end] (its 9-byte header included), without its padding."""
        start = pos + f.HEADER_LEN
        if buf[pos + 4] & f.PADDED and start < end:
            end -= buf[start]
            start += 1
        size = end - start - 5
        if size >= 0 and not self._left and not self._prefix and self.messages < EXACT_MESSAGES:
            # add()'s usual case, inline (a call per DATA frame is most of what counting costs):
            # this DATA starts a message, and the message does not end before the frame does.
            length = int.from_bytes(buf[start + 1 : start + 5], "big")
            if size <= length:
                self.messages += 1
                self._left = length - size
                self.total += size
                return
        self.add(buf, start, end)

    def add(self, data: bytes, start: int, end: int) -> None:
        """Count the DATA payload bytes data[start:end]."""
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


class MessageObserver(MessageBytes):
    """Counts as MessageBytes does, exactly for every message, and hands each message to `deliver`
    whole (its 5-byte prefix included) as its last byte passes: copied once when one DATA frame
    holds it, joined once when it spans several. A message longer than `max_message` is handed up
    cut short there; its prefix still says how long it was."""

    __slots__ = ("_deliver", "_max", "_message")

    def __init__(self, deliver: Callable[[bytes], None], max_message: int = OBSERVED_MESSAGE) -> None:
        super().__init__()
        self._deliver = deliver
        self._max = max_message
        self._message = bytearray()  # the message so far, when DATA frames split it

    def frame(self, buf: bytes, pos: int, end: int) -> None:
        start = pos + f.HEADER_LEN
        if buf[pos + 4] & f.PADDED and start < end:
            end -= buf[start]
            start += 1
        self.add(buf, start, end)

    def add(self, data: bytes, start: int, end: int) -> None:
        message, pos = self._message, start
        while pos < end:
            if not message and end - pos >= 5:
                size = int.from_bytes(data[pos + 1 : pos + 5], "big")
                if end - pos - 5 >= size and size <= self._max:
                    # Whole in this frame: one copy, no joining.
                    self.messages += 1
                    self.total += size
                    self._deliver(data[pos : pos + 5 + size])
                    pos += 5 + size
                    continue
            if len(message) < 5:
                take = min(5 - len(message), end - pos)
                message += memoryview(data)[pos : pos + take]
                pos += take
                if len(message) < 5:
                    return
                self.messages += 1
                self._left = int.from_bytes(message[1:5], "big")
            take = min(self._left, end - pos)
            room = self._max + 5 - len(message)
            if room > 0:
                message += memoryview(data)[pos : pos + min(take, room)]
            self._left -= take
            self.total += take
            pos += take
            if not self._left:
                self._deliver(bytes(message))
                message.clear()
