"""The gRPC ingress listener on grpc.aio: forwards any method to the model as raw bytes, through the filters.

Contract methods known to be unary are served as unary (grpc.aio's cheaper
path); every other method, known or not, as bidirectional streaming, which
carries unary, client-, server- and bidi-streaming calls alike on the wire.
Also serves grpc.health.v1 itself, reflecting the model's readiness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sidecar.core.call import Call, Outcome
from sidecar.core.deadline import Deadline
from sidecar.filters.chain import Filter, Next, build_chain
from sidecar.health.readiness import Readiness, ReadinessSnapshot
from sidecar.ingress.grpc_transcode import StreamExchange, Transcoder, UnaryExchange
from sidecar.model.grpc_link import GrpcModelLink
from sidecar.model.link import ModelLink
from sidecar.oip import contract
from sidecar.transport import grpc_forward as forward
from sidecar.transport.metadata import forwardable

log = logging.getLogger(__name__)


class GrpcioDataplane:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        link: ModelLink,
        filters: Sequence[Filter],
        readiness: Readiness,
        max_message_bytes: int,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._port = 0
        self._readiness = readiness
        if isinstance(link, GrpcModelLink):
            self._passthrough: GrpcModelLink | None = link
            self._unary_chain: Next = build_chain(filters, self._forward_unary)
            self._stream_chain: Next = build_chain(filters, self._forward_streaming)
            link.cache_methods(contract.METHODS)
        else:
            # A model that speaks REST: the contract's calls are parsed and transcoded.
            self._passthrough = None
            transcoder = Transcoder(link)
            self._unary_chain = build_chain(filters, transcoder.unary)
            self._stream_chain = build_chain(filters, transcoder.streaming)
        self._server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        for method in contract.UNARY:
            self._handlers[method] = self._unary_handler(method)
        for method in contract.STREAMING:
            self._handlers[method] = self._streaming_handler(method)
        self._server.add_generic_rpc_handlers(
            (_Passthrough(self._handlers, self._streaming_handler),)
        )
        self._health_updates: set[asyncio.Task[None]] = set()

    def _raw(self) -> GrpcModelLink:
        assert self._passthrough is not None
        return self._passthrough

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._port = self._server.add_insecure_port(f"{self._host}:{self._requested_port}")
        if self._port == 0:
            raise OSError(f"cannot listen for gRPC on {self._host}:{self._requested_port}")
        # The library's servicer starts out SERVING; the model has not been probed yet.
        for service in ("", contract.SERVICE):
            await self._health.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
        self._readiness.watch(self._on_readiness)
        await self._server.start()

    async def stop(self, grace: float) -> None:
        await self._server.stop(grace)
        if self._health_updates:
            await asyncio.gather(*self._health_updates, return_exceptions=True)

    def _on_readiness(self, state: ReadinessSnapshot) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if state.ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )

        async def update() -> None:
            await self._health.set("", status)
            await self._health.set(contract.SERVICE, status)

        task = asyncio.get_running_loop().create_task(update())
        self._health_updates.add(task)
        task.add_done_callback(self._health_updates.discard)

    def _unary_handler(self, method: str) -> grpc.RpcMethodHandler:
        chain = self._unary_chain

        async def handle(
            request: bytes, context: grpc.aio.ServicerContext[Any, Any]
        ) -> bytes | None:
            exchange = UnaryExchange(context, request)
            call = _call(method, context, exchange)
            call.request_bytes = len(request)
            outcome = await chain(call)
            forward.finish(context, outcome)
            return exchange.response

        return grpc.unary_unary_rpc_method_handler(handle)

    def _streaming_handler(self, method: str) -> grpc.RpcMethodHandler:
        chain = self._stream_chain

        async def handle(
            requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
        ) -> None:
            outcome = await chain(_call(method, context, StreamExchange(context, requests)))
            forward.finish(context, outcome)

        return grpc.stream_stream_rpc_method_handler(handle)

    async def _forward_unary(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, UnaryExchange)
        timeout = call.deadline.remaining() if call.deadline else None
        result = await forward.unary(
            self._raw().raw_unary(call.method), exchange.request, call.metadata, timeout
        )
        exchange.response = await forward.send_unary_reply(exchange.context, result)
        if exchange.response is not None:
            call.response_bytes = len(exchange.response)
        return result.outcome

    async def _forward_streaming(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, StreamExchange)
        timeout = call.deadline.remaining() if call.deadline else None
        result = await forward.streaming(
            self._raw().raw_stream(call.method), exchange.requests, exchange.context, call.metadata, timeout
        )
        return result.outcome


class _Passthrough(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc is untyped
    def __init__(
        self,
        handlers: dict[str, grpc.RpcMethodHandler],
        streaming: Callable[[str], grpc.RpcMethodHandler],
    ) -> None:
        self._handlers = handlers
        self._streaming = streaming

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            # Not cached: a hostile client must not grow memory with method names.
            handler = self._streaming(method)
        return handler


def _call(method: str, context: grpc.aio.ServicerContext[Any, Any], exchange: object) -> Call:
    remaining = context.time_remaining()
    return Call(
        method=method,
        metadata=forwardable(context.invocation_metadata() or ()),
        deadline=Deadline.after(remaining) if remaining is not None else None,
        protocol="grpc",
        peer=context.peer(),
        exchange=exchange,
    )
