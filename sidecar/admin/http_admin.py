"""The admin listener (loopback by default): POST /admin/drain, GET /registry, GET /hosts/{app}, GET /policy.

Reads the discovery snapshot and the registration state; triggers the drain
through a callback. Knows nothing about ingress.

POST /admin/drain answers 202 at once and the process exits once drained. With `?wait=true` (a
preStop hook's call) it answers 200 when the drain is done, and the process then stays up until
SIGTERM: Kubernetes restarts a native sidecar that exits while the pod's other containers still
run, and a restarted sidecar would register again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from sidecar.discovery.endpoint import Discovery


class AdminListener:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        discovery: Discovery,
        registration: Callable[[], dict[str, object]],
        egress: Callable[[], dict[str, object]],
        drain: Callable[[bool], None],
        drained: asyncio.Event,
        policy: Callable[[], dict[str, object]] = lambda: {"version": None},
    ) -> None:
        """`policy` describes the active governance policy: its version, hash, source, last error."""
        self._host, self._requested_port, self._port = host, port, 0
        self._discovery = discovery
        self._registration = registration
        self._egress = egress
        self._drain = drain
        self._drained = drained
        self._policy = policy
        app = web.Application()
        app.router.add_post("/admin/drain", self._post_drain)
        app.router.add_get("/registry", self._get_registry)
        app.router.add_get("/hosts/{app}", self._get_hosts)
        app.router.add_get("/egress", self._get_egress)
        app.router.add_get("/policy", self._get_policy)
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._requested_port).start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _post_drain(self, request: web.Request) -> web.Response:
        wait = request.query.get("wait", "false")
        if wait not in ("true", "false"):
            return web.json_response({"error": f"wait: {wait!r} is not true or false"}, status=400)
        self._drain(wait == "true")
        if wait == "false":
            return web.json_response({"draining": True}, status=202)
        await self._drained.wait()
        return web.json_response({"drained": True})

    async def _get_registry(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "registration": self._registration(),
                "discovery": self._discovery.current.to_json(),
                "discovery_fetches": self._discovery.stats(),
            }
        )

    async def _get_egress(self, request: web.Request) -> web.Response:
        return web.json_response(self._egress())

    async def _get_policy(self, request: web.Request) -> web.Response:
        return web.json_response(self._policy())

    async def _get_hosts(self, request: web.Request) -> web.Response:
        # The shape of Spring Cloud Netflix Sidecar's /hosts/{serviceId}.
        app = request.match_info["app"]
        return web.json_response(
            [
                {
                    "serviceId": e.app.lower(),
                    "instanceId": e.instance_id,
                    "host": e.host,
                    "port": e.http_port,
                    "uri": f"http://{e.host}:{e.http_port}",
                    "secure": False,
                    "metadata": dict(e.metadata),
                }
                for e in self._discovery.current.endpoints(app)
            ]
        )
