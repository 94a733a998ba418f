"""The Eureka registry cache: a full fetch, then deltas every interval, reconciled by hash code.

A supervised background task that publishes immutable Snapshots and tells
watchers when one changes; the request path only reads `current`. When Eureka
is unreachable the last snapshot stays in force. A full fetch that loses most
instances without the server having reported their departure (a restarted,
still empty server) is held back by a LossGuard: the snapshot keeps them, and
so their channels stay open, until they register again or their lease runs out.
"""

from __future__ import annotations

import asyncio
import logging

from sidecar.core.clock import Clock, monotonic
from sidecar.discovery.endpoint import Endpoint, Snapshot, Watcher, snapshot
from sidecar.discovery.eureka_registry import (
    Applications,
    EurekaFormatError,
    apply_delta,
    deletions,
    endpoints,
    parse_full,
)
from sidecar.discovery.loss_guard import LossGuard
from sidecar.registry.eureka_http import EurekaError, EurekaHttp

log = logging.getLogger(__name__)


class EurekaDiscovery:
    def __init__(self, http: EurekaHttp, interval: float, *, clock: Clock = monotonic) -> None:
        self._http = http
        self._interval = interval
        # A held instance that is alive shows up again at the first fetch after it re-registers.
        self._guard = LossGuard(clock, margin=interval)
        self._apps: Applications | None = None
        self.current = Snapshot()
        self._watchers: list[Watcher] = []
        self._fetches = {"full": 0, "delta": 0}

    def watch(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    def stats(self) -> dict[str, int]:
        return self._fetches | {
            "suspect_full": self._guard.suspect_fetches,
            "held": self._guard.held,
            "held_dropped": self._guard.dropped,
        }

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except (EurekaError, EurekaFormatError) as e:
                log.warning("discovery: refresh failed, keeping the last snapshot: %s", e)
            await asyncio.sleep(self._interval)

    async def refresh(self) -> None:
        try:
            await self._refresh()
        except (EurekaError, EurekaFormatError):
            self._guard.unreachable()
            raise

    async def _refresh(self) -> None:
        if self._apps is None:
            apps = parse_full(await self._http.applications())
            self._fetches["full"] += 1
        else:
            delta = await self._http.delta()
            apps, consistent = apply_delta(self._apps, delta)
            self._fetches["delta"] += 1
            self._guard.cancelled(deletions(delta))
            if not consistent:
                log.info("discovery: hash code differs after delta; fetching the full registry")
                full = parse_full(await self._http.applications())
                self._fetches["full"] += 1
                for s in self._guard.full_fetch(apps.instances, full.instances):
                    log.warning(
                        "discovery: a full fetch lost %d of the %d UP instances of %s that were never"
                        " reported gone (a restarted or partial registry?); keeping them for up to %.0fs",
                        s.lost, s.had, s.app, s.hold,
                    )
                apps = full
        self._apps = apps
        dropped = self._guard.dropped
        view = self._guard.view(apps.instances)
        if self._guard.dropped > dropped:
            log.warning(
                "discovery: %d held instances were not registered again within their lease; dropped",
                self._guard.dropped - dropped,
            )
        self._publish(endpoints(view))

    def _publish(self, apps: dict[str, tuple[Endpoint, ...]]) -> None:
        if dict(self.current.apps) == apps:
            return
        self.current = snapshot(apps, self.current.version + 1)
        for watcher in self._watchers:
            watcher(self.current)
