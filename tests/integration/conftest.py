"""Fixtures that start real model and sidecar processes on free loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc.aio
import pytest

from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.procs import HOST, Proc, running, start_model, start_sidecar


@pytest.fixture(scope="module")
def model() -> Iterator[Proc]:
    with running(start_model()) as proc:
        yield proc


@pytest.fixture(scope="module", params=["grpcio", "relay"])
def dataplane(request: pytest.FixtureRequest) -> str:
    """The gRPC ingress data plane under test: every ingress test runs on both."""
    value: str = request.param
    return value


@pytest.fixture(scope="module")
def sidecar(model: Proc, dataplane: str) -> Iterator[Proc]:
    with running(start_sidecar(model.ports["grpc"], "--model", "digits", "--dataplane", dataplane)) as proc:
        yield proc


@pytest.fixture
async def direct_channel(model: Proc) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"{HOST}:{model.ports['grpc']}") as ch:
        yield ch


@pytest.fixture
async def sidecar_channel(sidecar: Proc) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
        yield ch


@pytest.fixture
def stub(sidecar_channel: grpc.aio.Channel) -> pb_grpc.GRPCInferenceServiceStub:
    return pb_grpc.GRPCInferenceServiceStub(sidecar_channel)
