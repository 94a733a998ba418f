"""Trace headers in call metadata, read without a tracing library: which keys they are, and the caller's
(trace id, span id) for access logs with tracing off. Pure: works on a `Metadata` list.

Kept apart from propagation.py, which builds OpenTelemetry contexts, so that a sidecar with
tracing off never imports OpenTelemetry (see NoTracing).
"""

from __future__ import annotations

import re
from typing import Final

from sidecar.core.call import Metadata
from sidecar.telemetry import b3

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
TRACE_KEYS: Final = frozenset({TRACEPARENT, TRACESTATE}) | b3.KEYS

# W3C Trace Context, section 3.2: version 00 has exactly four fields; a later version may add more.
_TRACEPARENT: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?")


def trace_headers(metadata: Metadata) -> dict[str, list[str]]:
    """The trace headers among `metadata` (keys are lower-case already), values in order."""
    found: dict[str, list[str]] = {}
    for key, value in metadata:
        if key in TRACE_KEYS and isinstance(value, str):
            found.setdefault(key, []).append(value)
    return found


def incoming_ids(metadata: Metadata) -> tuple[str, str] | None:
    """The caller's (trace id, span id) in hex, W3C first, then B3: for access logs with tracing off.

    Reads the headers directly, without building a tracing context, as this runs on every call.
    """
    headers = trace_headers(metadata)
    if not headers:
        return None
    for value in headers.get(TRACEPARENT, ())[:1]:
        match = _TRACEPARENT.fullmatch(value.strip())
        if match is None or match[1] == "ff" or (match[1] == "00" and match[4] is not None):
            continue
        trace_id, span_id = match[2], match[3]
        if int(trace_id, 16) and int(span_id, 16):
            return trace_id, span_id
    found = b3.parse({k: v[0] for k, v in headers.items()})
    if found is None or found.trace_id is None or found.span_id is None:
        return None
    # As OpenTelemetry's format_trace_id and format_span_id write them.
    return format(found.trace_id, "032x"), format(found.span_id, "016x")
