"""Calls a service by name: the one fixed resilience order, retry( breaker( timeout( attempt ))).

An open service breaker fails fast and is never retried; each retry goes to a
different instance when one exists, only for retryable outcomes that were not
yet committed to the caller, within the caller's remaining deadline and the
retry budget. The transport supplies `attempt` (one try at one endpoint) and
the router supplies everything else. Knows nothing about gRPC or HTTP.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sidecar.core.clock import Clock, monotonic
from sidecar.core.deadline import Deadline
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.discovery.endpoint import Discovery, Endpoint, Snapshot
from sidecar.egress.policy import RETRYABLE_CODES, EgressPolicies
from sidecar.egress.route import Route
from sidecar.retry.budget import full_jitter


@dataclass(slots=True)
class AttemptResult:
    code: Code
    message: str = ""
    # True once part of the response went to the caller: never retried after that.
    committed: bool = False
    # Load the endpoint reported with its answer (queue depth, in-flight), if any.
    reported_load: float | None = None


Attempt = Callable[[Endpoint, float], Awaitable[AttemptResult]]


class EgressRouter:
    def __init__(
        self,
        discovery: Discovery,
        policies: EgressPolicies,
        *,
        zone: str = "",
        clock: Clock = monotonic,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._discovery = discovery
        self._policies = policies
        self._zone = zone
        self._clock = clock
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.routes: dict[str, Route] = {}
        self._on_snapshot(discovery.current)
        discovery.watch(self._on_snapshot)

    def _on_snapshot(self, snapshot: Snapshot) -> None:
        for app, route in list(self.routes.items()):
            endpoints = snapshot.endpoints(app)
            route.update(endpoints)

    def set_policies(self, policies: EgressPolicies) -> None:
        """A new policy document's egress section: a service whose policy changed gets a new route
        (fresh breakers and budget) at its next call; calls in flight finish on the route they hold."""
        self._policies = policies
        for app, route in list(self.routes.items()):
            if route.policy != policies.for_service(app):
                del self.routes[app]

    def route(self, service: str) -> Route | None:
        app = service.upper()
        route = self.routes.get(app)
        if route is None:
            endpoints = self._discovery.current.endpoints(app)
            if not endpoints:
                return None  # unknown services get no state: hostile names cannot grow memory
            route = Route(app, self._policies.for_service(service), self._clock, self._rng, self._zone)
            route.update(endpoints)
            self.routes[app] = route
        return route

    def deadline_for(self, service: str, caller: Deadline | None) -> Deadline:
        if caller is not None:
            return caller
        return Deadline.after(self._policies.for_service(service).timeout, self._clock)

    async def call(self, service: str, deadline: Deadline, attempt: Attempt) -> AttemptResult:
        route = self.route(service)
        if route is None or not route.endpoints:
            raise SidecarError(
                Code.UNAVAILABLE, f'egress: no instance of service "{service}" is UP in discovery'
            )
        policy = route.policy
        route.counters.requests += 1
        route.budget.deposit()
        tried: frozenset[str] = frozenset()
        number = 0
        while True:
            number += 1
            endpoint_id, result = await self._breakers_around(route, service, deadline, tried, attempt)
            if result.code is Code.OK or result.code not in RETRYABLE_CODES or result.committed:
                return result
            if number >= policy.retry.max_attempts:
                return result
            if not route.budget.withdraw():
                route.counters.budget_exhausted += 1
                return result
            backoff = full_jitter(number, policy.retry.base_backoff, policy.retry.max_backoff, self._rng)
            if deadline.remaining() <= backoff:
                return result
            route.counters.retries += 1
            await self._sleep(backoff)
            tried = tried | {endpoint_id}

    async def _breakers_around(
        self, route: Route, service: str, deadline: Deadline, tried: frozenset[str], attempt: Attempt
    ) -> tuple[str, AttemptResult]:
        if not route.service_breaker.allow():
            raise SidecarError(
                Code.UNAVAILABLE,
                f'egress: circuit breaker "{route.service_breaker.name}" is open '
                f"(next trial in {route.service_breaker.retry_after:.1f}s)",
            )
        endpoint, breaker = route.pick(tried)
        if endpoint is None or breaker is None:
            route.service_breaker.release()
            why = "ejected or behind open breakers" if route.endpoints else "gone from discovery"
            raise SidecarError(Code.UNAVAILABLE, f'egress: every instance of "{service}" is {why}')
        remaining = deadline.remaining()
        if route.policy.per_try_timeout:
            remaining = min(remaining, route.policy.per_try_timeout)
        stats = route.stats[endpoint.instance_id]
        stats.started()
        started = self._clock()
        route.counters.attempts += 1
        try:
            result = await attempt(endpoint, remaining)
        except BaseException:
            stats.abandoned()
            breaker.release()
            route.service_breaker.release()
            raise
        elapsed = self._clock() - started
        stats.finished(elapsed)
        if result.reported_load is not None:
            stats.report_load(result.reported_load)
        failed = result.code in route.policy.failure_codes
        breaker.record(elapsed, failed)
        route.service_breaker.record(elapsed, failed)
        route.record(endpoint, failed)
        return endpoint.instance_id, result

    def stats(self) -> dict[str, object]:
        return {name: r.counters.to_json() | {
            "instances": len(r.endpoints),
            "pool": [e.instance_id for e in r.pool.endpoints],
            "ejected": sorted(r.ejector.ejected()),
            "ejections": r.ejector.ejections_total,
            "service_breaker": r.service_breaker.state.value,
            "endpoints": {
                i: {"latency_ms": round(st.latency() * 1000, 3), "load": st.load()}
                for i, st in r.stats.items()
            },
        } for name, r in self.routes.items()}
