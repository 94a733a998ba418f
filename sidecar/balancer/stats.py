"""Per-endpoint load: requests in flight, a time-decayed peak EWMA of latency, and load the endpoint reports.

Peak EWMA as in Finagle and Linkerd: a latency above the estimate replaces it at
once (the balancer reacts to a slow endpoint immediately), a lower one is
averaged in with weight 1 - exp(-elapsed / tau) (it recovers gradually).

The estimate also decays with the time elapsed, computed when it is read (at
pick time), as Linkerd and Finagle do: otherwise an endpoint that had one slow
period, and that power-of-two choices then stopped picking, would keep its worst
estimate for as long as nobody picks it, which is for ever. While it is idle (no
call in flight) the estimate falls by exp(-idle / tau), below the pool's baseline
sooner or later (tau * ln(peak / baseline)), so the endpoint is picked again and
its answers, not its old peak, set its share from then on. While a call is in
flight the estimate holds: waiting for an answer is no evidence of speed (a hung
endpoint must not look fast). An endpoint that has not answered yet costs
nothing while idle, so a new instance is tried at once (Finagle), and
`default_rtt` while its first call is out.

Cost = latency estimate * (load + 1), where load is in-flight requests or the
queue depth the endpoint itself reported, whichever is larger. No I/O; time is injected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sidecar.core.clock import Clock


@dataclass(slots=True)
class EndpointStats:
    clock: Clock
    tau: float = 10.0  # seconds over which an old latency loses most of its weight
    default_rtt: float = 0.01  # the estimate of a call in flight before the endpoint has answered any
    in_flight: int = 0
    ewma: float = -1.0  # seconds, as of `stamp`; < 0: no answer yet
    stamp: float = 0.0  # when `ewma` was last set or last held; idle decay counts from here
    reported_load: float = 0.0
    reported_at: float = -math.inf
    report_ttl: float = 5.0  # a reported load older than this is ignored

    def started(self) -> None:
        if self.in_flight == 0 and self.ewma >= 0:
            # Fold the idle decay in: from now on the estimate holds until an answer comes.
            self.ewma, self.stamp = self.latency(), self.clock()
        self.in_flight += 1

    def finished(self, rtt: float) -> None:
        self.observe(rtt)
        self._ended()

    def abandoned(self) -> None:
        """A request ended without a latency worth learning from (cancelled by the caller)."""
        self._ended()

    def _ended(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if self.in_flight == 0:
            self.stamp = self.clock()  # idle from now: the estimate held while calls were out

    def observe(self, rtt: float) -> None:
        now = self.clock()
        current = self.latency()
        if self.ewma < 0 or rtt > current:
            self.ewma = rtt
        else:
            w = math.exp(-max(0.0, now - self.stamp) / self.tau)
            self.ewma = current * w + rtt * (1 - w)
        self.stamp = now

    def report_load(self, load: float) -> None:
        self.reported_load = max(0.0, load)
        self.reported_at = self.clock()

    def latency(self) -> float:
        """The estimate now: held while a call is in flight, else decayed by the time idle since `stamp`."""
        if self.ewma < 0:
            return self.default_rtt if self.in_flight else 0.0
        if self.in_flight:
            return self.ewma
        return self.ewma * math.exp(-max(0.0, self.clock() - self.stamp) / self.tau)

    def load(self) -> float:
        reported = self.reported_load if self.clock() - self.reported_at <= self.report_ttl else 0.0
        return max(float(self.in_flight), reported)

    def cost(self) -> float:
        return self.latency() * (self.load() + 1.0)
