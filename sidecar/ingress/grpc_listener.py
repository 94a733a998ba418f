"""The gRPC ingress listener on grpc.aio: forwards any method to the model as raw bytes, through the filters.

Contract methods known to be unary are served as unary (grpc.aio's cheaper
path); every other method, known or not, as bidirectional streaming, which
carries unary, client-, server- and bidi-streaming calls alike on the wire.
Also serves grpc.health.v1 itself, reflecting the model's readiness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sidecar.core.call import Call, Outcome
from sidecar.filters.chain import Filter, Next, build_chain
from sidecar.health.readiness import Readiness, ReadinessSnapshot
from sidecar.ingress.grpc_transcode import Transcoder
from sidecar.model.grpc_link import GrpcModelLink
from sidecar.model.link import ModelLink
from sidecar.oip import contract, model_name
from sidecar.transport import grpc_forward as forward
from sidecar.transport.grpc_server import GrpcServer, StreamExchange, UnaryExchange

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
        self._readiness = readiness
        if isinstance(link, GrpcModelLink):
            self._passthrough: GrpcModelLink | None = link
            unary, streaming = self._forward_unary, self._forward_streaming
            link.cache_methods(contract.METHODS)
        else:
            # A model that speaks REST: the contract's calls are parsed and transcoded.
            self._passthrough = None
            transcoder = Transcoder(link)
            unary, streaming = transcoder.unary, transcoder.streaming
        self._health = health.aio.HealthServicer()
        self._server = GrpcServer(
            name="gRPC",
            host=host,
            port=port,
            max_message_bytes=max_message_bytes,
            unary=build_chain([ModelName(), *filters], unary),
            streaming=build_chain(filters, streaming),
            unary_methods=contract.UNARY,
            streaming_methods=contract.STREAMING,
            services=[lambda server: health_pb2_grpc.add_HealthServicer_to_server(self._health, server)],
        )
        self._health_updates: set[asyncio.Task[None]] = set()

    def _raw(self) -> GrpcModelLink:
        assert self._passthrough is not None
        return self._passthrough

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> None:
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

    async def _forward_unary(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, UnaryExchange)
        timeout = call.deadline.remaining() if call.deadline else None
        result = await forward.unary(
            self._raw().raw_unary(call.method), exchange.request, call.metadata, timeout
        )
        return await exchange.reply(call, result)

    async def _forward_streaming(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, StreamExchange)
        timeout = call.deadline.remaining() if call.deadline else None
        result = await forward.streaming(
            self._raw().raw_stream(call.method),
            exchange.requests,
            exchange.context,
            call.metadata,
            timeout,
            exchange.sent,
        )
        return result.outcome


class ModelName:
    """Names the model a unary contract call is for, from field 1 of its request read in place
    (no parse), before any filter runs: RBAC, limits, metrics and logs by model."""

    async def __call__(self, call: Call, next: Next) -> Outcome:
        if call.method in model_name.MODEL_METHODS and isinstance(call.exchange, UnaryExchange):
            call.model = model_name.from_message(call.exchange.request) or ""
        return await next(call)
