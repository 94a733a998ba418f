"""Injected time. Mechanisms take a Clock instead of calling time.monotonic() themselves."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds on a monotonic scale."""
        ...


def monotonic() -> float:
    return time.monotonic()


class FakeClock:
    """A clock that moves only when told to; for tests of time-driven logic."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self.now += seconds
