"""Filter that limits each client's calls with token buckets: in-process, or shared through Redis (GCRA).

The policy's first override that matches the call (its clients, classes, methods, models) sets
rate and burst, else the default; a call over it gets RESOURCE_EXHAUSTED with a
grpc-retry-pushback-ms trailer (REST: 429 and Retry-After). In global mode the bucket is a key
in Redis, one round trip bounded by the Redis client's own timeout; when Redis is down or slow
the configured failure mode decides (open: admit; closed: refuse), counted, never waited out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from sidecar.core.call import Call, Outcome
from sidecar.filters.chain import Next
from sidecar.filters.governed import EXEMPT, exhausted
from sidecar.governance.active import Active
from sidecar.governance.stats import GovernanceStats
from sidecar.policy.document import Override, Rate, RateLimits
from sidecar.ratelimit.bucket import BucketTable
from sidecar.ratelimit.redis_client import RedisUnavailable
from sidecar.ratelimit.redis_limiter import GlobalLimiter, retry_after

# How long a client refused because the limiter is unavailable (fail closed) is asked to wait.
_CLOSED_PUSHBACK: Final = 1.0
_MAX_KEY: Final = 200


class RateLimitFilter:
    def __init__(
        self,
        active: Callable[[], Active],
        stats: GovernanceStats,
        table: BucketTable,
        limiter: GlobalLimiter | None,
    ) -> None:
        self._active = active
        self._stats = stats
        self._table = table
        self._limiter = limiter

    async def __call__(self, call: Call, next: Next) -> Outcome:
        limits = self._active().policy.rate_limits
        if not limits.enabled or call.method in EXEMPT:
            return await next(call)
        chosen = _choose(limits, call)
        if chosen is None:
            return await next(call)
        index, rate = chosen
        client = "*" if index >= 0 and limits.overrides[index].shared else call.client_id
        if limits.mode == "global" and self._limiter is not None:
            wait = await self._global(limits, index, client, rate, call)
        else:
            wait = self._table.take((index, client), rate.rate, rate.burst, rate.cost)
        if wait:
            self._stats.count("rate_limit", call.client_class, "limited")
            message = (
                f"rate limit: client {client!r} is over {rate.rate:g} calls/s (burst {rate.burst:g});"
                f" retry in {math.ceil(wait * 1000)} ms"
            )
            call.governance = message
            return exhausted(f"{call.method}: {message}", wait)
        self._stats.count("rate_limit", call.client_class, "admitted")
        return await next(call)

    async def _global(self, limits: RateLimits, index: int, client: str, rate: Rate, call: Call) -> float:
        assert self._limiter is not None
        key = f"{index}:{client[:_MAX_KEY]}"
        try:
            return retry_after(await self._limiter.take(key, rate.rate, rate.burst, rate.cost))
        except RedisUnavailable as e:
            self._stats.redis_failures[limits.failure_mode] += 1
            if limits.failure_mode == "open":
                call.governance = f"rate limit: failed open ({e})"
                return 0.0
            return _CLOSED_PUSHBACK


def _choose(limits: RateLimits, call: Call) -> tuple[int, Rate] | None:
    for o in limits.overrides:
        if _matches(o, call):
            return o.index, o.rate
    return (-1, limits.default) if limits.default is not None else None


def _matches(o: Override, call: Call) -> bool:
    return (
        (not o.clients or call.client_id in o.clients)
        and (not o.classes or call.client_class in o.classes)
        and (not o.methods or call.method in o.methods)
        and (not o.models or call.model in o.models)
    )
