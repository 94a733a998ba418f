"""Model death and return, and the SIGTERM drain, with real processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from tests.support.digits import images, raw_request
from tests.support.procs import HOST, http_get, running, start_model, start_sidecar, wait_http

pytestmark = pytest.mark.integration

INTERVAL, TIMEOUT, FAILURES = 0.2, 0.5, 3


async def test_model_killed_then_restarted_without_restarting_the_sidecar(dataplane):
    model = start_model()
    port = model.ports["grpc"]
    flags = (
        "--probe-interval",
        str(INTERVAL),
        "--probe-timeout",
        str(TIMEOUT),
        "--probe-failure-threshold",
        str(FAILURES),
        "--dataplane",
        dataplane,
    )
    with running(start_sidecar(port, *flags)) as sidecar:
        model.popen.kill()
        model.stop()
        t0 = time.monotonic()
        wait_http(sidecar, "/readyz", timeout=5, status=503)
        took = time.monotonic() - t0
        # Each failed probe of a dead local port is refused at once, so the bound
        # is the failure streak plus one probe timeout (and scheduling slack).
        assert took < INTERVAL * FAILURES + TIMEOUT + 0.5, took
        status, body = http_get(sidecar.ports["http"], "/readyz")
        assert status == 503 and b"model not ready" in body

        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            t0 = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.ModelInfer(raw_request(images()[0][:1]), timeout=10)
            assert time.monotonic() - t0 < 0.5
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "model not ready" in (e.value.details() or "")
            async with (
                aiohttp.ClientSession() as s,
                s.post(
                    f"http://{HOST}:{sidecar.ports['http']}/v2/models/digits/infer",
                    json={"inputs": []},
                ) as r,
            ):
                assert r.status == 503 and "model not ready" in (await r.json())["error"]

            with running(start_model(port=port)):
                wait_http(sidecar, "/readyz", timeout=10)
                resp = await stub.ModelInfer(raw_request(images()[0][:2]), timeout=5)
                assert len(resp.outputs) == 2
        assert sidecar.stop() == 0


async def test_sigterm_drains_twenty_in_flight_calls_then_exits_zero(dataplane):
    with (
        running(start_model()) as model,
        running(
            start_sidecar(model.ports["grpc"], "--drain-timeout", "20", "--dataplane", dataplane)
        ) as sidecar,
    ):
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            slow = {"sleep_ms": pb.InferParameter(int64_param=1500)}
            calls = [
                stub.ModelInfer(
                    raw_request(images()[0][i : i + 1], id=str(i), parameters=slow), timeout=30
                )
                for i in range(20)
            ]
            tasks = [asyncio.ensure_future(c) for c in calls]
            await asyncio.sleep(0.5)  # all 20 are now inside the model
            sidecar.signal(signal.SIGTERM)
            results = await asyncio.gather(*tasks)
        assert sorted(int(r.id) for r in results) == list(range(20))
        assert await asyncio.to_thread(sidecar.wait, 10) == 0
        assert "Traceback" not in sidecar.log()


async def test_health_watch_follows_the_model_down_and_up(dataplane):
    model = start_model()
    port = model.ports["grpc"]
    flags = ("--probe-interval", str(INTERVAL), "--probe-timeout", str(TIMEOUT), "--dataplane", dataplane)
    serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
    with running(start_sidecar(port, *flags)) as sidecar:
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            health = health_pb2_grpc.HealthStub(ch)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            unknown = health.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"))
            assert (await watch.read()).status == serving
            assert (await unknown.read()).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            model.popen.kill()
            model.stop()
            async with asyncio.timeout(5):
                assert (await watch.read()).status == not_serving
            with running(start_model(port=port)):
                async with asyncio.timeout(10):
                    assert (await watch.read()).status == serving
                # Still one open stream each: a Check on the same connection works alongside.
                assert (await health.Check(health_pb2.HealthCheckRequest(service=""))).status == serving
            watch.cancel()
            unknown.cancel()



@pytest.mark.parametrize("listener", ["grpc", "egress-grpc"])
def test_a_taken_grpc_port_stops_the_start_with_one_line_naming_it(listener):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = dict.fromkeys(("grpc", "http", "admin", "egress-grpc", "egress-http"), "0")
        ports[listener] = str(port)
        flags = [arg for name, value in ports.items() for arg in (f"--{name}-port", value)]
        proc = subprocess.run(
            [sys.executable, "-m", "sidecar", "run", "--app-name", "taken", "--model-address", f"{HOST}:1",
             "--dataplane", "grpcio", "--listen-host", HOST, "--admin-host", HOST, *flags],
            env={k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")},
            capture_output=True, text=True, timeout=30, check=False,
        )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    name = "gRPC" if listener == "grpc" else "gRPC egress"
    assert f"cannot start: cannot listen for {name} on {HOST}:{port}: address already in use" in proc.stderr


QUIET = ("--drain-delay", "auto", "--drain-quiet-period", "1s", "--drain-max-delay", "30s")


async def test_quiet_period_drain_serves_while_calls_still_come_then_stops():
    # Callers that have not noticed the drain call for 3 s more; the sidecar serves them all, then
    # stops one quiet period after the last one, long before its maximum.
    with (
        running(start_model()) as model,
        running(start_sidecar(model.ports["grpc"], *QUIET, "--drain-min-delay", "0")) as sidecar,
    ):
        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            request = raw_request(images()[0][:1])
            await stub.ModelInfer(request, timeout=5)
            sidecar.signal(signal.SIGTERM)
            t0 = time.monotonic()
            calls = []
            while time.monotonic() - t0 < 3.0:
                calls.append(asyncio.ensure_future(stub.ModelInfer(request, timeout=5)))
                await asyncio.sleep(0.05)
            results = await asyncio.gather(*calls, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            assert failed == [], failed[:3]
            assert await asyncio.to_thread(sidecar.wait, 10) == 0
            took = time.monotonic() - t0
        # The last call at about 3 s, seen within a 0.25 s poll, then 1 s of quiet.
        assert 3.9 <= took <= 6.0, took
        # Those sent before the signal was handled came before the drain began.
        arrived = re.search(r"(\d+) calls arrived", sidecar.log())
        assert arrived is not None and len(calls) // 2 <= int(arrived.group(1)) <= len(calls)


async def test_quiet_period_drain_of_an_idle_sidecar_stops_at_its_minimum():
    with (
        running(start_model()) as model,
        running(start_sidecar(model.ports["grpc"], *QUIET, "--drain-min-delay", "2s")) as sidecar,
    ):
        sidecar.signal(signal.SIGTERM)
        t0 = time.monotonic()
        assert await asyncio.to_thread(sidecar.wait, 10) == 0
        took = time.monotonic() - t0
    assert 2.0 <= took <= 4.0, took
    assert "none since the drain began" in sidecar.log()
