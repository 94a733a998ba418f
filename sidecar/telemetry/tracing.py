"""The tracer a sidecar's spans come from: sampler, exporter (OTLP over gRPC, or a JSON-lines file) and
the propagation formats; `NoTracing` (noop.py, re-exported here) stands in when tracing is off.
Knows nothing about filters or transports.

Spans leave through a batch processor on its own thread, so exporting never
runs on the event loop and a slow or absent collector costs dropped spans, not
latency. The provider is this sidecar's own, not OpenTelemetry's global one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer, format_span_id, format_trace_id, get_current_span

from sidecar import __version__
from sidecar.core.call import Call
from sidecar.telemetry.noop import NoTracing as NoTracing
from sidecar.telemetry.propagation import Injector
from sidecar.telemetry.sampling import sampler
from sidecar.telemetry.span_file import JsonLinesSpanExporter

log = logging.getLogger(__name__)

EXPORTERS: Final = ("otlp", "file")
# How long spans wait in the batch before export: the SDK's 5 s default would make a file
# reader (a test, a developer) wait; a collector is fine with 1 s batches.
_DELAY_MS: Final = {"otlp": 1000, "file": 100}
_SHUTDOWN_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class TracingSettings:
    service_name: str
    sample_ratio: float
    propagation: tuple[str, ...]
    exporter: str
    otlp_endpoint: str = ""
    file: str = ""


class Tracing:
    def __init__(self, settings: TracingSettings, *, exporter: SpanExporter | None = None) -> None:
        if exporter is None:
            exporter = _exporter(settings)
        self._provider = TracerProvider(
            sampler=sampler(settings.sample_ratio),
            resource=Resource.create(
                {"service.name": settings.service_name, "ai_sidecar.version": __version__}
            ),
            shutdown_on_exit=False,
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=_DELAY_MS.get(settings.exporter, 1000))
        )
        self.tracer: Tracer = self._provider.get_tracer("ai-sidecar", __version__)
        self.injector = Injector(settings.propagation)

    def ids(self, call: Call) -> tuple[str, str] | None:
        """The trace and span ids an access-log line names: those of the call's own span."""
        return current_ids(call)

    async def shutdown(self) -> None:
        """Export what is left and stop, waiting at most a few seconds: an unreachable collector must not
        stall a drain. The flush runs on a daemon thread, which process exit does not wait for."""
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def flush() -> None:
            try:
                self._provider.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed first
                    loop.call_soon_threadsafe(done.set)

        threading.Thread(target=flush, name="trace-shutdown", daemon=True).start()
        try:
            async with asyncio.timeout(_SHUTDOWN_TIMEOUT_S):
                await done.wait()
        except TimeoutError:
            log.warning("tracing: spans not exported %gs into shutdown were dropped", _SHUTDOWN_TIMEOUT_S)


def _exporter(settings: TracingSettings) -> SpanExporter:
    if settings.exporter == "file":
        return JsonLinesSpanExporter(settings.file)
    if settings.exporter == "otlp":
        # Imported only when used: the OTLP stack is large and tracing is off by default.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # http:// means plaintext gRPC, https:// TLS, as the OTLP exporter reads its endpoint.
        return OTLPSpanExporter(endpoint=settings.otlp_endpoint)
    raise ValueError(f"unknown trace exporter {settings.exporter!r} (known: {', '.join(EXPORTERS)})")


def current_ids(call: Call) -> tuple[str, str] | None:
    """The (trace id, span id) of the span current while `call` runs, in hex; None outside a trace."""
    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format_trace_id(context.trace_id), format_span_id(context.span_id)
