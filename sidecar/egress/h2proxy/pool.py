"""Pooled upstream HTTP/2 connections: per instance address, as few as its stream limit allows.

A try asks for a connection to its instance: the newest usable one with room for a stream,
else a new one (concurrent tries share one being opened). Connections of instances that left
discovery go away: no new streams, closed when their last stream ends, cut after a grace.
Knows nothing about calls or routing.
"""

from __future__ import annotations

import asyncio
import logging

from sidecar.discovery.endpoint import Snapshot
from sidecar.egress.h2proxy.upstream import Upstream

log = logging.getLogger(__name__)


class UpstreamPool:
    def __init__(self, drain_grace: float = 5.0) -> None:
        self._by_address: dict[str, list[Upstream]] = {}
        self._drain_grace = drain_grace
        self._closing: set[asyncio.TimerHandle] = set()

    def ready(self, address: str) -> Upstream | None:
        """A connected connection to `address` with room for one more stream, if there is one."""
        conns = self._by_address.get(address)
        if conns:
            for conn in reversed(conns):
                if conn.usable and not conn.full and conn.connected.done():
                    return conn
        return None

    async def connection(self, address: str) -> Upstream:
        """A connection to `address` with room for one more stream; OSError if it cannot be opened."""
        conns = self._by_address.get(address)
        if conns:
            for conn in reversed(conns):
                if conn.usable and not conn.full:
                    if not conn.connected.done():
                        await conn.connected
                    return conn
            conns[:] = [c for c in conns if c.usable]
        loop = asyncio.get_running_loop()
        conn = Upstream(loop, address)
        self._by_address.setdefault(address, []).append(conn)
        host, _, port = address.rpartition(":")
        try:
            await loop.create_connection(lambda: conn, host.strip("[]"), int(port))
        except BaseException as e:
            self._forget(conn)
            if not conn.connected.done():
                conn.connected.set_exception(ConnectionError(f"connect to {address}: {e}"))
                conn.connected.exception()  # retrieved: the tries awaiting it see it
            raise
        return conn

    def _forget(self, conn: Upstream) -> None:
        conns = self._by_address.get(conn.address)
        if conns is not None and conn in conns:
            conns.remove(conn)
            if not conns:
                del self._by_address[conn.address]

    def retain(self, snapshot: Snapshot) -> None:
        """Instances no longer discovered: their connections take no new stream and close once idle."""
        live = {e.grpc_address for eps in snapshot.apps.values() for e in eps}
        for address in [a for a in self._by_address if a not in live]:
            log.info("egress: closing the connections to %s (left discovery)", address)
            for conn in self._by_address.pop(address):
                self._go_away(conn)

    def _go_away(self, conn: Upstream) -> None:
        conn.going_away = True
        if not conn.streams:
            conn.close()
            return
        loop = asyncio.get_running_loop()
        handle = loop.call_later(self._drain_grace, conn.close)
        self._closing.add(handle)

    async def close(self) -> None:
        for handle in self._closing:
            handle.cancel()
        self._closing.clear()
        conns = [c for cs in self._by_address.values() for c in cs]
        self._by_address.clear()
        for conn in conns:
            conn.close()
