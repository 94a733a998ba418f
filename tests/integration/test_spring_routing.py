"""Spring's own clients in front of sidecar-registered models, through the real Eureka server.

Two digits instances, each a model behind its sidecar, register as app "digits"; a stream backend
(every streaming kind, and a status after messages) behind a sidecar registers as "streams".
- Spring's gRPC client starter (net.devh, tests/spring/grpc-client) calls digits as
  `discovery:///digits`, which works only because the sidecar registers the gRPC port under the
  key that starter reads (gRPC_port).
- Spring Cloud Gateway (tests/spring/gateway, one JVM for the module) routes OIP REST calls and
  gRPC calls to `lb://digits`; what gRPC needs beyond the stock gateway, and what the stock
  gateway does without it, is in tests/spring/gateway/README.md.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import queue
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import numpy as np
import pytest

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support import REPO
from tests.support.digits import contents_request, images
from tests.support.eureka import EurekaServer, start_eureka
from tests.support.metrics import ingress_calls
from tests.support.procs import HOST, Proc, start_listening, start_model, start_sidecar
from tests.support.spring_gateway import Gateway, start_gateway
from tests.support.spring_grpc_client import run_grpc_client

pytestmark = pytest.mark.integration

SERVICE = "digits"
STREAM_BACKEND = REPO / "tests" / "support" / "stream_backend.py"
FAST = ("--lease-renewal-interval", "1", "--lease-duration", "3", "--registry-fetch-interval", "0.5")


@dataclass
class Cluster:
    eureka: EurekaServer
    models: list[Proc] = field(default_factory=list)
    sidecars: list[Proc] = field(default_factory=list)
    # The stream backend and its sidecar.
    streams: list[Proc] = field(default_factory=list)

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
            # A backend with every streaming kind and a status after messages, as app "streams".
            backend = start_listening([sys.executable, str(STREAM_BACKEND)], name="streams",
                                      ready_prefix="stream backend listening on ")
            c.streams.append(backend)
            c.streams.append(start_sidecar(backend.ports["grpc"], "--eureka-url", eureka.url, *FAST,
                                           "--advertise-host", HOST, app_name="streams"))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                docs = eureka.app(SERVICE), eureka.app("streams")
                up = [sum(i["status"] == "UP" for i in d["application"]["instance"]) if d else 0
                      for d in docs]
                if up == [2, 1]:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"the instances never were UP in Eureka: {eureka.apps()}")
            yield c
        finally:
            for proc in (*c.sidecars, *c.models, *reversed(c.streams)):
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


@pytest.fixture(scope="module")
def gateway(cluster: Cluster) -> Iterator[Gateway]:
    # Fetch the registry every second and keep LoadBalancer's instance cache a second (defaults 30 s
    # and 35 s): the instances registered a moment ago.
    gw = start_gateway(cluster.eureka.url, properties=(
        "--eureka.client.registry-fetch-interval-seconds=1", "--spring.cloud.loadbalancer.cache.ttl=1s",
        "--gateway.streams-route=true"))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # routable once its first Eureka fetch is in
            try:
                with urllib.request.urlopen(f"{gw.url}/digits/v2/health/ready", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"the gateway never routed to digits:\n{gw.log()[-5000:]}")
        print(f"gateway listening after {gw.startup_seconds:.1f} s")
        yield gw
    finally:
        gw.stop()


def labels_of(response: pb.ModelInferResponse) -> list[int]:
    (label,) = [o for o in response.outputs if o.name == "LABEL"]
    return list(label.contents.int64_contents)


def predicted(cluster: Cluster, x: Any) -> Any:
    """The labels a model answers for `x` when called directly."""
    with grpc.insecure_channel(f"{HOST}:{cluster.models[0].ports['grpc']}") as ch:
        response = pb_grpc.GRPCInferenceServiceStub(ch).ModelInfer(contents_request(x), timeout=10)
    return np.array(labels_of(response))


def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_gateway_routes_oip_rest_calls_through_lb_to_both_instances(cluster, gateway):
    x, y = images()
    body = {"inputs": [{"name": "INPUT0", "shape": [3, 64], "datatype": "FP32",
                        "data": x[:3].astype(float).ravel().tolist()}]}
    before = cluster.infer_counts()
    for _ in range(10):
        status, answer = post_json(f"{gateway.url}/digits/v2/models/digits/infer", body)
        assert status == 200, answer
        assert next(o for o in answer["outputs"] if o["name"] == "LABEL")["data"] == y[:3].tolist()
    spread = [a - b for a, b in zip(cluster.infer_counts(), before, strict=True)]
    print(f"REST through the gateway, calls per instance: {spread}")
    assert sum(spread) == 10 and min(spread) >= 2, spread
    with urllib.request.urlopen(f"{gateway.url}/digits/v2/models/digits", timeout=10) as r:
        assert json.load(r)["name"] == "digits"
    # The instance's own errors pass through, status and message.
    bad = {"inputs": [{"name": "INPUT0", "shape": [1, 3], "datatype": "FP32", "data": [0.0, 0.0, 0.0]}]}
    status, answer = post_json(f"{gateway.url}/digits/v2/models/digits/infer", bad)
    assert status == 400 and "[1,3]" in answer["error"].replace(" ", ""), answer


def test_gateway_proxies_grpc_unary_calls_to_the_instances_grpc_ports(cluster, gateway):
    x, y = images()
    before = cluster.infer_counts()
    with grpc.insecure_channel(f"{HOST}:{gateway.port}") as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        for _ in range(10):
            assert labels_of(stub.ModelInfer(contents_request(x[:3]), timeout=10)) == y[:3].tolist()
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="digits"), timeout=10)
        assert metadata.name == "digits"
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(pb.ModelInferRequest(model_name="no-such-model"), timeout=10)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND and "no-such-model" in (e.value.details() or "")
    spread = [a - b for a, b in zip(cluster.infer_counts(), before, strict=True)]
    print(f"gRPC through the gateway, calls per instance: {spread}")
    assert sum(spread) == 10 and min(spread) >= 2, spread


def test_gateway_proxies_every_grpc_streaming_kind_with_headers_and_trailers(cluster, gateway):
    x, _ = images()
    y = predicted(cluster, x[:10])  # the model's own answers (it takes one of these 5 for a 9)
    with grpc.insecure_channel(f"{HOST}:{gateway.port}") as ch:
        stub = pb_grpc.GRPCInferenceServiceStub(ch)
        # Bidi, all requests first: ModelStreamInfer answers each in order.
        responses = list(stub.ModelStreamInfer(iter([contents_request(x[i:i + 2]) for i in range(0, 10, 2)]),
                                               timeout=10))
        expected = [y[i:i + 2].tolist() for i in range(0, 10, 2)]
        assert [labels_of(r.infer_response) for r in responses] == expected
        # Bidi, ping-pong: each request waits for the answer to the one before, so nothing on the way
        # may hold the request stream back until it ends.
        asks: queue.Queue[pb.ModelInferRequest | None] = queue.Queue()
        asks.put(contents_request(x[:1]))
        answered = 0
        for _ in stub.ModelStreamInfer(iter(asks.get, None), timeout=10):
            answered += 1
            asks.put(contents_request(x[:1]) if answered < 3 else None)
        assert answered == 3
        # Custom metadata both ways: the model echoes x-echo-* in its headers, and as *-trailer in
        # its trailers.
        echo = (("x-echo-probe", "2"),)
        _, state = stub.ModelInfer.with_call(contents_request(x[:1]), timeout=10, metadata=echo)
        assert dict(state.initial_metadata())["x-echo-probe"] == "2"
        assert dict(state.trailing_metadata())["x-echo-probe-trailer"] == "2"
        # Server and client streaming, to the stream backend.
        assert list(ch.unary_stream("/test.Streams/ServerStream")(b"3", timeout=10)) == [
            b"item-0", b"item-1", b"item-2"]
        assert ch.stream_unary("/test.Streams/ClientStream")(iter([b"a", b"b", b"c"]), timeout=10) == b"a|b|c"


def fail_midstream(channel: grpc.Channel) -> tuple[list[bytes], grpc.StatusCode, str, dict[str, str]]:
    got: list[bytes] = []
    try:
        for message in channel.unary_stream("/test.Streams/FailMidstream")(b"", timeout=10):
            got.append(message)
    except grpc.RpcError as e:
        return got, e.code(), e.details() or "", dict(e.trailing_metadata() or ())
    return got, grpc.StatusCode.OK, "", {}


def test_a_status_after_messages_crosses_the_gateway_with_its_trailers(gateway):
    with grpc.insecure_channel(f"{HOST}:{gateway.port}") as ch:
        got, code, details, trailers = fail_midstream(ch)
    assert (got, code, details) == ([b"first"], grpc.StatusCode.DATA_LOSS, "lost after one message")
    assert trailers["x-why"] == "midstream"


def test_stock_spring_cloud_gateway_reports_a_status_after_messages_as_ok(gateway):
    # What GrpcRouting's trailers filter is for: on a route without it (metadata grpc-trailers: stock),
    # Spring Cloud Gateway 4.3.0 writes its trailers from the upstream's headers, which hold no status
    # here, so the client reads grpc-status 0. If a later Gateway forwards trailers itself, this fails,
    # and tests/spring/gateway/README.md needs saying so.
    options = [("grpc.default_authority", "stock.streams")]
    with grpc.insecure_channel(f"{HOST}:{gateway.port}", options=options) as ch:
        got, code, _, trailers = fail_midstream(ch)
    assert (got, code, trailers) == ([b"first"], grpc.StatusCode.OK, {})


def test_gateway_passes_the_grpc_timeout_to_the_instance(cluster, gateway, tmp_path):
    # curl over h2c sends grpc-timeout and then waits (up to 5 s): only the instance's sidecar,
    # told 300 ms by the header the gateway passed on, can end this call early. A grpcio client
    # would cancel the call at its own deadline and hide whether the header went through.
    x, _ = images()
    request = contents_request(x[:1])
    request.parameters["sleep_ms"].int64_param = 3000
    body = request.SerializeToString()
    frame = tmp_path / "request.bin"
    frame.write_bytes(b"\0" + len(body).to_bytes(4, "big") + body)
    digits = cluster.sidecars
    before = sum(ingress_calls(s, "DEADLINE_EXCEEDED") for s in digits)
    started = time.monotonic()
    done = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "5", "-D", "-", "-o", "/dev/null",
         "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", "grpc-timeout: 300m",
         "--data-binary", f"@{frame}", f"{gateway.url}/inference.GRPCInferenceService/ModelInfer"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    print(f"grpc-timeout 300m through the gateway ended after {elapsed * 1000:.0f} ms:\n{done.stdout}")
    assert done.returncode == 0, done.stderr
    assert "grpc-status: 4" in done.stdout and elapsed < 2.0
    assert sum(ingress_calls(s, "DEADLINE_EXCEEDED") for s in digits) == before + 1
