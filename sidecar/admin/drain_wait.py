"""The drain-wait listener (pod IP): GET /drained answers once the sidecar's drain is done.

It exists for a model container's preStop hook: the kubelet runs an httpGet hook against the
pod IP (never loopback), and a model image may have no shell or curl for an exec hook. It is
read-only: it never starts a drain (that is POST /admin/drain on the loopback admin listener,
which the sidecar's own preStop calls), so anyone who reaches it can learn when the pod drains
and hold a connection, nothing more. Knows nothing about what a drain does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from aiohttp import web

# How long a waiter waits for a drain to begin. The sidecar's preStop starts the drain at the same
# moment as the model's preStop starts waiting (the kubelet runs both at once), so a drain that
# has not begun by then is not coming: the model's hook fails and the kubelet stops the model.
START_GRACE: Final = 10.0
# Waiters held at once; more are refused, so connections held here stay bounded.
MAX_WAITERS: Final = 16


class DrainWaitListener:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        draining: asyncio.Event,
        drained: asyncio.Event,
        start_grace: float = START_GRACE,
        max_waiters: int = MAX_WAITERS,
    ) -> None:
        self._host, self._requested_port, self._port = host, port, 0
        self._draining, self._drained = draining, drained
        self._start_grace, self._max_waiters = start_grace, max_waiters
        self._waiters = 0
        app = web.Application()
        app.router.add_get("/drained", self._get_drained)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._requested_port).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _get_drained(self, request: web.Request) -> web.Response:
        if self._waiters >= self._max_waiters:
            return web.json_response({"error": f"{self._max_waiters} waiters already"}, status=503)
        self._waiters += 1
        try:
            if not self._draining.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._start_grace):
                        await self._draining.wait()
            if not self._draining.is_set():
                return web.json_response(
                    {"error": f"no drain began within {self._start_grace:g}s"}, status=409
                )
            await self._drained.wait()
            return web.json_response({"drained": True})
        finally:
            self._waiters -= 1
