"""The relay's two sockets as asyncio Protocols: each callback handed to the connection they belong to.

A connection's code raising from a callback is a bug, not the peer's fault: that connection
ends (RelayConnection.failed) and the process goes on. Knows nothing about frames.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, cast


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
    """The client's socket: creates its connection when accepted."""

    def __init__(self, make: Callable[[], Relayed]) -> None:
        self._make = make
        self._conn: Relayed | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn = self._make()
        self._conn.client_connected(cast(asyncio.Transport, transport))  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        assert self._conn is not None
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
    """The socket to the model, opened by its connection."""

    def __init__(self, conn: Relayed) -> None:
        self._conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn.model_connected(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        try:
            self._conn.model_data(data)
        except Exception:
            self._conn.failed()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn.model_lost()

    def pause_writing(self) -> None:
        self._conn.model_full(True)

    def resume_writing(self) -> None:
        self._conn.model_full(False)
