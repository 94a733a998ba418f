"""The relay's one message path: a per-call observer told each whole gRPC message of a call and its end.

The call layer (calls.py) calls an observer twice over: `on_message(call, from_client, message)`
once per message of either direction, as its last byte passes (the message whole, its 5-byte
prefix included, copied once from the frames that carried it, cut at limits.OBSERVED_MESSAGE),
and `on_end(call, outcome)` once, when the call is over. That is the whole surface a compiled
twin of sidecar/h2 calls back into: no frames, no per-frame calls. Payload capture hooks in
through `tap` (the transports' shared message seam, sidecar/core/messages.py); other users
(batching's replies, an egress proxy) implement CallObserver themselves. A call nobody observes
keeps NO_OBSERVER and its frames are counted, never copied. Knows nothing about frames, HPACK,
filters or sockets.
"""

from __future__ import annotations

from typing import Final, Protocol

from sidecar.core.call import Outcome
from sidecar.core.messages import OnMessage


class CallObserver(Protocol):
    def on_message(self, call: object, from_client: bool, message: bytes) -> None:
        """One whole message of `call`: the client's (from_client) or the model's."""
        ...

    def on_end(self, call: object, outcome: Outcome) -> None:
        """`call` is over with `outcome`: no message of it follows."""
        ...


class _NoObserver:
    __slots__ = ()

    def on_message(self, call: object, from_client: bool, message: bytes) -> None:
        pass

    def on_end(self, call: object, outcome: Outcome) -> None:
        pass


NO_OBSERVER: Final[CallObserver] = _NoObserver()


class _Tap:
    """An OnMessage callback (sidecar/core/messages.py) as a CallObserver."""

    __slots__ = ("_on_message",)

    def __init__(self, on_message: OnMessage) -> None:
        self._on_message = on_message

    def on_message(self, call: object, from_client: bool, message: bytes) -> None:
        self._on_message(from_client, message)

    def on_end(self, call: object, outcome: Outcome) -> None:
        pass


def tap(on_message: OnMessage) -> CallObserver:
    return _Tap(on_message)


class _Both:
    """Two observers of one call, told in the order they came."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: CallObserver, second: CallObserver) -> None:
        self._first = first
        self._second = second

    def on_message(self, call: object, from_client: bool, message: bytes) -> None:
        self._first.on_message(call, from_client, message)
        self._second.on_message(call, from_client, message)

    def on_end(self, call: object, outcome: Outcome) -> None:
        self._first.on_end(call, outcome)
        self._second.on_end(call, outcome)


def joined(current: CallObserver, added: CallObserver) -> CallObserver:
    """What observes a call once `added` joins `current`."""
    return added if current is NO_OBSERVER else _Both(current, added)
