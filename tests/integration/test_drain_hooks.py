"""The two preStop hooks of an injected pod, on real processes: the sidecar's `ai-sidecar drain --wait`
(loopback admin) and the model's GET /drained (pod IP), and what the sidecar does after them."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import aiohttp
import grpc.aio
import pytest

from inference import grpc_service_pb2 as pb
from inference import grpc_service_pb2_grpc as pb_grpc
from sidecar.admin.drain_wait import DrainWaitListener
from tests.support import REPO
from tests.support.digits import images, raw_request
from tests.support.procs import HOST, free_port, running, start_model, start_sidecar

pytestmark = pytest.mark.integration


async def _drain_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar", "drain", *args,
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_prestop_hooks_return_once_in_flight_calls_are_done_and_the_sidecar_waits_for_sigterm():
    wait_port = free_port()
    with (
        running(start_model()) as model,
        running(
            start_sidecar(
                model.ports["grpc"], "--drain-wait-port", str(wait_port), "--drain-delay", "0.5",
                "--drain-timeout", "20",
            )
        ) as sidecar,
    ):  # fmt: skip
        done: dict[str, float] = {}
        http = aiohttp.ClientSession()

        async def model_prestop() -> int:
            async with http.get(f"http://{HOST}:{wait_port}/drained") as r:
                done["model_prestop"] = time.monotonic()
                return r.status

        async with grpc.aio.insecure_channel(f"{HOST}:{sidecar.ports['grpc']}") as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            slow = {"sleep_ms": pb.InferParameter(int64_param=2000)}
            call = stub.ModelInfer(raw_request(images()[0][:1], parameters=slow), timeout=30)

            async def in_flight() -> int:
                reply = await call
                done["call"] = time.monotonic()
                return len(reply.outputs)

            call_task = asyncio.ensure_future(in_flight())
            waiter = asyncio.ensure_future(model_prestop())
            await asyncio.sleep(0.3)  # the call is inside the model; the model's hook is waiting
            assert not waiter.done()
            code, out, err = await _drain_cli("--wait", "--admin-address", f"{HOST}:{sidecar.ports['admin']}")
            done["sidecar_prestop"] = time.monotonic()
            assert code == 0, err
            assert '"drained": true' in out
            assert await call_task >= 1
            assert await waiter == 200
            await http.close()
        # Both hooks returned only after the last call the sidecar had accepted was answered. The
        # reply and the hooks' answers reach this process on different sockets, so they may be
        # handled here a few milliseconds out of order; a drain that did not wait for the call would
        # have returned about 1.2 s before it (2 s call, drain started at 0.3 s with a 0.5 s delay).
        assert done["model_prestop"] > done["call"] - 0.1 and done["sidecar_prestop"] > done["call"] - 0.1
        # Drained, it does not exit by itself (Kubernetes would restart a native sidecar that did).
        await asyncio.sleep(1.0)
        assert sidecar.popen.poll() is None, sidecar.log()
        t0 = time.monotonic()
        sidecar.signal(signal.SIGTERM)
        assert await asyncio.to_thread(sidecar.wait, 10) == 0
        assert time.monotonic() - t0 < 3
        assert "waiting for SIGTERM" in sidecar.log()


async def test_drain_cli_names_the_address_when_no_sidecar_listens():
    port = free_port()
    code, _, err = await _drain_cli("--wait", "--admin-address", f"{HOST}:{port}")
    assert code == 1
    assert f"ai-sidecar drain: {HOST}:{port}:" in err and "refused" in err.lower()


async def test_drain_cli_refuses_a_bad_admin_port_in_the_environment():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sidecar", "drain", cwd=REPO, stderr=subprocess.PIPE,
        env={"SIDECAR_ADMIN_PORT": "ninety", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 2 and "SIDECAR_ADMIN_PORT" in err.decode()


@pytest.fixture
async def listener():
    draining, drained = asyncio.Event(), asyncio.Event()
    wait = DrainWaitListener(
        host=HOST, port=0, draining=draining, drained=drained, start_grace=0.3, max_waiters=2
    )
    await wait.start()
    try:
        yield wait, draining, drained
    finally:
        await wait.stop()


async def test_drained_refuses_when_no_drain_begins(listener):
    wait, _, _ = listener
    async with aiohttp.ClientSession() as http:
        t0 = time.monotonic()
        async with http.get(f"http://{HOST}:{wait.port}/drained") as r:
            assert r.status == 409
            assert "no drain began within 0.3s" in (await r.json())["error"]
        assert 0.25 < time.monotonic() - t0 < 2


async def test_drained_answers_when_a_drain_begun_later_ends(listener):
    wait, draining, drained = listener
    async with aiohttp.ClientSession() as http:
        get = asyncio.ensure_future(http.get(f"http://{HOST}:{wait.port}/drained"))
        await asyncio.sleep(0.1)
        draining.set()
        await asyncio.sleep(0.4)  # past the start grace: a drain in progress is waited for
        assert not get.done()
        drained.set()
        async with await get as r:
            assert r.status == 200 and await r.json() == {"drained": True}


async def test_drained_bounds_its_waiters(listener):
    wait, draining, drained = listener
    draining.set()
    async with aiohttp.ClientSession() as http:
        held = [asyncio.ensure_future(http.get(f"http://{HOST}:{wait.port}/drained")) for _ in range(2)]
        await asyncio.sleep(0.2)
        async with http.get(f"http://{HOST}:{wait.port}/drained") as r:
            assert r.status == 503 and "2 waiters already" in (await r.json())["error"]
        drained.set()
        for h in held:
            async with await h as r:
                assert r.status == 200
