"""The grpc.testing Python stubs, generated from tests/interop/proto by grpc_tools.protoc at test time.

The .proto files are a hand-written subset of grpc/grpc's (names and field numbers as grpc-go's);
no package on PyPI ships them in a usable form. Knows nothing about processes or the cases.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

PROTO_ROOT = Path(__file__).resolve().parent / "proto"
# The import path of the generated modules: not `grpc.testing`, which would shadow the grpc package.
PACKAGE = "interop_testing"


@dataclass(frozen=True)
class Protos:
    empty: ModuleType  # empty_pb2: Empty
    messages: ModuleType  # messages_pb2: SimpleRequest, Payload, ...
    services: ModuleType  # test_pb2_grpc: TestServiceStub, UnimplementedServiceStub


def generate(out: Path) -> Protos:
    """Compile the protos into `out`, put it on sys.path and import the generated modules."""
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    protoc = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}"]
    outputs = [f"--python_out={out}", f"--grpc_python_out={out}"]
    done = subprocess.run([*protoc, *outputs, *sources], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"grpc_tools.protoc failed on {sources}:\n{done.stderr}"
    sys.path.insert(0, str(out))
    return Protos(
        empty=importlib.import_module(f"{PACKAGE}.empty_pb2"),
        messages=importlib.import_module(f"{PACKAGE}.messages_pb2"),
        services=importlib.import_module(f"{PACKAGE}.test_pb2_grpc"),
    )
