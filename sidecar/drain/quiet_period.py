"""When a draining sidecar may stop serving: once no new call has arrived for a quiet period, never before
a minimum, always by a maximum. Knows nothing about sockets, asyncio or where the calls come from.

Callers learn that an instance is going away only as fast as their caches let them: a Spring Cloud
client picks a draining instance for up to its registry fetch interval plus its LoadBalancer cache
TTL plus the Eureka server's response cache. No fixed delay suits every caller, but the calls
themselves show when the last one has noticed: the sidecar keeps serving while calls still come.
The minimum covers callers that call rarely (a quiet gap is not proof they noticed); the maximum
bounds the drain whatever the callers do.

The owner counts calls as they arrive (a plain counter on the request path) and asks `wait` with
that count; the tracker reads the clock only then, so a call's arrival is known to within one poll,
and always late, which only lengthens the drain.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.core.clock import Clock


@dataclass(frozen=True, slots=True)
class DrainPolicy:
    quiet: float  # stop serving once no call arrived for this long...
    minimum: float  # ...but not before this much time since the drain began...
    maximum: float  # ...and by this much time, calls or not
    poll: float = 0.25  # how often the arrival count is looked at

    def __post_init__(self) -> None:
        if min(self.quiet, self.minimum, self.maximum) < 0 or self.poll <= 0:
            raise ValueError("drain durations must not be negative, and the poll must be positive")
        if self.minimum > self.maximum:
            raise ValueError(f"drain minimum {self.minimum:g}s is above the maximum {self.maximum:g}s")

    @classmethod
    def fixed(cls, delay: float) -> DrainPolicy:
        """Serve for exactly `delay`, whatever arrives."""
        return cls(quiet=0.0, minimum=delay, maximum=delay)

    def describe(self) -> str:
        if self.minimum == self.maximum:
            return f"for {self.maximum:g}s"
        return (
            f"until no call has come for {self.quiet:g}s "
            f"(at least {self.minimum:g}s, at most {self.maximum:g}s)"
        )


class QuietPeriod:
    """One drain's progress: when it began, how many calls came since, when the last one came."""

    def __init__(self, policy: DrainPolicy, clock: Clock, calls: int) -> None:
        self.policy = policy
        self._clock = clock
        self.began = clock()
        self.last_call = self.began
        self._calls = calls
        self.arrived = 0  # calls that came during the drain

    def wait(self, calls: int) -> float:
        """Seconds to wait before asking again, given the calls counted so far; 0: stop serving now."""
        now = self._clock()
        if calls != self._calls:
            self.arrived += calls - self._calls
            self._calls = calls
            self.last_call = now
        left = self.ends_at() - now
        return 0.0 if left <= 0 else min(left, self.policy.poll)

    def ends_at(self) -> float:
        p = self.policy
        return min(self.began + p.maximum, max(self.began + p.minimum, self.last_call + p.quiet))

    @property
    def cut_short(self) -> bool:
        """Whether the maximum ended the drain while calls were still coming (within the quiet period)."""
        p = self.policy
        return p.quiet > 0 and self.last_call + p.quiet > self.began + p.maximum

    def summary(self) -> str:
        now = self._clock()
        served = f"served {now - self.began:.1f}s while draining, {self.arrived} calls arrived"
        if not self.arrived:
            return f"{served}; none since the drain began"
        last = f"the last {now - self.last_call:.1f}s ago"
        if self.cut_short:
            return f"{served}, {last}: callers still pick this instance after the maximum"
        return f"{served}, {last}"
