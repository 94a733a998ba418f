"""Deadlines as values: created once from the caller's timeout, every hop uses what remains."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.core.clock import Clock, monotonic


@dataclass(frozen=True, slots=True)
class Deadline:
    expires_at: float
    clock: Clock = monotonic

    @classmethod
    def after(cls, seconds: float, clock: Clock = monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.expires_at

    def sooner(self, other: Deadline | None) -> Deadline:
        if other is None or self.expires_at <= other.expires_at:
            return self
        return other
