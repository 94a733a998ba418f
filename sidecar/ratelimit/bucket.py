"""Token buckets per key, refilled lazily when read, in a bounded table. No I/O; time is injected.

A bucket holds at most `burst` tokens and gains `rate` per second; a call takes one. Refill is
computed from the time since the bucket was last read, never on a timer (Envoy's timer refill
missed by 17-20 % and let three times the limit through under load). The table holds at most
`capacity` buckets: a new key in a full table evicts a full bucket first, since a full bucket is
exactly what a new one would be, so the evicted client gains nothing by coming back. Only when
none of the least recently used are full is the fullest of them evicted, and that is counted
apart. Knows nothing about clients, calls or transports.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from sidecar.core.clock import Clock

# Least recently used buckets looked at for a full one before a not-full one is evicted.
EVICTION_SCAN: Final = 64


class Bucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def level(self, now: float) -> float:
        """Tokens held at `now`, refill included (without changing the bucket)."""
        return min(self.burst, self.tokens + (now - self.stamp) * self.rate)

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take `cost` tokens if they are there: 0.0; else the seconds until they will be."""
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if tokens >= cost:
            self.tokens = tokens - cost
            return 0.0
        self.tokens = tokens
        return (cost - tokens) / self.rate


class BucketTable:
    def __init__(self, capacity: int, clock: Clock) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[object, Bucket] = OrderedDict()
        # Evictions of a full bucket (lossless) and of a not-full one (the client gets a fresh one).
        self.evicted_full = 0
        self.evicted_not_full = 0

    def resize(self, capacity: int) -> None:
        """A new bound; buckets beyond it are evicted at the next new key, full ones first."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: object, rate: float, burst: float, cost: float = 1.0) -> float:
        """0.0 if `key`'s bucket had the tokens (now taken); else seconds until it will have them.

        A bucket whose rate or burst changed (a new policy) keeps its level, capped at the new burst.
        """
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            while len(buckets) >= self._capacity:
                self._evict(now)
            bucket = buckets[key] = Bucket(rate, burst, now)
        else:
            buckets.move_to_end(key)
            if bucket.rate != rate or bucket.burst != burst:
                bucket.tokens, bucket.stamp = bucket.level(now), now
                bucket.rate, bucket.burst = rate, burst
                bucket.tokens = min(bucket.tokens, burst)
        return bucket.take(now, cost)

    def _evict(self, now: float) -> None:
        fullest: object = None
        fullest_share = -1.0
        for scanned, (key, bucket) in enumerate(self._buckets.items()):
            level = bucket.level(now)
            if level >= bucket.burst:
                del self._buckets[key]
                self.evicted_full += 1
                return
            share = level / bucket.burst
            if share > fullest_share:
                fullest, fullest_share = key, share
            if scanned + 1 >= EVICTION_SCAN:
                break
        del self._buckets[fullest]
        self.evicted_not_full += 1
