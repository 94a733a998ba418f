"""Deadlines as values: created once from the caller's timeout, every hop uses what remains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sidecar.core.clock import Clock, monotonic

# grpc-timeout units (gRPC over HTTP/2) in seconds; the value is 1 to 8 ASCII digits and one unit.
_UNITS: Final = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_MAX_DIGITS: Final = 8
GRPC_TIMEOUT_FORMAT: Final = 'an integer of 1 to 8 digits and a unit, H M S m u or n (e.g. "500m")'


def grpc_timeout(value: str) -> float | None:
    """Seconds a grpc-timeout value stands for ("500m" is 0.5); None if it is malformed."""
    unit = _UNITS.get(value[-1:])
    digits = value[:-1]
    if unit is None or not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_DIGITS:
        return None
    return int(digits) * unit


def grpc_timeout_value(seconds: float) -> str:
    """`seconds` as a grpc-timeout value, in the finest unit that fits 8 digits, never longer."""
    seconds = max(0.0, seconds)
    for unit, size in (("n", 1e-9), ("u", 1e-6), ("m", 1e-3), ("S", 1.0), ("M", 60.0)):
        count = int(seconds / size)
        if count < 10**_MAX_DIGITS:
            return f"{count}{unit}"
    return f"{min(int(seconds / 3600.0), 10**_MAX_DIGITS - 1)}H"


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
