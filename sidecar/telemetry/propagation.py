"""Trace context in call metadata: extract W3C or B3 from what a caller sent, inject ours upstream.

Extraction reads every supported format whatever the config (W3C
`traceparent`/`tracestate` first, then B3 single, then B3 multi), so callers
that speak only B3 still join the trace; injection writes the configured
formats and first removes every trace header the caller sent, so the next hop
sees one parent, ours. Pure of I/O: works on a `Metadata` list. Which keys are trace headers,
and the caller's ids read without a context, are in trace_headers.py (no OpenTelemetry there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from opentelemetry.context import Context, set_value
from opentelemetry.propagators.b3 import B3MultiFormat, B3SingleFormat
from opentelemetry.propagators.textmap import Setter, TextMapPropagator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sidecar.core.call import Metadata
from sidecar.telemetry import b3
from sidecar.telemetry.sampling import SAMPLING_HINT
from sidecar.telemetry.trace_headers import TRACE_KEYS, TRACEPARENT
from sidecar.telemetry.trace_headers import incoming_ids as incoming_ids
from sidecar.telemetry.trace_headers import trace_headers as trace_headers

_W3C: Final = TraceContextTextMapPropagator()
FORMATS: Final[dict[str, TextMapPropagator]] = {
    "w3c": _W3C,
    "b3": B3SingleFormat(),
    "b3multi": B3MultiFormat(),
}


def extract(metadata: Metadata) -> Context:
    """The caller's trace context; an empty Context (a new root) when it sent none we can read."""
    headers = trace_headers(metadata)
    if not headers:
        return Context()
    if TRACEPARENT in headers:
        context = _W3C.extract(headers)
        if get_current_span(context).get_span_context().is_valid:
            return context
    found = b3.parse({k: v[0] for k, v in headers.items()})
    if found is None:
        return Context()
    context = set_value(SAMPLING_HINT, found.sampling, Context())
    if found.trace_id is None or found.span_id is None:
        return context
    flags = TraceFlags(TraceFlags.SAMPLED if found.sampling is b3.Sampling.ACCEPT else TraceFlags.DEFAULT)
    parent = SpanContext(found.trace_id, found.span_id, is_remote=True, trace_flags=flags)
    return set_span_in_context(NonRecordingSpan(parent), context)


class _Append(Setter[Metadata]):
    def set(self, carrier: Metadata, key: str, value: str) -> None:
        carrier.append((key, value))


_APPEND: Final = _Append()


class Injector:
    def __init__(self, formats: Sequence[str]) -> None:
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise ValueError(f"unknown trace propagation format(s): {', '.join(unknown)}")
        self._propagators = [FORMATS[f] for f in dict.fromkeys(formats)]

    def inject(self, metadata: Metadata, context: Context) -> None:
        """Replace any trace headers in `metadata` with the span of `context`, in every configured format."""
        metadata[:] = [(k, v) for k, v in metadata if k not in TRACE_KEYS]
        for propagator in self._propagators:
            propagator.inject(metadata, context, setter=_APPEND)
