"""A raw-bytes gRPC backend with every streaming kind, for passthrough tests of methods outside the contract.

Run: python tests/support/stream_backend.py --port 0  (prints "stream backend listening on HOST:PORT")
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2_grpc

SERVICE = "test.Streams"
OPTIONS = [
    ("grpc.max_receive_message_length", 128 << 20),
    ("grpc.max_send_message_length", 128 << 20),
    ("grpc.max_metadata_size", 1 << 20),
]


async def unary(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    echoed = [(k, v) for k, v in context.invocation_metadata() or () if k.startswith("x-echo-")]
    if echoed:
        await context.send_initial_metadata(echoed)
    return b"unary:" + request


async def server_stream(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    for i in range(int(request)):
        yield f"item-{i}".encode()


async def flood(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    """int(request) messages of 64 KiB: a stream that outruns any window a reader leaves unread."""
    block = bytes(range(256)) * 256
    for i in range(int(request)):
        yield i.to_bytes(4, "big") + block[4:]


async def client_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> bytes:
    parts = [r async for r in requests]
    return b"|".join(parts)


async def bidi(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    async for r in requests:
        yield b"echo:" + r


async def fail_midstream(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    yield b"first"
    context.set_trailing_metadata((("x-why", "midstream"),))
    await context.abort(grpc.StatusCode.DATA_LOSS, "lost after one message")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    # Room for the relay's limits tests: 64 MiB messages, header blocks that need CONTINUATIONs.
    server = grpc.aio.server(options=OPTIONS)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "Unary": grpc.unary_unary_rpc_method_handler(unary),
                    "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
                    "Flood": grpc.unary_stream_rpc_method_handler(flood),
                    "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
                    "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
                    "FailMidstream": grpc.unary_stream_rpc_method_handler(fail_midstream),
                },
            ),
        )
    )
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    await server.start()
    print(f"stream backend listening on {args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    asyncio.run(main())
