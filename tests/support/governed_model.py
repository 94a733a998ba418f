"""An OIP model for the governance tests: counts its calls, its peak concurrency, what metadata reached it.

Serves ModelInfer (answering after `--delay` seconds, at most `--capacity` at once: more wait
in its own queue, as a model server with that many workers does), ModelMetadata, the health
calls and grpc.health.v1. Its own counters are read straight from it, never through a sidecar:
/test.Counters/Get answers JSON {"calls", "in_flight", "max_in_flight", "last_metadata"} and
/test.Counters/Reset zeroes them.

Run: python tests/support/governed_model.py --port 0 (prints "governed model listening on HOST:PORT")
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2_grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc

READY = "governed model listening on "
COUNTERS = "/test.Counters/"


class Model(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, delay: float, capacity: int) -> None:
        self.delay = delay
        self.slots = asyncio.Semaphore(capacity)
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.last_metadata: dict[str, str] = {}

    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=True)

    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=True)

    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        self.calls += 1
        return pb.ModelMetadataResponse(name=request.name, platform="test")

    async def ModelInfer(self, request: Any, context: Any) -> pb.ModelInferResponse:
        self.calls += 1
        self.last_metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            async with self.slots:
                if self.delay:
                    await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return pb.ModelInferResponse(model_name=request.model_name, id=request.id)


def counters(model: Model) -> grpc.GenericRpcHandler:
    async def get(request: bytes, context: Any) -> bytes:
        return json.dumps(
            {
                "calls": model.calls,
                "in_flight": model.in_flight,
                "max_in_flight": model.max_in_flight,
                "last_metadata": model.last_metadata,
            }
        ).encode()

    async def reset(request: bytes, context: Any) -> bytes:
        model.reset()
        return b"{}"

    return grpc.method_handlers_generic_handler(
        "test.Counters",
        {
            "Get": grpc.unary_unary_rpc_method_handler(get),
            "Reset": grpc.unary_unary_rpc_method_handler(reset),
        },
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--capacity", type=int, default=1000)
    args = parser.parse_args()
    model = Model(args.delay, args.capacity)
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(model, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_generic_rpc_handlers((counters(model),))
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    await server.start()
    print(f"{READY}{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
