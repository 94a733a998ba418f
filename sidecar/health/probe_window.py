"""How long one probe call may take, judged against the loop's lag: pass, fail or inconclusive. Pure.

The model gets `budget` seconds (probe_timeout) of the loop's *free* time to
answer: time the loop spent stalled (by a flood, a huge body to parse) is given
back, because a sidecar too busy to read an answer says nothing about the model.
So a wait that ends without an answer re-arms for what the stalls took, and fails
only once the budget of free time is spent and the timer that says so ran on time.
A loop that never gives the call its budget within `limit` seconds of wall time
makes the probe inconclusive: readiness keeps its state. Answers (a refused
connection, NOT_SERVING, ready=false) are judged elsewhere and never here: lag
cannot excuse them. Knows nothing about links, asyncio or Readiness.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from sidecar.core.clock import Clock
from sidecar.health.loop_lag import LagRecord

# A call is abandoned as inconclusive after this many budgets of wall time without the loop giving
# it one budget of free time (the link is given this deadline too).
LIMIT_FACTOR: Final = 5
# A timer that runs later than this fraction of the budget ran on a stalled loop: an answer may be
# waiting to be read, so the verdict waits one more short turn.
ON_TIME_FRACTION: Final = 0.1
# The shortest re-armed wait: enough for a few loop turns to deliver an answer already read.
MIN_WAIT: Final = 0.005


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    # The loop lagged too much to tell: readiness keeps its state.
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    verdict: Verdict
    detail: str


class ProbeWindow:
    """The time of one probe call, from its start; `limit` is also the deadline the link is given."""

    def __init__(self, lag: LagRecord, clock: Clock, budget: float) -> None:
        if budget <= 0:
            raise ValueError("budget must be positive")
        self._lag = lag
        self._clock = clock
        self.budget = budget
        self.limit = budget * LIMIT_FACTOR
        self.start = clock()
        self._due = self.start + budget
        # Whether a timer that ran late past the limit has been followed by one more short wait.
        self._looked_again = False

    def remaining(self) -> float:
        """Seconds to wait for the answer before asking `expired` again."""
        return max(self._due - self._clock(), 0.0)

    def expired(self) -> Verdict | None:
        """A wait ended with no answer: FAIL, INCONCLUSIVE, or None having re-armed (see `remaining`).

        A verdict comes only from a timer that ran on time: one that ran late ran after a stall, and
        an answer read during it may be a loop turn from being seen; so the wait goes on a little:
        past the limit, at least once and until twice the limit for a loop that is never on time.
        """
        now = self._clock()
        elapsed = now - self.start
        free = elapsed - self._lag.lost(self.start, now)
        on_time = now - self._due <= self.budget * ON_TIME_FRACTION
        if free >= self.budget and on_time:
            return Verdict.FAIL
        if elapsed >= self.limit and (on_time or (self._looked_again and elapsed >= 2 * self.limit)):
            return Verdict.INCONCLUSIVE
        if elapsed >= self.limit:
            self._looked_again = True
            self._due = now + MIN_WAIT
        else:
            self._due = min(now + max(self.budget - free, MIN_WAIT), self.start + self.limit)
        return None

    def gave_up(self) -> Verdict:
        """The call ended in a timeout of its own: the link's deadline (`limit`) passed, or the model
        answered DEADLINE_EXCEEDED. INCONCLUSIVE only when the link's deadline passed before the loop
        gave the model its budget of free time; otherwise FAIL."""
        now = self._clock()
        elapsed = now - self.start
        free = elapsed - self._lag.lost(self.start, now)
        deadline_passed = elapsed >= self.limit - self.budget * ON_TIME_FRACTION
        return Verdict.INCONCLUSIVE if deadline_passed and free < self.budget else Verdict.FAIL

    def describe(self) -> str:
        """What the window saw, for a probe's detail: how long it waited and how much of it was lag."""
        now = self._clock()
        elapsed = now - self.start
        lost = self._lag.lost(self.start, now)
        if lost == 0.0:
            return f"waited {elapsed:.2f}s"
        return f"waited {elapsed:.2f}s, {lost:.2f}s of it with the event loop stalled"
