"""The loopback gRPC egress on the stream-level HTTP/2 proxy: accepts clients, owns the upstream pool.

Each accepted socket is a Downstream (downstream.py); every call on it runs the egress filters
once and the router's tries through the per-try filters (calls.py). Same seam as the grpc.aio
egress (grpc_listener.py): port, start, stop. Knows nothing about frames.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

from sidecar.discovery.endpoint import Snapshot
from sidecar.egress.attempts import AttemptChain
from sidecar.egress.h2proxy.calls import Proxy, forward
from sidecar.egress.h2proxy.downstream import Downstream
from sidecar.egress.h2proxy.pool import UpstreamPool
from sidecar.egress.router import EgressRouter
from sidecar.filters.chain import Filter, build_chain

log = logging.getLogger(__name__)


class ProxyEgress:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        router: EgressRouter,
        filters: Sequence[Filter],
        max_message_bytes: int,
        attempt_filters: Sequence[Filter] = (),
    ) -> None:
        """`filters` run once per call, `attempt_filters` once per try (sidecar/egress/attempts.py);
        a request of up to `max_message_bytes` is held for a retry."""
        self._host = host
        self._requested_port = port
        self._port = 0
        self.pool = UpstreamPool()
        self._proxy = Proxy(router, self.pool, AttemptChain(attempt_filters), max_message_bytes)
        self._chain = build_chain(filters, forward)
        self._server: asyncio.Server | None = None
        self._connections: set[Downstream] = set()

    @property
    def port(self) -> int:
        return self._port

    def retain(self, snapshot: Snapshot) -> None:
        self.pool.retain(snapshot)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self._accept, self._host, self._requested_port, reuse_address=True
            )
        except OSError as e:
            # As every listener says it: which one, where and why (cli.py prints it as one line).
            why = os.strerror(e.errno) if e.errno else str(e)  # uvloop's text repeats the address
            raise OSError(
                f"cannot listen for gRPC egress on {self._host}:{self._requested_port}: {why.lower()}"
            ) from None
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("egress: gRPC proxy listening on %s:%d (routes by :authority or x-sidecar-target)",
                 self._host, self._port)  # fmt: skip

    def _accept(self) -> Downstream:
        conn = Downstream(asyncio.get_running_loop(), self._proxy, self._chain, self._connections.discard)
        self._connections.add(conn)
        return conn

    async def stop(self, grace: float) -> None:
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*(c.shutdown(grace) for c in list(self._connections)))
        await self.pool.close()
