"""The loopback gRPC egress listener: a call names its target service, the router picks and retries.

The target is the `x-sidecar-target` metadata key. (grpc.aio does not expose
a call's :authority to handlers, so dialing with the service as authority
needs the frame-level data plane; see docs/known-issues.md.) Contract methods
known to be unary are retried with the request bytes held; streaming calls
are tried once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sidecar.core.call import Call, Outcome
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.discovery.endpoint import Endpoint
from sidecar.egress.attempts import AttemptChain
from sidecar.egress.channels import ChannelPool
from sidecar.egress.router import AttemptResult, EgressRouter
from sidecar.filters.chain import Filter, build_chain
from sidecar.oip import contract
from sidecar.transport import grpc_forward as forward
from sidecar.transport.grpc_server import GrpcServer, StreamExchange, UnaryExchange

log = logging.getLogger(__name__)

TARGET_KEY = "x-sidecar-target"
LOAD_KEYS = ("x-sidecar-load", "x-queue-depth")


class GrpcEgress:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        router: EgressRouter,
        channels: ChannelPool,
        filters: Sequence[Filter],
        max_message_bytes: int,
        attempt_filters: Sequence[Filter] = (),
    ) -> None:
        """`filters` run once per call, `attempt_filters` once per try (sidecar/egress/attempts.py)."""
        self._router = router
        self._channels = channels
        self._attempts = AttemptChain(attempt_filters)
        self._server = GrpcServer(
            name="gRPC egress",
            host=host,
            port=port,
            max_message_bytes=max_message_bytes,
            unary=build_chain(filters, self._unary),
            streaming=build_chain(filters, self._streaming),
            unary_methods=contract.UNARY,
            streaming_methods=contract.STREAMING,
            target_key=TARGET_KEY,
        )

    @property
    def port(self) -> int:
        return self._server.port

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace: float) -> None:
        await self._server.stop(grace)

    async def _unary(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, UnaryExchange)
        if not exchange.target:
            return _no_target(call.method)
        results: list[forward.Forwarded] = []

        async def attempt(tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
            mc = self._channels.get(_address(endpoint)).unary_unary(call.method)
            result = await forward.unary(mc, exchange.request, tried.metadata, timeout)
            results.append(result)
            return AttemptResult(result.outcome.code, result.outcome.message, False, _load(result))

        deadline = self._router.deadline_for(exchange.target, call.deadline)
        try:
            await self._router.call(exchange.target, deadline, self._attempts.attempt(call, attempt, _port))
        except SidecarError as e:
            return Outcome(e.code, e.message)
        return await exchange.reply(call, results[-1])

    async def _streaming(self, call: Call) -> Outcome:
        exchange = call.exchange
        assert isinstance(exchange, StreamExchange)
        if not exchange.target:
            return _no_target(call.method)
        results: list[forward.Forwarded] = []

        async def attempt(tried: Call, endpoint: Endpoint, timeout: float) -> AttemptResult:
            mc = self._channels.get(_address(endpoint)).stream_stream(call.method)
            result = await forward.streaming(mc, exchange.requests, exchange.context, tried.metadata, timeout)
            results.append(result)
            # The request stream was consumed: a streaming call is never tried twice.
            return AttemptResult(result.outcome.code, result.outcome.message, True, _load(result))

        deadline = self._router.deadline_for(exchange.target, call.deadline)
        try:
            await self._router.call(exchange.target, deadline, self._attempts.attempt(call, attempt, _port))
        except SidecarError as e:
            return Outcome(e.code, e.message)
        return results[-1].outcome


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
