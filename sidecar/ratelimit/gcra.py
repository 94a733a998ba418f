"""The generic cell rate algorithm (GCRA): a token bucket kept as one timestamp. No I/O.

State is the theoretical arrival time (TAT) of the next call, in microseconds. With an emission
interval T = 1/rate and a tolerance tau = burst * T, a call at `now` is allowed when
max(TAT, now) + T - tau <= now, and then TAT becomes max(TAT, now) + T. That is a bucket of
`burst` tokens refilled at `rate`, stored as one number, which is why the Redis script
(sidecar/ratelimit/redis_limiter.py, which must compute exactly this) needs one key per client
and one round trip per call. Knows nothing about Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    tat: float  # the TAT to store (unchanged when refused)
    retry_after_us: float  # 0 when allowed


def interval_us(rate: float) -> float:
    return MICROS / rate


def tolerance_us(rate: float, burst: float) -> float:
    return burst * MICROS / rate


def decide(tat: float | None, now_us: float, rate: float, burst: float, cost: float = 1.0) -> Decision:
    interval = interval_us(rate)
    start = now_us if tat is None or tat < now_us else tat
    new_tat = start + interval * cost
    allow_at = new_tat - tolerance_us(rate, burst)
    if allow_at > now_us:
        return Decision(False, start if tat is not None else now_us, allow_at - now_us)
    return Decision(True, new_tat, 0.0)
