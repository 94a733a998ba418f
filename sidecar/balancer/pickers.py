"""Pickers: choose one endpoint of a pool in O(1), whatever the pool's size. No I/O; randomness injected.

A Pool is built once per discovery or ejection change (never per request) and
carries what a picker needs precomputed: the endpoint tuple and, for weighted
picking, Vose's alias table.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.balancer.stats import EndpointStats
from sidecar.discovery.endpoint import Endpoint

# How many random draws a picker spends avoiding endpoints already tried by this
# call before it settles for one of them: bounded, so picking stays O(1).
_AVOID_DRAWS = 4


def _alias_table(weights: Sequence[int]) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """Vose's alias method: after O(n) set-up, a weighted draw costs one random index and one coin."""
    n = len(weights)
    total = float(sum(weights))
    scaled = [w * n / total for w in weights]
    prob, alias = [0.0] * n, [0] * n
    small = [i for i, s in enumerate(scaled) if s < 1.0]
    large = [i for i, s in enumerate(scaled) if s >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    for i in itertools.chain(small, large):
        prob[i], alias[i] = 1.0, i
    return tuple(prob), tuple(alias)


@dataclass(frozen=True, slots=True)
class Pool:
    endpoints: tuple[Endpoint, ...]
    prob: tuple[float, ...] = field(default=(), repr=False)
    alias: tuple[int, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, endpoints: Sequence[Endpoint]) -> Pool:
        eps = tuple(endpoints)
        if not eps:
            return cls(())
        prob, alias = _alias_table([e.weight for e in eps])
        return cls(eps, prob, alias)


Stats = Mapping[str, EndpointStats]


class Picker(Protocol):
    def pick(self, pool: Pool, stats: Stats, avoid: frozenset[str]) -> Endpoint | None: ...


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    def pick(self, pool: Pool, stats: Stats, avoid: frozenset[str]) -> Endpoint | None:
        eps = pool.endpoints
        if not eps:
            return None
        for _ in range(min(len(eps), _AVOID_DRAWS + 1)):
            e = eps[self._next % len(eps)]
            self._next += 1
            if e.instance_id not in avoid:
                return e
        return e


class Weighted:
    """Random in proportion to each endpoint's weight (Eureka metadata `weight`)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, pool: Pool, stats: Stats, avoid: frozenset[str]) -> Endpoint | None:
        eps = pool.endpoints
        if not eps:
            return None
        for _ in range(_AVOID_DRAWS + 1):
            i = self._rng.randrange(len(eps))
            e = eps[i] if self._rng.random() < pool.prob[i] else eps[pool.alias[i]]
            if e.instance_id not in avoid:
                return e
        return e


class PowerOfTwo:
    """Two random choices, the one with the lower cost wins (Mitzenmacher; Finagle, Linkerd)."""

    def __init__(self, rng: random.Random, cost: Callable[[EndpointStats | None], float]) -> None:
        self._rng = rng
        self._cost = cost

    def pick(self, pool: Pool, stats: Stats, avoid: frozenset[str]) -> Endpoint | None:
        eps = pool.endpoints
        n = len(eps)
        if n == 0:
            return None
        if n == 1:
            return eps[0]
        # Two distinct indexes in two draws.
        i = self._rng.randrange(n)
        j = self._rng.randrange(n - 1)
        a, b = eps[i], eps[j + (j >= i)]
        if avoid:
            a_ok, b_ok = a.instance_id not in avoid, b.instance_id not in avoid
            if a_ok != b_ok:
                return a if a_ok else b
            if not a_ok:
                for _ in range(_AVOID_DRAWS):
                    e = eps[self._rng.randrange(n)]
                    if e.instance_id not in avoid:
                        return e
                return a
        ca, cb = self._cost(stats.get(a.instance_id)), self._cost(stats.get(b.instance_id))
        if ca == cb:
            return a if self._rng.random() < 0.5 else b
        return a if ca < cb else b


def least_request(rng: random.Random) -> PowerOfTwo:
    return PowerOfTwo(rng, lambda s: 0.0 if s is None else s.load())


def peak_ewma(rng: random.Random) -> PowerOfTwo:
    return PowerOfTwo(rng, lambda s: 0.0 if s is None else s.cost())


def zone_preferring(endpoints: Sequence[Endpoint], zone: str, min_local: int) -> tuple[Endpoint, ...]:
    """The same zone's endpoints when there are at least `min_local` of them, else all (spill over)."""
    if zone:
        local = tuple(e for e in endpoints if e.zone == zone)
        if len(local) >= min_local:
            return local
    return tuple(endpoints)


PICKERS: Mapping[str, Callable[[random.Random], Picker]] = {
    "round_robin": lambda rng: RoundRobin(),
    "weighted": Weighted,
    "least_request": least_request,
    "peak_ewma": peak_ewma,
}
