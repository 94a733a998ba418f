"""What a relayed connection writes to its two peers, written together; and when the client is read.

Frames are queued and written together: everything one read (or one verdict) produced goes out
in one send() per direction when that callback ends (`begin`/`end`), instead of one per frame
(a syscall was the largest cost). Frames queued outside such a callback go out on the next loop
turn. Connection-level flow-control credit (WINDOW_UPDATE on stream 0) is held and sent with
the next write the same way goes, and at the latest CREDIT_DELAY later or once CREDIT_HELD is
owed: each side sends one per call, and most of those then cost no write of their own. Reading
from the client pauses while any reason to hold it holds: the model's socket is full, a call
awaiting its verdict holds too many bytes, the client's own socket is full, or the rest of a
large read waits its turn on the loop. A client that reads nothing is bounded: past
CLIENT_WRITE_HIGH queued towards it, reading stops from it and from the model; past WRITE_MAX, or paused for
WRITE_STALL seconds, it is dropped (`drop` is told why). Knows nothing about frames but
WINDOW_UPDATE.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

from sidecar.h2 import frames as f
from sidecar.h2.limits import CLIENT_WRITE_HIGH, CREDIT_DELAY, CREDIT_HELD, WRITE_HIGH, WRITE_MAX, WRITE_STALL


class Hold(enum.Enum):
    """A reason to stop reading from the client."""

    AWAITING = "awaiting"  # its frames wait (the model connection opens, a new call awaits its
    # verdict) and hold too many bytes
    MODEL_FULL = "model-full"  # the model's socket cannot take more
    CLIENT_FULL = "client-full"  # the client reads nothing: what it sends would queue more for it
    BACKLOG = "backlog"  # the rest of a read past the read budget waits for the next loop turn


def _keep(kind: str) -> None:
    pass


class Outbox:
    __slots__ = (
        "_client_full",
        "_client_high",
        "_client_out",
        "_credit_client",
        "_credit_delay",
        "_credit_held",
        "_credit_model",
        "_credit_timer",
        "_depth",
        "_drop",
        "_due",
        "_held",
        "_loop",
        "_model_out",
        "_soon",
        "_stall_timer",
        "_write_high",
        "_write_max",
        "_write_stall",
        "client",
        "model",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        credit_delay: float = CREDIT_DELAY,
        credit_held: int = CREDIT_HELD,
        write_high: int = WRITE_HIGH,
        client_high: int = CLIENT_WRITE_HIGH,
        write_max: int = WRITE_MAX,
        write_stall: float = WRITE_STALL,
        drop: Callable[[str], None] = _keep,
    ) -> None:
        """`drop(kind)`: the client reads too little to keep ("write_buffer", "write_stall")."""
        self._loop = loop
        self._credit_delay = credit_delay
        self._credit_held = credit_held
        self._write_high = write_high  # the model's socket
        self._client_high = client_high
        self._write_max = write_max
        self._write_stall = write_stall
        self._drop = drop
        self._client_full = False  # its socket is past write_high
        self._stall_timer: asyncio.TimerHandle | None = None
        self.client: asyncio.Transport | None = None
        self.model: asyncio.Transport | None = None
        self._client_out: list[bytes] = []
        self._model_out: list[bytes] = []
        self._soon = False
        self._depth = 0
        self._held: set[Hold] = set()
        self._credit_model = 0  # connection credit owed to the model
        self._credit_client = 0  # and to the client
        self._credit_timer: asyncio.TimerHandle | None = None
        self._due = False

    def attach_client(self, transport: asyncio.Transport) -> None:
        self.client = transport
        transport.set_write_buffer_limits(high=self._client_high)

    def attach_model(self, transport: asyncio.Transport) -> None:
        self.model = transport
        transport.set_write_buffer_limits(high=self._write_high)
        if self._client_full:
            transport.pause_reading()

    def begin(self) -> None:
        self._depth += 1

    def end(self) -> None:
        self._depth -= 1
        if not self._depth:
            self.flush()

    def to_client(self, data: bytes) -> None:
        self._client_out.append(data)
        if not self._soon and not self._depth:
            self._soon = True
            self._loop.call_soon(self.flush)

    def to_model(self, data: bytes) -> None:
        self._model_out.append(data)
        if not self._soon and not self._depth:
            self._soon = True
            self._loop.call_soon(self.flush)

    def credit_model(self, increment: int) -> None:
        self._credit_model += increment
        self._credit_soon(self._credit_model)

    def credit_client(self, increment: int) -> None:
        self._credit_client += increment
        self._credit_soon(self._credit_client)

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
        if self._credit_model and (self._model_out or self._due):
            self._model_out.append(f.window_update(0, self._credit_model))
            self._credit_model = 0
        if self._credit_client and (self._client_out or self._due):
            self._client_out.append(f.window_update(0, self._credit_client))
            self._credit_client = 0
        self._due = False
        if self._credit_timer is not None and not (self._credit_model or self._credit_client):
            self._credit_timer.cancel()  # all went with this write
            self._credit_timer = None
        if self._model_out:
            data = b"".join(self._model_out)
            self._model_out.clear()
            if self.model is not None and not self.model.is_closing():
                self.model.write(data)
        if self._client_out:
            data = b"".join(self._client_out)
            self._client_out.clear()
            # A closed transport raises on write (uvloop); the peer may have gone meanwhile.
            client = self.client
            if client is not None and not client.is_closing():
                client.write(data)
                if self._client_full and client.get_write_buffer_size() > self._write_max:
                    self._drop("write_buffer")

    def close(self) -> None:
        if self._credit_timer is not None:
            self._credit_timer.cancel()
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        self.flush()
        for transport in (self.client, self.model):
            if transport is not None:
                transport.close()

    def abort_client(self) -> None:
        """Drop the client: what is queued for it is discarded (a close would wait for it to be read)."""
        self._client_out.clear()
        if self.client is not None:
            self.client.abort()

    def close_client(self) -> None:
        self.flush()
        if self.client is not None:
            self.client.close()

    def detach_model(self) -> None:
        """The model connection is gone: what is queued for it, or will be, goes nowhere."""
        self.model = None

    def hold_client(self, reason: Hold, hold: bool) -> None:
        """Pause reading from the client while any reason holds; resume when none does."""
        if hold:
            self._held.add(reason)
        else:
            self._held.discard(reason)
        client = self.client
        if client is None or client.is_closing():
            return
        if self._held and client.is_reading():
            client.pause_reading()
        elif not self._held and not client.is_reading():
            client.resume_reading()

    def client_full(self, full: bool) -> None:
        """The client's socket cannot take more: stop reading from the model and from the client
        until it can, for at most write_stall seconds."""
        self._client_full = full
        model = self.model
        if model is not None and not model.is_closing() and model.is_reading() == full:
            if full:
                model.pause_reading()
            else:
                model.resume_reading()
        self.hold_client(Hold.CLIENT_FULL, full)
        if full and self._stall_timer is None:
            self._stall_timer = self._loop.call_later(self._write_stall, self._stalled)
        elif not full and self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _stalled(self) -> None:
        self._stall_timer = None
        self._drop("write_stall")
