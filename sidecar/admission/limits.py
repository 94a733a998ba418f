"""Concurrency limit algorithms: fixed, gradient and AIMD, learned from latency samples. No I/O.

Each takes one sample per finished call (its round-trip time and the number in flight when it
started) and publishes `limit`. Health checks and cancelled calls are never samples: the caller
(sidecar/admission/controller.py) leaves them out.

- Gradient follows Netflix concurrency-limits' Gradient2: a long-window average RTT against a
  short one; limit = limit * gradient + headroom, gradient = tolerance * long / short clamped to
  [0.5, 1], smoothed. Like Envoy's adaptive concurrency filter it re-learns the unloaded RTT
  every `probe_interval`: for `probe_samples` samples the limit is held at `probe_limit`, and the
  lowest RTT seen then becomes the long average. The floor `min_limit` and the probe level
  `probe_limit` are separate: the floor protects throughput, the probe only measures.
- AIMD adds one when a sample is good and the limit is in use, multiplies by `backoff` when a
  sample is slower than `timeout` or dropped (the model answered RESOURCE_EXHAUSTED/UNAVAILABLE).
Knows nothing about calls, queues or transports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from sidecar.core.clock import Clock


class Limit(Protocol):
    @property
    def limit(self) -> int: ...

    def sample(self, rtt: float, in_flight: int, dropped: bool) -> None: ...


class FixedLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def sample(self, rtt: float, in_flight: int, dropped: bool) -> None:
        pass


@dataclass(frozen=True, slots=True)
class GradientSettings:
    initial_limit: int = 20
    min_limit: int = 1
    max_limit: int = 1000
    probe_limit: int = 1
    # Latency the limit tolerates before shrinking, as a multiple of the unloaded RTT.
    tolerance: float = 1.5
    smoothing: float = 0.2
    long_window: int = 600  # samples
    short_window: int = 10  # samples
    probe_interval: float = 60.0  # seconds; 0 = never re-probe
    probe_samples: int = 25

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("needs 1 <= min_limit <= initial_limit <= max_limit")
        if not 1 <= self.probe_limit <= self.max_limit:
            raise ValueError("needs 1 <= probe_limit <= max_limit")
        if self.tolerance < 1.0 or not 0.0 < self.smoothing <= 1.0:
            raise ValueError("needs tolerance >= 1 and 0 < smoothing <= 1")
        if self.long_window < 1 or self.short_window < 1 or self.probe_samples < 1 or self.probe_interval < 0:
            raise ValueError("windows and probe_samples must be at least 1, probe_interval >= 0")


class GradientLimit:
    def __init__(self, settings: GradientSettings, clock: Clock) -> None:
        self._s = settings
        self._clock = clock
        self._estimate = float(settings.initial_limit)
        self._long = 0.0
        self._short = 0.0
        self._long_n = 0
        self._probing = 0  # samples left in the current probe
        self._probe_min = math.inf
        self._next_probe = clock() + settings.probe_interval if settings.probe_interval else math.inf
        self.limit = settings.initial_limit

    @property
    def probing(self) -> bool:
        return self._probing > 0

    def sample(self, rtt: float, in_flight: int, dropped: bool) -> None:
        s = self._s
        if self._probing:
            self._probe_min = min(self._probe_min, rtt)
            self._probing -= 1
            if not self._probing:
                # The unloaded RTT re-learnt: the long average restarts from it.
                self._long, self._long_n, self._short = self._probe_min, 1, self._probe_min
                self.limit = max(s.min_limit, round(self._estimate))
            return
        if self._clock() >= self._next_probe:
            self._next_probe = self._clock() + s.probe_interval
            self._probing, self._probe_min = s.probe_samples, math.inf
            self.limit = s.probe_limit
            return
        self._long_n = min(self._long_n + 1, s.long_window)
        self._long += (rtt - self._long) / self._long_n
        self._short = rtt if not self._short else self._short + (rtt - self._short) / s.short_window
        if self._long / self._short > 2.0:
            # The load went away: let the long average come down quickly (Gradient2 does too).
            self._long *= 0.95
        if not dropped and in_flight * 2 < self._estimate:
            return  # the limit is not in use: a sample says nothing about raising it
        gradient = max(0.5, min(1.0, s.tolerance * self._long / self._short))
        if dropped:
            gradient = 0.5
        headroom = math.sqrt(self._estimate)
        target = self._estimate * gradient + headroom
        estimate = self._estimate * (1 - s.smoothing) + target * s.smoothing
        self._estimate = max(float(s.min_limit), min(float(s.max_limit), estimate))
        self.limit = round(self._estimate)


@dataclass(frozen=True, slots=True)
class AimdSettings:
    initial_limit: int = 20
    min_limit: int = 1
    max_limit: int = 1000
    backoff: float = 0.9
    timeout: float = 5.0  # seconds: a sample slower than this counts as dropped

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("needs 1 <= min_limit <= initial_limit <= max_limit")
        if not 0.5 <= self.backoff < 1.0 or self.timeout <= 0:
            raise ValueError("needs 0.5 <= backoff < 1 and timeout > 0")


class AimdLimit:
    def __init__(self, settings: AimdSettings) -> None:
        self._s = settings
        self._estimate = float(settings.initial_limit)
        self.limit = settings.initial_limit

    def sample(self, rtt: float, in_flight: int, dropped: bool) -> None:
        s = self._s
        if dropped or rtt > s.timeout:
            self._estimate = max(float(s.min_limit), self._estimate * s.backoff)
        elif in_flight * 2 >= self._estimate:
            self._estimate = min(float(s.max_limit), self._estimate + 1.0)
        self.limit = max(s.min_limit, math.floor(self._estimate))
