"""The observability a config asks for (metrics, tracing, access log) and the filters that feed it.

Sits above both telemetry/ and filters/ (which imports telemetry), beside the composition root.
Each part is its real implementation or its no-op, chosen once here, so the rest reads
straight; a part that is off puts no filter in any chain, so it costs nothing per call.
`outer_filters` go first in a chain (they see every call, rejected ones too),
`inner_filters` last (around the upstream attempt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from sidecar.config import SidecarConfig
from sidecar.health.readiness import Readiness
from sidecar.oip import contract
from sidecar.telemetry.access_log import NoAccessLog
from sidecar.telemetry.names import BoundedNames, MethodLabels
from sidecar.telemetry.noop import NoMetrics, NoTracing

if TYPE_CHECKING:
    from sidecar.filters.chain import Filter
    from sidecar.filters.tracing import Address
    from sidecar.telemetry.access_log import AccessLog
    from sidecar.telemetry.governance_metrics import GovernanceView
    from sidecar.telemetry.prometheus import SidecarMetrics
    from sidecar.telemetry.tracing import Tracing

    Local = Callable[[str], Address | None]
    # A part that is on makes its filter for a chain: from the direction and the local (outer) or
    # the upstream (inner) address.
    _Outer = Callable[[str, Local], Filter]
    _Inner = Callable[[str, Address | None], Filter]

# Names beyond the contract (methods) and the configured models that get a label of their own.
NAME_LIMIT: Final = 100


class Telemetry:
    def __init__(self, config: SidecarConfig, *, extra_methods: Iterable[str] = ()) -> None:
        self.methods = MethodLabels((*contract.METHODS, *extra_methods), limit=NAME_LIMIT)
        self.models = BoundedNames(config.models, limit=NAME_LIMIT)
        self._outer: list[_Outer] = []
        self._inner: list[_Inner] = []
        self._exposition: Callable[[], tuple[bytes, str]] | None = None

        # Each part's modules are imported only when it is on: prometheus_client, OpenTelemetry and
        # their filters cost an idle sidecar that does not use them nothing (bench/idle_rss.py).
        self.metrics: SidecarMetrics | NoMetrics = NoMetrics()
        if config.metrics:
            from sidecar.filters.metrics import MetricsFilter
            from sidecar.telemetry.prometheus import SidecarMetrics

            metrics = self.metrics = SidecarMetrics(self.methods, self.models)
            self._exposition = metrics.exposition
            self._outer.append(lambda direction, local: MetricsFilter(metrics, direction=direction))

        self.tracing: Tracing | NoTracing = NoTracing()
        if config.tracing:
            from sidecar.filters.tracing import ClientSpan, ServerSpan
            from sidecar.telemetry.tracing import Tracing, TracingSettings

            tracing = self.tracing = Tracing(
                TracingSettings(
                    service_name=config.app_name,
                    sample_ratio=config.trace_sample_ratio,
                    propagation=config.trace_propagation,
                    exporter=config.trace_exporter,
                    otlp_endpoint=config.otlp_endpoint,
                    file=config.trace_file,
                )
            )
            self._outer.append(
                lambda direction, local: ServerSpan(tracing, self.methods, direction=direction, local=local)
            )
            self._inner.append(
                lambda direction, up: ClientSpan(tracing, self.methods, direction=direction, upstream=up)
            )

        self.access_log: AccessLog | NoAccessLog = NoAccessLog()
        if config.access_log != "off":
            from sidecar.filters.access_log import AccessLogFilter
            from sidecar.telemetry.access_log import AccessLog

            access_log = self.access_log = AccessLog(on_drop=self.metrics.access_log_dropped)
            ratio = 1.0 if config.access_log == "on" else config.access_log_sample_ratio
            ids = self.tracing.ids
            self._outer.append(
                lambda direction, local: AccessLogFilter(
                    access_log, direction=direction, trace_ids=ids, sample_ratio=ratio
                )
            )

    def outer_filters(self, direction: str, *, local: Local = lambda protocol: None) -> list[Filter]:
        """Metrics, the call's span, the access log: in that order, before every other filter."""
        return [make(direction, local) for make in self._outer]

    def inner_filters(self, direction: str, *, upstream: str = "") -> list[Filter]:
        """The attempt's client span, after every other filter; `upstream` is HOST:PORT when fixed."""
        address = _address(upstream) if upstream else None
        return [make(direction, address) for make in self._inner]

    def watch(self, readiness: Readiness) -> None:
        readiness.watch(self.metrics.on_readiness)

    def watch_registration(self, registered: Callable[[], bool]) -> None:
        self.metrics.watch_registration(registered)

    def watch_egress(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        self.metrics.watch_egress(stats)

    def watch_health(
        self, lag: Callable[[], float], stalled: Callable[[], float], probes: Callable[[], Mapping[str, int]]
    ) -> None:
        self.metrics.watch_health(lag, stalled, probes)

    def watch_relay_limits(self, hits: Callable[[], Mapping[str, int]]) -> None:
        self.metrics.watch_relay_limits(hits)

    def watch_governance(self, governance: GovernanceView) -> None:
        if isinstance(self.metrics, NoMetrics):
            return  # and prometheus_client stays unimported
        from sidecar.telemetry.governance_metrics import GovernanceCollector

        self.metrics.register(GovernanceCollector(governance))

    def exposition(self) -> Callable[[], tuple[bytes, str]] | None:
        """What GET /metrics serves; None when metrics are off (the HTTP listener has no such route)."""
        return self._exposition

    def start(self) -> None:
        self.access_log.start()

    async def stop(self) -> None:
        await self.tracing.shutdown()
        await self.access_log.stop()


def _address(host_port: str) -> Address:
    host, _, port = host_port.rpartition(":")
    return host.strip("[]"), int(port)
