"""The global rate limit: GCRA in one Lua script on Redis, shared by every replica of a service.

The script computes exactly sidecar/ratelimit/gcra.py's `decide`, with Redis' own clock (TIME),
so replicas with skewed clocks still share one limit, in one round trip, atomically. Its key
expires when the bucket would be full again, so idle clients cost Redis nothing.
"""

from __future__ import annotations

import asyncio
from typing import Final

from sidecar.ratelimit import gcra
from sidecar.ratelimit.redis_client import RedisClient, RedisUnavailable
from sidecar.ratelimit.resp import Reply

# KEYS[1]: the client's key. ARGV: emission interval (us), tolerance (us), cost.
# Returns {1, 0} when allowed, {0, retry_after_us} when not.
GCRA_SCRIPT: Final = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"""


class GlobalLimiter:
    def __init__(self, client: RedisClient, prefix: str) -> None:
        self._client = client
        self._sha = client.script(GCRA_SCRIPT)
        self._prefix = prefix

    @property
    def up(self) -> bool:
        return self._client.up

    def take(self, key: str, rate: float, burst: float, cost: float) -> asyncio.Future[Reply]:
        """A future of the reply: [1, 0] allowed, [0, retry_after_us] not; fails with RedisUnavailable."""
        return self._client.send(
            "EVALSHA", self._sha, 1, self._prefix + key,
            f"{gcra.interval_us(rate):.3f}", f"{gcra.tolerance_us(rate, burst):.3f}", f"{cost:g}",
        )  # fmt: skip


def retry_after(reply: object) -> float:
    """Seconds to wait from a script reply; 0.0 when allowed. RedisUnavailable if the reply is odd."""
    if isinstance(reply, list) and len(reply) == 2 and all(isinstance(v, int) for v in reply):
        allowed, wait_us = reply
        return 0.0 if allowed == 1 else max(wait_us, 1) / gcra.MICROS
    raise RedisUnavailable(f"unexpected reply from the rate-limit script: {reply!r}")
