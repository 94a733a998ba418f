"""Concurrency limit algorithms: fixed, gradient and AIMD, learned from latency samples. No I/O.

Each takes one sample per finished call (its round-trip time and the number in flight when it
started) and publishes `limit`. Health checks and cancelled calls are never samples: the caller
(sidecar/admission/controller.py) leaves them out.

- Gradient combines Netflix concurrency-limits' Gradient2 update (limit * gradient + headroom,
  gradient clamped to [0.5, 1], smoothed) with Envoy adaptive concurrency's reference: the
  unloaded RTT measured at a probe level, not a long average, which a model overloaded from
  the first call would make look normal. The floor `min_limit` and the probe level
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
    probe_limit: int = 2
    # Latency the limit tolerates before shrinking, as a multiple of the unloaded RTT.
    tolerance: float = 1.5
    smoothing: float = 0.2
    window: int = 20  # samples per update of the limit
    probe_interval: float = 60.0  # seconds; 0 = measure the unloaded RTT once, at start
    probe_samples: int = 20

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("needs 1 <= min_limit <= initial_limit <= max_limit")
        if not 1 <= self.probe_limit <= self.max_limit:
            raise ValueError("needs 1 <= probe_limit <= max_limit")
        if self.tolerance < 1.0 or not 0.0 < self.smoothing <= 1.0:
            raise ValueError("needs tolerance >= 1 and 0 < smoothing <= 1")
        if self.window < 1 or self.probe_samples < 1 or self.probe_interval < 0:
            raise ValueError("window and probe_samples must be at least 1, probe_interval >= 0")


class GradientLimit:
    """The unloaded RTT comes from a probe (as in Envoy's adaptive concurrency filter: at start and
    every `probe_interval`, the limit is held at `probe_limit` for `probe_samples` samples and their
    lowest RTT is kept); every `window` samples their mean is compared with it:
    gradient = tolerance * unloaded / mean, clamped to [0.5, 1], and
    limit = limit * gradient + sqrt(limit) (the headroom that lets it probe upwards), smoothed."""

    def __init__(self, settings: GradientSettings, clock: Clock) -> None:
        self._s = settings
        self._clock = clock
        self._estimate = float(settings.initial_limit)
        self._unloaded = 0.0
        self._sum = 0.0
        self._n = 0
        self._busy = 0  # samples in this window taken while the limit was in use
        self._next_probe = math.inf
        self._start_probe()

    @property
    def probing(self) -> bool:
        return self._probing > 0

    @property
    def unloaded_rtt(self) -> float:
        return self._unloaded

    def _start_probe(self) -> None:
        self._probing, self._probe_min = self._s.probe_samples, math.inf
        self.limit = self._s.probe_limit

    def sample(self, rtt: float, in_flight: int, dropped: bool) -> None:
        s = self._s
        if self._probing:
            self._probe_min = min(self._probe_min, rtt)
            self._probing -= 1
            if not self._probing:
                self._unloaded = self._probe_min
                self._sum = self._n = self._busy = 0
                self.limit = max(s.min_limit, round(self._estimate))
                if s.probe_interval:
                    self._next_probe = self._clock() + s.probe_interval
            return
        if self._clock() >= self._next_probe:
            self._start_probe()
            return
        self._sum += rtt
        self._n += 1
        if dropped or in_flight * 2 >= self._estimate:
            self._busy += 1
        if self._n < s.window:
            return
        mean = self._sum / self._n
        busy = self._busy
        self._sum = self._n = self._busy = 0
        if not busy:
            return  # the limit was not in use: these samples say nothing about raising it
        gradient = max(0.5, min(1.0, s.tolerance * self._unloaded / mean)) if mean > 0 else 1.0
        target = self._estimate * gradient + math.sqrt(self._estimate)
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
