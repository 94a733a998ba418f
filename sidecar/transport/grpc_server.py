"""A grpc.aio server for raw-bytes calls: each call becomes a Call, crosses a chain, ends with its Outcome.

Shared by the ingress listener (to the model) and the egress listener (to other services),
which never import each other. It builds the server (message limits, no SO_REUSEPORT), binds
it (port 0 picks a free one), turns each ServicerContext into a Call whose `exchange` holds
the context and the request, and keeps one handler per known method. A method it does not
know is served as bidirectional streaming, which carries every streaming kind on the wire,
with a handler made for that lookup alone, so random method names cannot grow memory.
Knows nothing about filters, the model, discovery or policies.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import grpc
import grpc.aio

from inference import grpc_service_pb2 as pb
from sidecar.core.call import Call, Metadata, Outcome
from sidecar.core.deadline import Deadline
from sidecar.core.messages import PROTOBUF, OnMessage, unobserved
from sidecar.filters.chain import Next
from sidecar.transport import grpc_forward as forward
from sidecar.transport.metadata import forwardable

# Adds a service the sidecar answers itself (grpc.health.v1), ahead of the raw methods.
AddService = Callable[[grpc.aio.Server], None]


@dataclass(slots=True)
class UnaryExchange:
    """A unary call's transport state; the terminal handler sets `response` on success.

    Its messages can be observed (sidecar/core/messages.py: the request at once, the response when
    set) and, for ModelInfer, handed over whole (sidecar/batching/seam.py): the batcher reads the
    request, answers it, and runs a call of its own through a `detached` exchange."""

    context: forward.Context
    request: bytes
    response: bytes | None = None
    # The value of the server's target key, taken out of the call's metadata; "" without one.
    target: str = ""
    on_message: OnMessage = unobserved

    message_offset: ClassVar[int] = 0
    message_format: ClassVar[str] = PROTOBUF

    def observe(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        on_message(True, self.request)

    async def reply(self, call: Call, forwarded: forward.Forwarded) -> Outcome:
        """Send a forwarded result's headers and keep its response to return (counted in `call`)."""
        response = await forward.send_unary_reply(self.context, forwarded)
        if response is not None:
            self.respond(response)
            call.response_bytes = len(response)
        return forwarded.outcome

    def respond(self, response: bytes) -> None:
        """Set the response the handler returns (when the call ends OK)."""
        self.response = response
        self.on_message(False, response)

    # -- the batching seam

    def infer_request(self) -> pb.ModelInferRequest:
        return pb.ModelInferRequest.FromString(self.request)

    def detached(self, request: pb.ModelInferRequest) -> UnaryExchange:
        return UnaryExchange(DetachedContext(), request.SerializeToString())

    def infer_response(self) -> tuple[pb.ModelInferResponse, Metadata]:
        """A detached exchange's answer, after its call ended OK, and the headers that came with it."""
        assert self.response is not None and isinstance(self.context, DetachedContext)
        return pb.ModelInferResponse.FromString(self.response), self.context.initial

    def waits(self) -> None:
        pass

    async def respond_infer(self, response: pb.ModelInferResponse, initial: Metadata) -> None:
        if initial:
            await self.context.send_initial_metadata(initial)
        self.respond(response.SerializeToString())


class DetachedContext:
    """The context of a call the sidecar makes on its own behalf (a batch): no caller, headers kept."""

    def __init__(self) -> None:
        self.initial: Metadata = []

    async def send_initial_metadata(self, metadata: Metadata) -> None:
        self.initial = list(metadata)


@dataclass(slots=True)
class StreamExchange:
    """A streaming call's transport state; the terminal handler writes replies to `context`."""

    context: forward.Context
    requests: AsyncIterator[bytes]
    target: str = ""
    on_message: OnMessage = unobserved

    message_offset: ClassVar[int] = 0
    message_format: ClassVar[str] = PROTOBUF

    def observe(self, on_message: OnMessage) -> None:
        self.on_message = on_message
        self.requests = _observed(self.requests, on_message)

    def sent(self, message: bytes) -> None:
        """A response message went to the caller."""
        self.on_message(False, message)


async def _observed(requests: AsyncIterator[bytes], on_message: OnMessage) -> AsyncIterator[bytes]:
    async for message in requests:
        on_message(True, message)
        yield message


class GrpcServer:
    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        max_message_bytes: int,
        unary: Next,
        streaming: Next,
        unary_methods: Iterable[str],
        streaming_methods: Iterable[str] = (),
        services: Sequence[AddService] = (),
        target_key: str = "",
    ) -> None:
        """`unary` and `streaming` are the chains calls cross; `name` is what a bind failure names
        ("gRPC egress"); a `target_key` metadata entry is moved out of the call into `exchange.target`."""
        self._name = name
        self._host, self._requested_port, self._port = host, port, 0
        self._unary, self._streaming = unary, streaming
        self._target_key = target_key
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),
            ]
        )
        for add in services:
            add(self.server)
        handlers = {m: self._unary_handler(m) for m in unary_methods}
        handlers |= {m: self._streaming_handler(m) for m in streaming_methods}
        self.server.add_generic_rpc_handlers((_Methods(handlers, self._streaming_handler),))

    @property
    def port(self) -> int:
        """The bound port (known after start)."""
        return self._port

    async def start(self) -> None:
        """Bind and serve; a port that cannot be bound is an OSError naming it and why."""
        address = f"{self._host}:{self._requested_port}"
        try:
            # grpcio raises RuntimeError, older releases returned 0; neither says why.
            self._port = self.server.add_insecure_port(address)
        except RuntimeError:
            self._port = 0
        if self._port == 0:
            why = _why_not(self._host, self._requested_port)
            raise OSError(f"cannot listen for {self._name} on {address}{why}")
        await self.server.start()

    async def stop(self, grace: float) -> None:
        """Stop accepting, let in-flight calls finish for up to `grace` seconds, then cancel them."""
        await self.server.stop(grace)

    def _unary_handler(self, method: str) -> grpc.RpcMethodHandler:
        chain = self._unary

        async def handle(request: bytes, context: forward.Context) -> bytes | None:
            exchange = UnaryExchange(context, request)
            call = self._call(method, context, exchange)
            call.request_bytes = len(request)
            outcome = await chain(call)
            forward.finish(context, outcome)
            return exchange.response if outcome.ok else None

        return grpc.unary_unary_rpc_method_handler(handle)

    def _streaming_handler(self, method: str) -> grpc.RpcMethodHandler:
        chain = self._streaming

        async def handle(requests: AsyncIterator[bytes], context: forward.Context) -> None:
            outcome: Outcome = await chain(self._call(method, context, StreamExchange(context, requests)))
            forward.finish(context, outcome)

        return grpc.stream_stream_rpc_method_handler(handle)

    def _call(self, method: str, context: forward.Context, exchange: UnaryExchange | StreamExchange) -> Call:
        metadata = forwardable(context.invocation_metadata() or ())
        if self._target_key:
            key = self._target_key
            exchange.target = next((str(v) for k, v in metadata if k == key), "")
            metadata = [(k, v) for k, v in metadata if k != key]
        remaining = context.time_remaining()
        return Call(
            method=method,
            metadata=metadata,
            deadline=Deadline.after(remaining) if remaining is not None else None,
            protocol="grpc",
            peer=context.peer(),
            exchange=exchange,
        )


def _why_not(host: str, port: int) -> str:
    """Why a port cannot be bound, found by binding it as grpc does (SO_REUSEADDR); "" if it now can."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:
        return f": {(e.strerror or str(e)).lower()}"
    return ""


class _Methods(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc is untyped
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
