"""Filters that trace calls: a SERVER span per ingress call, a CLIENT span per upstream attempt.

`ServerSpan` goes outermost, so its span covers every filter (a readiness
rejection too) and is current while they run; `ClientSpan` goes innermost,
around the attempt that really goes upstream, and injects its own context into
the metadata sent there, so the next hop's parent is the attempt. An egress
call (the model calling out) gets no server span: its client spans continue
the model's span, taken from the metadata the model sent. Attributes follow
OpenTelemetry's RPC semantic conventions. Built only when tracing is on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from opentelemetry.context import attach, detach
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.util.types import AttributeValue

from sidecar.core.call import Call, Outcome
from sidecar.core.status import Code
from sidecar.filters.chain import Next
from sidecar.telemetry.names import OTHER, MethodLabels, split_method
from sidecar.telemetry.propagation import extract
from sidecar.telemetry.tracing import Tracing

# Longest method name kept in an attribute: the name comes from the caller.
_MAX_ATTRIBUTE: Final = 256
# The codes that make a server span an error (RPC semantic conventions, gRPC section); on a
# client span every code but OK is one.
_SERVER_ERRORS: Final = frozenset(
    {
        Code.UNKNOWN, Code.DEADLINE_EXCEEDED, Code.UNIMPLEMENTED,
        Code.INTERNAL, Code.UNAVAILABLE, Code.DATA_LOSS,
    }
)  # fmt: skip

Address = tuple[str, int]


class ServerSpan:
    def __init__(
        self,
        tracing: Tracing,
        methods: MethodLabels,
        *,
        direction: str,
        local: Callable[[str], Address | None] = lambda protocol: None,
    ) -> None:
        """`local` gives the address a call arrived on, by protocol ("grpc", "http")."""
        self._tracer = tracing.tracer
        self._methods = methods
        self._direction = direction
        self._local = local

    async def __call__(self, call: Call, next: Next) -> Outcome:
        parent = extract(call.metadata)
        if self._direction == "egress":
            token = attach(parent)
            try:
                return await next(call)
            finally:
                detach(token)
        attributes = _rpc_attributes(call)
        attributes["ai_sidecar.protocol"] = call.protocol
        local = self._local(call.protocol)
        if local is not None:
            attributes["server.address"], attributes["server.port"] = local
        peer = _peer(call.peer)
        if peer is not None:
            attributes["network.peer.address"], attributes["network.peer.port"] = peer
        elif call.peer:  # REST gives the address alone
            attributes["network.peer.address"] = call.peer
        span = self._tracer.start_span(
            _span_name(self._methods(call.method)), parent, SpanKind.SERVER, attributes
        )
        token = attach(set_span_in_context(span, parent))
        outcome: Outcome | None = None
        try:
            outcome = await next(call)
            return outcome
        except asyncio.CancelledError:
            outcome = Outcome(Code.CANCELLED, "cancelled by the caller")
            raise
        finally:
            detach(token)
            _end(span, outcome, _SERVER_ERRORS)


class ClientSpan:
    def __init__(
        self, tracing: Tracing, methods: MethodLabels, *, direction: str, upstream: Address | None = None
    ) -> None:
        """`upstream` is the address attempts go to, when fixed (ingress: the model); an egress
        try names its instance in `call.upstream` (sidecar/egress/attempts.py)."""
        self._tracer = tracing.tracer
        self._injector = tracing.injector
        self._methods = methods
        self._direction = direction
        self._upstream = upstream

    async def __call__(self, call: Call, next: Next) -> Outcome:
        attributes = _rpc_attributes(call)
        upstream = call.upstream or self._upstream
        if upstream is not None:
            attributes["server.address"], attributes["server.port"] = upstream
        span = self._tracer.start_span(
            _span_name(self._methods(call.method)), kind=SpanKind.CLIENT, attributes=attributes
        )
        self._injector.inject(call.metadata, set_span_in_context(span))
        outcome: Outcome | None = None
        try:
            outcome = await next(call)
            return outcome
        except asyncio.CancelledError:
            outcome = Outcome(Code.CANCELLED, "cancelled")
            raise
        finally:
            _end(span, outcome, None)


def _rpc_attributes(call: Call) -> dict[str, AttributeValue]:
    service, method = split_method(call.method)
    attributes: dict[str, AttributeValue] = {
        "rpc.system": "grpc",
        "rpc.service": service[:_MAX_ATTRIBUTE],
        "rpc.method": method[:_MAX_ATTRIBUTE],
    }
    if call.model:
        attributes["ai_sidecar.model"] = call.model[:_MAX_ATTRIBUTE]
    return attributes


def _span_name(labels: tuple[str, str]) -> str:
    # "{rpc.service}/{rpc.method}", from the bounded labels: span names are indexed by backends.
    service, method = labels
    return f"{service}/{method}" if service and service != OTHER else method


def _end(span: Span, outcome: Outcome | None, errors: frozenset[Code] | None) -> None:
    code = outcome.code if outcome is not None else Code.UNKNOWN
    span.set_attribute("rpc.grpc.status_code", int(code))
    if code is not Code.OK and (errors is None or code in errors):
        message = outcome.message if outcome is not None else "the call raised"
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {message}"[:_MAX_ATTRIBUTE]))
    span.end()


def _peer(peer: str) -> Address | None:
    """A gRPC peer ("ipv4:10.0.0.1:5000", "ipv6:[::1]:5000") as (address, port); None otherwise."""
    kind, sep, rest = peer.partition(":")
    if not sep or kind not in ("ipv4", "ipv6"):
        return None
    host, _, port = rest.rpartition(":")
    if not port.isdigit():
        return None
    return host.strip("[]"), int(port)
