"""Metrics and tracing turned off: NoMetrics and NoTracing take the calls the sidecar makes on the real
parts and do nothing. Imports neither prometheus_client nor OpenTelemetry.

They live apart from the real parts so that a part that is off costs no import (the real
modules re-export them, so each no-op is still found beside its real one). NoAccessLog stays
in access_log.py, which imports only the standard library.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sidecar.core.call import Call
from sidecar.health.readiness import ReadinessSnapshot
from sidecar.telemetry.trace_headers import incoming_ids


class NoMetrics:
    """Metrics off: the calls the rest of the sidecar makes on SidecarMetrics, recording nothing."""

    def on_readiness(self, state: ReadinessSnapshot) -> None:
        pass

    def access_log_dropped(self, lines: int) -> None:
        pass

    def watch_registration(self, registered: Callable[[], bool]) -> None:
        pass

    def watch_egress(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        pass

    def watch_health(
        self, lag: Callable[[], float], stalled: Callable[[], float], probes: Callable[[], Mapping[str, int]]
    ) -> None:
        pass

    def watch_relay_limits(self, hits: Callable[[], Mapping[str, int]]) -> None:
        pass

    def register(self, collector: object) -> None:
        pass

    def watch_capture(self, stats: Callable[[], Mapping[str, Any]]) -> None:
        pass

    def watch_batching(
        self, stats: Callable[[], Mapping[str, Any]], waiting: Callable[[], Mapping[str, int]]
    ) -> None:
        pass


class NoTracing:
    """Tracing off: no spans, nothing to export; a call's ids are the ones its caller sent."""

    def ids(self, call: Call) -> tuple[str, str] | None:
        # Without tracing the log still names the caller's trace, read from its headers.
        return incoming_ids(call.metadata)

    async def shutdown(self) -> None:
        pass
