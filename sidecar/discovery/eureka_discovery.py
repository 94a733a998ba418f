"""The Eureka registry cache: a full fetch, then deltas every interval, reconciled by hash code.

A supervised background task that publishes immutable Snapshots and tells
watchers when one changes; the request path only reads `current`. When Eureka
is unreachable the last snapshot stays in force.
"""

from __future__ import annotations

import asyncio
import logging

from sidecar.discovery.endpoint import Endpoint, Snapshot, Watcher, snapshot
from sidecar.discovery.eureka_registry import (
    Applications,
    EurekaFormatError,
    apply_delta,
    endpoints,
    parse_full,
)
from sidecar.registry.eureka_http import EurekaError, EurekaHttp

log = logging.getLogger(__name__)


class EurekaDiscovery:
    def __init__(self, http: EurekaHttp, interval: float) -> None:
        self._http = http
        self._interval = interval
        self._apps: Applications | None = None
        self.current = Snapshot()
        self._watchers: list[Watcher] = []
        self._fetches = {"full": 0, "delta": 0}

    def watch(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    def stats(self) -> dict[str, int]:
        return dict(self._fetches)

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (EurekaError, EurekaFormatError) as e:
                log.warning("discovery: refresh failed, keeping the last snapshot: %s", e)
            await asyncio.sleep(self._interval)

    async def refresh(self) -> None:
        if self._apps is None:
            apps = parse_full(await self._http.applications())
            self._fetches["full"] += 1
        else:
            apps, consistent = apply_delta(self._apps, await self._http.delta())
            self._fetches["delta"] += 1
            if not consistent:
                log.info("discovery: hash code differs after delta; fetching the full registry")
                apps = parse_full(await self._http.applications())
                self._fetches["full"] += 1
        self._apps = apps
        self._publish(endpoints(apps.instances))

    def _publish(self, apps: dict[str, tuple[Endpoint, ...]]) -> None:
        if dict(self.current.apps) == apps:
            return
        self.current = snapshot(apps, self.current.version + 1)
        for watcher in self._watchers:
            watcher(self.current)
