"""A sidecar's Prometheus metrics in a registry of its own, and their text exposition for GET /metrics.

Names follow Prometheus' conventions (`ai_sidecar_` prefix, `_total` counters,
base units: `_seconds`). Request labels are bounded: method and model names
go through `names` (unknown ones collapse to "other") and the number of
label combinations is capped, so no client can grow the series count.
The per-call metrics are counted in request_stats (plain numbers, no lock per call) and
read by a collector at scrape time, in the exposition prometheus_client's own Counter and
Histogram would give. `NoMetrics` (noop.py, re-exported here) stands in when metrics are
off. Knows nothing about filters or transports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from sidecar import __version__
from sidecar.core.status import Code
from sidecar.health.readiness import ReadinessSnapshot
from sidecar.telemetry.names import BoundedNames, MethodLabels
from sidecar.telemetry.noop import NoMetrics as NoMetrics
from sidecar.telemetry.request_stats import Recorder, RequestStats

PREFIX: Final = "ai_sidecar"
# Inference takes from about a millisecond (a tiny model) to a minute (a large batch); denser where
# latency SLOs usually sit, so P99 interpolates within a narrow bucket.
DURATION_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
REQUEST_LABELS: Final = ("direction", "service", "method", "model", "code")
REQUESTS_HELP: Final = "Calls that crossed the sidecar, by outcome."
DURATION_HELP: Final = "Time from a call's arrival at the sidecar to its end, including the upstream call."
# Label combinations of the request metrics kept apart; later ones share one "other" series per
# direction and code. Far above what a real service uses (methods x models x codes in use).
MAX_SERIES: Final = 2000


class SidecarMetrics:
    def __init__(self, methods: MethodLabels, models: BoundedNames, *, max_series: int = MAX_SERIES) -> None:
        self._requests = RequestStats(methods, models, DURATION_BUCKETS, max_series=max_series)
        # One `_created` series beside every counter and histogram series doubles what Prometheus
        # stores for no use here (counter resets are detected without it). A process-wide switch.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        r.register(_RequestCollector(self._requests))
        self._in_flight = Gauge(
            f"{PREFIX}_requests_in_flight", "Calls inside the sidecar now.", ("direction",), registry=r
        )
        self._in_flight_counts: dict[str, InFlight] = {}
        self._model_ready = Gauge(
            f"{PREFIX}_model_ready",
            "1 while the model is ready (probes pass, not draining), else 0.",
            registry=r,
        )
        self._access_log_dropped = Counter(
            f"{PREFIX}_access_log_dropped",
            "Access log lines dropped because the buffer was full or stdout failed.",
            registry=r,
        )
        info = Gauge(f"{PREFIX}_build_info", "The sidecar's version; always 1.", ("version",), registry=r)
        info.labels(__version__).set(1)
        ProcessCollector(registry=r)

    def in_flight(self, direction: str) -> InFlight:
        """The in-flight count of one direction, for a filter to hold; the gauge reads it at scrape."""
        count = self._in_flight_counts.get(direction)
        if count is None:
            count = self._in_flight_counts[direction] = InFlight()
            self._in_flight.labels(direction).set_function(lambda: count.now)
        return count

    def recorder(self, direction: str) -> Recorder:
        """What a filter calls with each finished call of `direction`: (method, model, code, seconds)."""
        return self._requests.recorder(direction)

    def observe(self, direction: str, method: str, model: str, code: Code, seconds: float) -> None:
        """Count one finished call and its duration."""
        self._requests.recorder(direction)(method, model, code, seconds)

    def on_readiness(self, state: ReadinessSnapshot) -> None:
        """A Readiness watcher."""
        self._model_ready.set(1 if state.ready else 0)

    def access_log_dropped(self, lines: int) -> None:
        """Called from the access log's writer thread; prometheus_client's counters take a lock."""
        self._access_log_dropped.inc(lines)

    def watch_registration(self, registered: Callable[[], bool]) -> None:
        """Expose Eureka registration as a gauge read at scrape time (1 registered, 0 not)."""
        gauge = Gauge(
            f"{PREFIX}_eureka_registered", "1 while this instance is registered in Eureka, else 0.",
            registry=self.registry,
        )  # fmt: skip
        gauge.set_function(lambda: 1.0 if registered() else 0.0)

    def watch_egress(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        """Expose egress resilience (retries, budget, breakers, ejections) read at scrape time."""
        self.registry.register(_EgressCollector(stats))

    def watch_health(
        self, lag: Callable[[], float], stalled: Callable[[], float], probes: Callable[[], Mapping[str, int]]
    ) -> None:
        """Expose the event loop's lag (worst lately, stalled seconds in all) and the probes by verdict."""
        self.registry.register(_HealthCollector(lag, stalled, probes))

    def watch_relay_limits(self, hits: Callable[[], Mapping[str, int]]) -> None:
        """Expose the relay's limits that fired, by kind, read at scrape time (sidecar/h2/limits.py)."""
        self.registry.register(_RelayLimitsCollector(hits))

    def register(self, collector: Collector) -> None:
        """Another part's metrics, read at scrape time (governance's)."""
        self.registry.register(collector)
    def watch_capture(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        """Expose payload capture's counts per sink, read at scrape time."""
        from sidecar.telemetry.payload_metrics import CaptureCollector

        self.registry.register(CaptureCollector(stats))

    def watch_batching(
        self, stats: Callable[[], Mapping[str, Any]], waiting: Callable[[], Mapping[str, int]]
    ) -> None:
        """Expose dynamic batching's histograms and counts per model, read at scrape time."""
        from sidecar.telemetry.payload_metrics import BatchingCollector

        self.registry.register(BatchingCollector(stats, waiting))

    def exposition(self) -> tuple[bytes, str]:
        """The registry in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4


class _RequestCollector(Collector):
    """The request counter and duration histogram, read from RequestStats when scraped."""

    def __init__(self, stats: RequestStats) -> None:
        self._stats = stats
        self._le = tuple(floatToGoString(bound) for bound in stats.bounds)  # type: ignore[no-untyped-call]

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        requests, duration = self._families()
        le = self._le
        for key, buckets, total in self._stats.snapshot():
            cumulative: list[tuple[str, float]] = []
            count = 0
            for bound, n in zip(le, buckets, strict=True):
                count += n
                cumulative.append((bound, float(count)))
            requests.add_metric(key, float(count))
            duration.add_metric(key, cumulative, total)
        yield requests
        yield duration

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(f"{PREFIX}_requests", REQUESTS_HELP, labels=REQUEST_LABELS),
            HistogramMetricFamily(f"{PREFIX}_request_duration_seconds", DURATION_HELP, labels=REQUEST_LABELS),
        )


class _EgressCollector(Collector):
    """Egress counters per target service, from the router's own tallies (one label: the service,
    which exists only for services discovery knows, so the series count stays bounded)."""

    _COUNTERS: Final = (
        ("requests", "requests", "Calls by name sent through egress."),
        ("attempts", "attempts", "Tries at an instance, first tries and retries."),
        ("retries", "retries", "Retries made."),
        ("retry_budget_exhausted", "budget_exhausted", "Retries refused by the retry budget."),
        ("breaker_rejections", "rejected_by_breaker", "Picks skipped because an instance breaker was open."),
        ("breaker_transitions", "breaker_transitions_total", "Breaker state changes, service and instances."),
        ("ejections", "ejections", "Instances ejected as outliers."),
    )
    _STATES: Final = ("closed", "open", "half_open")

    def __init__(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for name, key, doc in self._COUNTERS:
            family = CounterMetricFamily(f"{PREFIX}_egress_{name}", doc, labels=("service",))
            for service, s in stats.items():
                family.add_metric((service,), float(s.get(key, 0)))
            yield family
        ejected = GaugeMetricFamily(
            f"{PREFIX}_egress_ejected_instances", "Instances ejected now.", labels=("service",)
        )
        breaker = GaugeMetricFamily(
            f"{PREFIX}_egress_service_breaker_state",
            "1 for the service breaker's current state.", labels=("service", "state"),
        )  # fmt: skip
        for service, s in stats.items():
            ejected.add_metric((service,), float(len(s.get("ejected", ()))))
            for state in self._STATES:
                breaker.add_metric((service, state), 1.0 if s.get("service_breaker") == state else 0.0)
        yield ejected
        yield breaker


class _HealthCollector(Collector):
    """What the prober sees: the loop's lag, from its monitor, and the probes' verdicts."""

    def __init__(
        self, lag: Callable[[], float], stalled: Callable[[], float], probes: Callable[[], Mapping[str, int]]
    ) -> None:
        self._lag = lag
        self._stalled = stalled
        self._probes = probes

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            f"{PREFIX}_event_loop_lag_seconds",
            "Largest delay of the event loop's timer over the last 10 s: how long the loop was busy.",
            value=self._lag(),
        )
        yield CounterMetricFamily(
            f"{PREFIX}_event_loop_stalled_seconds",
            "Time the event loop ran its timer late, summed; its rate is the fraction of time stalled.",
            value=self._stalled(),
        )
        probes = CounterMetricFamily(
            f"{PREFIX}_model_probes", "Model probes by verdict (inconclusive: the loop lagged).",
            labels=("verdict",),
        )  # fmt: skip
        for verdict, count in self._probes().items():
            probes.add_metric((verdict,), float(count))
        yield probes


class _RelayLimitsCollector(Collector):
    """The relay's limit hits by kind; kinds are fixed words of the relay's, so the series are bounded."""

    def __init__(self, hits: Callable[[], Mapping[str, int]]) -> None:
        self._hits = hits

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            f"{PREFIX}_relay_limits",
            "Times a bound of the HTTP/2 relay fired on a peer's frames, streams or connections, by kind.",
            labels=("kind",),
        )
        for kind, n in sorted(self._hits().items()):
            family.add_metric((kind,), float(n))
        yield family


class InFlight:
    """A count the event loop's thread keeps without a lock (prometheus_client's gauges take one
    per change: two per call on the data path); the in-flight gauge reads it when scraped."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0
