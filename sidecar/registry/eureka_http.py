"""Eureka's REST API over aiohttp, failing over between server URLs; aiohttp errors become EurekaError.

Why not py-eureka-client's client: it owns its own threads or loop tasks for
heartbeats and refresh (its 0.13.x `stop()` leaves the heartbeat running, so a
deregistered instance comes back UP; it can stop refreshing after a server
restart; metadata read as XML doubles `_`; async `on_error` callbacks are
never awaited). The sidecar needs the opposite: one asyncio loop, status codes
it can act on (404 on a heartbeat means register again), JSON everywhere, and
start/stop order owned by the composition root. So this module speaks the
protocol directly; the logic it needs is small and tested against the real
Spring Cloud Eureka server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

_JSON = {"Accept": "application/json", "Content-Type": "application/json"}


class EurekaError(Exception):
    """Eureka answered, but not with what the protocol expects."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class EurekaUnreachable(EurekaError):
    """No configured Eureka server could be reached (or each answered 5xx)."""


class EurekaHttp:
    def __init__(self, urls: Sequence[str], session: aiohttp.ClientSession, timeout: float = 5.0) -> None:
        if not urls:
            raise ValueError("at least one Eureka URL is needed")
        self.urls = tuple(u.rstrip("/") for u in urls)
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._current = 0  # the last server that answered; tried first

    async def register(self, app: str, document: dict[str, Any]) -> None:
        status, _ = await self._request("POST", f"/apps/{app}", json=document)
        if status not in (200, 204):
            raise EurekaError(f"register {app}: Eureka answered HTTP {status}", status)

    async def heartbeat(self, app: str, instance_id: str) -> bool:
        """Renew the lease. False when Eureka does not know the instance (register again)."""
        status, _ = await self._request("PUT", f"/apps/{app}/{instance_id}")
        if status == 404:
            return False
        if status != 200:
            raise EurekaError(f"heartbeat {app}/{instance_id}: Eureka answered HTTP {status}", status)
        return True

    async def override_status(self, app: str, instance_id: str, value: str) -> None:
        status, _ = await self._request("PUT", f"/apps/{app}/{instance_id}/status", params={"value": value})
        if status != 200:
            raise EurekaError(f"status {value} for {app}/{instance_id}: HTTP {status}", status)

    async def deregister(self, app: str, instance_id: str) -> None:
        status, _ = await self._request("DELETE", f"/apps/{app}/{instance_id}")
        if status not in (200, 404):
            raise EurekaError(f"deregister {app}/{instance_id}: Eureka answered HTTP {status}", status)

    async def applications(self) -> Any:
        return await self._get("/apps/")

    async def delta(self) -> Any:
        return await self._get("/apps/delta")

    async def _get(self, path: str) -> Any:
        status, body = await self._request("GET", path)
        if status != 200:
            raise EurekaError(f"GET {path}: Eureka answered HTTP {status}", status)
        return body

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        errors = []
        n = len(self.urls)
        for i in range(n):
            index = (self._current + i) % n
            url = self.urls[index] + path
            try:
                async with self._session.request(
                    method, url, json=json, params=params, headers=_JSON, timeout=self._timeout
                ) as resp:
                    if resp.status >= 500:
                        errors.append(f"{url}: HTTP {resp.status}")
                        continue
                    body = (
                        await resp.json(content_type=None) if resp.status == 200 and method == "GET" else None
                    )
                    if index != self._current:
                        log.info("eureka: now using %s", self.urls[index])
                        self._current = index
                    return resp.status, body
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                errors.append(f"{url}: {type(e).__name__}: {e}")
        raise EurekaUnreachable("no Eureka server answered: " + "; ".join(errors))
