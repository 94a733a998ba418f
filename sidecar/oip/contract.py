"""The OIP v2 gRPC contract's names, worked out once from its descriptor: the service, each method's path,
which methods stream, and each method's message types. Knows nothing about transports.

Every other module takes these names from here, so a method added to `proto/` reaches the data
planes, the transcoder, the REST binding and the metric labels at once.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from google.protobuf.message import Message

from inference import grpc_service_pb2 as pb

_SERVICE = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]

# "inference.GRPCInferenceService": also the grpc.health.v1 service name a health check may ask for.
SERVICE: Final = _SERVICE.full_name


def path(name: str) -> str:
    """A method's gRPC path, e.g. `path("ModelInfer")` is "/inference.GRPCInferenceService/ModelInfer"."""
    return f"/{SERVICE}/{name}"


# By method name ("ModelInfer"): its path, in the descriptor's order.
PATHS: Final = MappingProxyType({m.name: path(m.name) for m in _SERVICE.methods})
METHODS: Final = tuple(PATHS.values())
_STREAMS = {m.name: m.client_streaming or m.server_streaming for m in _SERVICE.methods}
UNARY: Final = tuple(path(name) for name, streams in _STREAMS.items() if not streams)
STREAMING: Final = tuple(path(name) for name, streams in _STREAMS.items() if streams)
# By path: the request and the response message class.
MESSAGES: Final[MappingProxyType[str, tuple[type[Message], type[Message]]]] = MappingProxyType(
    {
        path(m.name): (getattr(pb, m.input_type.name), getattr(pb, m.output_type.name))
        for m in _SERVICE.methods
    }
)

SERVER_LIVE: Final = PATHS["ServerLive"]
SERVER_READY: Final = PATHS["ServerReady"]
MODEL_READY: Final = PATHS["ModelReady"]
SERVER_METADATA: Final = PATHS["ServerMetadata"]
MODEL_METADATA: Final = PATHS["ModelMetadata"]
MODEL_INFER: Final = PATHS["ModelInfer"]
MODEL_STREAM_INFER: Final = PATHS["ModelStreamInfer"]
