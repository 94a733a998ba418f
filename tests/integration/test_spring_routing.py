"""Spring's own clients in front of sidecar-registered models, through the real Eureka server.

Two digits instances, each a model behind its sidecar, register as app "digits". Spring's gRPC
client starter (net.devh, tests/spring/grpc-client) calls them as `discovery:///digits`, which
works only because the sidecar registers the gRPC port under the key that starter reads.
"""

from __future__ import annotations

import asyncio
import pathlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc.aio
import pytest

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.digits import contents_request, images
from tests.support.eureka import EurekaServer, start_eureka
from tests.support.procs import HOST, Proc, start_model, start_sidecar
from tests.support.spring_grpc_client import run_grpc_client

pytestmark = pytest.mark.integration

SERVICE = "digits"
FAST = ("--lease-renewal-interval", "1", "--lease-duration", "3", "--registry-fetch-interval", "0.5")


@dataclass
class Cluster:
    eureka: EurekaServer
    models: list[Proc] = field(default_factory=list)
    sidecars: list[Proc] = field(default_factory=list)

    def infer_counts(self) -> list[int]:
        """ModelInfer calls (unary and streamed) each model has answered so far, by its own statistics."""

        async def one(model: Proc) -> int:
            async with grpc.aio.insecure_channel(f"{HOST}:{model.ports['grpc']}") as ch:
                stats = await pb_grpc.GRPCInferenceServiceStub(ch).ModelStatistics(
                    pb.ModelStatisticsRequest(name="digits")
                )
                return sum(s.inference_stats.success.count for s in stats.model_stats)

        async def all_() -> list[int]:
            return list(await asyncio.gather(*(one(m) for m in self.models)))

        return asyncio.run(all_())


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with start_eureka() as eureka:
        c = Cluster(eureka)
        try:
            for _ in range(2):
                model = start_model()
                c.models.append(model)
                c.sidecars.append(start_sidecar(model.ports["grpc"], "--eureka-url", eureka.url, *FAST,
                                                "--advertise-host", HOST, app_name=SERVICE))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                doc = eureka.app(SERVICE)
                if doc and sum(i["status"] == "UP" for i in doc["application"]["instance"]) == 2:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"the two instances never were UP in Eureka: {eureka.app(SERVICE)}")
            yield c
        finally:
            for proc in (*c.sidecars, *c.models):
                proc.stop()


def test_spring_grpc_client_starter_calls_sidecar_instances_by_discovery_name(cluster):
    x, y = images()
    request = pathlib.Path(tempfile.mkstemp(suffix=".pb")[1])
    request.write_bytes(contents_request(x[:4]).SerializeToString())
    before = cluster.infer_counts()
    result = run_grpc_client(cluster.eureka.url, str(request), instances=2, count=6)
    print(f"Spring gRPC client: {result}")
    grpc_ports = sorted(str(s.ports["grpc"]) for s in cluster.sidecars)
    assert sorted(i["gRPC_port"] for i in result["discovered"]) == grpc_ports
    assert result["ready"] is True
    assert result["labels"] == [y[:4].tolist()] * 6
    assert result["unknown_model"].startswith("NOT_FOUND: ") and "no-such-model" in result["unknown_model"]
    assert result["stream_labels"] == [y[:4].tolist()] * 6
    # round_robin over the two instances' gRPC ports: the six unary calls split three and three.
    after = cluster.infer_counts()
    unary_and_stream = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(unary_and_stream) == 12 and min(unary_and_stream) >= 3, unary_and_stream
