"""A CloudEvents collector for tests: an aiohttp server on loopback, in a thread of its own, that reads each
POST with the CloudEvents SDK (binary mode, as any consumer of KServe's logger would) and keeps it.

It can be stopped and started again on the same port (a sink outage), and answers every event 200.
Knows nothing about the sidecar.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from tests.support.procs import HOST, free_port


class EventCollector:
    def __init__(self) -> None:
        self.port = free_port()
        # The SDK's events: e["id"], e.get_attributes(), e.get_data() (bytes, or JSON parsed).
        self.events: list[Any] = []
        self.errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="event-collector", daemon=True)
        self._runner: web.AppRunner | None = None
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self) -> None:
        self._run(self._start())

    def stop(self) -> None:
        """Close the port: the sink is down (connections refused) until start()."""
        self._run(self._stop())

    def close(self) -> None:
        self._run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port, reuse_address=True).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        from cloudevents.v1.http import from_http

        body = await request.read()
        try:
            event = from_http(dict(request.headers), body)
        except Exception as e:  # a consumer that cannot read the event: the test fails on it
            self.errors.append(f"{type(e).__name__}: {e}")
            return web.Response(status=400)
        self.events.append(event)
        return web.Response(status=200)

    def __enter__(self) -> EventCollector:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
