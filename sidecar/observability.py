"""The observability a config asks for (metrics, tracing, access log) and the filters that feed it.

Sits above both telemetry/ and filters/ (which imports telemetry), beside the composition root.
A part that is off is not built and puts no filter in any chain, so it costs
nothing per call. `outer_filters` go first in a chain (they see every call,
rejected ones too), `inner_filters` last (around the upstream attempt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from sidecar.config import SidecarConfig
from sidecar.core.call import Call
from sidecar.filters.access_log import AccessLogFilter, TraceIds
from sidecar.filters.chain import Filter
from sidecar.filters.metrics import MetricsFilter
from sidecar.filters.tracing import Address, ClientSpan, ServerSpan
from sidecar.health.readiness import Readiness
from sidecar.oip import contract
from sidecar.telemetry.access_log import AccessLog
from sidecar.telemetry.names import BoundedNames, MethodLabels
from sidecar.telemetry.prometheus import SidecarMetrics
from sidecar.telemetry.propagation import incoming_ids
from sidecar.telemetry.tracing import Tracing, TracingSettings, current_ids

# Names beyond the contract (methods) and the configured models that get a label of their own.
NAME_LIMIT: Final = 100


class Telemetry:
    def __init__(self, config: SidecarConfig, *, extra_methods: Iterable[str] = ()) -> None:
        self.methods = MethodLabels((*contract.METHODS, *extra_methods), limit=NAME_LIMIT)
        self.models = BoundedNames(config.models, limit=NAME_LIMIT)
        self.metrics = SidecarMetrics(self.methods, self.models) if config.metrics else None
        self.tracing: Tracing | None = None
        if config.tracing:
            self.tracing = Tracing(
                TracingSettings(
                    service_name=config.app_name,
                    sample_ratio=config.trace_sample_ratio,
                    propagation=config.trace_propagation,
                    exporter=config.trace_exporter,
                    otlp_endpoint=config.otlp_endpoint,
                    file=config.trace_file,
                )
            )
        self.access_log: AccessLog | None = None
        self._access_log_ratio = 1.0 if config.access_log == "on" else config.access_log_sample_ratio
        if config.access_log != "off":
            on_drop = self.metrics.access_log_dropped if self.metrics else lambda lines: None
            self.access_log = AccessLog(on_drop=on_drop)

    def outer_filters(
        self, direction: str, *, local: Callable[[str], Address | None] = lambda protocol: None
    ) -> list[Filter]:
        """Metrics, the call's span, the access log: in that order, before every other filter."""
        filters: list[Filter] = []
        if self.metrics is not None:
            filters.append(MetricsFilter(self.metrics, direction=direction))
        if self.tracing is not None:
            filters.append(ServerSpan(self.tracing, self.methods, direction=direction, local=local))
        if self.access_log is not None:
            ids: TraceIds = current_ids if self.tracing is not None else _incoming
            filters.append(
                AccessLogFilter(
                    self.access_log, direction=direction, trace_ids=ids, sample_ratio=self._access_log_ratio
                )
            )
        return filters

    def inner_filters(self, direction: str, *, upstream: str = "") -> list[Filter]:
        """The attempt's client span, after every other filter; `upstream` is HOST:PORT when fixed."""
        if self.tracing is None:
            return []
        address = _address(upstream) if upstream else None
        return [ClientSpan(self.tracing, self.methods, direction=direction, upstream=address)]

    def watch(self, readiness: Readiness) -> None:
        if self.metrics is not None:
            readiness.watch(self.metrics.on_readiness)

    def watch_registration(self, registered: Callable[[], bool]) -> None:
        if self.metrics is not None:
            self.metrics.watch_registration(registered)

    def watch_egress(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        if self.metrics is not None:
            self.metrics.watch_egress(stats)

    def exposition(self) -> Callable[[], tuple[bytes, str]] | None:
        """What GET /metrics serves; None when metrics are off."""
        return self.metrics.exposition if self.metrics is not None else None

    def start(self) -> None:
        if self.access_log is not None:
            self.access_log.start()

    async def stop(self) -> None:
        if self.tracing is not None:
            await self.tracing.shutdown()
        if self.access_log is not None:
            await self.access_log.stop()


def _incoming(call: Call) -> tuple[str, str] | None:
    # Without tracing the log still names the caller's trace, read from its headers.
    return incoming_ids(call.metadata)


def _address(host_port: str) -> Address:
    host, _, port = host_port.rpartition(":")
    return host.strip("[]"), int(port)
