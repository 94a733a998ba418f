"""One target service's egress state: its pool, per-endpoint load, breakers, ejections and retry budget.

Built from discovery snapshots and policy; pure logic with an injected clock
and RNG. The pool is rebuilt when discovery or ejections change, so a pick
reads precomputed state and never scans the instances.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.balancer.pickers import PICKERS, Pool, zone_preferring
from sidecar.balancer.stats import EndpointStats
from sidecar.breaker.breaker import Breaker, State
from sidecar.core.clock import Clock
from sidecar.discovery.endpoint import Endpoint
from sidecar.egress.policy import ServicePolicy
from sidecar.outlier.ejector import Ejector
from sidecar.retry.budget import RetryBudget

# Instances a pick skips because their own breaker refuses, before giving up: bounded, O(1).
_BREAKER_SKIPS = 3

Transition = Callable[[str, State, State], None]


@dataclass(slots=True)
class Counters:
    requests: int = 0
    attempts: int = 0
    retries: int = 0
    budget_exhausted: int = 0
    rejected_by_breaker: int = 0
    breaker_transitions: int = 0
    transitions: list[tuple[str, str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "attempts": self.attempts,
            "retries": self.retries,
            "budget_exhausted": self.budget_exhausted,
            "rejected_by_breaker": self.rejected_by_breaker,
            "breaker_transitions_total": self.breaker_transitions,
            "breaker_transitions": [list(t) for t in self.transitions],
        }


class Route:
    def __init__(
        self, name: str, policy: ServicePolicy, clock: Clock, rng: random.Random, zone: str
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._zone = zone
        self.counters = Counters()
        self.picker = PICKERS[policy.balancer](rng)
        self.stats: dict[str, EndpointStats] = {}
        self.breakers: dict[str, Breaker] = {}
        self.service_breaker = Breaker(f"service:{name}", policy.service_breaker, clock, self._moved)
        self.ejector = Ejector(policy.outlier, clock)
        self.budget = RetryBudget(policy.budget, clock)
        self._endpoints: tuple[Endpoint, ...] = ()
        self.pool = Pool.of(())
        self._pool_version = -1
        self._next_return = float("inf")

    def _moved(self, breaker: str, was: State, to: State) -> None:
        self.counters.breaker_transitions += 1
        self.counters.transitions.append((breaker, was.value, to.value))
        del self.counters.transitions[:-50]  # the recent ones, for GET /egress

    def update(self, endpoints: tuple[Endpoint, ...]) -> None:
        """New discovery snapshot for this service."""
        self._endpoints = endpoints
        keep = frozenset(e.instance_id for e in endpoints)
        for gone in set(self.stats) - keep:
            del self.stats[gone]
        for gone in set(self.breakers) - keep:
            del self.breakers[gone]
        self.ejector.forget(keep)
        for e in endpoints:
            if e.instance_id not in self.stats:
                self.stats[e.instance_id] = EndpointStats(self._clock)
                self.breakers[e.instance_id] = Breaker(
                    f"instance:{e.instance_id}", self.policy.instance_breaker, self._clock, self._moved
                )
        self._rebuild()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._endpoints

    def _rebuild(self) -> None:
        ejected = self.ejector.ejected()
        healthy = [e for e in self._endpoints if e.instance_id not in ejected]
        self.pool = Pool.of(zone_preferring(healthy, self._zone, self.policy.zone_min_local))
        self._pool_version = self.ejector.version
        self._next_return = self.ejector.next_return()

    def pick(self, avoid: frozenset[str]) -> tuple[Endpoint | None, Breaker | None]:
        if self.ejector.version != self._pool_version or self._clock() >= self._next_return:
            self._rebuild()
        skipped = avoid
        for _ in range(_BREAKER_SKIPS + 1):
            endpoint = self.picker.pick(self.pool, self.stats, skipped)
            if endpoint is None:
                return None, None
            breaker = self.breakers[endpoint.instance_id]
            if breaker.allow():
                return endpoint, breaker
            self.counters.rejected_by_breaker += 1
            skipped = skipped | {endpoint.instance_id}
        return None, None

    def record(self, endpoint: Endpoint, failed: bool) -> None:
        self.ejector.record(endpoint.instance_id, failed, len(self._endpoints))
