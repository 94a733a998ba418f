"""Per-endpoint load: requests in flight, a peak-sensitive EWMA of latency, and load the endpoint reports.

Peak EWMA as in Finagle and Linkerd: a latency above the average replaces it at
once (the balancer reacts to a slow endpoint immediately), a lower one is
averaged in with weight 1 - exp(-elapsed / tau) (it recovers gradually). Cost =
latency estimate * (load + 1), where load is in-flight requests or the queue
depth the endpoint itself reported, whichever is larger. No I/O; time is injected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sidecar.core.clock import Clock


@dataclass(slots=True)
class EndpointStats:
    clock: Clock
    tau: float = 10.0  # seconds over which an old latency loses most of its weight
    default_rtt: float = 0.01  # the estimate before an endpoint has answered anything
    in_flight: int = 0
    ewma: float = -1.0  # seconds; < 0: no observation yet
    stamp: float = 0.0
    reported_load: float = 0.0
    reported_at: float = -math.inf
    report_ttl: float = 5.0  # a reported load older than this is ignored

    def started(self) -> None:
        self.in_flight += 1

    def finished(self, rtt: float) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.observe(rtt)

    def abandoned(self) -> None:
        """A request ended without a latency worth learning from (cancelled by the caller)."""
        self.in_flight = max(0, self.in_flight - 1)

    def observe(self, rtt: float) -> None:
        now = self.clock()
        if self.ewma < 0 or rtt > self.ewma:
            self.ewma = rtt
        else:
            w = math.exp(-max(0.0, now - self.stamp) / self.tau)
            self.ewma = self.ewma * w + rtt * (1 - w)
        self.stamp = now

    def report_load(self, load: float) -> None:
        self.reported_load = max(0.0, load)
        self.reported_at = self.clock()

    def latency(self) -> float:
        return self.default_rtt if self.ewma < 0 else self.ewma

    def load(self) -> float:
        reported = self.reported_load if self.clock() - self.reported_at <= self.report_ttl else 0.0
        return max(float(self.in_flight), reported)

    def cost(self) -> float:
        return self.latency() * (self.load() + 1.0)
