"""Calls counted and timed in plain Python numbers, per bounded label set, for a collector to read at scrape.

A finished call is one dict lookup and two additions: its (method, model, code) resolves once to
its series, whose histogram is a list of bucket counts (found by bisect on the bounds) and a sum;
the call count is the buckets' total, so the counter and the histogram cannot disagree. No locks:
calls are recorded on the event loop's thread and GET /metrics reads on it too (see `snapshot`
for a reader on another thread). Labels are bounded as names.py says, and at most `max_series`
label sets are kept apart; later ones share one "other" series per direction and code. Knows
nothing about prometheus_client or how the series are exposed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import Final

from sidecar.core.status import Code
from sidecar.telemetry.names import OTHER, BoundedNames, MethodLabels

# (direction, service, method, model, code): the labels of one series, in exposition order.
SeriesKey = tuple[str, str, str, str, str]


class Series:
    """One label set's calls: a count per bucket (the last one is +Inf) and the sum of their durations."""

    __slots__ = ("buckets", "sum")

    def __init__(self, buckets: int) -> None:
        self.buckets = [0] * buckets
        self.sum = 0.0


class RequestStats:
    def __init__(
        self, methods: MethodLabels, models: BoundedNames, bounds: Sequence[float], *, max_series: int
    ) -> None:
        if list(bounds) != sorted(bounds) or not bounds:
            raise ValueError("bucket bounds must be sorted and not empty")
        self._methods = methods
        self._models = models
        # Upper bounds, inclusive (a value on a bound counts in that bucket, as Prometheus' `le`).
        self.bounds: Final = (*bounds, math.inf) if bounds[-1] != math.inf else tuple(bounds)
        self.max_series: Final = max_series
        self._series: dict[SeriesKey, Series] = {}
        self._recorders: dict[str, Recorder] = {}

    def recorder(self, direction: str) -> Recorder:
        """The recorder of one direction ("ingress", "egress"): one per direction, shared by its filters."""
        recorder = self._recorders.get(direction)
        if recorder is None:
            recorder = self._recorders[direction] = Recorder(self, direction)
        return recorder

    def snapshot(self) -> list[tuple[SeriesKey, list[int], float]]:
        """Every series in the order it first appeared: its labels, bucket counts and sum.

        Copies with single C-level operations (the GIL keeps each one whole), so a reader on another
        thread could at worst see a call in its bucket before its duration is in the sum.
        """
        return [(key, s.buckets.copy(), s.sum) for key, s in list(self._series.items())]

    def labels(self, direction: str, method: str, model: str, code: Code) -> SeriesKey:
        """The bounded labels of a call: its method and model as names.py admits them."""
        service, method_label = self._methods(method)
        return direction, service, method_label, self._models(model) if model else "", code.name

    def series(self, key: SeriesKey) -> Series:
        """The series of `key`, or its direction and code's "other" series once `max_series` are kept."""
        series = self._series.get(key)
        if series is not None:
            return series
        if len(self._series) >= self.max_series:
            direction, *_, code = key
            key = (direction, OTHER, OTHER, OTHER, code)
            series = self._series.get(key)
            if series is not None:
                return series
        series = self._series[key] = Series(len(self.bounds))
        return series


class Recorder:
    """Records a direction's finished calls. Each (method, model, code) resolves to its series once and
    is remembered, unless its labels were folded into "other" (a hostile client's names): those are
    resolved each time, so what a client sends cannot grow the cache past `max_series` entries."""

    __slots__ = ("_bounds", "_cache", "_direction", "_room", "_stats")

    def __init__(self, stats: RequestStats, direction: str) -> None:
        self._stats = stats
        self._direction = direction
        self._bounds = stats.bounds
        self._cache: dict[tuple[str, str, Code], Series] = {}
        self._room = stats.max_series

    def __call__(self, method: str, model: str, code: Code, seconds: float) -> None:
        series = self._cache.get((method, model, code))
        if series is None:
            series = self._resolve(method, model, code)
        series.sum += seconds
        series.buckets[bisect_left(self._bounds, seconds)] += 1

    def _resolve(self, method: str, model: str, code: Code) -> Series:
        key = self._stats.labels(self._direction, method, model, code)
        series = self._stats.series(key)
        if OTHER not in key[1:4] and self._room > 0:
            self._room -= 1
            self._cache[method, model, code] = series
        return series
