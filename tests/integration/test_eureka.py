"""Registration, status, drain and discovery against a real Spring Cloud Eureka server."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc.aio
import pytest

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.digits import images, raw_request
from tests.support.eureka import EurekaServer, start_eureka
from tests.support.procs import HOST, Proc, free_port, http_get, running, start_model, start_sidecar

pytestmark = pytest.mark.integration

LEASE_RENEWAL = 1
FETCH_INTERVAL = 1.0
FAST = (
    "--lease-renewal-interval",
    str(LEASE_RENEWAL),
    "--lease-duration",
    "3",
    "--registry-fetch-interval",
    str(FETCH_INTERVAL),
    "--model",
    "digits",
    "--advertise-host",
    "localhost",
)


@pytest.fixture(scope="module")
def eureka() -> Iterator[EurekaServer]:
    with start_eureka() as server:
        yield server


def instances(eureka: EurekaServer, app: str) -> list[dict[str, Any]]:
    doc = eureka.app(app)
    return [] if doc is None else list(doc["application"]["instance"])


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s (last {last!r})")


def status_of(eureka: EurekaServer, app: str) -> str | None:
    found = instances(eureka, app)
    return found[0]["status"] if found else None


def sidecar_for(eureka: EurekaServer, model_port: int, app: str, *flags: str, **kw: Any) -> Proc:
    return start_sidecar(model_port, "--eureka-url", eureka.url, *FAST, *flags, app_name=app, **kw)


def test_registers_only_once_ready_with_every_field(eureka):
    port = free_port()
    with running(
        sidecar_for(eureka, port, "ocr-a", "--zone", "zone-1", "--weight", "3", wait_ready=False)
    ) as sidecar:
        time.sleep(2)  # probes fail: no model listens yet
        assert instances(eureka, "ocr-a") == []
        with running(start_model(port=port)):
            inst = eventually(lambda: instances(eureka, "ocr-a"), 10, "registered")[0]
            grpc_port, http_port, admin_port = (sidecar.ports[k] for k in ("grpc", "http", "admin"))
            assert inst["status"] == "UP"
            assert inst["app"] == "OCR-A"
            assert inst["instanceId"] == f"localhost:ocr-a:{grpc_port}"
            assert inst["hostName"] == "localhost" and inst["ipAddr"] == HOST
            assert inst["port"] == {"$": http_port, "@enabled": "true"}
            assert inst["securePort"]["@enabled"] == "false"
            assert inst["vipAddress"] == inst["secureVipAddress"] == "ocr-a"
            assert inst["healthCheckUrl"] == f"http://localhost:{http_port}/readyz"
            assert inst["statusPageUrl"].startswith(f"http://localhost:{http_port}/")
            assert inst["homePageUrl"] == f"http://localhost:{http_port}/"
            assert inst["dataCenterInfo"]["name"] == "MyOwn"
            assert inst["leaseInfo"]["renewalIntervalInSecs"] == LEASE_RENEWAL
            assert inst["leaseInfo"]["durationInSecs"] == 3
            md = inst["metadata"]
            assert md["grpc.port"] == str(grpc_port)  # keys with "." and "_" come back as written
            assert md["gRPC_port"] == md["gRPC.port"] == str(grpc_port)  # as Spring's gRPC starter reads
            assert md["model_name"] == "digits"
            assert md["management.port"] == str(admin_port)
            assert md["zone"] == "zone-1" and md["weight"] == "3"
            assert md["model.digits.versions"] == "1" and md["model.digits.platform"] == "numpy"
            assert md["server.name"] == "digits-python" and md["sidecar.version"]


def test_in_kubernetes_the_host_name_registered_is_the_ip_spring_clients_connect_to(eureka):
    # The kubelet sets KUBERNETES_SERVICE_HOST in every container; nothing here connects to it.
    # Without --advertise-host, hostName is the advertised IP (listen_host here), as Spring's
    # prefer-ip-address registers it: Spring clients connect to hostName, and pod names do not resolve.
    flags = [f for f in FAST if f not in ("--advertise-host", "localhost")]
    with (
        running(start_model()) as model,
        running(start_sidecar(model.ports["grpc"], "--eureka-url", eureka.url, *flags, app_name="ocr-k8s",
                              env={"KUBERNETES_SERVICE_HOST": "10.96.0.1"})) as sidecar,
    ):
        inst = eventually(lambda: instances(eureka, "ocr-k8s"), 10, "registered")[0]
        http_port = sidecar.ports["http"]
        assert inst["hostName"] == inst["ipAddr"] == HOST
        assert inst["healthCheckUrl"] == f"http://{HOST}:{http_port}/readyz"
        # The instance id keeps the machine's (pod's) name: unique and readable in the dashboard.
        assert inst["instanceId"] == f"{socket.gethostname()}:ocr-k8s:{sidecar.ports['grpc']}"
        status, _ = http_get(http_port, "/readyz")
        assert status == 200


def test_status_follows_model_health(eureka):
    model = start_model()
    port = model.ports["grpc"]
    with running(sidecar_for(eureka, port, "ocr-b", "--probe-failure-threshold", "2")):
        eventually(lambda: status_of(eureka, "ocr-b") == "UP", 10, "UP")
        model.popen.kill()
        model.stop()
        t0 = time.monotonic()
        eventually(lambda: status_of(eureka, "ocr-b") == "DOWN", 10, "DOWN")
        # probe failures (2 x 0.2 s + timeout) plus one heartbeat interval, with slack
        assert time.monotonic() - t0 < 0.2 * 2 + 0.5 + LEASE_RENEWAL + 1.0
        with running(start_model(port=port)):
            eventually(lambda: status_of(eureka, "ocr-b") == "UP", 10, "UP again")


async def test_sigterm_goes_out_of_service_then_deregisters_and_drains(eureka):
    with (
        running(start_model()) as model,
        running(sidecar_for(eureka, model.ports["grpc"], "ocr-c", "--drain-delay", "2")) as sidecar,
    ):
        await asyncio.to_thread(eventually, lambda: status_of(eureka, "ocr-c") == "UP", 10, "UP")
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            slow = {"sleep_ms": pb.InferParameter(int64_param=1000)}
            first = [
                asyncio.ensure_future(stub.ModelInfer(raw_request(images()[0][:1], parameters=slow)))
                for _ in range(5)
            ]
            await asyncio.sleep(0.3)
            sidecar.signal(signal.SIGTERM)
            await asyncio.to_thread(
                eventually, lambda: status_of(eureka, "ocr-c") == "OUT_OF_SERVICE", 3, "OUT_OF_SERVICE"
            )
            # still serving during the drain delay: callers that have not noticed succeed
            late = [
                asyncio.ensure_future(stub.ModelInfer(raw_request(images()[0][:1], parameters=slow)))
                for _ in range(5)
            ]
            results = await asyncio.gather(*first, *late)
        assert len(results) == 10
        await asyncio.to_thread(eventually, lambda: instances(eureka, "ocr-c") == [], 10, "deregistered")
        assert await asyncio.to_thread(sidecar.wait, 10) == 0


def test_eureka_down_then_back_empty(eureka):
    with running(start_model()) as model, running(sidecar_for(eureka, model.ports["grpc"], "ocr-d")) as sc:
        eventually(lambda: status_of(eureka, "ocr-d") == "UP", 10, "UP")
        eureka.stop()
        outage_end = time.monotonic() + 30
        while time.monotonic() < outage_end:  # the sidecar keeps serving throughout
            assert http_get(sc.ports["http"], "/v2/health/ready")[0] == 200
            time.sleep(1)
        eureka.start()  # same port, empty registry
        back = time.monotonic()
        eventually(lambda: status_of(eureka, "ocr-d") == "UP", 15, "registered again")
        took = time.monotonic() - back
        assert took <= LEASE_RENEWAL + 1.0, took


def registry(proc: Proc) -> dict[str, Any]:
    status, body = http_get(proc.ports["admin"], "/registry")
    assert status == 200
    return dict(json.loads(body))


def seen_apps(proc: Proc) -> set[str]:
    return set(registry(proc)["discovery"]["apps"])


def test_discovery_sees_peers_arrive_by_delta_and_leave(eureka):
    with (
        running(start_model()) as m1,
        running(start_model()) as m2,
        running(start_model()) as m3,
        running(sidecar_for(eureka, m1.ports["grpc"], "peer-one")) as one,
        running(sidecar_for(eureka, m2.ports["grpc"], "peer-two")) as two,
    ):
        eventually(lambda: {"PEER-ONE", "PEER-TWO"} <= seen_apps(one), 10, "one sees both")
        eventually(lambda: {"PEER-ONE", "PEER-TWO"} <= seen_apps(two), 10, "two sees both")
        third = sidecar_for(eureka, m3.ports["grpc"], "peer-three")
        with running(third):
            eventually(lambda: instances(eureka, "peer-three"), 10, "third registered")
            t0 = time.monotonic()
            eventually(lambda: "PEER-THREE" in seen_apps(one), 5, "one sees three")
            assert time.monotonic() - t0 <= FETCH_INTERVAL + 0.5
            fetches = registry(one)["discovery_fetches"]
            assert fetches["delta"] > 0 and fetches["full"] == 1, fetches
            (ep,) = [e for e in registry(one)["discovery"]["apps"]["PEER-THREE"]]
            assert ep["grpcPort"] == third.ports["grpc"] and ep["httpPort"] == third.ports["http"]
            status, hosts = http_get(one.ports["admin"], "/hosts/peer-three")
            assert status == 200 and json.loads(hosts)[0]["port"] == third.ports["http"]
        eventually(lambda: "PEER-THREE" not in seen_apps(one), 5, "three gone from one's view")


def test_fails_over_to_the_next_eureka_url(eureka):
    dead = f"http://{HOST}:{free_port()}/eureka/"  # nothing listens there
    with running(start_model()) as model, running(start_sidecar(
            model.ports["grpc"], "--eureka-url", f"{dead},{eureka.url}", *FAST,
            "--advertise-host", "localhost", app_name="ocr-e")) as sidecar:
        eventually(lambda: status_of(eureka, "ocr-e") == "UP", 10, "registered through the second URL")
        assert registry(sidecar)["registration"]["registered"] is True
