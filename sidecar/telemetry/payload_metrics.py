"""Prometheus collectors of payload capture's and dynamic batching's counts, read when scraped.

Capture: per sink, what was queued, sent, retried and dropped (by reason), and the queue's size now;
payloads truncated. Batching: per model with a rule, rows per batch and each call's wait (both
histograms), flushes by cause, calls passed through by reason, calls refused for a full queue, and
calls waiting now. Labels are bounded: sinks are at most three, models are those with a rule. Knows
nothing about filters, sinks or the config; it reads plain numbers through the callables it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

PREFIX: Final = "ai_sidecar"


class CaptureCollector(Collector):
    """`stats()` gives {"sinks": {name: {enqueued, sent, retries, dropped: {reason: n}, queued,
    queued_bytes}}, "truncated": n}."""

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        sinks: Mapping[str, Mapping[str, Any]] = stats["sinks"]
        counters = (
            ("enqueued", "Captured messages queued for a sink."),
            ("sent", "Capture events a sink accepted."),
            ("retries", "Batches of capture events sent again after a failed try."),
        )
        for key, doc in counters:
            family = CounterMetricFamily(f"{PREFIX}_capture_{key}", doc, labels=("sink",))
            for name, s in sinks.items():
                family.add_metric((name,), float(s[key]))
            yield family
        dropped = CounterMetricFamily(
            f"{PREFIX}_capture_dropped",
            "Capture events that never reached their sink, by reason (queue_full, retries_exhausted,"
            " rejected, shutdown).",
            labels=("sink", "reason"),
        )
        for name, s in sinks.items():
            for reason, n in s["dropped"].items():
                dropped.add_metric((name, reason), float(n))
        yield dropped
        for key, doc in (("queued", "events"), ("queued_bytes", "bytes")):
            gauge = GaugeMetricFamily(
                f"{PREFIX}_capture_queue_{doc}", f"Capture {doc} waiting for a sink now.", labels=("sink",)
            )
            for name, s in sinks.items():
                gauge.add_metric((name,), float(s[key]))
            yield gauge
        yield CounterMetricFamily(
            f"{PREFIX}_capture_truncated",
            "Captured payloads cut at max_payload_bytes.",
            value=float(stats["truncated"]),
        )


class BatchingCollector(Collector):
    """`stats()` gives {model: BatchStats} (sidecar/batching/batcher.py) and `waiting()` {model: n}."""

    def __init__(
        self, stats: Callable[[], Mapping[str, Any]], waiting: Callable[[], Mapping[str, int]]
    ) -> None:
        self._stats = stats
        self._waiting = waiting

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        sizes = HistogramMetricFamily(
            f"{PREFIX}_batch_size", "Rows in each batch sent to the model.", labels=("model",)
        )
        delays = HistogramMetricFamily(
            f"{PREFIX}_batch_queue_delay_seconds",
            "Time a call waited before its batch was sent.",
            labels=("model",),
        )
        flushes = CounterMetricFamily(
            f"{PREFIX}_batch_flushes", "Batches sent, by what sent them (size or latency).",
            labels=("model", "cause"),
        )  # fmt: skip
        passed = CounterMetricFamily(
            f"{PREFIX}_batch_passthrough", "Calls sent to the model unbatched, by reason.",
            labels=("model", "reason"),
        )  # fmt: skip
        full = CounterMetricFamily(
            f"{PREFIX}_batch_queue_full", "Calls refused because the model's batch queue was full.",
            labels=("model",),
        )  # fmt: skip
        for model, s in stats.items():
            sizes.add_metric((model,), _buckets(s.sizes), s.sizes.total)
            delays.add_metric((model,), _buckets(s.delays), s.delays.total)
            for cause, n in s.flushes.items():
                flushes.add_metric((model, cause), float(n))
            for reason, n in s.passed_through.items():
                passed.add_metric((model, reason), float(n))
            full.add_metric((model,), float(s.queue_full))
        yield from (sizes, delays, flushes, passed, full)
        waiting = GaugeMetricFamily(
            f"{PREFIX}_batch_waiting", "Calls waiting in a batch now.", labels=("model",)
        )
        for model, n in self._waiting().items():
            waiting.add_metric((model,), float(n))
        yield waiting


def _buckets(h: Any) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    count = 0
    for bound, n in zip((*h.bounds, float("inf")), h.counts, strict=True):
        count += n
        out.append((floatToGoString(bound), float(count)))  # type: ignore[no-untyped-call]
    return out
