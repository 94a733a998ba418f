"""The relay's two sockets as asyncio Protocols: each callback handed to the connection they belong to.

A connection's code raising from a callback is a bug, not the peer's fault: that connection
ends (RelayConnection.failed) and the process goes on. A listener at its connection cap makes no
connection: the socket is closed as accepted. A model socket is its connection's only once its
connect completed in time (ModelSocket.adopt). Knows nothing about frames.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

# How a connection opens its model socket: loop.create_connection's shape (tests give one that
# is slow to complete).
Dial = Callable[
    [Callable[[], asyncio.Protocol], str, int], Awaitable[tuple[asyncio.BaseTransport, asyncio.BaseProtocol]]
]


class Relayed(Protocol):
    """What the sockets report to the connection relaying between them."""

    def client_connected(self, transport: asyncio.Transport) -> None: ...
    def client_data(self, data: bytes) -> None: ...
    def client_lost(self) -> None: ...
    def model_connected(self, transport: asyncio.Transport) -> None: ...
    def model_data(self, data: bytes) -> None: ...
    def model_lost(self) -> None: ...
    def model_full(self, full: bool) -> None: ...
    def client_full(self, full: bool) -> None: ...
    def failed(self) -> None: ...


class ClientSocket(asyncio.Protocol):
    """The client's socket: creates its connection when accepted (None: refused, closed at once)."""

    def __init__(self, make: Callable[[], Relayed | None]) -> None:
        self._make = make
        self._conn: Relayed | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn = self._make()
        if self._conn is None:
            cast(asyncio.Transport, transport).abort()  # nothing was read or written: nothing to flush
            return
        self._conn.client_connected(cast(asyncio.Transport, transport))  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._conn is None:
            return  # refused: aborted, a read may still have been under way
        try:
            self._conn.client_data(data)
        except Exception:
            self._conn.failed()

    def eof_received(self) -> bool:
        return False  # close: a client that stops sending is done with the connection

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._conn.client_lost()

    def pause_writing(self) -> None:
        if self._conn is not None:
            self._conn.client_full(True)

    def resume_writing(self) -> None:
        if self._conn is not None:
            self._conn.client_full(False)


class ModelSocket(asyncio.Protocol):
    """The socket to the model, opened by its connection, and its connection's only once adopted.

    Until its connect has completed in time (`adopt`), it tells its connection nothing: it is not
    read, and a close is only remembered. A connect that completes after its timeout has fired
    has made the socket and had it closed under it; `give_up` makes sure it is closed and that
    nothing it hears later goes anywhere.
    """

    def __init__(self, conn: Relayed) -> None:
        self._conn = conn
        self._adopted = False
        self._transport: asyncio.Transport | None = None
        self._lost = False
        self._full = False

    def adopt(self) -> asyncio.Transport | None:
        """The connect completed in time: the connection has the transport from now on (None: it
        closed meanwhile)."""
        transport = self._transport
        if transport is None or self._lost or transport.is_closing():
            return None
        self._adopted = True
        transport.resume_reading()  # before the connection may pause it (its client is full)
        self._conn.model_connected(transport)
        if self._full:
            self._conn.model_full(True)
        return transport

    def give_up(self) -> None:
        if self._transport is not None and not self._adopted:
            self._transport.close()
        self._conn = _DETACHED

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.pause_reading()  # until adopted: the model's first bytes wait in the kernel

    def data_received(self, data: bytes) -> None:
        try:
            self._conn.model_data(data)
        except Exception:
            self._conn.failed()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._adopted:
            self._conn.model_lost()

    def pause_writing(self) -> None:
        self._full = True
        if self._adopted:
            self._conn.model_full(True)

    def resume_writing(self) -> None:
        self._full = False
        if self._adopted:
            self._conn.model_full(False)


class _Detached:
    """The connection of a model socket given up on: hears nothing."""

    def client_connected(self, transport: asyncio.Transport) -> None:
        pass

    def client_data(self, data: bytes) -> None:
        pass

    def client_lost(self) -> None:
        pass

    def model_connected(self, transport: asyncio.Transport) -> None:
        pass

    def model_data(self, data: bytes) -> None:
        pass

    def model_lost(self) -> None:
        pass

    def model_full(self, full: bool) -> None:
        pass

    def client_full(self, full: bool) -> None:
        pass

    def failed(self) -> None:
        pass


_DETACHED: Relayed = _Detached()
