"""The per-call message seam: a transport hands each message of a call a filter observes, whole, to one
callback. Knows nothing about transports or what observers do.

A filter that wants a call's payloads (capture) calls `observe` on the call's exchange before
calling `next`; from then on the transport calls `on_message(from_client, data)` once per message
as it crosses, in each direction, with bytes it already holds or one copy of them. `data` starts
`message_offset` bytes into the message's frame (the relay hands gRPC's 5-byte prefix along;
others hand the message alone), and `message_format` says what the message is: "protobuf" (the
method's gRPC message) or "json" (an OIP REST body). Calls no filter observes cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol, cast

OnMessage = Callable[[bool, bytes], None]
PROTOBUF: Final = "protobuf"
JSON: Final = "json"


def unobserved(from_client: bool, data: bytes) -> None:
    """The callback of a call no filter observes."""


class Observable(Protocol):
    @property
    def message_offset(self) -> int: ...

    @property
    def message_format(self) -> str: ...

    def observe(self, on_message: OnMessage) -> None: ...


def observable(exchange: object) -> Observable | None:
    """The exchange if its transport hands messages over, else None. A plain attribute look-up:
    isinstance() against a runtime-checkable Protocol costs tens of microseconds a call."""
    return cast(Observable, exchange) if hasattr(exchange, "observe") else None
