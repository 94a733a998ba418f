"""A retry budget as Finagle and Linkerd keep it: over a sliding window, retries may not exceed
`ratio` x requests + `min_per_second` x window seconds. No I/O; time is injected.

So an outage multiplies load by at most 1 + ratio (plus a small floor), however
many attempts a policy allows.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from sidecar.core.clock import Clock


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    ratio: float = 0.2
    min_per_second: float = 3.0
    window: int = 10  # seconds

    def __post_init__(self) -> None:
        if self.ratio < 0 or self.min_per_second < 0 or self.window < 1:
            raise ValueError("retry budget ratio and min_per_second must be >= 0, window >= 1 s")


class RetryBudget:
    def __init__(self, config: BudgetConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, requests, retries]
        self.requests = 0
        self.retries = 0
        self.exhausted_total = 0

    def deposit(self) -> None:
        """Count one original request."""
        self._bucket()[1] += 1
        self.requests += 1

    def withdraw(self) -> bool:
        """Take one retry from the budget, or refuse (and count the refusal)."""
        bucket = self._bucket()
        allowed = self._config.ratio * self.requests + self._config.min_per_second * self._config.window
        if self.retries + 1 > allowed:
            self.exhausted_total += 1
            return False
        bucket[2] += 1
        self.retries += 1
        return True

    def _bucket(self) -> list[int]:
        now = int(self._clock())
        oldest = now - self._config.window + 1
        while self._buckets and self._buckets[0][0] < oldest:
            _, requests, retries = self._buckets.popleft()
            self.requests -= requests
            self.retries -= retries
        if not self._buckets or self._buckets[-1][0] != now:
            self._buckets.append([now, 0, 0])
        return self._buckets[-1]


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before retry number `attempt` (1-based): uniform in [0, min(cap, base x 2^(attempt-1))].

    "Full jitter" from the AWS architecture blog's analysis of backoff: it spreads
    retries of many callers best. (tenacity's wait_random_exponential is the same
    schedule but draws from the global random module; here the RNG is injected.)
    """
    return rng.uniform(0.0, min(cap, base * 2 ** (attempt - 1)))
