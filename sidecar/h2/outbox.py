"""What a relayed connection writes to its two peers, written together; and when the client is read.

Frames are queued and written together: everything one read (or one verdict) produced goes out
in one send() per direction when that callback ends (`begin`/`end`), instead of one per frame
(a syscall was the largest cost). Frames queued outside such a callback go out on the next loop
turn. Connection-level flow-control credit (WINDOW_UPDATE on stream 0) is held and sent with
the next write the same way goes, and at the latest CREDIT_DELAY later or once CREDIT_HELD is
owed: each side sends one per call, and most of those then cost no write of their own. Reading
from the client pauses while any reason to hold it holds: the model's socket is full, or a call
awaiting its verdict holds too many bytes. Knows nothing about frames but WINDOW_UPDATE.
"""

from __future__ import annotations

import asyncio

from sidecar.h2 import frames as f
from sidecar.h2.limits import CREDIT_DELAY, CREDIT_HELD, WRITE_HIGH


class Outbox:
    __slots__ = (
        "_credit_delay",
        "_credit_down",
        "_credit_held",
        "_credit_timer",
        "_credit_up",
        "_depth",
        "_down_out",
        "_due",
        "_held",
        "_loop",
        "_soon",
        "_up_out",
        "_write_high",
        "down",
        "up",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        credit_delay: float = CREDIT_DELAY,
        credit_held: int = CREDIT_HELD,
        write_high: int = WRITE_HIGH,
    ) -> None:
        self._loop = loop
        self._credit_delay = credit_delay
        self._credit_held = credit_held
        self._write_high = write_high
        self.down: asyncio.Transport | None = None  # the client's socket
        self.up: asyncio.Transport | None = None  # the model's socket
        self._down_out: list[bytes] = []
        self._up_out: list[bytes] = []
        self._soon = False
        self._depth = 0
        self._held: set[str] = set()
        self._credit_up = 0  # connection credit owed to the model
        self._credit_down = 0  # and to the client
        self._credit_timer: asyncio.TimerHandle | None = None
        self._due = False

    def attach_client(self, transport: asyncio.Transport) -> None:
        self.down = transport
        transport.set_write_buffer_limits(high=self._write_high)

    def attach_model(self, transport: asyncio.Transport) -> None:
        self.up = transport
        transport.set_write_buffer_limits(high=self._write_high)

    def begin(self) -> None:
        self._depth += 1

    def end(self) -> None:
        self._depth -= 1
        if not self._depth:
            self.flush()

    def to_client(self, data: bytes) -> None:
        self._down_out.append(data)
        if not self._soon and not self._depth:
            self._soon = True
            self._loop.call_soon(self.flush)

    def to_model(self, data: bytes) -> None:
        self._up_out.append(data)
        if not self._soon and not self._depth:
            self._soon = True
            self._loop.call_soon(self.flush)

    def credit_model(self, increment: int) -> None:
        self._credit_up += increment
        self._credit_soon(self._credit_up)

    def credit_client(self, increment: int) -> None:
        self._credit_down += increment
        self._credit_soon(self._credit_down)

    def _credit_soon(self, owed: int) -> None:
        if owed >= self._credit_held:
            self._due = True
            if not self._soon and not self._depth:
                self._soon = True
                self._loop.call_soon(self.flush)
        elif self._credit_timer is None:
            self._credit_timer = self._loop.call_later(self._credit_delay, self._credit_expired)

    def _credit_expired(self) -> None:
        self._credit_timer = None
        self._due = True
        self.flush()

    def flush(self) -> None:
        self._soon = False
        if self._credit_up and (self._up_out or self._due):
            self._up_out.append(f.window_update(0, self._credit_up))
            self._credit_up = 0
        if self._credit_down and (self._down_out or self._due):
            self._down_out.append(f.window_update(0, self._credit_down))
            self._credit_down = 0
        self._due = False
        if self._credit_timer is not None and not (self._credit_up or self._credit_down):
            self._credit_timer.cancel()  # all went with this write
            self._credit_timer = None
        if self._up_out:
            data = b"".join(self._up_out)
            self._up_out.clear()
            if self.up is not None and not self.up.is_closing():
                self.up.write(data)
        if self._down_out:
            data = b"".join(self._down_out)
            self._down_out.clear()
            # A closed transport raises on write (uvloop); the peer may have gone meanwhile.
            if self.down is not None and not self.down.is_closing():
                self.down.write(data)

    def close(self) -> None:
        if self._credit_timer is not None:
            self._credit_timer.cancel()
        self.flush()
        for transport in (self.down, self.up):
            if transport is not None:
                transport.close()

    def close_client(self) -> None:
        self.flush()
        if self.down is not None:
            self.down.close()

    def hold_client(self, reason: str, hold: bool) -> None:
        """Pause reading from the client while any reason holds; resume when none does."""
        if hold:
            self._held.add(reason)
        else:
            self._held.discard(reason)
        down = self.down
        if down is None or down.is_closing():
            return
        if self._held and down.is_reading():
            down.pause_reading()
        elif not self._held and not down.is_reading():
            down.resume_reading()

    def client_full(self, full: bool) -> None:
        """The client's socket cannot take more: stop reading from the model until it can."""
        up = self.up
        if up is not None and not up.is_closing() and up.is_reading() == full:
            if full:
                up.pause_reading()
            else:
                up.resume_reading()
