"""Outlier ejection as Envoy does it: consecutive failures or a failure rate eject an endpoint for
base time x times ejected (capped), never more than a maximum percent of the pool at once. No I/O.

The request path asks `ejected()` only when `changed_since(version)` says so:
the pool is rebuilt on ejection changes, not per request.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sidecar.core.clock import Clock


@dataclass(frozen=True, slots=True)
class OutlierConfig:
    consecutive_failures: int = 5
    # Percent of failed calls among the last `failure_rate_window` calls of an endpoint; 0 = off.
    failure_rate_threshold: float = 0.0
    failure_rate_window: int = 50
    failure_rate_minimum_calls: int = 20
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejected_percent: float = 50.0

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1 or self.failure_rate_window < 1:
            raise ValueError("outlier consecutive_failures and failure_rate_window must be at least 1")
        if not 0 <= self.max_ejected_percent <= 100 or not 0 <= self.failure_rate_threshold <= 100:
            raise ValueError("outlier percentages must be within 0..100")
        if self.base_ejection_time <= 0 or self.max_ejection_time < self.base_ejection_time:
            raise ValueError("outlier ejection times must satisfy 0 < base <= max")


@dataclass(slots=True)
class _Record:
    consecutive: int = 0
    recent: deque[bool] = field(default_factory=deque)
    failures: int = 0
    times_ejected: int = 0
    ejected_until: float = 0.0


class Ejector:
    def __init__(self, config: OutlierConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._ejected: dict[str, float] = {}  # instance id -> until
        self.version = 0  # bumps on every ejection or return
        self.ejections_total = 0

    def record(self, instance_id: str, failed: bool, pool_size: int) -> None:
        r = self._records.setdefault(instance_id, _Record())
        cfg = self._config
        r.consecutive = r.consecutive + 1 if failed else 0
        r.recent.append(failed)
        r.failures += failed
        if len(r.recent) > cfg.failure_rate_window:
            r.failures -= r.recent.popleft()
        if instance_id in self._ejected:
            return
        by_streak = r.consecutive >= cfg.consecutive_failures
        by_rate = (
            cfg.failure_rate_threshold > 0
            and len(r.recent) >= cfg.failure_rate_minimum_calls
            and 100.0 * r.failures / len(r.recent) >= cfg.failure_rate_threshold
        )
        if (by_streak or by_rate) and self._room(pool_size):
            r.times_ejected += 1
            duration = min(cfg.base_ejection_time * r.times_ejected, cfg.max_ejection_time)
            self._ejected[instance_id] = self._clock() + duration
            r.consecutive, r.failures = 0, 0
            r.recent.clear()
            self.version += 1
            self.ejections_total += 1

    def _room(self, pool_size: int) -> bool:
        if pool_size <= 0:
            return False
        return 100.0 * (len(self._ejected) + 1) / pool_size <= self._config.max_ejected_percent

    def ejected(self) -> frozenset[str]:
        """Instances ejected now; returns expired ones to the pool (bumping `version`)."""
        now = self._clock()
        back = [i for i, until in self._ejected.items() if until <= now]
        for i in back:
            del self._ejected[i]
        if back:
            self.version += 1
        return frozenset(self._ejected)

    def next_return(self) -> float:
        """When the next ejected instance comes back (inf when none is ejected)."""
        return min(self._ejected.values(), default=float("inf"))

    def forget(self, keep: frozenset[str]) -> None:
        """Drop records of instances that left discovery."""
        for gone in set(self._records) - keep:
            del self._records[gone]
            self._ejected.pop(gone, None)

    def times_ejected(self, instance_id: str) -> int:
        r = self._records.get(instance_id)
        return r.times_ejected if r else 0
