"""The loopback gRPC egress listener: a call names its target service, the router picks and retries.

The target is the `x-sidecar-target` metadata key. (grpc.aio does not expose
a call's :authority to handlers, so dialing with the service as authority
needs the frame-level data plane; see docs/known-issues.md.) Contract methods
known to be unary are retried with the request bytes held; streaming calls
are tried once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from sidecar.core.call import Call, Outcome
from sidecar.core.deadline import Deadline
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.discovery.endpoint import Endpoint
from sidecar.egress.attempts import AttemptChain
from sidecar.egress.channels import ChannelPool
from sidecar.egress.router import AttemptResult, EgressRouter
from sidecar.filters.chain import Filter, Next, build_chain
from sidecar.transport import grpc_forward as forward
from sidecar.transport.metadata import forwardable

log = logging.getLogger(__name__)

TARGET_KEY = "x-sidecar-target"
LOAD_KEYS = ("x-sidecar-load", "x-queue-depth")


@dataclass(slots=True)
class _Unary:
    context: forward.Context
    request: bytes
    service: str
    response: bytes | None = None


@dataclass(slots=True)
class _Streaming:
    context: forward.Context
    requests: AsyncIterator[bytes]
    service: str


class GrpcEgress:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        router: EgressRouter,
        channels: ChannelPool,
        filters: Sequence[Filter],
        unary_methods: Sequence[str],
        max_message_bytes: int,
        attempt_filters: Sequence[Filter] = (),
    ) -> None:
        """`filters` run once per call, `attempt_filters` once per try (sidecar/egress/attempts.py)."""
        self._host, self._requested_port, self._port = host, port, 0
        self._router = router
        self._channels = channels
        self._attempts = AttemptChain(attempt_filters)
        self._unary_methods = frozenset(unary_methods)
        self._unary_chain: Next = build_chain(filters, self._unary)
        self._stream_chain: Next = build_chain(filters, self._streaming)
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        self._server.add_generic_rpc_handlers((_Handlers(self),))

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._port = self._server.add_insecure_port(f"{self._host}:{self._requested_port}")
        if self._port == 0:
            raise OSError(f"cannot listen for gRPC egress on {self._host}:{self._requested_port}")
        await self._server.start()

    async def stop(self, grace: float) -> None:
        await self._server.stop(grace)

    def handler(self, method: str) -> grpc.RpcMethodHandler:
        if method in self._unary_methods:
            return grpc.unary_unary_rpc_method_handler(self._handle_unary_for(method))
        return grpc.stream_stream_rpc_method_handler(self._handle_streaming_for(method))

    def _handle_unary_for(self, method: str) -> Any:
        async def handle(request: bytes, context: forward.Context) -> bytes | None:
            call, service = _call(method, context)
            exchange = _Unary(context, request, service)
            call.exchange = exchange
            call.request_bytes = len(request)
            outcome = await self._unary_chain(call)
            forward.finish(context, outcome)
            return exchange.response if outcome.ok else None

        return handle

    def _handle_streaming_for(self, method: str) -> Any:
        async def handle(requests: AsyncIterator[bytes], context: forward.Context) -> None:
            call, service = _call(method, context)
            call.exchange = _Streaming(context, requests, service)
            forward.finish(context, await self._stream_chain(call))

        return handle

    async def _unary(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, _Unary)
        if not exchange.service:
            return _no_target(call.method)
        results: list[forward.Forwarded] = []

        async def attempt(tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
            mc = self._channels.get(_address(endpoint)).unary_unary(call.method)
            result = await forward.unary(mc, exchange.request, tried.metadata, timeout)
            results.append(result)
            return AttemptResult(result.outcome.code, result.outcome.message, False, _load(result))

        deadline = self._router.deadline_for(exchange.service, call.deadline)
        try:
            await self._router.call(exchange.service, deadline, self._attempts.attempt(call, attempt, _port))
        except SidecarError as e:
            return Outcome(e.code, e.message)
        last = results[-1]
        exchange.response = await forward.send_unary_reply(exchange.context, last)
        if exchange.response is not None:
            call.response_bytes = len(exchange.response)
        return last.outcome

    async def _streaming(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, _Streaming)
        if not exchange.service:
            return _no_target(call.method)
        results: list[forward.Forwarded] = []

        async def attempt(tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
            mc = self._channels.get(_address(endpoint)).stream_stream(call.method)
            result = await forward.streaming(mc, exchange.requests, exchange.context, tried.metadata, timeout)
            results.append(result)
            # The request stream was consumed: a streaming call is never tried twice.
            return AttemptResult(result.outcome.code, result.outcome.message, True, _load(result))

        deadline = self._router.deadline_for(exchange.service, call.deadline)
        try:
            await self._router.call(exchange.service, deadline, self._attempts.attempt(call, attempt, _port))
        except SidecarError as e:
            return Outcome(e.code, e.message)
        return results[-1].outcome


class _Handlers(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc is untyped
    def __init__(self, egress: GrpcEgress) -> None:
        self._egress = egress

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return self._egress.handler(handler_call_details.method)


def _call(method: str, context: forward.Context) -> tuple[Call, str]:
    metadata = forwardable(context.invocation_metadata() or ())
    service = next((str(v) for k, v in metadata if k == TARGET_KEY), "")
    remaining = context.time_remaining()
    call = Call(
        method=method,
        metadata=[(k, v) for k, v in metadata if k != TARGET_KEY],
        deadline=Deadline.after(remaining) if remaining is not None else None,
        protocol="grpc",
        peer=context.peer(),
    )
    return call, service


def _port(endpoint: Endpoint) -> int | None:
    return endpoint.grpc_port


def _address(endpoint: Endpoint) -> str:
    if endpoint.grpc_address is None:
        raise SidecarError(
            Code.UNAVAILABLE, f"egress: instance {endpoint.instance_id} advertises no grpc.port"
        )
    return endpoint.grpc_address


def _no_target(method: str) -> Outcome:
    return Outcome(
        Code.INVALID_ARGUMENT, f"egress {method}: say which service to call in metadata {TARGET_KEY!r}"
    )


def _load(result: forward.Forwarded) -> float | None:
    for key, value in result.outcome.trailing_metadata:
        if key in LOAD_KEYS:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None
