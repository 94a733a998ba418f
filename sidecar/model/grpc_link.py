"""The gRPC link to the local model: raw-bytes callables for passthrough, typed OIP calls for REST and probes.

Translates grpc's errors into SidecarError at this boundary. Knows nothing
about ingress, filters or HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2

from sidecar.core.call import Metadata
from sidecar.core.errors import SidecarError
from sidecar.core.status import Code
from sidecar.transport.grpc_forward import from_grpc_code

M = TypeVar("M", bound=Message)

HEALTH_CHECK = "/grpc.health.v1.Health/Check"

# A local model restarts in seconds; grpc's default reconnect backoff grows to
# 120 s, which would keep the sidecar unready long after the model is back.
_RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

def rpc_error(e: grpc.aio.AioRpcError) -> SidecarError:
    return SidecarError(from_grpc_code(e.code()), e.details() or "")


class GrpcModelLink:
    """One channel to the model, on a connection of its own (the prober has another link)."""

    def __init__(self, address: str, max_message_bytes: int) -> None:
        self.address = address
        self._channel = grpc.aio.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                # The model is local: an http_proxy variable must never reroute it.
                ("grpc.enable_http_proxy", 0),
                ("grpc.enable_retries", 0),
                # A connection of its own: grpc otherwise shares one between channels of equal
                # options, and the prober's link must not queue behind the REST ingress's calls.
                ("grpc.use_local_subchannel_pool", 1),
                *_RECONNECT_OPTIONS,
            ],
        )
        # Callables are made once per method; only the contract's methods are
        # cached so hostile method names cannot grow the cache.
        self._unary: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}
        self._stream: dict[str, grpc.aio.StreamStreamMultiCallable] = {}
        self._cacheable: frozenset[str] = frozenset()

    def cache_methods(self, methods: Sequence[str]) -> None:
        self._cacheable = frozenset(methods)

    def raw_unary(self, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
        mc = self._unary.get(method)
        if mc is None:
            mc = self._channel.unary_unary(method)
            if method in self._cacheable:
                self._unary[method] = mc
        return mc

    def raw_stream(self, method: str) -> grpc.aio.StreamStreamMultiCallable:
        mc = self._stream.get(method)
        if mc is None:
            mc = self._channel.stream_stream(method)
            if method in self._cacheable:
                self._stream[method] = mc
        return mc

    async def call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        timeout: float | None,
        metadata: Metadata | None = None,
    ) -> tuple[M, Metadata, Metadata]:
        """A typed unary call: (response, initial metadata, trailing metadata), or SidecarError."""
        mc = self.raw_unary(method)
        upstream = mc(request.SerializeToString(), timeout=timeout, metadata=metadata)
        try:
            raw = await upstream
            initial = await upstream.initial_metadata()
            trailing = await upstream.trailing_metadata()
        except grpc.aio.AioRpcError as e:
            raise rpc_error(e) from None
        response = response_type()
        try:
            response.ParseFromString(raw)
        except Exception as e:  # protobuf raises DecodeError or RuntimeWarning-like errors
            raise SidecarError(
                Code.INTERNAL,
                f"{method}: the model answered bytes that are not a valid response: {e}",
            ) from None
        return response, list(initial or ()), list(trailing or ())

    async def health(self, timeout: float) -> tuple[bool, str, Code]:
        """grpc.health.v1 Check of the whole server: (serving, detail, status code of the call)."""
        try:
            resp, _, _ = await self.call(
                HEALTH_CHECK,
                health_pb2.HealthCheckRequest(service=""),
                health_pb2.HealthCheckResponse,
                timeout=timeout,
            )
        except SidecarError as e:
            return False, f"{HEALTH_CHECK} failed: {e.code.name}: {e.message}", e.code
        serving = resp.status == health_pb2.HealthCheckResponse.SERVING
        status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        return serving, f"{HEALTH_CHECK} says {status_name}", Code.OK

    async def close(self, grace: float | None = None) -> None:
        await self._channel.close(grace)
